"""SQLite provider: the embedded default, laid out exactly like atdata's ``index.db``.

WAL mode plus a busy timeout, and ``BEGIN IMMEDIATE`` for every write, so several processes can
write one index at once without "database is locked" reaching the user. Connections are per
thread because the TUI calls the index from worker threads.
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from typing import Any, TypeVar

import msgpack

from ...errors import AlreadyExistsError, BackendUnavailableError
from ..entries import IndexEntry, pack_metadata, unpack_metadata, utc_now

SCHEMA_VERSION = 1
BUSY_TIMEOUT_MS = 30_000

_DDL = """
CREATE TABLE IF NOT EXISTS dataset_entries (
    cid TEXT PRIMARY KEY, name TEXT NOT NULL, schema_ref TEXT NOT NULL,
    data_urls BLOB NOT NULL, metadata BLOB, legacy_uuid TEXT,
    created_at TEXT DEFAULT (datetime('now')));
CREATE INDEX IF NOT EXISTS idx_entries_name ON dataset_entries(name);
CREATE TABLE IF NOT EXISTS schemas (
    name TEXT, version TEXT, schema_json TEXT, created_at TEXT, PRIMARY KEY (name, version));
CREATE TABLE IF NOT EXISTS lenses (
    name TEXT, version TEXT, lens_json TEXT, created_at TEXT, PRIMARY KEY (name, version));
CREATE TABLE IF NOT EXISTS labels (
    name TEXT, cid TEXT, version TEXT DEFAULT '', description TEXT, created_at TEXT,
    PRIMARY KEY (name, version));
CREATE INDEX IF NOT EXISTS idx_labels_cid ON labels(cid);
CREATE TABLE IF NOT EXISTS atdata_tui_meta (key TEXT PRIMARY KEY, value TEXT);
CREATE INDEX IF NOT EXISTS idx_entries_name_cid ON dataset_entries(name, cid);
"""

_ENTRY_COLUMNS = "cid, name, schema_ref, data_urls, metadata, created_at, legacy_uuid"

T = TypeVar("T")


def _like_pattern(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


class SqliteProvider:
    """An index in one SQLite file (atdata-compatible tables, migrated forward in place)."""

    backend = "sqlite"

    def __init__(self, path: str | os.PathLike[str], *, readonly: bool = False) -> None:
        self.path = os.path.abspath(os.fspath(path))
        self.address = self.path
        self.readonly = readonly
        self._local = threading.local()
        #: every open connection and the thread it belongs to (closed when that thread is gone)
        self._all: list[tuple[threading.Thread, sqlite3.Connection]] = []
        self._lock = threading.Lock()
        if not readonly:
            os.makedirs(os.path.dirname(self.path), exist_ok=True)
        conn = self._conn()
        if not readonly:
            self._retry(lambda: conn.executescript(_DDL))
            conn.execute(
                "INSERT OR IGNORE INTO atdata_tui_meta(key, value) VALUES ('schema_version', ?)",
                (str(SCHEMA_VERSION),),
            )

    # --- connections -----------------------------------------------------------------------------
    def _conn(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            try:
                if self.readonly:
                    conn = sqlite3.connect(
                        f"file:{self.path}?mode=ro",
                        uri=True,
                        isolation_level=None,
                        check_same_thread=False,
                    )
                else:
                    conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
                conn.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
                if not self.readonly:
                    conn.execute("PRAGMA journal_mode=WAL")
                    conn.execute("PRAGMA synchronous=NORMAL")
            except sqlite3.Error as exc:
                raise BackendUnavailableError("sqlite", self.path, str(exc)) from None
            self._local.conn = conn
            with self._lock:
                # a finished thread's connection can never be used again: close it now rather
                # than keep a file handle per thread that ever asked (threads come and go)
                kept = []
                for thread, other in self._all:
                    if thread.is_alive():
                        kept.append((thread, other))
                    else:
                        with suppress(sqlite3.Error):
                            other.close()
                kept.append((threading.current_thread(), conn))
                self._all = kept
        return conn

    def _retry(self, fn: Callable[[], T]) -> T:
        """The busy handler covers most contention; this covers the rest (e.g. WAL recovery)."""
        delay = 0.01
        deadline = time.monotonic() + BUSY_TIMEOUT_MS / 1000
        while True:
            try:
                return fn()
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) and "busy" not in str(exc):
                    raise
                if time.monotonic() > deadline:
                    raise BackendUnavailableError(
                        "sqlite", self.path, f"still locked after {BUSY_TIMEOUT_MS // 1000} s"
                    ) from None
                time.sleep(delay)
                delay = min(delay * 2, 0.5)

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        conn = self._conn()
        self._retry(lambda: conn.execute("BEGIN IMMEDIATE"))
        try:
            yield conn
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        else:
            self._retry(lambda: conn.execute("COMMIT"))

    def _query(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        conn = self._conn()
        return self._retry(lambda: conn.execute(sql, params).fetchall())

    def close(self) -> None:
        with self._lock:
            for _thread, conn in self._all:
                with suppress(sqlite3.ProgrammingError):
                    conn.close()
            self._all.clear()
        self._local = threading.local()

    # --- entries ---------------------------------------------------------------------------------
    @staticmethod
    def _row_to_entry(row: tuple[Any, ...]) -> IndexEntry:
        cid, name, schema_ref, data_urls, metadata, created_at, legacy_uuid = row
        try:
            urls = msgpack.unpackb(data_urls, raw=False) if isinstance(data_urls, bytes) else []
        except Exception:
            urls = []
        return IndexEntry(
            cid=cid,
            name=name,
            schema_ref=schema_ref,
            data_urls=[u for u in urls if isinstance(u, str)] if isinstance(urls, list) else [],
            metadata=unpack_metadata(metadata),
            created_at=created_at or "",
            legacy_uuid=legacy_uuid,
        )

    def put_entry(
        self, entry: IndexEntry, *, label: str | None = None, replace: bool = False
    ) -> None:
        with self._write() as conn:
            if label is not None and not replace:
                row = conn.execute(
                    "SELECT cid FROM labels WHERE name = ? AND version = ''", (label,)
                ).fetchone()
                if row is not None and row[0] != entry.cid:
                    raise AlreadyExistsError(
                        f"a dataset named {label!r} already exists ({row[0]}); "
                        "choose another name or pass overwrite=True"
                    )
            conn.execute(
                f"INSERT OR REPLACE INTO dataset_entries ({_ENTRY_COLUMNS}) VALUES (?,?,?,?,?,?,?)",
                (
                    entry.cid,
                    entry.name,
                    entry.schema_ref,
                    msgpack.packb(entry.data_urls, use_bin_type=True),
                    pack_metadata(entry.metadata),
                    entry.created_at,
                    entry.legacy_uuid,
                ),
            )
            if label is not None:
                conn.execute(
                    "INSERT OR REPLACE INTO labels(name, cid, version, description, created_at) "
                    "VALUES (?, ?, '', ?, ?)",
                    (label, entry.cid, entry.description, utc_now()),
                )

    def get_entry(self, cid: str) -> IndexEntry | None:
        rows = self._query(f"SELECT {_ENTRY_COLUMNS} FROM dataset_entries WHERE cid = ?", (cid,))
        return self._row_to_entry(rows[0]) if rows else None

    def get_entry_by_name(self, name: str) -> IndexEntry | None:
        rows = self._query(
            f"SELECT {', '.join('e.' + c.strip() for c in _ENTRY_COLUMNS.split(','))} "
            "FROM labels l JOIN dataset_entries e ON e.cid = l.cid "
            "WHERE l.name = ? AND l.version = ''",
            (name,),
        )
        if not rows:
            rows = self._query(
                f"SELECT {_ENTRY_COLUMNS} FROM dataset_entries WHERE name = ? "
                "ORDER BY created_at DESC, cid LIMIT 1",
                (name,),
            )
        return self._row_to_entry(rows[0]) if rows else None

    def list_entries(
        self, *, offset: int = 0, limit: int = 100, name_filter: str | None = None
    ) -> list[IndexEntry]:
        if name_filter:
            rows = self._query(
                f"SELECT {_ENTRY_COLUMNS} FROM dataset_entries WHERE name LIKE ? ESCAPE '\\' "
                "ORDER BY name, cid LIMIT ? OFFSET ?",
                (_like_pattern(name_filter), limit, offset),
            )
        else:
            rows = self._query(
                f"SELECT {_ENTRY_COLUMNS} FROM dataset_entries ORDER BY name, cid LIMIT ? OFFSET ?",
                (limit, offset),
            )
        return [self._row_to_entry(r) for r in rows]

    def count_entries(self, name_filter: str | None = None) -> int:
        if name_filter:
            rows = self._query(
                "SELECT COUNT(*) FROM dataset_entries WHERE name LIKE ? ESCAPE '\\'",
                (_like_pattern(name_filter),),
            )
        else:
            rows = self._query("SELECT COUNT(*) FROM dataset_entries")
        return int(rows[0][0])

    def update_metadata(self, cid: str, metadata: dict | None) -> None:
        with self._write() as conn:
            conn.execute(
                "UPDATE dataset_entries SET metadata = ? WHERE cid = ?",
                (pack_metadata(metadata), cid),
            )

    def delete_entry(self, cid: str) -> bool:
        with self._write() as conn:
            cur = conn.execute("DELETE FROM dataset_entries WHERE cid = ?", (cid,))
            conn.execute("DELETE FROM labels WHERE cid = ?", (cid,))
            return cur.rowcount > 0

    def bulk_insert(self, entries: list[IndexEntry]) -> None:
        """Insert many entries in one transaction (demo data, benchmarks, migrations)."""
        with self._write() as conn:
            conn.executemany(
                f"INSERT OR REPLACE INTO dataset_entries ({_ENTRY_COLUMNS}) VALUES (?,?,?,?,?,?,?)",
                [
                    (
                        e.cid,
                        e.name,
                        e.schema_ref,
                        msgpack.packb(e.data_urls, use_bin_type=True),
                        pack_metadata(e.metadata),
                        e.created_at,
                        e.legacy_uuid,
                    )
                    for e in entries
                ],
            )

    # --- labels ----------------------------------------------------------------------------------
    def set_label(
        self, name: str, cid: str, version: str = "", description: str | None = None
    ) -> None:
        with self._write() as conn:
            conn.execute(
                "INSERT OR REPLACE INTO labels(name, cid, version, description, created_at) "
                "VALUES (?, ?, ?, ?, ?)",
                (name, cid, version, description, utc_now()),
            )

    def get_label(self, name: str, version: str = "") -> str | None:
        rows = self._query("SELECT cid FROM labels WHERE name = ? AND version = ?", (name, version))
        return rows[0][0] if rows else None

    def list_labels(self, cid: str | None = None) -> list[tuple[str, str, str]]:
        if cid is None:
            rows = self._query("SELECT name, version, cid FROM labels ORDER BY name, version")
        else:
            rows = self._query(
                "SELECT name, version, cid FROM labels WHERE cid = ? ORDER BY name, version", (cid,)
            )
        return [(n, v or "", c) for n, v, c in rows]

    # --- schemas ---------------------------------------------------------------------------------
    def insert_schema(self, name: str, version: str, record_json: str) -> bool:
        with self._write() as conn:
            cur = conn.execute(
                "INSERT OR IGNORE INTO schemas(name, version, schema_json, created_at) VALUES (?,?,?,?)",
                (name, version, record_json, utc_now()),
            )
            return cur.rowcount > 0

    def get_schema(self, name: str, version: str) -> str | None:
        rows = self._query(
            "SELECT schema_json FROM schemas WHERE name = ? AND version = ?", (name, version)
        )
        return rows[0][0] if rows else None

    def schema_versions(self, name: str) -> list[str]:
        return [r[0] for r in self._query("SELECT version FROM schemas WHERE name = ?", (name,))]

    def list_schema_names(self, *, offset: int = 0, limit: int = 1000) -> list[str]:
        rows = self._query(
            "SELECT DISTINCT name FROM schemas ORDER BY name LIMIT ? OFFSET ?", (limit, offset)
        )
        return [r[0] for r in rows]

    def count_schemas(self) -> int:
        return int(self._query("SELECT COUNT(DISTINCT name) FROM schemas")[0][0])

    # --- lenses ----------------------------------------------------------------------------------
    def put_lens(self, name: str, version: str, lens_json: str) -> None:
        with self._write() as conn:
            conn.execute(
                "INSERT OR REPLACE INTO lenses(name, version, lens_json, created_at) VALUES (?,?,?,?)",
                (name, version, lens_json, utc_now()),
            )

    def get_lens(self, name: str, version: str) -> str | None:
        rows = self._query(
            "SELECT lens_json FROM lenses WHERE name = ? AND version = ?", (name, version)
        )
        return rows[0][0] if rows else None

    def list_lenses(self) -> list[tuple[str, str, str]]:
        return [
            (n, v, j)
            for n, v, j in self._query("SELECT name, version, lens_json FROM lenses ORDER BY name")
        ]
