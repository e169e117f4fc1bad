"""One interface over local disk and S3-compatible object storage (`base.Storage`).

    open_storage(Location.parse("s3://bucket/prefix"), settings.storage)

is the only place that picks an implementation: `local.LocalStorage` for a path or
`file://`, `s3.S3Storage` for `s3://` (boto3 is imported only then). Nothing outside
this package knows which one it talks to.
"""

from __future__ import annotations

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

__all__ = [
    "ObjectInfo",
    "ObjectMissing",
    "PreconditionFailed",
    "Storage",
    "StorageError",
    "StorageMissing",
    "open_storage",
    "sha256_file",
]


def open_storage(location: Location | str, settings: StorageSettings | None = None) -> Storage:
    """The storage of a location (nothing is read or written yet: `Storage.check` does)."""
    location = Location.parse(location)
    if location.is_local:
        from scenario_analytics.storage.local import LocalStorage

        return LocalStorage(location, settings)
    from scenario_analytics.storage.s3 import S3Storage

    return S3Storage(location, settings)
