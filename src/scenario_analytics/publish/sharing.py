"""Sharing unchanged session partitions with published snapshots, by reference.

Most of a snapshot is the same as the day before's: the sessions of every past day (one
partition file per day, `snapshot.write_sessions`). A partition is stored once, under
its content (`.objects/sessions/created_date=D/<sha256>.parquet`, `records.pool_key`),
and every snapshot whose manifest lists that content for that day uses the same object:
30 nightly snapshots cost about one copy of the history plus what changed each night,
and a night writes only its new day's partition. Nothing is ever changed in place, so a
shared object cannot change under a snapshot; `Store.clean_up` deletes an object only
when no published snapshot (and none retired less than an hour ago) lists it.

A partition is shared when a published version's manifest has the same content digest
for it (`snapshot.partition_digest`, from the SQL: row count and two XORs of row
hashes), and the object is checked first (`Storage.matches`: re-hashed on local disk,
its stored SHA-256 on S3): a damaged object is never passed on to a new snapshot (the
partition is written anew, and `snapshots verify` names the damaged one).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from scenario_analytics.publish.records import Version
from scenario_analytics.storage import Storage, StorageError


@dataclass(frozen=True)
class Candidate:
    """A partition of a published version: its key and the sha256 its manifest records."""

    key: str
    sha256: str


@dataclass
class Sharing:
    """Partitions of some published versions that a new one may use, by (path in the
    snapshot, content digest); the first version that has one wins."""

    storage: Storage | None = None
    by_digest: dict[tuple[str, str], Candidate] = field(default_factory=dict)
    # Every other file of those versions by (path, sha256): a new version's file with the
    # same bytes (a table that did not change) is copied from it in the store instead of
    # uploaded (on local disk a copy is a hard link: no byte is written twice).
    by_sha256: dict[tuple[str, str], Candidate] = field(default_factory=dict)
    used: dict[str, Candidate] = field(default_factory=dict)  # rel -> shared partition
    refused: list[str] = field(default_factory=list)  # candidates whose bytes did not match

    @classmethod
    def of(cls, versions: Iterable[Version], storage: Storage) -> Sharing:
        sharing = cls(storage)
        for version in versions:
            files = version.manifest.files()
            for rel, sha256 in files.items():
                if sha256 is not None:
                    sharing.by_sha256.setdefault((rel, sha256), Candidate(version.key(rel), sha256))
            for output in version.manifest.outputs:
                for rel, digest in (output.partitions or {}).items():
                    sha256 = files.get(rel)
                    if sha256 is not None:
                        candidate = Candidate(version.key(rel), sha256)
                        sharing.by_digest.setdefault((rel, digest), candidate)
        return sharing

    def same_file(self, rel: str, sha256: str) -> str | None:
        """The key of a published version's file with this path and these bytes, whole
        (checked as `partition` checks), or None."""
        candidate = self.by_sha256.get((rel, sha256))
        if candidate is None or self.storage is None:
            return None
        try:
            return candidate.key if self.storage.matches(candidate.key, sha256) else None
        except StorageError:
            return None

    def partition(self, rel: str, digest: str) -> str | None:
        """The sha256 of a published partition with this content, now used by the new
        version; None when there is none (or it is damaged)."""
        candidate = self.by_digest.get((rel, digest))
        if candidate is None or self.storage is None:
            return None
        try:
            whole = self.storage.matches(candidate.key, candidate.sha256)
        except StorageError:
            whole = False
        if not whole:
            self.refused.append(self.storage.describe(candidate.key))
            return None
        self.used[rel] = candidate
        return candidate.sha256
