"""The store's first layout (local disk only, before object storage), and its conversion.

Stores written by earlier versions published each date as a symbolic link,
`snapshot_date=D -> .versions/D.<build>`, with hard links between versions and a
`.lock` file held with `flock`. Readers of this version read such a store as it is
(`Store._legacy`: the folder of each date, no commit records); the first run that
holds it converts it once (`Store._convert`): each link is replaced by the folder it
names (a rename, so the files stay where they are), each date gets a commit record,
and the versions no link names (replaced ones, kept for readers of the old version)
go. During the conversion a date's folder is missing for the moment between removing
its link and renaming its version; readers of this version retry, `serve` keeps what
it serves. This module is the only code that knows the old layout.
"""

from __future__ import annotations

import os
import shutil

from scenario_analytics.storage import Storage

LEGACY_NAMES = (".versions", ".lock")


def flatten_legacy_layout(storage: Storage) -> list[str]:
    """Replace each `snapshot_date=` link by its version folder; remove what only the old
    layout used. Returns the dates converted (folder names). Nothing on object storage:
    the old layout was never written there."""
    root = storage.location.path
    if root is None or not root.is_dir():
        return []
    converted = []
    versions = root / ".versions"
    for entry in sorted(root.iterdir()):
        if not entry.name.startswith("snapshot_date=") or not entry.is_symlink():
            continue
        target = entry.resolve()
        if not target.is_dir() or target.parent != versions.resolve():
            entry.unlink()  # dangling, or pointing elsewhere: not a snapshot of this store
            continue
        entry.unlink()
        os.rename(target, entry)
        (entry / ".replaced").unlink(missing_ok=True)
        converted.append(entry.name)
    if versions.is_dir():
        shutil.rmtree(versions, ignore_errors=True)
    (root / ".lock").unlink(missing_ok=True)
    for leftover in root.glob(".snapshot_date=*.link"):
        leftover.unlink(missing_ok=True)
    return converted
