"""The store's commit records: which version of each date's snapshot is published.

    .commits/<date>.json    the date's record: present = published (`Record`)
    .retired/<date>.<build>.json
                            a version no longer published, kept through the grace
                            period so readers that hold it keep whole files (`Retired`)

A record names the build that wrote the version, the key prefix its files are under
(`snapshot_date=<date>` once they are in place, `.staging/<build>` while they are
being copied there), the sha256 of its manifest, and the shared objects it uses (the
session partitions of `.objects/`, by content). Everything else about the version is
in its manifest: the record is small, and the manifest is the index of the files.
"""

from __future__ import annotations

import json
import posixpath
from dataclasses import dataclass
from datetime import UTC, date, datetime

from scenario_analytics.publish.manifest import Manifest
from scenario_analytics.publish.snapshot import SESSIONS_FOLDER

COMMITS = ".commits/"
RETIRED = ".retired/"
POOL = ".objects/"
STAGING = ".staging/"
MANIFEST = "manifest.json"
RECORD_FORMAT = 1


def snapshot_dir_name(snapshot_date: date) -> str:
    return f"snapshot_date={snapshot_date.isoformat()}"


def record_key(snapshot_date: date) -> str:
    return f"{COMMITS}{snapshot_date.isoformat()}.json"


def now_stamp() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def is_pooled(rel: str) -> bool:
    """Files shared between snapshots by reference: the session partitions."""
    return rel.startswith(SESSIONS_FOLDER + "/")


def pool_key(rel: str, sha256: str) -> str:
    """Where a shared file lives, by content:
    `.objects/sessions/created_date=D/<sha256>.parquet`."""
    folder, name = posixpath.split(rel)
    extension = name[name.index(".") :] if "." in name else ""
    return f"{POOL}{folder}/{sha256}{extension}"


@dataclass(frozen=True)
class Record:
    snapshot_date: date
    build: str
    prefix: str
    manifest_sha256: str
    committed_at: str
    objects: tuple[str, ...] = ()
    pooled: bool = True  # False: a store's first layout, every file under `prefix`

    def to_bytes(self) -> bytes:
        body = {
            "format": RECORD_FORMAT,
            "snapshot_date": self.snapshot_date.isoformat(),
            "build": self.build,
            "prefix": self.prefix,
            "manifest_sha256": self.manifest_sha256,
            "committed_at": self.committed_at,
            "pooled": self.pooled,
            "objects": list(self.objects),
        }
        return json.dumps(body, indent=1).encode() + b"\n"

    @classmethod
    def from_bytes(cls, data: bytes) -> Record | None:
        try:
            body = json.loads(data)
            if body.get("format") != RECORD_FORMAT:
                return None
            return cls(
                date.fromisoformat(str(body["snapshot_date"])),
                str(body["build"]),
                str(body["prefix"]),
                str(body["manifest_sha256"]),
                str(body.get("committed_at", "")),
                tuple(str(k) for k in body.get("objects", [])),
                bool(body.get("pooled", True)),
            )
        except (ValueError, KeyError, TypeError):
            return None

    @property
    def in_place(self) -> bool:
        """Its files are in the date's own folder (not still in `.staging`)."""
        return self.prefix == snapshot_dir_name(self.snapshot_date)


@dataclass(frozen=True)
class Version:
    """A published version of one date: its record (with the record's tag) and manifest."""

    record: Record
    etag: str
    manifest: Manifest

    @property
    def snapshot_date(self) -> date:
        return self.record.snapshot_date

    @property
    def label(self) -> str:
        return f"{self.snapshot_date.isoformat()} (build {self.record.build[:12]})"

    def files(self) -> dict[str, str | None]:
        """Every file of the version, by path in the snapshot, with its sha256 (None where
        the manifest has none), the manifest included."""
        return {**self.manifest.files(), MANIFEST: self.record.manifest_sha256}

    def key(self, rel: str) -> str:
        """The storage key of a file of the version."""
        if self.record.pooled and is_pooled(rel):
            sha256 = self.manifest.files().get(rel)
            if sha256 is not None:
                return pool_key(rel, sha256)
        return f"{self.record.prefix}/{rel}"

    def keys(self) -> dict[str, str]:
        """Every file's key, by path in the snapshot."""
        return {rel: self.key(rel) for rel in self.files()}


@dataclass(frozen=True)
class Retired:
    """A version no longer published, and what it held: retired at `since` (Unix time);
    once the store's grace period has passed since then (`[storage] grace_seconds`), its
    `keys` and `objects` that no published version uses are deleted."""

    snapshot_date: date
    build: str
    since: float
    keys: tuple[str, ...] = ()
    objects: tuple[str, ...] = ()
    reason: str = ""

    @property
    def key(self) -> str:
        return f"{RETIRED}{self.snapshot_date.isoformat()}.{self.build}.json"

    def to_bytes(self) -> bytes:
        body = {
            "snapshot_date": self.snapshot_date.isoformat(),
            "build": self.build,
            "retired_at": self.since,
            "reason": self.reason,
            "keys": list(self.keys),
            "objects": list(self.objects),
        }
        return json.dumps(body, indent=1).encode() + b"\n"

    @classmethod
    def from_bytes(cls, data: bytes) -> Retired | None:
        try:
            body = json.loads(data)
            since = body.get("retired_at")
            if since is None:  # written with its end (an hour after it was retired)
                since = float(body["until"]) - 3600.0
            return cls(
                date.fromisoformat(str(body["snapshot_date"])),
                str(body["build"]),
                float(since),
                tuple(str(k) for k in body.get("keys", [])),
                tuple(str(k) for k in body.get("objects", [])),
                str(body.get("reason", "")),
            )
        except (ValueError, KeyError, TypeError):
            return None
