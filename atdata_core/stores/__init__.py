"""Data stores: where shards are written (local disk, S3, PDS blobs)."""

from .base import DataStore
from .disk import LocalDiskStore

__all__ = ["DataStore", "LocalDiskStore"]
