"""API keys: `exec_live_` + 40 letters or digits, stored only as SHA-256 hashes.

The keys file is JSON, written by `scenario-analytics keys create|revoke` (atomically,
mode 0600) and read by the server:

    {"keys": [{"name": "dashboards", "sha256": "<64 hex>", "created_at": "2026-12-03T06:00:00Z"}]}

A key is shown once, when it is created; the file holds its hash and a name (what logs
and `keys list` show). The server checks a presented key by hashing it and comparing the
hash with every stored one (`hmac.compare_digest`, no early exit), so the time taken
says nothing about which stored hash is closest. The plaintext is never stored, logged
or kept after the check.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import hmac
import json
import os
import re
import secrets
import string
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from scenario_analytics.errors import AnalyticsError, InvalidUsageError, NotFoundError
from scenario_analytics.files import write_atomically

KEY_PREFIX = "exec_live_"
KEY_BODY_LENGTH = 40
KEY_ALPHABET = string.ascii_letters + string.digits
_KEY = re.compile(r"exec_live_[A-Za-z0-9]{40}", re.ASCII)
_SHA256 = re.compile(r"[0-9a-f]{64}", re.ASCII)
# A name is for people and logs: printable, one line, not too long.
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9 ._@:/+-]{0,63}", re.ASCII)


def new_key() -> str:
    """A fresh key from the operating system's random source (`secrets`): ~238 bits."""
    return KEY_PREFIX + "".join(secrets.choice(KEY_ALPHABET) for _ in range(KEY_BODY_LENGTH))


def is_well_formed(key: str) -> bool:
    return _KEY.fullmatch(key) is not None


def key_hash(key: str) -> str:
    return hashlib.sha256(key.encode("ascii")).hexdigest()


@dataclass(frozen=True)
class KeyEntry:
    name: str
    sha256: str
    created_at: str

    def as_json(self) -> dict[str, str]:
        return {"name": self.name, "sha256": self.sha256, "created_at": self.created_at}


class KeysFileError(AnalyticsError):
    """A keys file that cannot be read or is not one."""


def read_keys(path: Path) -> list[KeyEntry]:
    """The entries of a keys file; raises KeysFileError (NotFoundError if missing)."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise NotFoundError(
            f"no keys file at {path}",
            f"create one with `scenario-analytics keys create --keys-file {path} --name NAME`",
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise KeysFileError(f"cannot read the keys file {path}: {exc}") from None
    try:
        data = json.loads(text)
        items = data["keys"]
        if not isinstance(items, list):
            raise TypeError("keys is not a list")
        entries = [
            KeyEntry(str(item["name"]), str(item["sha256"]), str(item.get("created_at", "")))
            for item in items
        ]
    except (ValueError, KeyError, TypeError) as exc:
        raise KeysFileError(
            f"{path} is not a keys file ({exc})",
            "it is written by `scenario-analytics keys create`; restore it or create a new one",
        ) from None
    for entry in entries:
        if not _SHA256.fullmatch(entry.sha256):
            raise KeysFileError(
                f"{path}: the key {entry.name!r} has no SHA-256 hash (64 lower-case hex digits)",
                "the file holds hashes, never keys: revoke it and create a new key",
            )
    return entries


def _write_keys(path: Path, entries: list[KeyEntry]) -> None:
    """Replace the file atomically, readable by its owner only."""
    body = {"keys": [e.as_json() for e in entries]}
    data = (json.dumps(body, indent=2) + "\n").encode("utf-8")
    write_atomically(path, data, private=True)


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    """Two `keys` commands at once on one file take turns (flock on a sibling file). The
    file's folder must exist: a typo in it must not leave new folders behind (exit 2)."""
    if not path.parent.is_dir():
        raise InvalidUsageError(
            f"the folder of the keys file, {path.parent}, does not exist",
            "create it (readable by the server's user only), or name another keys file",
        )
    fd = os.open(path.with_name(f".{path.name}.lock"), os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def create_key(path: Path, name: str) -> str:
    """Add a new key named `name` to the keys file (created if missing); returns the key,
    which is stored nowhere: show it once."""
    if not _NAME.fullmatch(name):
        raise InvalidUsageError(
            f"{name!r} is not a key name",
            "use 1 to 64 letters, digits and . _ @ : / + - or spaces, starting with a "
            "letter or digit",
        )
    with _locked(path):
        entries = read_keys(path) if path.exists() else []
        if any(e.name == name for e in entries):
            raise InvalidUsageError(
                f"{path} already has a key named {name!r}",
                "choose another name, or revoke that key first",
            )
        key = new_key()
        created = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        _write_keys(path, [*entries, KeyEntry(name, key_hash(key), created)])
    return key


def revoke_key(path: Path, name: str) -> None:
    """Remove the key named `name`; a running server stops accepting it within a second."""
    with _locked(path):
        entries = read_keys(path)
        kept = [e for e in entries if e.name != name]
        if len(kept) == len(entries):
            raise NotFoundError(
                f"{path} has no key named {name!r}", "`scenario-analytics keys list` names them"
            )
        _write_keys(path, kept)


@dataclass(frozen=True)
class AuthFailure:
    """Why a request is not authenticated: the 401 body's code and message."""

    code: str
    message: str


MISSING = AuthFailure(
    "missing_api_key", "No API key: send the header Authorization: Bearer exec_live_..."
)
MALFORMED = AuthFailure(
    "malformed_api_key",
    "Malformed API key: expected Authorization: Bearer exec_live_ followed by 40 letters or digits",
)
UNKNOWN = AuthFailure("invalid_api_key", "Invalid API key")


class KeyRing:
    """The server's view of a keys file: checks `Authorization` headers, and reloads the
    file when it changes (`refresh`, called by the server about every 0.25 s), so that a
    revoked key stops working without a restart. A file that becomes unreadable keeps the
    last good set of keys (and `refresh` reports the error)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._stamp: tuple[int, int, int] | None = None
        self._hashes: list[tuple[bytes, str]] = []
        self.refresh()

    @property
    def count(self) -> int:
        return len(self._hashes)

    def refresh(self) -> bool:
        """Reload the file if it changed; returns whether it did. Raises AnalyticsError
        for a file that cannot be read (the keys in use stay)."""
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            if self._stamp is None:
                read_keys(self.path)  # raises: no keys file, and how to create one
            # Deleted: no key is valid any more (deleting the file is how an operator
            # might revoke them all), until a keys file is there again.
            self._hashes = []
            self._stamp = (0, 0, 0)
            raise NotFoundError(
                f"the keys file {self.path} is gone: every key is refused until it is back"
            ) from None
        stamp = (st.st_mtime_ns, st.st_size, st.st_ino)
        if stamp == self._stamp:
            return False
        entries = read_keys(self.path)
        self._hashes = [(bytes.fromhex(e.sha256), e.name) for e in entries]
        self._stamp = stamp
        return True

    def check(self, authorization: str | None) -> str | AuthFailure:
        """The name of the key an `Authorization` header carries, or why it is refused."""
        if authorization is None or not authorization.strip():
            return MISSING
        scheme, _, token = authorization.strip().partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not is_well_formed(token):
            return MALFORMED
        presented = hashlib.sha256(token.encode("ascii")).digest()
        found: str | None = None
        for stored, name in self._hashes:
            # Every stored hash is compared, whatever matched before.
            if hmac.compare_digest(presented, stored) and found is None:
                found = name
        return found if found is not None else UNKNOWN
