"""The storage seam of the index: every backend (SQLite, Redis, PostgreSQL) implements this.

Providers store and look up; all policy (version bumps, dedup, refs, writing shards) lives in the
``Index`` facade, so the contract test suite can hold every provider to the same behaviour.
Every keyed lookup is one round trip; listings are paged and filtered server-side.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from ..entries import IndexEntry


@runtime_checkable
class IndexProvider(Protocol):
    """Low-level storage for entries, labels, schemas and lenses."""

    #: ``"sqlite"``, ``"redis"`` or ``"postgres"``: shown in the UI and in error messages.
    backend: str
    #: Where it lives (a path or a URL without password), for messages and the status bar.
    address: str

    # --- entries ---------------------------------------------------------------------------------
    def put_entry(
        self, entry: IndexEntry, *, label: str | None = None, replace: bool = False
    ) -> None:
        """Store ``entry`` and (optionally) point label ``label`` (version "") at it, atomically.

        If the label already points at another entry and ``replace`` is false, nothing is written
        and ``AlreadyExistsError`` is raised.
        """
        ...

    def get_entry(self, cid: str) -> IndexEntry | None: ...

    def get_entry_by_name(self, name: str) -> IndexEntry | None:
        """Through the label ``name`` (version ""), else the newest entry with that name."""
        ...

    def list_entries(
        self, *, offset: int = 0, limit: int = 100, name_filter: str | None = None
    ) -> list[IndexEntry]:
        """Entries ordered by (name, cid); ``name_filter`` is a case-insensitive substring."""
        ...

    def count_entries(self, name_filter: str | None = None) -> int: ...

    def update_metadata(self, cid: str, metadata: dict | None) -> None:
        """Replace an entry's metadata (its CID does not cover metadata)."""
        ...

    def delete_entry(self, cid: str) -> bool:
        """Remove an entry and the labels pointing at it; False if it was not there."""
        ...

    # --- labels ----------------------------------------------------------------------------------
    def set_label(
        self, name: str, cid: str, version: str = "", description: str | None = None
    ) -> None: ...

    def get_label(self, name: str, version: str = "") -> str | None: ...

    def list_labels(self, cid: str | None = None) -> list[tuple[str, str, str]]:
        """``(name, version, cid)`` triples, optionally only those pointing at ``cid``."""
        ...

    # --- schemas ---------------------------------------------------------------------------------
    def insert_schema(self, name: str, version: str, record_json: str) -> bool:
        """Store ``name@version`` if absent (atomically); False if that version already exists."""
        ...

    def get_schema(self, name: str, version: str) -> str | None: ...

    def schema_versions(self, name: str) -> list[str]:
        """Every stored version of ``name`` (any order; the Index sorts them)."""
        ...

    def list_schema_names(self, *, offset: int = 0, limit: int = 1000) -> list[str]: ...

    def count_schemas(self) -> int:
        """Number of distinct schema names."""
        ...

    # --- lenses ----------------------------------------------------------------------------------
    def put_lens(self, name: str, version: str, lens_json: str) -> None: ...

    def get_lens(self, name: str, version: str) -> str | None: ...

    def list_lenses(self) -> list[tuple[str, str, str]]:
        """``(name, version, lens_json)`` triples."""
        ...

    def close(self) -> None: ...
