"""Find and remove what crashed writers leave behind: orphan shards and temporary files.

A write commits shards before the index entry, so a process killed in between leaves shards no
entry points at (invisible to readers, but taking space), and a process killed mid-shard leaves a
hidden ``.partial-`` file. Both are found by comparing the store with the index. Anything younger
than ``min_age`` is left alone: it may belong to a write that is still running.
"""

from __future__ import annotations

import contextlib
import os
import time
from dataclasses import dataclass, field
from typing import Any

DEFAULT_MIN_AGE = 3600.0


@dataclass
class GcReport:
    """What ``collect_garbage`` found (and removed, unless it was a dry run)."""

    orphan_shards: list[str] = field(default_factory=list)
    partial_files: list[str] = field(default_factory=list)
    incomplete_uploads: list[str] = field(default_factory=list)
    skipped_young: int = 0
    bytes: int = 0
    removed: bool = False

    @property
    def total(self) -> int:
        return len(self.orphan_shards) + len(self.partial_files) + len(self.incomplete_uploads)


def _age(path: str, now: float) -> float:
    try:
        return now - os.stat(path).st_mtime
    except FileNotFoundError:
        return 0.0


def _size(path: str) -> int:
    try:
        return os.stat(path).st_size
    except OSError:
        return 0


def _stored_shards(store: Any) -> list[tuple[str, int, float]]:
    """``(url, size, age in seconds)`` of every shard in a store (remote stores say so themselves)."""
    if hasattr(store, "list_objects"):
        return [(o.url, o.size, o.age()) for o in store.list_objects()]
    now = time.time()
    return [(u, _size(u), _age(u, now)) for u in store.list_urls()]


def referenced_urls(index: Any, repo: str) -> set[str]:
    """Every shard and manifest URL the entries of ``repo`` point at."""
    refs: set[str] = set()
    for entry in index.iter_entries(repo):
        refs.update(entry.data_urls)
        refs.update(entry.manifests.values())
    return refs


def collect_garbage(
    index: Any, *, repo: str = "local", dry_run: bool = True, min_age: float = DEFAULT_MIN_AGE
) -> GcReport:
    """Find orphans in ``repo``'s data store; remove them unless ``dry_run``."""
    report = GcReport()
    store = index.repos[repo].data_store
    if store is None:
        return report
    now = time.time()
    referenced = referenced_urls(index, repo)
    local = store.kind == "disk"
    for url, size, age in _stored_shards(store):
        if url in referenced:
            continue
        if age < min_age:
            report.skipped_young += 1
            continue
        report.orphan_shards.append(url)
        report.bytes += size
    if local and hasattr(store, "list_partials"):
        for path in store.list_partials():
            if _age(path, now) < min_age:
                report.skipped_young += 1
                continue
            report.partial_files.append(path)
            report.bytes += _size(path)
    if hasattr(store, "list_incomplete_uploads"):
        for upload in store.list_incomplete_uploads(older_than=min_age):
            report.incomplete_uploads.append(str(upload))
    if not dry_run:
        store.delete_urls(report.orphan_shards)
        for path in report.partial_files:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)
        if report.incomplete_uploads and hasattr(store, "abort_incomplete_uploads"):
            store.abort_incomplete_uploads(older_than=min_age)
        report.removed = True
    return report
