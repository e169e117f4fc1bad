"""Objects in an S3 bucket (AWS or any S3-compatible server: MinIO, Ceph, R2, SeaweedFS).

The client is boto3's (docs/DECISIONS.md says why): credentials, region, profile and
endpoint come from the AWS tools' own chain (`AWS_ACCESS_KEY_ID`, `AWS_PROFILE`,
`AWS_ENDPOINT_URL_S3`, `~/.aws/config`, instance and pod roles), plus `AWS_REGION`,
which botocore itself does not read; the job file's `[storage]` table sets what the
chain does not (an endpoint for one job, path-style addressing, retries, timeouts).
Credentials never appear in a message or a log line: errors name the object and
S3's error code, nothing else.

Conditional writes are S3's `If-None-Match: *` (`create`) and `If-Match: <ETag>`
(`replace`). Uploads carry their SHA-256 (`x-amz-checksum-sha256`, per part for large
files), which the server checks before it stores a byte; large uploads are then also
compared by size. Downloads land in a cache folder under their SHA-256, verified before
they are renamed into place, so a reader never reads a partial or damaged copy.
Throttling (`503 SlowDown`) and dropped connections are retried by botocore's
`standard` mode: exponential backoff with jitter, capped at 20 s a wait, `max_attempts`
tries in all.
"""

from __future__ import annotations

import base64
import hashlib
import os
import shutil
import tempfile
import threading
import time
import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import boto3
import botocore.exceptions
from boto3.s3.transfer import TransferConfig
from botocore.config import Config

from scenario_analytics.locations import Location
from scenario_analytics.settings import StorageSettings
from scenario_analytics.storage.base import (
    ObjectInfo,
    ObjectMissing,
    PreconditionFailed,
    Storage,
    StorageError,
    StorageMissing,
    sha256_file,
)

# Objects up to this size go in one PUT with their SHA-256; larger ones in parts.
SINGLE_PUT_BYTES = 16 * 2**20
_TRANSFER = TransferConfig(
    multipart_threshold=SINGLE_PUT_BYTES,
    multipart_chunksize=SINGLE_PUT_BYTES,
    max_concurrency=8,
    use_threads=True,
)
# Error codes S3 (and compatible servers) answer with, by what they mean for the job.
_MISSING_KEY = {"NoSuchKey", "404", "NotFound"}
_CONFLICT = {"PreconditionFailed", "412", "ConditionalRequestConflict", "409"}
_DENIED = {
    "AccessDenied",
    "403",
    "InvalidAccessKeyId",
    "SignatureDoesNotMatch",
    "ExpiredToken",
    "InvalidToken",
    "AllAccessDisabled",
}
_FULL = {
    "QuotaExceeded",
    "InsufficientStorage",
    "EntityTooLarge",
    "XMinioStorageFull",
    "XMinioAdminBucketQuotaExceeded",
}


class S3Storage(Storage):
    concurrency = 16
    content_tags = True

    def __init__(self, location: Location, settings: StorageSettings | None = None) -> None:
        self.location = location
        self.settings = settings or StorageSettings()
        self.bucket = location.bucket
        self.prefix = location.prefix + "/" if location.prefix else ""
        self.client = _client(self.settings)
        self._scratch: Path | None = None
        self._cache: Path | None = None
        self._lock = threading.Lock()

    def _key(self, key: str) -> str:
        return self.prefix + key

    # -- errors -------------------------------------------------------------------------------
    @contextmanager
    def _call(self, what: str, key: str) -> Iterator[None]:
        """S3's and the network's errors as the job's, naming the object."""
        where = self.describe(key)
        try:
            yield
        except botocore.exceptions.ClientError as exc:
            error = exc.response.get("Error", {})
            code = str(error.get("Code", ""))
            status = str(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", ""))
            if code == "NoSuchBucket":
                raise StorageMissing(
                    f"the bucket {self.bucket} does not exist ({where})",
                    "create the bucket, or fix the s3:// location (and the endpoint, for "
                    "an S3-compatible server)",
                ) from None
            if code in _MISSING_KEY or (not code and status == "404"):
                raise ObjectMissing(f"{where} does not exist") from None
            if code in _CONFLICT or status in ("412", "409"):
                raise PreconditionFailed(
                    f"{where} was written by another writer meanwhile ({code or status})"
                ) from None
            if code in _FULL:
                raise StorageError(
                    f"cannot {what} {where}: the bucket is full or over its quota ({code})",
                    "free space or raise the quota, then run again; nothing was published",
                ) from None
            if code in _DENIED or status == "403":
                raise StorageError(
                    f"cannot {what} {where}: permission denied ({code or status})",
                    "check the credentials the AWS chain finds and the bucket's policy: "
                    "the job reads, writes, lists and deletes under its prefix",
                ) from None
            raise StorageError(
                f"cannot {what} {where}: {code or status} "
                f"({str(error.get('Message', '')).strip() or 'no message'})",
                "run again; if it persists, check the object store",
            ) from None
        except botocore.exceptions.NoCredentialsError:
            raise StorageMissing(
                f"no AWS credentials found for {where}",
                "set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, AWS_PROFILE, or run with "
                "an instance or pod role",
            ) from None
        except (
            botocore.exceptions.EndpointConnectionError,
            botocore.exceptions.ConnectionClosedError,
            botocore.exceptions.ConnectTimeoutError,
            botocore.exceptions.ReadTimeoutError,
            botocore.exceptions.ResponseStreamingError,
        ) as exc:
            raise StorageError(
                f"cannot {what} {where}: the object store did not answer "
                f"({type(exc).__name__}, after {self.settings.max_attempts} attempts)",
                "check the endpoint and the network, then run again",
            ) from None
        except botocore.exceptions.BotoCoreError as exc:
            raise StorageError(f"cannot {what} {where}: {type(exc).__name__}: {exc}") from None

    # -- reading ------------------------------------------------------------------------------
    def read(self, key: str) -> tuple[bytes, str]:
        with self._call("read", key):
            response = self.client.get_object(Bucket=self.bucket, Key=self._key(key))
            return response["Body"].read(), str(response["ETag"])

    def head(self, key: str) -> ObjectInfo | None:
        try:
            with self._call("read", key):
                response = self.client.head_object(Bucket=self.bucket, Key=self._key(key))
        except ObjectMissing:
            return None
        return ObjectInfo(
            key,
            int(response["ContentLength"]),
            str(response["ETag"]),
            response["LastModified"].timestamp(),
        )

    def objects(self, prefix: str = "") -> list[ObjectInfo]:
        found = []
        with self._call("list", prefix or "."):
            pages = self.client.get_paginator("list_objects_v2").paginate(
                Bucket=self.bucket, Prefix=self._key(prefix)
            )
            for page in pages:
                for item in page.get("Contents", []):
                    key = str(item["Key"])[len(self.prefix) :]
                    if key.endswith("/"):  # a "folder" marker some tools write
                        continue
                    found.append(
                        ObjectInfo(
                            key,
                            int(item["Size"]),
                            str(item["ETag"]),
                            item["LastModified"].timestamp(),
                        )
                    )
        return sorted(found, key=lambda o: o.key.encode())

    def is_empty(self) -> bool:
        with self._call("list", "."):
            response = self.client.list_objects_v2(
                Bucket=self.bucket, Prefix=self._key(""), MaxKeys=1
            )
        return not response.get("Contents")

    def list_folders(self, prefix: str = "") -> list[str]:
        names = []
        with self._call("list", prefix or "."):
            pages = self.client.get_paginator("list_objects_v2").paginate(
                Bucket=self.bucket, Prefix=self._key(prefix), Delimiter="/"
            )
            for page in pages:
                for item in page.get("CommonPrefixes", []):
                    names.append(str(item["Prefix"])[len(self._key(prefix)) :].rstrip("/"))
        return sorted(names)

    def fetch(
        self,
        key: str,
        sha256: str | None = None,
        *,
        verify: bool = False,
        etag: str | None = None,
    ) -> Path:
        cache = self.cache_folder
        assert cache is not None
        if sha256 is not None:
            target = cache / sha256
            # A cached copy has these bytes, but maybe from another object with the same
            # content: `verify` (checking this object) always downloads.
            if target.is_file() and not verify:
                os.utime(target)  # used: kept by `_evict`
                return target
        else:
            name = hashlib.sha256(f"{key}\n{etag or ''}".encode()).hexdigest()
            target = cache / "by-key" / name
            if etag is not None and target.is_file():
                os.utime(target)
                return target
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f".{target.name}.{uuid.uuid4().hex}.tmp")
        try:
            if etag is not None:
                self._download_version(key, etag, tmp)
            else:
                with self._call("read", key):
                    self.client.download_file(
                        self.bucket, self._key(key), str(tmp), Config=_TRANSFER
                    )
            if sha256 is not None and sha256_file(tmp) != sha256:
                raise StorageError(f"{self.describe(key)} does not have the sha256 recorded for it")
            os.replace(tmp, target)
        finally:
            tmp.unlink(missing_ok=True)
        return target

    def _download_version(self, key: str, etag: str, target: Path) -> None:
        """One GET of exactly the version with this tag (`If-Match`), streamed to a file."""
        try:
            with self._call("read", key):
                response = self.client.get_object(
                    Bucket=self.bucket, Key=self._key(key), IfMatch=etag
                )
                with target.open("wb") as handle:
                    for chunk in response["Body"].iter_chunks(1 << 20):
                        handle.write(chunk)
        except PreconditionFailed:
            raise StorageError(
                f"{self.describe(key)} changed while the job was reading it",
                "run again once the exports are complete",
            ) from None

    def matches(self, key: str, sha256: str) -> bool:
        try:
            response = self.client.head_object(
                Bucket=self.bucket, Key=self._key(key), ChecksumMode="ENABLED"
            )
        except botocore.exceptions.ClientError as exc:
            if _status(exc) == "404":
                return False
            with self._call("read", key):
                raise
        stored = response.get("ChecksumSHA256")
        if stored is None or "-" in str(stored):
            return True  # uploaded in parts (or by another tool): its parts were checked
        return bool(base64.b64decode(str(stored)).hex() == sha256)

    def read_if_changed(self, key: str, etag: str | None) -> tuple[bytes, str] | None:
        condition = {"IfNoneMatch": etag} if etag else {}
        try:
            response = self.client.get_object(Bucket=self.bucket, Key=self._key(key), **condition)
        except botocore.exceptions.ClientError as exc:
            if _status(exc) == "304":
                return None
            with self._call("read", key):
                raise
        except botocore.exceptions.BotoCoreError:
            with self._call("read", key):
                raise
        return response["Body"].read(), str(response["ETag"])

    # -- writing ------------------------------------------------------------------------------
    def write(self, key: str, data: bytes) -> str:
        with self._call("write", key):
            response = self.client.put_object(
                Bucket=self.bucket, Key=self._key(key), Body=data, **_checksum(data)
            )
        return str(response["ETag"])

    def create(self, key: str, data: bytes) -> str:
        with self._call("write", key):
            response = self.client.put_object(
                Bucket=self.bucket,
                Key=self._key(key),
                Body=data,
                IfNoneMatch="*",
                **_checksum(data),
            )
        return str(response["ETag"])

    def replace(self, key: str, data: bytes, etag: str) -> str:
        with self._call("write", key):
            response = self.client.put_object(
                Bucket=self.bucket, Key=self._key(key), Body=data, IfMatch=etag, **_checksum(data)
            )
        return str(response["ETag"])

    def upload(self, key: str, source: Path, sha256: str, *, move: bool = False) -> None:
        size = source.stat().st_size
        with self._call("write", key):
            if size <= SINGLE_PUT_BYTES:
                data = source.read_bytes()
                self.client.put_object(
                    Bucket=self.bucket,
                    Key=self._key(key),
                    Body=data,
                    ChecksumSHA256=base64.b64encode(bytes.fromhex(sha256)).decode(),
                )
            else:
                self.client.upload_file(
                    str(source),
                    self.bucket,
                    self._key(key),
                    ExtraArgs={"ChecksumAlgorithm": "SHA256"},
                    Config=_TRANSFER,
                )
                stored = self.client.head_object(Bucket=self.bucket, Key=self._key(key))
                if int(stored["ContentLength"]) != size:
                    raise StorageError(
                        f"{self.describe(key)} was stored with {stored['ContentLength']:,} "
                        f"bytes, not {size:,}",
                        "run again; nothing was published",
                    )
        if move:
            # Kept as the cached copy of what was uploaded: reading it back costs nothing.
            cache = self.cache_folder
            assert cache is not None
            try:
                os.replace(source, cache / sha256)
            except OSError:
                source.unlink(missing_ok=True)

    def copy(self, source: str, target: str) -> None:
        with self._call("copy", source):
            self.client.copy_object(
                Bucket=self.bucket,
                Key=self._key(target),
                CopySource={"Bucket": self.bucket, "Key": self._key(source)},
            )

    def delete(self, keys: Iterable[str]) -> None:
        batch = [self._key(k) for k in keys]
        for start in range(0, len(batch), 1000):
            chunk = batch[start : start + 1000]
            with self._call("delete", chunk[0][len(self.prefix) :]):
                response = self.client.delete_objects(
                    Bucket=self.bucket,
                    Delete={"Objects": [{"Key": k} for k in chunk], "Quiet": True},
                )
            errors = response.get("Errors", [])
            if errors:
                first = errors[0]
                raise StorageError(
                    f"cannot delete {self.describe(str(first['Key'])[len(self.prefix) :])}: "
                    f"{first.get('Code', '')} ({len(errors)} objects not deleted)",
                    "check the bucket's policy (the job deletes under its prefix)",
                )

    def delete_if(self, key: str, etag: str) -> None:
        with self._call("delete", key):
            self.client.delete_object(Bucket=self.bucket, Key=self._key(key), IfMatch=etag)

    # -- the location as a whole --------------------------------------------------------------
    def check(self, *, create: bool) -> None:
        del create  # buckets are made by their owners, never by the job
        with self._call("open", ""):
            try:
                self.client.head_bucket(Bucket=self.bucket)
            except botocore.exceptions.ClientError as exc:
                if _status(exc) == "404":
                    exc.response.setdefault("Error", {})["Code"] = "NoSuchBucket"
                raise

    def scratch(self, name: str) -> Path:
        with self._lock:
            if self._scratch is None:
                self._scratch = Path(tempfile.mkdtemp(prefix="scenario-analytics-work-"))
        folder = self._scratch / name
        folder.mkdir(parents=True)
        return folder

    @property
    def cache_folder(self) -> Path | None:
        with self._lock:
            if self._cache is None:
                if self.settings.cache is not None:
                    self._cache = self.settings.cache
                    self._cache.mkdir(parents=True, exist_ok=True)
                else:
                    self._cache = Path(tempfile.mkdtemp(prefix="scenario-analytics-cache-"))
            return self._cache

    def retain(self, sha256s: set[str]) -> None:
        with self._lock:
            cache = self._cache
        if cache is None:
            return
        for path in cache.iterdir():
            if path.is_file() and len(path.name) == 64 and path.name not in sha256s:
                path.unlink(missing_ok=True)

    def close(self) -> None:
        with self._lock:
            scratch, self._scratch = self._scratch, None
            cache = self._cache
            if self.settings.cache is None:
                self._cache = None
        if scratch is not None:
            shutil.rmtree(scratch, ignore_errors=True)
        if cache is not None:
            if self.settings.cache is None:
                shutil.rmtree(cache, ignore_errors=True)
            else:
                _evict(cache, self.settings.cache_days * 86400.0)


def _status(exc: botocore.exceptions.ClientError) -> str:
    return str(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", ""))


def _checksum(data: bytes) -> dict[str, Any]:
    return {"ChecksumSHA256": base64.b64encode(hashlib.sha256(data).digest()).decode()}


def _evict(cache: Path, keep_seconds: float) -> None:
    """Remove cached copies not used for `keep_seconds` (every fetch touches its file)."""
    limit = time.time() - keep_seconds
    for path in cache.rglob("*"):
        try:
            if path.is_file() and path.stat().st_mtime < limit:
                path.unlink()
        except OSError:
            continue


_CLIENTS: dict[tuple[object, ...], Any] = {}
_CLIENTS_LOCK = threading.Lock()


def _client(settings: StorageSettings) -> Any:
    """An S3 client from the AWS chain, with the job's `[storage]` settings on top; one per
    settings and AWS variables (a client is thread-safe, and making one takes ~0.2 s: a
    run reads its exports and writes its store with the same one)."""
    key = (settings, tuple(sorted((k, v) for k, v in os.environ.items() if k.startswith("AWS_"))))
    with _CLIENTS_LOCK:
        if key not in _CLIENTS:
            _CLIENTS[key] = _new_client(settings)
        return _CLIENTS[key]


def _new_client(settings: StorageSettings) -> Any:
    region = settings.region or os.environ.get("AWS_REGION") or None
    session = boto3.session.Session(region_name=region)
    config = Config(
        retries={"mode": "standard", "max_attempts": settings.max_attempts},
        connect_timeout=settings.connect_timeout,
        read_timeout=settings.read_timeout,
        max_pool_connections=32,
        s3={"addressing_style": settings.addressing_style},
        user_agent_appid="scenario-analytics",
    )
    return session.client("s3", endpoint_url=settings.endpoint_url, config=config)
