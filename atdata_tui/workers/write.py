"""Writing a new dataset from a source (JSON Lines, CSV, images, tar): plain functions.

``inspect_source`` opens a source and infers its schema (the new-dataset screen calls it in a
thread worker as the path changes); ``write_job`` builds the job function the ``JobManager`` runs:
it imports through ``Index.write`` (all or nothing), reporting progress through the job context
(throttled there) and checking ``ctx.cancelled()`` through ``Index.write``'s cancel callback, so
a cancelled write leaves no entry, no shards and no ``.partial`` files. The CLI uses
``run_write`` with a plain callback instead of a job context. Nothing here imports Textual.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from atdata_core.importers import ImageMode, ImportSource, OnError, SourceKind
    from atdata_core.index import Index, IndexEntry, WriteProgress


class _Context(Protocol):
    """What ``write_job`` needs from ``jobs.JobContext`` (kept structural: no Textual here)."""

    def report(self, done: float | None = ..., total: float | None = ..., **kw: Any) -> None: ...

    def cancelled(self) -> bool: ...

    def log(self, line: str) -> None: ...

    def set_result_text(self, text: str) -> None: ...


@dataclass
class WriteRequest:
    """Everything the new-dataset screen (or the CLI) decided."""

    name: str
    repo: str = "local"
    maxcount: int | None = 10000
    maxsize: int | None = None
    description: str | None = None
    overwrite: bool = False

    @property
    def ref(self) -> str:
        """How the new dataset is referred to (``name`` or ``repo/name``)."""
        return self.name if self.repo in ("", "local") else f"{self.repo}/{self.name}"


def inspect_source(
    path: str,
    kind: SourceKind | None = None,
    *,
    on_error: OnError = "raise",
    image_mode: ImageMode = "array",
    name: str | None = None,
) -> ImportSource:
    """Open ``path`` and infer its schema from a bounded prefix (raises ``AtdataError``)."""
    from atdata_core.importers import open_source

    return open_source(path, kind, on_error=on_error, image_mode=image_mode, name=name)


def check_request(index: Index, request: WriteRequest) -> None:
    """Refuse a bad or taken name before a job starts (``RefError``/``AlreadyExistsError``)."""
    from atdata_core.errors import AlreadyExistsError, NotFoundError
    from atdata_core.refs import validate_dataset_name

    validate_dataset_name(request.name)
    if request.repo not in index.repos:
        from atdata_core.errors import RefError

        raise RefError(f"no repository named {request.repo!r} (known: {', '.join(index.repos)})")
    if request.overwrite:
        return
    try:
        index.resolve_entry(request.ref)
    except NotFoundError:
        return
    raise AlreadyExistsError(f"a dataset named {request.ref!r} already exists; choose another name")


def run_write(
    index: Index,
    source: ImportSource,
    request: WriteRequest,
    *,
    progress: Callable[[WriteProgress, int | None], None] | None = None,
    cancel: Callable[[], bool] | None = None,
) -> IndexEntry:
    """Import ``source`` as ``request`` says; ``progress(p, total)`` gets ``Index.write``'s reports."""
    from atdata_core.importers import import_into

    total = source.count()

    def on_progress(p: WriteProgress) -> None:
        if progress is not None:
            progress(p, total)

    return import_into(
        index,
        source,
        name=request.name,
        repo=request.repo,
        description=request.description or None,
        maxcount=request.maxcount,
        maxsize=request.maxsize,
        overwrite=request.overwrite,
        progress=on_progress,
        cancel=cancel,
    )


def write_job(index: Index, source: ImportSource, request: WriteRequest) -> Callable[[Any], str]:
    """The job function for ``app.jobs.submit("write", ...)``; returns the new dataset's ref."""

    def run(ctx: _Context) -> str:
        ctx.report(0, None, unit="samples", detail=f"reading {source.describe()}", force=True)

        def progress(p: WriteProgress, total: int | None) -> None:
            ctx.report(
                p.samples,
                total,
                unit="samples",
                samples=p.samples,
                bytes=p.bytes,
                detail=f"{p.shards} shard{'s' if p.shards != 1 else ''} written",
                force=p.done,
            )

        entry = run_write(index, source, request, progress=progress, cancel=ctx.cancelled)
        if source.skipped:
            ctx.log(f"skipped {source.skipped} bad rows (first: {source.problems[0]})")
        samples = (entry.metadata or {}).get("samples")
        ctx.log(f"{samples} samples in {len(entry.data_urls)} shard(s); CID {entry.cid}")
        ctx.set_result_text(request.ref)
        return request.ref

    return run


class StderrProgress:
    """Progress lines on stderr for the headless ``write`` command (≤4 per second, then a summary)."""

    def __init__(self, stream: Any = None, interval: float = 0.25) -> None:
        self.stream = stream or sys.stderr
        self.interval = interval
        self._last = 0.0
        self._tty = bool(getattr(self.stream, "isatty", lambda: False)())

    def __call__(self, p: WriteProgress, total: int | None) -> None:
        now = time.monotonic()
        if not p.done and now - self._last < self.interval:
            return
        self._last = now
        pct = f" {min(100.0, 100 * p.samples / total):5.1f}%" if total else ""
        line = (
            f"{p.samples:,} samples{pct} · {_mb(p.bytes)} · {p.shards} shard(s) · "
            f"{p.samples_per_s:,.0f} samples/s"
        )
        if self._tty and not p.done:
            self.stream.write("\r" + line + "\x1b[K")
        else:
            self.stream.write(("\r" if self._tty else "") + line + "\n")
        self.stream.flush()


def _mb(n: int) -> str:
    return f"{n / 1e6:,.1f} MB" if n >= 100_000 else f"{n:,} B"
