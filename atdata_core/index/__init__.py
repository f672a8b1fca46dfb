"""The index: dataset entries, labels, schemas and lenses over SQLite, Redis or PostgreSQL."""

from .entries import IndexEntry, Page, entry_cid
from .index import Index, Repository, VerifyReport, WriteProgress, infer_sample_type, make_provider
from .providers.base import IndexProvider
from .providers.sqlite import SqliteProvider

__all__ = [
    "Index",
    "IndexEntry",
    "IndexProvider",
    "Page",
    "Repository",
    "SqliteProvider",
    "VerifyReport",
    "WriteProgress",
    "entry_cid",
    "infer_sample_type",
    "make_provider",
]
