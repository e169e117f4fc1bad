"""Sharing unchanged files with published snapshots: hard links instead of new copies.

Most of a snapshot is the same as the day before's: the sessions of every past day (one
partition file per day, `snapshot.write_sessions`) and often the directory tables. A
file whose content equals a published snapshot's is hard-linked to that snapshot's file
instead of being written again, so 400 kept snapshots cost about one copy of the
history plus what changed each day, and a night writes only the new day's partition.

Each snapshot folder stays complete and self-contained: a hard link is a name of the
same bytes, not a pointer to another snapshot. Deleting or pruning a snapshot removes
its names only; the bytes stay for every other snapshot that names them. Published files
are never changed in place (every write goes to a new file in a staging folder), so a
shared file cannot change under a snapshot.

Before linking, the candidate file is read and its sha256 compared with the one its
manifest recorded: a damaged file is never passed on to a new snapshot (the new file is
written instead, and `snapshots verify` names the damaged one). Where the file system
cannot link (another device, a file system without hard links, the link limit), the file
is written as usual.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from scenario_analytics.publish.manifest import Manifest, file_sha256


@dataclass(frozen=True)
class Candidate:
    """A file of a published snapshot and the sha256 its manifest recorded."""

    path: Path
    sha256: str


@dataclass
class Sharing:
    """The files of some published snapshots that a new one may link to, by content.

    `by_digest`: (path in the snapshot, content digest) of session partitions, whose
    digests the manifest records (so an unchanged partition is never written);
    `by_sha256`: (path, sha256) of every file with a recorded sha256 (so a file written
    anew whose bytes turn out equal is replaced by a link, freeing its space).
    """

    by_digest: dict[tuple[str, str], Candidate] = field(default_factory=dict)
    by_sha256: dict[tuple[str, str], Candidate] = field(default_factory=dict)
    linked: list[str] = field(default_factory=list)
    linked_bytes: int = 0
    refused: list[str] = field(default_factory=list)  # candidates whose bytes did not match

    @classmethod
    def of(cls, snapshots: Iterable[tuple[Path, Manifest]]) -> Sharing:
        """Candidates from published snapshot folders (resolved) and their manifests; the
        first snapshot that has a file wins."""
        sharing = cls()
        for folder, manifest in snapshots:
            for output in manifest.outputs:
                if output.files is None:
                    if output.sha256 is not None and "*" not in output.path:
                        key = (output.path, output.sha256)
                        candidate = Candidate(folder / output.path, output.sha256)
                        sharing.by_sha256.setdefault(key, candidate)
                    continue
                for rel, sha256 in output.files.items():
                    candidate = Candidate(folder / rel, sha256)
                    sharing.by_sha256.setdefault((rel, sha256), candidate)
                    digest = (output.partitions or {}).get(rel)
                    if digest is not None:
                        sharing.by_digest.setdefault((rel, digest), candidate)
        return sharing

    def link_partition(self, rel: str, digest: str, target: Path) -> str | None:
        """Link `target` to a published partition with this content; its sha256, or None
        when there is none (or it is damaged, or the link cannot be made)."""
        candidate = self.by_digest.get((rel, digest))
        if candidate is None or not self._link(candidate, target):
            return None
        self.linked.append(rel)
        return candidate.sha256

    def replace_with_link(self, rel: str, sha256: str, target: Path) -> bool:
        """Replace `target` (just written, with this sha256) by a link to an equal
        published file, if there is one."""
        candidate = self.by_sha256.get((rel, sha256))
        if candidate is None:
            return False
        temporary = target.with_name(f".{target.name}.link")
        if not self._link(candidate, temporary):
            return False
        os.replace(temporary, target)
        self.linked.append(rel)
        return True

    def _link(self, candidate: Candidate, target: Path) -> bool:
        try:
            if file_sha256(candidate.path) != candidate.sha256:
                self.refused.append(str(candidate.path))
                return False
            target.unlink(missing_ok=True)
            os.link(candidate.path, target)
        except OSError:
            return False
        self.linked_bytes += target.stat().st_size
        return True
