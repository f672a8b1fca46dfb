"""The preview's workers: stream a shard's samples, and watch for new ones. Plain functions.

Both run in thread workers started by ``PreviewScreen`` and never touch widgets: they report by
posting the messages below, each stamped with the request's ``generation`` so the screen drops
answers to questions it no longer asks (another entry, another page). They check ``cancelled()``
between samples, so moving on stops them at once; a read already blocked on the network finishes
in the background, and whatever it posts is dropped by its stale generation.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from textual.message import Message

from atdata_core.errors import AtdataError
from atdata_core.preview import (
    PAGE_BYTES,
    PAGE_SAMPLES,
    PreviewSample,
    ShardBook,
    Skipping,
    StreamEnd,
    stream_shard,
)
from atdata_core.samples import DictSample, FieldSpec
from atdata_core.sources import DataSource, local_path, source_for_urls

from ..switching import short_switch_interval

#: Samples per message after the first (which goes alone, at once), and the longest a sample
#: waits in a batch: the table fills smoothly without one message per sample.
BATCH_SAMPLES = 64
BATCH_SECONDS = 0.1
#: The longest the worker waits for the first sample to be drawn before it reads on.
FIRST_SAMPLE_GRACE = 0.1
#: How often the watcher looks at the shard file and the index entry.
WATCH_INTERVAL = 1.0
ENTRY_POLL_INTERVAL = 2.0

Post = Callable[[Message], Any]
Cancelled = Callable[[], bool]


# --- messages ------------------------------------------------------------------------------------------


@dataclass
class SchemaResolved(Message):
    """The sample type to decode with (``DictSample`` when the schema is unusable, with ``note``)."""

    generation: int
    sample_type: Any
    specs: list[FieldSpec] | None
    schema: dict[str, Any] | None = None
    note: str | None = None


@dataclass
class SamplesLoaded(Message):
    """Decoded samples, in shard order; the first message carries only the first sample.

    With the first sample comes ``shown``: the screen sets it once that sample is on screen, and
    the worker waits for it (briefly) before reading on, so the first frame does not compete
    with the rest of the page for the GIL.
    """

    generation: int
    samples: list[PreviewSample]
    first: bool = False
    shown: threading.Event | None = None


@dataclass
class StreamProgress(Message):
    """Streaming past samples before the one asked for (no manifest to seek with)."""

    generation: int
    passed: int
    target: int

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, StreamProgress) and message.generation == self.generation


@dataclass
class StreamFinished(Message):
    """The stream stopped (``end.reason`` says why); ``size`` is a local shard's size then."""

    generation: int
    end: StreamEnd
    size: int | None = None
    first_sample_s: float | None = None


@dataclass
class ShardGrew(Message):
    """The local shard the preview reached the end of has grown (it is being written)."""

    generation: int
    url: str
    size: int


@dataclass
class EntryChanged(Message):
    """The index entry changed (new shards or counts) while the preview was open."""

    entry: Any


# --- requests ------------------------------------------------------------------------------------------


@dataclass
class StreamRequest:
    """One page (or the rest of one) to stream from one shard of an entry."""

    generation: int
    entry: Any
    shard_index: int
    start_index: int = 0
    start_offset: int | None = None
    limit: int = PAGE_SAMPLES
    max_bytes: int = PAGE_BYTES
    sample_type: Any = None
    started: float = field(default_factory=time.perf_counter)

    @property
    def url(self) -> str:
        return str(self.entry.data_urls[self.shard_index])


class SourceCache:
    """One ``DataSource`` per entry, built in a worker (an S3 client takes a while) and reused."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._sources: dict[tuple[str, ...], DataSource] = {}

    def get(self, urls: list[str]) -> DataSource:
        key = tuple(urls)
        with self._lock:
            source = self._sources.get(key)
        if source is None:
            source = source_for_urls(list(urls))
            with self._lock:
                self._sources[key] = source
        return source


def resolve_schema(index: Any, schema_ref: str) -> SchemaResolved:
    """The entry's sample type and fields; a missing or bad schema falls back to ``DictSample``."""
    if index is None:
        return SchemaResolved(0, DictSample, None, note="no index: showing samples as stored")
    try:
        record = index.get_schema(schema_ref)
        sample_type = index.decode_schema(schema_ref)
        specs = list(sample_type.fields())
    except (AtdataError, TypeError, ValueError, KeyError) as exc:
        return SchemaResolved(
            0, DictSample, None, note=f"schema unusable ({exc}); showing samples as stored"
        )
    return SchemaResolved(0, sample_type, specs, schema=record)


def local_size(url: str) -> int | None:
    """The size of a local shard, ``-1`` if it does not exist, ``None`` for remote shards."""
    try:
        path = local_path(url)
    except AtdataError:
        return None
    if path is None:
        return None
    try:
        return os.stat(path).st_size
    except OSError:
        return -1


# socket calls get the GIL back at once while the screen draws (see atdata_tui/switching.py)
@short_switch_interval()
def stream_preview(
    request: StreamRequest,
    *,
    index: Any,
    sources: SourceCache,
    book: ShardBook,
    post: Post,
    cancelled: Cancelled,
) -> None:
    """Stream one page of samples for ``request``, posting them in small batches.

    The first sample is posted alone the moment it is decoded; the rest go in batches of
    ``BATCH_SAMPLES`` (or every ``BATCH_SECONDS``). Expected failures (missing shard, server
    down, damaged tar) end the stream with a ``StreamFinished`` that says why; only bugs raise.
    """
    gen = request.generation
    entry = request.entry
    sample_type = request.sample_type
    if sample_type is None:
        resolved = resolve_schema(index, entry.schema_ref)
        resolved.generation = gen
        sample_type = resolved.sample_type
        post(resolved)
    if cancelled():
        return
    url = request.url
    try:
        source = sources.get(list(entry.data_urls))
    except AtdataError as exc:
        post(StreamFinished(gen, StreamEnd("error", request.start_index, error=str(exc))))
        return
    batch: list[PreviewSample] = []
    first_at: float | None = None
    last_flush = time.monotonic()
    end: StreamEnd | None = None
    for event in stream_shard(
        source,
        url,
        shard_index=request.shard_index,
        start_index=request.start_index,
        start_offset=request.start_offset,
        sample_type=sample_type,
        limit=request.limit,
        max_bytes=request.max_bytes,
        book=book,
        manifests=entry.manifests,
        cancelled=cancelled,
    ):
        if isinstance(event, PreviewSample):
            # Hand the GIL to the event loop between samples: a decoding loop that never
            # blocks would otherwise make every frame wait out Python's 5 ms switch interval.
            time.sleep(0)
            if first_at is None:
                first_at = time.perf_counter() - request.started
                shown = threading.Event()
                post(SamplesLoaded(gen, [event], first=True, shown=shown))
                shown.wait(FIRST_SAMPLE_GRACE)
                last_flush = time.monotonic()
                continue
            batch.append(event)
            now = time.monotonic()
            if len(batch) >= BATCH_SAMPLES or now - last_flush >= BATCH_SECONDS:
                if cancelled():
                    return
                post(SamplesLoaded(gen, batch))
                batch = []
                last_flush = now
        elif isinstance(event, Skipping):
            post(StreamProgress(gen, event.passed, event.target))
        else:
            end = event
    if cancelled() or end is None or end.reason == "cancelled":
        return
    if batch:
        post(SamplesLoaded(gen, batch))
    size = local_size(url) if end.reason != "page-full" else None
    post(StreamFinished(gen, end, size, first_at))


@dataclass
class WatchState:
    """What the watcher looks at; the screen updates it as the preview moves (plain attributes).

    ``size_at_end`` is set when the stream reached the end of a local shard (its size then, or
    ``-1`` if it was missing): the watcher reports when the size changes. ``entry_ref`` is what
    the index is polled with for new shards (``None``: do not poll, e.g. network entries).
    """

    generation: int = 0
    url: str | None = None
    size_at_end: int | None = None
    entry: Any = None
    entry_ref: str | None = None


def watch_preview(
    state: WatchState,
    *,
    index: Any,
    post: Post,
    cancelled: Cancelled,
    interval: float = WATCH_INTERVAL,
    entry_interval: float = ENTRY_POLL_INTERVAL,
) -> None:
    """Poll, until cancelled, for a growing shard file and for a changed index entry.

    A dataset being written shows up in the preview this way: a local shard written in place
    grows (its complete members are then shown), and an entry that gains shards or samples is
    re-read. Polling is cheap (one ``stat``, one keyed lookup) and errors are ignored: the next
    poll tries again.
    """
    next_entry_poll = time.monotonic() + entry_interval
    while not cancelled():
        deadline = time.monotonic() + interval
        while time.monotonic() < deadline:
            if cancelled():
                return
            time.sleep(min(0.05, interval))
        gen, url, size_at_end = state.generation, state.url, state.size_at_end
        if url is not None and size_at_end is not None:
            size = local_size(url)
            if size is not None and size != size_at_end and size >= 0:
                state.size_at_end = None
                post(ShardGrew(gen, url, size))
        if state.entry_ref and index is not None and time.monotonic() >= next_entry_poll:
            next_entry_poll = time.monotonic() + entry_interval
            try:
                fresh = index.resolve_entry(state.entry_ref)
            except Exception:  # the index may be busy or gone for a moment: try again later
                continue
            old = state.entry
            if old is not None and (
                list(fresh.data_urls) != list(old.data_urls) or fresh.metadata != old.metadata
            ):
                state.entry = fresh
                post(EntryChanged(fresh))
