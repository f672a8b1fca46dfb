"""Streaming previews of shard samples, and bounded summaries of what they hold. No UI here.

A preview must show the first sample of a shard within a moment, wherever the shard lives, and must
never read a whole shard to do it nor hold more than a bounded amount of it in memory. This module
holds the parts of that which have nothing to do with a terminal, so the TUI, a headless
``preview`` command and the tests share them:

- ``stream_shard`` walks one shard from a sample index or byte offset (resuming through a byte
  range, a manifest, or offsets learnt earlier), decodes each sample leniently (a sample that does
  not decode is kept with its error and raw bytes, never dropped) and stops at a page limit.
- ``array_stats``, ``downsample_1d``, ``grid_2d``, ``image_pixels`` and ``decode_image_bytes``
  summarise arrays and images in time and memory bounded by the output, not by the input: a
  1e8-element array is summarised from a strided view, never copied.
"""

from __future__ import annotations

import contextlib
import io
import math
import mmap
import threading
import time
from array import array
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import IO, Any, Literal

import numpy as np

from .errors import (
    AtdataError,
    SampleError,
    ShardError,
    SourceError,
    TruncatedShardError,
)
from .samples import DictSample, FieldSpec, FieldType, unpack_map
from .shards import BLOCK, iter_members, manifest_url, member_span, read_manifest

#: Samples kept in memory per page, and raw bytes kept per page, unless the caller says otherwise.
PAGE_SAMPLES = 200
PAGE_BYTES = 64_000_000
#: Arrays larger than this are summarised from a strided view of about this many elements.
STATS_MAX_ELEMENTS = 1 << 18
#: Read size for resumed remote streams (one ranged GET each).
RANGE_CHUNK = 1 << 20
#: Offsets remembered per shard (8 bytes each): enough for 2M samples, bounded whatever the shard.
MAX_REMEMBERED_OFFSETS = 2_000_000
#: Decoded images larger than this many pixels are refused (decompression bombs).
MAX_IMAGE_PIXELS = 64_000_000

Status = Literal["ok", "mismatch", "error"]
#: Typographic signs for messages (escaped so linters do not take them for look-alikes).
TIMES = "\u00d7"
DASH = "\u2013"


# --- samples as the preview sees them ---------------------------------------------------------------


@dataclass(slots=True)
class PreviewSample:
    """One sample of a shard, decoded as well as it could be.

    ``status`` is ``ok`` (matches the schema), ``mismatch`` (valid msgpack that does not match the
    schema: ``sample`` is then the schema-free ``DictSample`` view so the user still sees it) or
    ``error`` (not decodable at all: ``sample`` is ``None`` and ``raw`` holds the bytes).
    """

    shard: str
    shard_index: int
    index: int
    key: str
    offset: int
    size: int
    sample: Any = None
    status: Status = "ok"
    error: str | None = None
    raw: bytes | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    note: str | None = None

    @property
    def ok(self) -> bool:
        return self.status == "ok"


def sample_fields(
    item: PreviewSample, specs: Sequence[FieldSpec] | None = None
) -> list[tuple[str, Any, FieldType | None, str | None]]:
    """``(name, value, declared type, problem)`` for every field to show, schema fields first.

    A schema field missing from the sample is listed with the problem ``missing``; fields the
    schema does not declare are listed after, with the problem ``not in schema``.
    """
    out: list[tuple[str, Any, FieldType | None, str | None]] = []
    sample = item.sample
    if sample is None:
        return out
    data: Mapping[str, Any]
    if isinstance(sample, DictSample):
        data = sample.to_dict()
    else:
        data = {f.name: getattr(sample, f.name, None) for f in sample.fields()}
    seen: set[str] = set()
    if specs:
        for spec in specs:
            seen.add(spec.name)
            if spec.name in data:
                out.append((spec.name, data[spec.name], spec.type, None))
            elif spec.optional:
                out.append((spec.name, None, spec.type, None))
            else:
                out.append((spec.name, None, spec.type, "missing"))
    for name, value in data.items():
        if name not in seen:
            out.append((name, value, None, "not in schema" if specs else None))
    for name, value in item.extra.items():
        if name not in seen and name not in data:
            out.append((name, value, None, "not in schema"))
    return out


def decode_preview(
    key: str,
    parts: Mapping[str, bytes | memoryview],
    *,
    sample_type: Any,
    shard: str,
    shard_index: int,
    index: int,
    offset: int,
) -> PreviewSample:
    """Decode one raw sample for display; never raises for bad data.

    The bytes are copied out of the reader's buffer first: a kept memoryview would pin a whole
    read chunk (or the shard's mmap) for as long as the sample is on screen.
    """
    owned = {ext: bytes(data) for ext, data in parts.items()}
    size = sum(len(v) for v in owned.values())
    item = PreviewSample(shard, shard_index, index, key, offset, size)
    payload = owned.get("msgpack")
    if payload is None:
        # A plain WebDataset sample (``key.jpg``, ``key.cls``...): show its members as fields.
        item.sample = DictSample(owned)
        item.note = "no .msgpack member: showing the raw members"
        item.sample.__key__ = key
        return item
    others = {ext: v for ext, v in owned.items() if ext != "msgpack"}
    try:
        data = unpack_map(payload)
    except SampleError as exc:
        item.status, item.error, item.raw = "error", exc.problem, payload
        item.extra = others
        return item
    if sample_type is None or sample_type is DictSample:
        item.sample = DictSample.from_data(data)
    else:
        try:
            item.sample = sample_type.from_data(data)
        except SampleError as exc:
            item.status, item.error = "mismatch", exc.problem
            item.sample = DictSample.from_data(data)
        except Exception as exc:  # a schema class can fail in ways of its own; never crash on it
            item.status, item.error = "mismatch", f"{type(exc).__name__}: {exc}"
            item.sample = DictSample.from_data(data)
        else:
            declared = {f.name for f in sample_type.fields()}
            extra = {k: v for k, v in data.items() if k not in declared}
            if extra:
                item.status = "mismatch"
                item.error = "not in schema: " + ", ".join(sorted(extra)[:5])
                item.extra = DictSample.from_data(extra).to_dict()
    item.sample.__key__ = key
    if others:
        item.extra.update(others)
    return item


# --- reading: grouping members, resuming at an offset -------------------------------------------------


@dataclass(slots=True)
class RawGroup:
    """The members of one sample and where it starts and ends in the shard."""

    key: str
    parts: dict[str, bytes | memoryview]
    offset: int
    end: int


def _sample_key(name: str) -> tuple[str, str]:
    """The same grouping rule as ``shards.iter_raw_samples``: ``key.msgpack`` keeps dots in keys."""
    base = name[name.rfind("/") + 1 :]
    if name.endswith(".msgpack") and "." not in base[:-8]:
        return name[:-8], "msgpack"
    dot = name.find(".", name.rfind("/") + 1)
    return (name, "") if dot < 0 else (name[:dot], name[dot + 1 :])


def iter_groups(
    source: IO[bytes] | bytes | memoryview | Any, *, shard: str, start_offset: int = 0
) -> Iterator[RawGroup]:
    """Samples of a shard, like ``shards.iter_raw_samples``, but early and losing nothing on damage.

    The fast parser is the same (``shards.iter_members``). Two differences matter to a preview:
    a ``key.msgpack`` member completes its sample at once (atdata stores one member per sample),
    so the first sample of a stream is shown as soon as its own bytes have arrived rather than
    after the next member's; and a sample whose members are all complete is yielded *before* a
    truncation or corruption error is raised, so a damaged shard shows every sample it holds.
    ``end`` says where the sample's last member ends (where to resume a growing file). Members
    sharing a key are grouped as WebDataset does, ending at the ``.msgpack`` one if there is one.
    """
    current: RawGroup | None = None
    try:
        for member in iter_members(source, shard=shard, start_offset=start_offset):
            key, ext = _sample_key(member.name)
            end = member.offset + BLOCK + ((len(member.data) + BLOCK - 1) & ~(BLOCK - 1))
            if current is not None and key == current.key:
                current.parts[ext] = member.data
                current.end = end
            else:
                if current is not None:
                    yield current
                current = RawGroup(key, {ext: member.data}, member.offset, end)
            if ext == "msgpack":
                done, current = current, None
                yield done
    except ShardError:
        if current is not None:
            yield current
        raise
    if current is not None:
        yield current


class RangeStream:
    """A shard read from a byte offset through ``read_range`` (one ranged request per chunk).

    This is how a preview resumes in the middle of a remote shard (the next page, a sample found
    through a manifest) without downloading what comes before it. The first request can be sized
    to exactly one sample (``first_chunk``), so the first sample costs one round trip and its own
    bytes.
    """

    def __init__(
        self, source: Any, url: str, offset: int, *, first_chunk: int | None = None
    ) -> None:
        self.source = source
        self.url = url
        self.pos = offset
        self.first_chunk = first_chunk
        self.eof = False
        self.requests = 0

    def read(self, n: int = -1) -> bytes:
        if self.eof:
            return b""
        if self.first_chunk:
            size, self.first_chunk = self.first_chunk, None
        else:
            size = max(n, RANGE_CHUNK) if n and n > 0 else RANGE_CHUNK
        try:
            data = self.source.read_range(self.url, self.pos, self.pos + size - 1)
        except SourceError as exc:
            if self.requests and _is_past_end(exc):
                self.eof = True
                return b""
            raise
        self.requests += 1
        if not data:
            self.eof = True
        self.pos += len(data)
        return data

    def readable(self) -> bool:
        return True


def _is_past_end(exc: Exception) -> bool:
    text = str(exc).lower()
    return "416" in text or "range not satisfiable" in text or "invalidrange" in text


@contextlib.contextmanager
def open_shard_at(
    source: Any, url: str, offset: int = 0, *, first_chunk: int | None = None
) -> Iterator[Any]:
    """Open a shard for a sequential read from byte ``offset``.

    Local shards (memory-mapped buffers) are sliced, which is free; remote ones are read through
    ``RangeStream``. Compressed shards and sources that cannot serve ranges are streamed from
    the start and the bytes before ``offset`` are skipped (read, not kept).
    """
    if offset == 0 and first_chunk is None:
        with source.open_shard(url) as stream:
            yield stream
        return
    from .sources import local_path

    if local_path(url) is not None:
        with source.open_shard(url) as buffer:
            if isinstance(buffer, (bytes, bytearray, memoryview, mmap.mmap)):
                view = memoryview(buffer)
                try:
                    yield view[offset:]
                finally:
                    with contextlib.suppress(BufferError):
                        view.release()
            else:  # a decompressing stream: no random access
                _skip(buffer, offset)
                yield buffer
        return
    compressed = url.split("?", 1)[0].endswith((".gz", ".tgz"))  # tar offsets, not file offsets
    if not compressed and callable(getattr(source, "read_range", None)):
        stream = RangeStream(source, url, offset, first_chunk=first_chunk)
        try:
            head = stream.read(first_chunk or RANGE_CHUNK)
        except (NotImplementedError, AttributeError):
            pass
        else:
            yield _Prefixed(head, stream)
            return
    with source.open_shard(url) as stream:
        if isinstance(stream, (bytes, bytearray, memoryview, mmap.mmap)):
            yield memoryview(stream)[offset:]
        else:
            _skip(stream, offset)
            yield stream


class _Prefixed:
    """A stream whose first bytes were already read (to learn whether ranges work)."""

    def __init__(self, head: bytes, rest: RangeStream) -> None:
        self.head = head
        self.rest = rest

    def read(self, n: int = -1) -> bytes:
        if self.head:
            out, self.head = self.head, b""
            return out
        return self.rest.read(n)

    def readable(self) -> bool:
        return True


def _skip(stream: Any, count: int) -> None:
    while count > 0:
        chunk = stream.read(min(count, RANGE_CHUNK))
        if not chunk:
            return
        count -= len(chunk)


# --- what we learn about shards while reading them -----------------------------------------------------


class ShardBook:
    """Offsets of samples seen so far, manifests, and sample counts, per shard (thread-safe).

    Streaming a shard once teaches us where each sample starts; the next page, the previous page
    or a jump to a sample already passed then costs one seek or one ranged request, not a re-read
    from the start. Memory is bounded: 8 bytes per sample, at most ``MAX_REMEMBERED_OFFSETS``.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._offsets: dict[str, array[int]] = {}
        self._counts: dict[str, int] = {}
        self._manifests: dict[str, list[tuple[str, int, int]] | None] = {}

    def record(self, url: str, index: int, offset: int) -> None:
        with self._lock:
            offsets = self._offsets.setdefault(url, array("q"))
            if index == len(offsets) and index < MAX_REMEMBERED_OFFSETS:
                offsets.append(offset)

    def nearest(self, url: str, index: int) -> tuple[int, int]:
        """The closest known ``(sample index, byte offset)`` at or before ``index``."""
        with self._lock:
            offsets = self._offsets.get(url)
            if not offsets:
                return 0, 0
            i = min(index, len(offsets) - 1)
            return i, offsets[i]

    def offset_of(self, url: str, index: int) -> int | None:
        with self._lock:
            offsets = self._offsets.get(url)
            return offsets[index] if offsets is not None and index < len(offsets) else None

    def set_count(self, url: str, count: int | None) -> None:
        with self._lock:
            if count is None:
                self._counts.pop(url, None)
            else:
                self._counts[url] = count

    def count(self, url: str) -> int | None:
        with self._lock:
            if url in self._counts:
                return self._counts[url]
            manifest = self._manifests.get(url)
            return len(manifest) if manifest is not None else None

    def has_manifest(self, url: str) -> bool:
        with self._lock:
            return url in self._manifests

    def manifest(self, url: str) -> list[tuple[str, int, int]] | None:
        with self._lock:
            return self._manifests.get(url)

    def set_manifest(self, url: str, manifest: list[tuple[str, int, int]] | None) -> None:
        with self._lock:
            self._manifests[url] = manifest

    def forget(self, url: str) -> None:
        """Drop what we know of a shard (it was rewritten)."""
        with self._lock:
            self._offsets.pop(url, None)
            self._counts.pop(url, None)
            self._manifests.pop(url, None)


def load_manifest(
    source: Any, url: str, book: ShardBook, manifests: Mapping[str, str] | None = None
) -> list[tuple[str, int, int]] | None:
    """The shard's manifest (from the entry's metadata or the ``.manifest.json`` sidecar), cached.

    A missing or unreadable manifest is remembered as ``None``: previews then stream instead.
    """
    if book.has_manifest(url):
        return book.manifest(url)
    where = (manifests or {}).get(url) or manifest_url(url)
    manifest: list[tuple[str, int, int]] | None = None
    with contextlib.suppress(AtdataError, OSError, ValueError, NotImplementedError):
        data = source.read_bytes(where)
        if data is not None:
            manifest = read_manifest(data)
    book.set_manifest(url, manifest)
    return manifest


# --- streaming one shard ------------------------------------------------------------------------------


@dataclass(slots=True)
class Skipping:
    """Progress while streaming past samples before the requested one (no manifest)."""

    passed: int
    target: int


@dataclass(slots=True)
class StreamEnd:
    """Why a stream stopped, and where to pick up.

    ``reason``: ``page-full`` (more samples follow at ``next_index``/``next_offset``), ``eof``
    (the shard ended cleanly), ``truncated`` (it stops inside a member: damaged, or still being
    written), ``error`` (the shard could not be read: ``error`` says why), ``cancelled``.
    ``resume_offset`` is where the last complete sample ends (resume there if the file grows).
    """

    reason: Literal["page-full", "eof", "truncated", "error", "cancelled"]
    next_index: int
    next_offset: int | None = None
    resume_offset: int | None = None
    error: str | None = None
    count: int | None = None
    #: For ``page-full``: whether the page filled by sample count or by bytes (``max_bytes``).
    capped_by: Literal["count", "bytes"] | None = None


StreamEvent = PreviewSample | Skipping | StreamEnd


def stream_shard(
    source: Any,
    url: str,
    *,
    shard_index: int = 0,
    start_index: int = 0,
    start_offset: int | None = None,
    sample_type: Any = DictSample,
    limit: int = PAGE_SAMPLES,
    max_bytes: int = PAGE_BYTES,
    book: ShardBook | None = None,
    manifests: Mapping[str, str] | None = None,
    use_manifest: bool = True,
    cancelled: Callable[[], bool] = lambda: False,
) -> Iterator[StreamEvent]:
    """Stream samples ``start_index, start_index + 1, …`` of one shard; end with a ``StreamEnd``.

    Where to start is found the cheapest way: a known ``start_offset``; the shard's manifest (one
    ranged read straight to the sample); an offset learnt earlier (``book``); else the start of
    the shard, parsing (not decoding) the samples before ``start_index``. At most ``limit``
    samples and about ``max_bytes`` of them are yielded (at least one), then a ``page-full`` end
    says where the next page starts. Errors never escape: they end the stream with a reason.
    """
    book = book if book is not None else ShardBook()
    index, offset, first_chunk = 0, 0, None
    try:
        if start_offset is not None:
            index, offset = start_index, start_offset
        elif start_index > 0:
            known_index, known_offset = book.nearest(url, start_index)
            manifest = load_manifest(source, url, book, manifests) if use_manifest else None
            if manifest is not None and start_index < len(manifest):
                index, offset = start_index, manifest[start_index][1]
                first_chunk = member_span(offset, manifest[start_index][2])[1] - offset + 1
                first_chunk = (first_chunk + BLOCK - 1) & ~(BLOCK - 1)
            elif manifest is not None:
                yield StreamEnd(
                    "error",
                    start_index,
                    error=f"the shard holds {len(manifest)} samples (0{DASH}{len(manifest) - 1})",
                    count=len(manifest),
                )
                return
            else:
                index, offset = known_index, known_offset
    except AtdataError as exc:
        yield StreamEnd("error", start_index, error=str(exc))
        return
    yield from _stream_from(
        source,
        url,
        shard_index=shard_index,
        index=index,
        offset=offset,
        first_chunk=first_chunk,
        start_index=start_index,
        sample_type=sample_type,
        limit=limit,
        max_bytes=max_bytes,
        book=book,
        cancelled=cancelled,
    )


def _stream_from(
    source: Any,
    url: str,
    *,
    shard_index: int,
    index: int,
    offset: int,
    first_chunk: int | None,
    start_index: int,
    sample_type: Any,
    limit: int,
    max_bytes: int,
    book: ShardBook,
    cancelled: Callable[[], bool],
) -> Iterator[StreamEvent]:
    kept = 0
    kept_bytes = 0
    resume = offset
    last_report = time.monotonic()
    try:
        with open_shard_at(source, url, offset, first_chunk=first_chunk) as stream:
            for group in iter_groups(stream, shard=url, start_offset=offset):
                if cancelled():
                    yield StreamEnd("cancelled", index, group.offset, resume)
                    return
                book.record(url, index, group.offset)
                if index < start_index:
                    index += 1
                    resume = group.end
                    now = time.monotonic()
                    if now - last_report > 0.1:
                        last_report = now
                        yield Skipping(index, start_index)
                    continue
                if kept >= limit or (kept and kept_bytes >= max_bytes):
                    capped: Literal["count", "bytes"] = "count" if kept >= limit else "bytes"
                    yield StreamEnd("page-full", index, group.offset, resume, capped_by=capped)
                    return
                item = decode_preview(
                    group.key,
                    group.parts,
                    sample_type=sample_type,
                    shard=url,
                    shard_index=shard_index,
                    index=index,
                    offset=group.offset,
                )
                del group.parts
                kept += 1
                kept_bytes += item.size
                resume = group.end
                index += 1
                yield item
    except TruncatedShardError as exc:
        yield StreamEnd("truncated", index, None, resume, exc.problem)
        return
    except AtdataError as exc:  # missing file, unreachable server, corrupt tar
        yield StreamEnd("error", index, None, resume, _error_text(exc))
        return
    except OSError as exc:
        yield StreamEnd("error", index, None, resume, f"{type(exc).__name__}: {exc}")
        return
    if index < start_index:
        yield StreamEnd(
            "error",
            index,
            None,
            resume,
            f"the shard holds {index} samples (0{DASH}{index - 1})"
            if index
            else "the shard is empty",
            count=index,
        )
        return
    book.set_count(url, index)
    yield StreamEnd("eof", index, None, resume, count=index)


def _error_text(exc: AtdataError) -> str:
    return exc.problem if isinstance(exc, ShardError) and exc.problem else str(exc)


# --- bounded summaries of arrays ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ArrayStats:
    """What the preview says about an array. ``step`` > 1 means computed on every step-th element."""

    shape: tuple[int, ...]
    dtype: str
    size: int
    nbytes: int
    min: float | None = None
    max: float | None = None
    mean: float | None = None
    std: float | None = None
    nan: int = 0
    inf: int = 0
    step: int = 1
    counted: int = 0
    note: str | None = None

    @property
    def sampled(self) -> bool:
        return self.step > 1


def flat_sample(arr: np.ndarray, max_elements: int = STATS_MAX_ELEMENTS) -> tuple[np.ndarray, int]:
    """At most about ``max_elements`` evenly strided elements of ``arr``, and the stride.

    For the C-contiguous arrays decoding produces this is a view (no copy at all); otherwise only
    the picked elements are copied.
    """
    size = arr.size
    step = max(1, math.ceil(size / max_elements)) if size > max_elements else 1
    if arr.ndim == 0:
        return arr.reshape(1), 1
    if arr.flags.c_contiguous:
        return arr.reshape(-1)[::step], step
    return np.asarray(arr.flat[::step]), step


def array_stats(arr: np.ndarray, max_elements: int = STATS_MAX_ELEMENTS) -> ArrayStats:
    """Shape, dtype and min/max/mean/std/NaN/Inf counts, from a strided view for big arrays."""
    base = ArrayStats(tuple(arr.shape), arr.dtype.name, int(arr.size), int(arr.nbytes))
    kind = arr.dtype.kind
    if arr.size == 0:
        return _replace(base, note="empty")
    if kind not in "biufc":
        return _replace(base, note=f"no statistics for {arr.dtype} values")
    flat, step = flat_sample(arr, max_elements)
    if step > 1:
        # One strided pass to copy the (bounded) sample, then every statistic runs over
        # contiguous memory: five passes over a strided view cost four times as much.
        flat = np.ascontiguousarray(flat)
    if kind == "c":
        flat = np.abs(flat)
        note: str | None = "statistics of |z|"
    else:
        note = None
    if kind == "b":
        flat = flat.astype(np.uint8)
    nan = inf = 0
    with np.errstate(all="ignore"):
        if flat.dtype.kind == "f":
            finite = np.isfinite(flat)
            n_finite = int(np.count_nonzero(finite))
            if n_finite < flat.size:
                nan = int(np.count_nonzero(np.isnan(flat)))
                inf = flat.size - n_finite - nan
                values = flat[finite]
            else:
                values = flat
        else:
            values = flat
        if values.size == 0:
            return _replace(base, nan=nan, inf=inf, step=step, counted=int(flat.size), note=note)
        vmin = values.min().item()
        vmax = values.max().item()
        mean = float(values.mean(dtype=np.float64))
        std = float(values.std(dtype=np.float64))
    return ArrayStats(
        base.shape,
        base.dtype,
        base.size,
        base.nbytes,
        float(vmin),
        float(vmax),
        mean,
        std,
        nan,
        inf,
        step,
        int(flat.size),
        note,
    )


def _replace(stats: ArrayStats, **changes: Any) -> ArrayStats:
    values = {name: getattr(stats, name) for name in stats.__slots__}  # type: ignore[attr-defined]
    values.update(changes)
    return ArrayStats(**values)


def downsample_1d(arr: np.ndarray, width: int) -> np.ndarray:
    """``width`` float64 bucket means of a 1-D array (NaN where a bucket has no finite value).

    Big arrays are first strided down to at most 64 values per bucket, so the cost is bounded by
    the width, not by the array.
    """
    width = max(1, width)
    flat, _ = flat_sample(arr, width * 64)
    values = flat.astype(np.float64, copy=False)
    n = values.size
    if n == 0:
        return np.full(width, np.nan)
    if n <= width:
        return values.copy()
    edges = np.linspace(0, n, width + 1).astype(np.int64)
    out = np.empty(width)
    with np.errstate(all="ignore"):
        for i in range(width):
            chunk = values[edges[i] : max(edges[i + 1], edges[i] + 1)]
            finite = chunk[np.isfinite(chunk)]
            out[i] = finite.mean() if finite.size else np.nan
    return out


def pick_indices(n: int, out: int) -> np.ndarray:
    """``out`` evenly spaced indices into ``range(n)`` (nearest neighbour, up or down)."""
    return np.minimum((np.arange(out) * n / out).astype(np.int64), n - 1)


def fit_size(h: int, w: int, max_h: int, max_w: int, *, upscale: float = 8.0) -> tuple[int, int]:
    """The largest ``(h, w)`` of the same aspect ratio within the box.

    Small images are enlarged by a whole factor (at most ``upscale``) so nearest-neighbour
    scaling keeps every pixel the same size; large ones shrink to fit.
    """
    if h <= 0 or w <= 0 or max_h <= 0 or max_w <= 0:
        return 0, 0
    scale = min(max_h / h, max_w / w, upscale)
    if scale >= 1:
        scale = math.floor(scale)  # enlarge by whole pixels: every source pixel the same size
    return max(1, min(max_h, round(h * scale))), max(1, min(max_w, round(w * scale)))


def grid_2d(arr: np.ndarray, rows: int, cols: int) -> np.ndarray:
    """A ``rows x cols`` float64 nearest-neighbour resampling of a 2-D array (copies only the cells)."""
    h, w = arr.shape[:2]
    picked = arr[np.ix_(pick_indices(h, rows), pick_indices(w, cols))]
    return picked.astype(np.float64)


def is_image_like(arr: np.ndarray) -> bool:
    """HxWx3/4 (or x1) ``uint8`` arrays, and 2-D ``uint8`` arrays (grayscale), of at least 2x2."""
    if arr.dtype != np.uint8:
        return False
    if arr.ndim == 3 and arr.shape[2] in (1, 3, 4):
        return arr.shape[0] >= 2 and arr.shape[1] >= 2
    return arr.ndim == 2 and arr.shape[0] >= 2 and arr.shape[1] >= 2


def image_pixels(arr: np.ndarray, max_h: int, max_w: int) -> np.ndarray:
    """An RGB ``uint8`` image of at most ``max_h x max_w`` pixels for an image-like array.

    Alpha is composited over black; grayscale is repeated into three channels. Only the output
    pixels are ever copied.
    """
    h, w = arr.shape[:2]
    out_h, out_w = fit_size(h, w, max_h, max_w)
    if out_h == 0:
        return np.zeros((0, 0, 3), np.uint8)
    picked = arr[np.ix_(pick_indices(h, out_h), pick_indices(w, out_w))]
    if picked.ndim == 2:
        picked = picked[:, :, None]
    channels = picked.shape[2]
    if channels == 1:
        return np.repeat(picked, 3, axis=2).astype(np.uint8)
    if channels == 4:
        alpha = picked[:, :, 3:4].astype(np.uint16)
        return ((picked[:, :, :3].astype(np.uint16) * alpha) // 255).astype(np.uint8)
    return np.ascontiguousarray(picked[:, :, :3], dtype=np.uint8)


# --- encoded images in bytes fields ---------------------------------------------------------------------

_IMAGE_MAGIC: tuple[tuple[bytes, str], ...] = (
    (b"\x89PNG\r\n\x1a\n", "PNG"),
    (b"\xff\xd8\xff", "JPEG"),
    (b"GIF87a", "GIF"),
    (b"GIF89a", "GIF"),
    (b"BM", "BMP"),
)


def sniff_image(data: bytes | bytearray | memoryview) -> str | None:
    """``"PNG"``, ``"JPEG"``, ``"GIF"``, ``"WEBP"`` or ``"BMP"`` from the first bytes; else ``None``."""
    head = bytes(data[:16])
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "WEBP"
    for magic, kind in _IMAGE_MAGIC:
        if head.startswith(magic):
            if kind == "BMP" and len(data) < 26:
                return None
            return kind
    return None


class ImageUnavailable(Exception):
    """An encoded image could not be decoded; the message says why (no Pillow, bad data)."""


def decode_image_bytes(data: bytes | memoryview, max_h: int, max_w: int) -> np.ndarray:
    """Decode PNG/JPEG/... bytes with Pillow into an RGB array of at most ``max_h x max_w``.

    Pillow is optional at runtime: without it this raises ``ImageUnavailable`` and the caller
    shows a hex dump instead. Images declaring more than ``MAX_IMAGE_PIXELS`` are refused before
    their pixels are decoded.
    """
    try:
        from PIL import Image
    except ImportError:
        raise ImageUnavailable("install Pillow to see encoded images") from None
    try:
        with Image.open(io.BytesIO(bytes(data))) as img:
            w, h = img.size
            if w * h > MAX_IMAGE_PIXELS:
                raise ImageUnavailable(f"image of {w}{TIMES}{h} pixels is too large to preview")
            out_h, out_w = fit_size(h, w, max_h, max_w)
            if out_h == 0:
                raise ImageUnavailable("empty image")
            with contextlib.suppress(Exception):
                img.draft("RGB", (out_w, out_h))  # JPEG: decode at a reduced scale
            rgba = img.convert("RGBA")
            if rgba.size != (out_w, out_h):
                rgba = rgba.resize((out_w, out_h), Image.Resampling.BILINEAR)
            pixels = np.asarray(rgba)
    except ImageUnavailable:
        raise
    except Exception as exc:
        raise ImageUnavailable(f"cannot decode image: {exc}") from None
    return image_pixels(pixels, max_h, max_w)


def image_size(data: bytes | memoryview) -> tuple[int, int] | None:
    """``(width, height)`` of encoded image bytes (reads the header only), or ``None``."""
    try:
        from PIL import Image
    except ImportError:
        return None
    try:
        with Image.open(io.BytesIO(bytes(data))) as img:
            return img.size
    except Exception:
        return None


# --- sizes ---------------------------------------------------------------------------------------------


def human_bytes(n: int | float) -> str:
    """``1.5 MB``-style sizes (decimal units, as file managers show them)."""
    n = float(n)
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if abs(n) < 1000 or unit == "TB":
            return f"{int(n)} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} TB"


__all__ = [
    "DASH",
    "PAGE_BYTES",
    "PAGE_SAMPLES",
    "STATS_MAX_ELEMENTS",
    "TIMES",
    "ArrayStats",
    "ImageUnavailable",
    "PreviewSample",
    "RangeStream",
    "RawGroup",
    "ShardBook",
    "Skipping",
    "StreamEnd",
    "StreamEvent",
    "array_stats",
    "decode_image_bytes",
    "decode_preview",
    "downsample_1d",
    "fit_size",
    "flat_sample",
    "grid_2d",
    "human_bytes",
    "image_pixels",
    "image_size",
    "is_image_like",
    "iter_groups",
    "load_manifest",
    "open_shard_at",
    "pick_indices",
    "sample_fields",
    "sniff_image",
    "stream_shard",
]
