"""Tar shards: a fast streaming reader, a rolling writer with checksums and manifests, brace URLs.

Why our own tar code: WebDataset iterates through ``tarfile`` plus a pipeline of generators, about
20k small samples/s. Parsing ustar headers straight out of a buffer (an mmap for local files, large
chunks for streams) reaches an order of magnitude more. The writer emits plain POSIX ustar members
that ``tarfile``, GNU tar and WebDataset read; the reader also understands pax and GNU long names.
"""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import json
import mmap
import os
import queue
import re
import tarfile
import threading
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol
from zlib import adler32

import numpy as np

from .errors import (
    CorruptShardError,
    ShardError,
    SourceError,
    TruncatedShardError,
    WriteError,
)
from .samples import new_key

BLOCK = 512
_ZERO_BLOCK = bytes(BLOCK)
_CHUNK = 1 << 20
MAX_MEMBER_NAME = 4096
#: Members larger than this are refused: no sample of a dataset legitimately needs more.
MAX_MEMBER_SIZE = 1 << 36


# --- brace expansion -------------------------------------------------------------------------------

_BRACE = re.compile(r"\{([^{}]*)\}")


#: More URLs than this from one pattern is a mistake or an attack (``{0..999999999}``), not a dataset.
MAX_EXPANSION = 1_000_000


def _expansion_count(url: str) -> int:
    total = 1
    for body in _BRACE.findall(url):
        bounds = re.fullmatch(r"(-?\d+)\.\.(-?\d+)", body)
        total *= (
            abs(int(bounds.group(2)) - int(bounds.group(1))) + 1 if bounds else len(body.split(","))
        )
        if total > MAX_EXPANSION:
            break
    return total


def expand_braces(url: str) -> list[str]:
    """Expand ``data-{000000..000009}.tar`` and ``{train,val}`` (nested and repeated) into URLs.

    Refuses patterns that would expand to more than ``MAX_EXPANSION`` URLs before building any.
    """
    if "{" in url and _expansion_count(url) > MAX_EXPANSION:
        raise ShardError(f"{url[:120]!r} expands to more than {MAX_EXPANSION:,} shard URLs")
    return _expand(url)


def _expand(url: str) -> list[str]:
    match = _BRACE.search(url)
    if match is None:
        return [url]
    body = match.group(1)
    head, tail = url[: match.start()], url[match.end() :]
    range_match = re.fullmatch(r"(-?\d+)\.\.(-?\d+)", body)
    if range_match:
        lo_s, hi_s = range_match.groups()
        lo, hi = int(lo_s), int(hi_s)
        width = len(lo_s) if lo_s.startswith("0") and len(lo_s) > 1 else 0
        step = 1 if hi >= lo else -1
        options = [str(i).zfill(width) for i in range(lo, hi + step, step)]
    else:
        options = body.split(",")
    return [u for opt in options for u in _expand(head + opt + tail)]


def shard_name(pattern: str, index: int) -> str:
    """The name of shard ``index`` for a ``%06d``-style (or ``{}``-less) pattern."""
    if re.search(r"%0?\d*d", pattern):
        return pattern % index
    raise ValueError(f"shard pattern {pattern!r} needs a %d-style placeholder such as %06d")


# --- reading ---------------------------------------------------------------------------------------


class Readable(Protocol):
    """What the reader needs of a stream: ``read(n)`` returning bytes (b"" at the end).

    Files, HTTP responses, S3 bodies and the sources' own wrappers all qualify.
    """

    def read(self, n: int = ..., /) -> bytes: ...


@dataclass(frozen=True, slots=True)
class TarMember:
    """One regular file in a shard: its name, where its header starts, and its bytes."""

    name: str
    offset: int
    data: bytes | memoryview


def _checksum_ok(header: bytes) -> bool:
    """Verify a ustar header checksum (the sum of its bytes, the checksum field read as spaces).

    ``zlib.adler32``'s low 16 bits are ``1 + sum(data) mod 65521``; over slices of at most 256
    bytes the sum cannot reach 65521, so three slices give the exact unsigned sum. This is the same
    check as ``sum(header)``, not a weaker one, at a quarter of the cost (≈0.4 µs vs 1.7 µs per
    header), which is what lets verification stay on by default. Historic writers that summed
    signed bytes are accepted too, as ``tarfile`` does.
    """
    field_bytes = header[148:156]
    stored_text = field_bytes.split(b"\0", 1)[0]
    try:
        stored = int(stored_text, 8)
    except ValueError:
        return False
    total = (
        (adler32(header[:148]) & 0xFFFF)
        + (adler32(header[156:356]) & 0xFFFF)
        + (adler32(header[356:]) & 0xFFFF)
        + (8 * 32 - 3)  # the checksum field as spaces, minus adler32's three initial 1s
    )
    if total == stored:
        return True
    high = sum(1 for b in header[:148] if b & 0x80) + sum(1 for b in header[156:] if b & 0x80)
    return total - 256 * high == stored


def _parse_size(header: bytes, shard: str | None, at: int) -> int:
    field_bytes = header[124:136]
    if field_bytes[0] & 0x80:  # GNU base-256, for members of 8 GiB and more
        value = int.from_bytes(field_bytes[1:], "big")
        size = value - (1 << 88) if field_bytes[0] & 0x40 else value
    else:
        text = field_bytes.split(b"\0", 1)[0]
        try:
            size = int(text, 8)
        except ValueError:
            if text.strip():
                raise CorruptShardError(
                    f"bad tar header at byte {at} (size field {text[:20]!r})", shard=shard
                ) from None
            size = 0
    if size < 0 or size > MAX_MEMBER_SIZE:
        raise CorruptShardError(f"tar member at byte {at} declares size {size}", shard=shard)
    return size


def _parse_pax(data: bytes) -> dict[str, str]:
    out = {}
    pos = 0
    while pos < len(data):
        space = data.find(b" ", pos)
        if space < 0:
            break
        try:
            length = int(data[pos:space])
        except ValueError:
            break
        if length <= 0:
            break
        record = data[space + 1 : pos + length - 1]
        key, _, value = record.partition(b"=")
        out[key.decode("utf-8", "replace")] = value.decode("utf-8", "replace")
        pos += length
    return out


def _refill(
    stream: Readable, raw: bytes, pos: int, base: int, need: int
) -> tuple[bytes, int, int, bool]:
    """Keep ``raw[pos:]`` and read on until ``need`` bytes are available from there.

    Returns the new buffer, the shard offset of its first byte, the position to go on from
    (0, or how far past the end a skip fell short) and whether the stream ended. ``pos`` may lie
    past the end of ``raw`` (padding not yet read): those bytes are skipped.
    """
    eof = False
    skip = pos - len(raw)
    while skip > 0:
        chunk = stream.read(min(skip, _CHUNK))
        if not chunk:
            return b"", base + pos - skip, skip, True
        skip -= len(chunk)
    rest = raw[pos:] if pos < len(raw) else b""
    parts = [rest]
    have = len(rest)
    while have < need:
        chunk = stream.read(max(_CHUNK, need - have))
        if not chunk:
            eof = True
            break
        parts.append(chunk)
        have += len(chunk)
    return b"".join(parts), base + pos, 0, eof


def iter_members(
    source: Readable | bytes | bytearray | memoryview | mmap.mmap,
    *,
    shard: str | None = None,
    verify_checksums: bool = True,
    start_offset: int = 0,
    require_end: bool = False,
) -> Iterator[TarMember]:
    """Stream the regular-file members of a tar without reading the whole shard first.

    ``source`` is any binary stream (file, HTTP response, S3 body) or an in-memory buffer (an mmap,
    bytes): then member data are zero-copy ``memoryview`` slices. Directories and other non-file
    members are skipped; unsafe names (absolute, ``..``) raise ``CorruptShardError``; a shard that
    stops in the middle of a member raises ``TruncatedShardError``. ``start_offset`` only labels
    offsets (used when reading from the middle of a shard). With ``require_end`` (reading a
    whole shard) a shard that stops without its end-of-archive marker is ``TruncatedShardError``
    too; without it (a byte range, a live stream) such an end is accepted.
    """
    for name, offset, data in _iter_member_tuples(
        source, shard, verify_checksums, start_offset, require_end
    ):
        yield TarMember(name, offset, data)


#: Headers verified per numpy batch at most; batches start at one header and double, so the
#: first member of a shard is handed out at once (previews) and long runs get the vector speed.
_VERIFY_BATCH = 256
#: Below this many headers a batch is checked header by header (numpy's fixed cost is higher).
_VECTOR_MIN = 16
_SUM_ONES = np.ones(BLOCK, np.float32)
_OCTAL_SHIFTS = np.array([15, 12, 9, 6, 3, 0], np.int32)
#: A memory-mapped shard gives back the pages it has parsed past every this many bytes, so
#: reading a 10 GB shard does not grow the resident set by 10 GB (the data stays in the page
#: cache; a view still held re-reads its page on access).
_RELEASE_EVERY = 16 << 20


def _first_bad_header(raw: Any, positions: list[int]) -> int:
    """Index in ``positions`` of the first header whose checksum is wrong, or -1.

    Why vectorized: the ustar checksum (a byte sum) costs ≈0.85 µs per header in Python, about
    as much as everything else the parser does. Gathering a batch of headers as rows of a numpy
    array and summing the rows costs ≈0.2 µs per header and checks exactly the same thing: the
    stored field must read as ``%06o\\0`` of the exact sum (float32 sums of at most 512 * 255 are
    exact). Rows that fail (other field layouts, signed sums, damage) are re-checked one by one
    with ``_checksum_ok``, so the verdict is always the scalar check's.
    """
    if len(positions) < _VECTOR_MIN:
        for i, p in enumerate(positions):
            if not _checksum_ok(bytes(raw[p : p + BLOCK])):
                return i
        return -1
    blocks = np.frombuffer(raw, np.uint8, count=(len(raw) // BLOCK) * BLOCK).reshape(-1, BLOCK)
    headers = blocks[np.array(positions, np.int64) // BLOCK]
    sums = (headers.astype(np.float32) @ _SUM_ONES).astype(np.int32)
    sums -= headers[:, 148:156].sum(axis=1, dtype=np.int32)
    sums += 8 * 32  # the checksum field counts as spaces
    digits = ((sums[:, None] >> _OCTAL_SHIFTS) & 7) + 48
    ok = (headers[:, 148:154] == digits).all(axis=1) & (headers[:, 154] == 0)
    del blocks, headers  # release the exported buffer (an mmap cannot close while it is held)
    if ok.all():
        return -1
    for i in np.flatnonzero(~ok).tolist():
        p = positions[i]
        if not _checksum_ok(bytes(raw[p : p + BLOCK])):
            return int(i)
    return -1


def _iter_member_tuples(
    source: Readable | bytes | bytearray | memoryview | mmap.mmap,
    shard: str | None,
    verify_checksums: bool,
    start_offset: int,
    require_end: bool = False,
) -> Iterator[tuple[str, int, memoryview]]:
    """``(name, offset, data)`` of every regular member, one by one."""
    for batch in _iter_member_batches(source, shard, verify_checksums, start_offset, require_end):
        yield from batch


def _iter_member_batches(
    source: Readable | bytes | bytearray | memoryview | mmap.mmap,
    shard: str | None,
    verify_checksums: bool,
    start_offset: int,
    require_end: bool = False,
) -> Iterator[list[tuple[str, int, memoryview]]]:
    """The parser behind ``iter_members``: lists of verified ``(name, offset, data)`` tuples.

    Lists, because consumers then loop over them without resuming a generator per member.

    One flat loop over one buffer with the header fields sliced straight out of it: this is the
    hot path of every read, so it builds no per-member object but a tuple (a frozen dataclass
    costs 0.4 µs per member, a fifth of the whole parse) and never copies member data.

    Header checksums are verified in batches (``_first_bad_header``) before any member of the
    batch is handed out, so no member behind a damaged header is ever yielded; an error found
    while walking (a bad size, a cut shard) is reported as a checksum error when the header it
    came from fails its checksum, since its fields are then garbage.
    """
    stream: Readable | None
    if isinstance(source, (bytes, bytearray, memoryview, mmap.mmap)):
        stream = None
        raw: Any = source
        if isinstance(source, memoryview) and source.itemsize != 1:
            raw = source.cast("B")
    else:
        stream = source
        raw = b""
    mv = memoryview(raw)
    n = len(mv)
    pos = 0
    base = start_offset  # the shard offset of raw[0]
    eof = stream is None
    long_name: str | None = None
    pax_path: str | None = None
    pending: list[tuple[str, int, memoryview]] = []  # members walked, not yet verified
    headers: list[int] = []  # positions in ``raw`` of every header walked since
    limit = 1
    release = isinstance(raw, mmap.mmap) and hasattr(mmap, "MADV_DONTNEED")
    released = 0
    problem: ShardError | None = None
    finished = False
    need = BLOCK
    while True:
        stop = False  # verify what was walked, then refill, finish or raise
        if n - pos >= BLOCK:
            header = raw[pos : pos + BLOCK]
            if type(header) is not bytes:
                header = bytes(header)
            if header[0] == 0 and header == _ZERO_BLOCK:
                stop = finished = True
            else:
                headers.append(pos)
                size = -1
                try:
                    if header[124] < 0x80 and header[135] < 48:  # 11 octal digits, NUL/space
                        size = int(header[124:135], 8)
                    else:
                        size = _parse_size(header, shard, base + pos)
                    if size < 0 or size > MAX_MEMBER_SIZE:
                        raise CorruptShardError(
                            f"tar member at byte {base + pos} declares size {size}", shard=shard
                        )
                except ValueError:
                    try:
                        size = _parse_size(header, shard, base + pos)
                    except CorruptShardError as exc:
                        problem = exc
                except CorruptShardError as exc:
                    problem = exc
                end = pos + BLOCK + size
                if problem is not None:
                    stop = True
                elif end > n:
                    stop = True
                    if not eof:
                        headers.pop()  # walked again once its data is in the buffer
                        need = BLOCK + size
                    else:
                        problem = TruncatedShardError(
                            f"ends inside member at byte {base + pos} ({size} bytes declared, "
                            f"{n - pos - BLOCK} present)",
                            shard=shard,
                        )
                else:
                    flag = header[156]
                    if flag == 48 or flag == 0 or flag == 55:  # '0', NUL (old tar), '7'
                        if long_name is not None:
                            name = long_name
                            long_name = None
                        elif pax_path is not None:
                            name = pax_path
                            pax_path = None
                        else:
                            cut = header.find(0, 0, 100)
                            try:
                                name = header[: cut if cut >= 0 else 100].decode()
                            except UnicodeDecodeError:
                                name = header[: cut if cut >= 0 else 100].decode("utf-8", "replace")
                            if header[345] and header[257:262] == b"ustar":
                                prefix = header[345:500].split(b"\0", 1)[0]
                                name = f"{prefix.decode('utf-8', 'replace')}/{name}"
                        if name[:1] == "/" or (".." in name and ".." in name.split("/")):
                            problem = CorruptShardError(
                                f"unsafe member name {name[:200]!r}", shard=shard
                            )
                            stop = True
                        else:
                            pending.append((name, base + pos, mv[pos + BLOCK : end]))
                    elif flag == 76 or flag == 120:  # 'L' GNU long name, 'x' pax header
                        if size > MAX_MEMBER_NAME * 16:
                            problem = CorruptShardError(
                                f"extended header of {size} bytes at byte {base + pos}",
                                shard=shard,
                            )
                            stop = True
                        else:
                            data = bytes(mv[pos + BLOCK : end])
                            if flag == 76:
                                long_name = data.split(b"\0", 1)[0].decode("utf-8", "replace")
                            else:
                                pax_path = _parse_pax(data).get("path", pax_path)
                    # anything else (directories, links, pax globals) carries no sample data
                    pos += BLOCK + ((size + BLOCK - 1) & ~(BLOCK - 1))
        else:
            stop = True
            if not eof:
                need = BLOCK  # positions are relative to this buffer: verify before refilling
            else:
                finished = True
                if n - pos > 0:
                    problem = TruncatedShardError(
                        f"ends inside a tar header at byte {base + pos}", shard=shard
                    )
                elif require_end:  # a whole shard: writers always pad and end with zero blocks
                    problem = TruncatedShardError(
                        f"ends inside the padding of the member before byte {base + pos}"
                        if n - pos < 0
                        else f"ends at byte {base + n} without the end-of-archive marker "
                        "(cut short?)",
                        shard=shard,
                    )
        if not stop and len(headers) < limit:
            continue
        # --- verify the batch, hand out its members, then deal with what stopped us
        if verify_checksums and headers:
            bad = _first_bad_header(raw, headers)
            if bad >= 0:
                bad_offset = base + headers[bad]
                # hand out what lies before the bad header (and before its long-name record)
                good = [member for member in pending if member[1] < bad_offset]
                if good:
                    yield good
                raise CorruptShardError(
                    f"tar header checksum mismatch at byte {bad_offset} "
                    "(corrupt or not a tar file)",
                    shard=shard,
                )
        if pending:
            yield pending
            pending = []
        headers.clear()
        if limit < _VERIFY_BATCH:
            limit *= 2
        if problem is not None:
            raise problem
        if finished:
            return
        if release and pos - released >= _RELEASE_EVERY:
            upto = pos - pos % mmap.PAGESIZE
            with contextlib.suppress(OSError, ValueError):
                raw.madvise(mmap.MADV_DONTNEED, released, upto - released)
            released = upto
        if stop:
            raw, base, pos, eof = _refill(stream, raw, pos, base, need)  # type: ignore[arg-type]
            mv, n = memoryview(raw), len(raw)


def split_key(name: str) -> tuple[str, str]:
    """WebDataset's grouping rule: key is everything before the first dot of the basename."""
    slash = name.rfind("/")
    dot = name.find(".", slash + 1)
    if dot < 0:
        return name, ""
    return name[:dot], name[dot + 1 :]


@dataclass(slots=True)
class RawSample:
    """One sample as stored: its key, the member(s) that make it, and where it starts."""

    key: str
    parts: dict[str, bytes | memoryview]
    offset: int = 0
    shard: str | None = None

    @property
    def msgpack(self) -> bytes | memoryview | None:
        return self.parts.get("msgpack")


def iter_raw_samples(
    source: Readable | bytes | bytearray | memoryview | mmap.mmap,
    *,
    shard: str | None = None,
    verify_checksums: bool = True,
    start_offset: int = 0,
    require_end: bool = False,
) -> Iterator[RawSample]:
    """Group consecutive members with the same key into samples (``key.msgpack`` → one sample).

    Options as for ``iter_members``.
    """
    current: RawSample | None = None
    current_key = None
    try:
        for name, offset, data in _iter_member_tuples(
            source, shard, verify_checksums, start_offset, require_end
        ):
            if name.endswith(".msgpack") and "." not in name[name.rfind("/") + 1 : -8]:
                key, ext = name[:-8], "msgpack"
            else:
                key, ext = split_key(name)
            if key == current_key:
                current.parts[ext] = data  # type: ignore[union-attr]
                continue
            if current is not None:
                yield current
            current = RawSample(key, {ext: data}, offset, shard)
            current_key = key
    except ShardError:
        # The sample read before the damage is whole (its members all parsed): hand it out
        # before the error, so skipping a damaged shard keeps every good sample.
        if current is not None:
            pending, current = current, None
            yield pending
        raise
    if current is not None:
        yield current


def iter_sample_payloads(
    source: Readable | bytes | bytearray | memoryview | mmap.mmap,
    *,
    ext: str = "msgpack",
    shard: str | None = None,
    verify_checksums: bool = True,
    start_offset: int = 0,
    require_end: bool = False,
) -> Iterator[tuple[str, int, memoryview | None]]:
    """``(key, offset, data)`` of each sample's ``<key>.<ext>`` member: the decoding fast path.

    Unlike ``iter_raw_samples`` it neither groups members nor waits for the next one: decoding a
    dataset needs only each sample's msgpack member, so it is handed out as soon as it is read.
    Members with other extensions are passed over; a sample that has none of ``ext`` comes out
    once with ``data=None`` (and its first member's offset), so the caller can name it.
    """
    for batch in iter_sample_payload_batches(
        source,
        ext=ext,
        shard=shard,
        verify_checksums=verify_checksums,
        start_offset=start_offset,
        require_end=require_end,
    ):
        yield from batch


def iter_sample_payload_batches(
    source: Readable | bytes | bytearray | memoryview | mmap.mmap,
    *,
    ext: str = "msgpack",
    shard: str | None = None,
    verify_checksums: bool = True,
    start_offset: int = 0,
    require_end: bool = False,
) -> Iterator[list[tuple[str, int, memoryview | None]]]:
    """``iter_sample_payloads`` in lists (one per verified batch), for the tightest loops."""
    suffix = "." + ext
    cut = -len(suffix)
    last_key: str | None = None
    last_found = True
    last_offset = 0
    for members in _iter_member_batches(source, shard, verify_checksums, start_offset, require_end):
        if last_found:  # the common case: every member is a sample's msgpack member
            fast = [
                (name[:cut], offset, data)
                for name, offset, data in members
                if name.endswith(suffix) and name.count(".") == 1
            ]
            if len(fast) == len(members):
                last_key = fast[-1][0]
                yield fast  # type: ignore[misc]
                continue
        out: list[tuple[str, int, memoryview | None]] = []
        add = out.append
        for name, offset, data in members:
            if name.endswith(suffix) and (
                name.count(".") == 1 or "." not in name[name.rfind("/") + 1 : cut]
            ):
                key = name[:cut]
                if key != last_key:
                    if not last_found:
                        add((last_key, last_offset, None))  # type: ignore[arg-type]
                    last_key = key
                last_found = True
                add((key, offset, data))
                continue
            key = split_key(name)[0]
            if key != last_key:
                if not last_found:
                    add((last_key, last_offset, None))  # type: ignore[arg-type]
                last_key, last_found, last_offset = key, False, offset
        if out:
            yield out
    if not last_found:
        yield [(last_key, last_offset, None)]  # type: ignore[list-item]


@contextlib.contextmanager
def open_local(path: str | os.PathLike[str]) -> Iterator[mmap.mmap | bytes]:
    """Map a local shard into memory (read-only) for zero-copy parsing."""
    try:
        f = open(path, "rb")
    except FileNotFoundError:
        raise SourceError("file not found", shard=str(path)) from None
    except OSError as exc:
        raise SourceError(f"cannot open: {exc.strerror}", shard=str(path)) from None
    with f:
        size = os.fstat(f.fileno()).st_size
        if size == 0:
            yield b""
            return
        mm = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
        with contextlib.suppress(AttributeError, OSError):
            mm.madvise(mmap.MADV_SEQUENTIAL)
        try:
            yield mm
        finally:
            with contextlib.suppress(BufferError):
                mm.close()  # fails while a memoryview of it is still alive; GC closes it then


# --- writing ---------------------------------------------------------------------------------------


class ShardOutput(Protocol):
    """Where one shard's bytes go while it is written (a temp file, an S3 multipart upload…).

    Optional methods, called by ``ShardWriter.commit`` when present: ``publish()`` makes the
    finished shard visible; ``publish_manifest(document)`` stores the manifest sidecar (else it
    is written as a local file beside the shard).
    """

    def write(self, data: bytes) -> None: ...

    def finish(self) -> str:
        """Make the shard durable; return its URL. It need not be visible to readers yet."""
        ...

    def abort(self) -> None:
        """Throw away whatever was written."""
        ...


@dataclass
class ShardInfo:
    """What the writer reports for each shard it produced."""

    url: str
    samples: int
    bytes: int
    sha256: str
    manifest_url: str | None = None
    keys: list[str] = field(default_factory=list, repr=False)


def _octal(value: int, width: int) -> bytes:
    return b"%0*o\0" % (width - 1, value)


def tar_header(name: str, size: int, mtime: int = 0) -> bytes:
    """A POSIX ustar header for a regular file (long names go into a GNU ``L`` record)."""
    raw = name.encode("utf-8")
    if mtime == 0 and len(raw) <= 100 and size < 8**11:
        # The common case, assembled from a template: the checksum is the template's plus the
        # bytes that differ (``sum()`` over a whole header costs more than the rest of a write).
        size_field = b"%011o\0" % size
        chk = _TEMPLATE_SUM + sum(raw) + sum(size_field)
        return b"".join(
            (
                raw,
                bytes(100 - len(raw)),
                _TEMPLATE[100:124],
                size_field,
                _TEMPLATE[136:148],
                b"%06o\0 " % chk,
                _TEMPLATE[156:],
            )
        )
    out = b""
    if len(raw) > 100:
        long = raw + b"\0"
        out = _finish_header(bytearray(BLOCK), len(long), b"././@LongLink", mtime, b"L")
        out += long + bytes((-len(long)) % BLOCK)
        # The ustar field holds a shortened name; keep its extension so a reader that lands on
        # this header alone (a manifest's ranged read) still sees a ``.msgpack`` member.
        dot = raw.rfind(b".")
        suffix = raw[dot:] if dot > 0 and len(raw) - dot <= 20 and b"/" not in raw[dot:] else b""
        raw = raw[: 100 - len(suffix)] + suffix
    return out + _finish_header(bytearray(BLOCK), size, raw, mtime, b"0")


def _finish_header(header: bytearray, size: int, name: bytes, mtime: int, flag: bytes) -> bytes:
    header[: len(name)] = name
    header[100:108] = b"0000644\0"
    header[108:116] = b"0000000\0"
    header[116:124] = b"0000000\0"
    header[124:136] = _octal(size, 12) if size < 8**11 else b"\x80" + size.to_bytes(11, "big")
    header[136:148] = _octal(mtime, 12)
    header[148:156] = b"        "
    header[156:157] = flag
    header[257:265] = b"ustar\x0000"
    chk = sum(header)
    header[148:156] = b"%06o\0 " % chk
    return bytes(header)


_TEMPLATE = _finish_header(bytearray(BLOCK), 0, b"", 0, b"0")
#: The template's checksum without its name (empty) and size fields, the field read as spaces.
_TEMPLATE_SUM = sum(_TEMPLATE[:124]) + sum(_TEMPLATE[136:148]) + 8 * 32 + sum(_TEMPLATE[156:])
_PADDING = [bytes(i) for i in range(BLOCK)]
#: Records are handed to the output (and the hash) in chunks of about this size.
_WRITE_CHUNK = 1 << 20
#: Shards that may still be being made durable (fsync) while the next one is written.
_DURABLE_BEHIND = 1


class _Sink:
    """Hashes one shard's chunks as they come and writes them in order: inline, or on a thread.

    Why a thread: the write system call and ``fsync`` release the GIL, so on a second core they
    overlap with packing the next samples instead of adding to it. A threaded sink also finishes
    its output (flush, ``fsync``, close) once the last chunk is written, so making shard N
    durable overlaps with packing shard N+1; ``ShardWriter`` waits for it before anything is
    published. SHA-256 stays on the caller's thread: hashing on the sink thread as well made it
    wait for the GIL after every chunk (up to the 5 ms switch interval each time) and measured
    slower (12 KB arrays: 30-40k samples/s against a steady 41k). The queue is short, so memory
    stays at a few chunks; a failure in the thread is raised by the next ``put`` or by ``wait``.
    Only outputs that say ``threaded_writes = True`` get the thread (``LocalShardOutput``): others
    (S3 multipart, PDS blobs) see every chunk by the time ``put`` returns and are finished by the
    writer, as they always were.
    """

    def __init__(self, output: ShardOutput, digest: Any) -> None:
        self._output = output
        self._digest = digest
        self._error: BaseException | None = None
        self._thread: threading.Thread | None = None
        self.url: str | None = None  # what ``output.finish()`` returned, once it has
        if getattr(output, "threaded_writes", False):
            self._queue: queue.Queue[bytes | None] = queue.Queue(maxsize=4)
            self._thread = threading.Thread(target=self._run, name="atdata-shard-sink", daemon=True)
            self._thread.start()

    @property
    def threaded(self) -> bool:
        return self._thread is not None

    def _run(self) -> None:
        while (chunk := self._queue.get()) is not None:
            if self._error is None:
                try:
                    self._output.write(chunk)
                except BaseException as exc:  # re-raised in the writing thread
                    self._error = exc
        if self._error is None:
            try:
                self.url = self._output.finish()
            except BaseException as exc:
                self._error = exc

    def put(self, chunk: bytes) -> None:
        if self._error is not None:
            raise self._error
        self._digest.update(chunk)
        if self._thread is None:
            self._output.write(chunk)
        else:
            self._queue.put(chunk)

    def end(self) -> None:
        """No more chunks: a threaded sink goes on to finish its output on its own."""
        if self._thread is not None:
            self._queue.put(None)

    def wait(self) -> None:
        """Wait until everything is written (and, threaded, finished); raise any failure."""
        if self._thread is not None:
            self._thread.join()
        if self._error is not None:
            raise self._error

    def cancel(self) -> None:
        """Stop without raising (the shard is being thrown away)."""
        self._error = self._error or RuntimeError("cancelled")
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join()


class LocalShardOutput:
    """Writes to a hidden temporary file beside the final name; ``publish`` renames it."""

    #: Nothing observes the file before ``finish``: the writer may hash and write on a thread.
    threaded_writes = True

    def __init__(self, path: str) -> None:
        self.path = os.path.abspath(path)
        directory, base = os.path.split(self.path)
        os.makedirs(directory, exist_ok=True)
        self.tmp_path = os.path.join(directory, f".{base}.partial-{uuid.uuid4().hex[:12]}")
        self._f = open(self.tmp_path, "wb", buffering=_CHUNK)

    def write(self, data: bytes) -> None:
        self._f.write(data)

    def finish(self) -> str:
        self._f.flush()
        os.fsync(self._f.fileno())
        self._f.close()
        return self.path

    def publish(self) -> None:
        os.replace(self.tmp_path, self.path)

    def abort(self) -> None:
        with contextlib.suppress(OSError):
            self._f.close()
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.tmp_path)


def _as_wds(sample: Any) -> tuple[str, bytes]:
    """Accept samples, ``{"__key__", "msgpack"}`` dicts and ``(key, bytes)`` pairs."""
    if isinstance(sample, tuple):
        return sample[0], sample[1]
    if isinstance(sample, dict):
        return sample.get("__key__") or new_key(), sample["msgpack"]
    return sample.__key__ or new_key(), sample.packed


class ShardWriter:
    """Write samples into shards, rolling over at ``maxcount`` samples or ``maxsize`` bytes.

    ``open_output(index)`` gives where shard ``index`` goes; by default a local path from a
    ``%06d`` pattern. Nothing is visible under final names until ``commit()``; ``abort()`` (or an
    exception inside a ``with`` block) removes everything written so far.
    """

    def __init__(
        self,
        pattern: str | None = None,
        *,
        maxcount: int | None = 10000,
        maxsize: int | None = None,
        manifest: bool = False,
        open_output: Callable[[int], ShardOutput] | None = None,
        on_shard: Callable[[ShardInfo], None] | None = None,
    ) -> None:
        if open_output is None:
            if pattern is None:
                raise ValueError("give a shard pattern such as 'out/data-%06d.tar' or open_output")
            shard_name(pattern, 0)  # validates the placeholder
            open_output = lambda i: LocalShardOutput(shard_name(pattern, i))  # noqa: E731
        if maxcount is not None and maxcount < 1:
            raise ValueError("maxcount must be at least 1")
        if maxsize is not None and maxsize < BLOCK * 3:
            raise ValueError(f"maxsize must be at least {BLOCK * 3} bytes")
        self.open_output = open_output
        self.maxcount = maxcount
        self.maxsize = maxsize
        self.manifest = manifest
        self.on_shard = on_shard
        self.shards: list[ShardInfo] = []
        self._outputs: list[ShardOutput] = []
        self._current: ShardOutput | None = None
        self._hash: Any = None
        self._sink: _Sink | None = None
        self._pieces: list[bytes] = []  # records not yet handed to the sink
        self._pending = 0
        self._count = 0
        self._size = 0
        self._keys: list[str] = []
        self._entries: list[tuple[str, int, int]] = []
        self._manifests: list[tuple[ShardInfo, list[tuple[str, int, int]]]] = []
        #: shards whose last chunk is handed over but that may not be durable yet
        self._finishing: list[tuple[ShardInfo, _Sink, ShardOutput, Any, list[Any]]] = []
        self._closed = False

    # -- context manager: abort on error
    def __enter__(self) -> ShardWriter:
        return self

    def __exit__(self, exc_type: Any, *_: Any) -> None:
        if exc_type is not None:
            self.abort()
        elif not self._closed:
            self.commit()

    @property
    def total_samples(self) -> int:
        return sum(s.samples for s in self.shards) + self._count

    @property
    def total_bytes(self) -> int:
        return sum(s.bytes for s in self.shards) + self._size

    def write(self, sample: Any) -> None:
        key, payload = _as_wds(sample)
        self.write_member(f"{key}.msgpack", payload, key=key)

    def write_member(self, name: str, payload: bytes, *, key: str | None = None) -> None:
        header = tar_header(name, len(payload))
        padding = _PADDING[-len(payload) % BLOCK]
        record_size = len(header) + len(payload) + len(padding)
        if self._current is not None and (
            (self.maxcount is not None and self._count >= self.maxcount)
            or (self.maxsize is not None and self._size + record_size + 2 * BLOCK > self.maxsize)
        ):
            self._finish_shard()
        if self._current is None:
            self._start_shard()
        pieces = self._pieces
        pieces.append(header)
        pieces.append(payload)
        if padding:
            pieces.append(padding)
        self._pending += record_size
        if self._pending >= _WRITE_CHUNK:
            self._hand_over()
        # The manifest offset is that of the member's own ustar header, after any GNU long-name
        # record, so ``member_span`` covers exactly the header and the payload.
        header_offset = self._size + len(header) - BLOCK
        self._entries.append((key or split_key(name)[0], header_offset, len(payload)))
        self._count += 1
        self._size += record_size

    def _hand_over(self) -> None:
        """Give the records gathered so far to the sink, as one chunk."""
        if self._pieces:
            chunk = b"".join(self._pieces)
            self._pieces = []
            self._pending = 0
            self._sink.put(chunk)  # type: ignore[union-attr]

    def write_all(self, samples: Iterable[Any]) -> ShardWriter:
        for sample in samples:
            self.write(sample)
        return self

    def _start_shard(self) -> None:
        self._current = self.open_output(len(self._outputs))
        self._outputs.append(self._current)
        self._hash = hashlib.sha256()
        self._sink = _Sink(self._current, self._hash)
        self._pieces = []
        self._pending = 0
        self._count = 0
        self._size = 0
        self._entries = []

    def _finish_shard(self) -> None:
        assert self._current is not None and self._sink is not None
        tail = bytes(2 * BLOCK)
        self._pieces.append(tail)
        self._size += len(tail)
        self._hand_over()
        sink, self._sink = self._sink, None
        sink.end()
        info = ShardInfo("", self._count, self._size, "")
        info.keys = [k for k, _, _ in self._entries]
        self.shards.append(info)
        self._finishing.append((info, sink, self._current, self._hash, self._entries))
        self._current = None
        # at most one shard still being made durable behind the one being written
        while len(self._finishing) > (_DURABLE_BEHIND if sink.threaded else 0):
            self._settle_oldest()

    def _settle_oldest(self) -> None:
        """Wait for the oldest finishing shard to be durable; fill in its URL and SHA-256."""
        info, sink, output, digest, entries = self._finishing.pop(0)
        sink.wait()
        info.url = sink.url if sink.threaded else output.finish()
        info.sha256 = digest.hexdigest()
        if self.manifest:
            info.manifest_url = manifest_url(info.url)
            self._manifests.append((info, list(entries)))
        if self.on_shard is not None:
            self.on_shard(info)

    def finish(self) -> list[ShardInfo]:
        """Close the last shard; everything is durable but not yet published."""
        if self._current is not None:
            self._finish_shard()
        while self._finishing:
            self._settle_oldest()
        return self.shards

    def commit(self) -> list[ShardInfo]:
        """Finish and make every shard (and manifest) visible under its final name."""
        try:
            self.finish()
            for output in self._outputs:
                publish = getattr(output, "publish", None)
                if publish is not None:
                    publish()
            # an output that stores shards elsewhere (S3) uploads its own manifest sidecar
            by_info = dict(zip(map(id, self.shards), self._outputs, strict=False))
            for info, entries in self._manifests:
                publish_manifest = getattr(by_info.get(id(info)), "publish_manifest", None)
                if publish_manifest is not None:
                    publish_manifest(manifest_document(info, entries))
                else:
                    write_manifest_file(info, entries)
        except BaseException:
            self.abort()
            raise
        self._closed = True
        return self.shards

    def abort(self) -> None:
        """Remove every shard written so far (temporary or published) and forget them."""
        if self._sink is not None:
            sink, self._sink = self._sink, None
            sink.cancel()
        for _info, finishing, *_ in self._finishing:
            finishing.cancel()
        self._finishing = []
        self._pieces = []
        for output in self._outputs:
            with contextlib.suppress(Exception):
                output.abort()
        for info in self.shards:
            if info.url and os.path.isabs(info.url) and os.path.exists(info.url):
                with contextlib.suppress(OSError):
                    os.unlink(info.url)
        self._closed = True


def manifest_url(shard_url: str) -> str:
    """The sidecar manifest of a shard: ``data-000001.tar`` → ``data-000001.manifest.json``."""
    base = shard_url[:-4] if shard_url.endswith(".tar") else shard_url
    return base + ".manifest.json"


def manifest_document(info: ShardInfo, entries: list[tuple[str, int, int]]) -> dict[str, Any]:
    """Keys with the tar byte offset of each sample's header and its payload size."""
    return {
        "format": "atdata-tui/manifest",
        "version": 1,
        "shard": os.path.basename(info.url),
        "sha256": info.sha256,
        "samples": [{"key": k, "offset": off, "size": size} for k, off, size in entries],
    }


def write_manifest_file(info: ShardInfo, entries: list[tuple[str, int, int]]) -> None:
    if info.manifest_url is None or not os.path.isabs(info.manifest_url):
        return
    tmp = info.manifest_url + f".partial-{uuid.uuid4().hex[:8]}"
    with open(tmp, "w") as f:
        json.dump(manifest_document(info, entries), f, separators=(",", ":"))
    os.replace(tmp, info.manifest_url)


def read_manifest(data: bytes | str) -> list[tuple[str, int, int]]:
    """Parse a manifest sidecar into ``(key, offset, size)`` triples."""
    try:
        doc = json.loads(data)
        return [(s["key"], int(s["offset"]), int(s["size"])) for s in doc["samples"]]
    except (ValueError, KeyError, TypeError) as exc:
        raise ShardError(f"manifest is malformed: {exc}") from None


def member_span(offset: int, size: int) -> tuple[int, int]:
    """Byte range (inclusive end) to fetch sample at ``offset``: its header and its payload.

    The padding after the payload is left out (a ranged read costs exactly the sample's bytes);
    the reader accepts a last member without padding unless told to ``require_end``.
    """
    return offset, offset + BLOCK + size - 1


def write_shards(
    samples: Iterable[Any],
    pattern: str,
    *,
    maxcount: int | None = 10000,
    maxsize: int | None = None,
    manifest: bool = False,
) -> list[ShardInfo]:
    """Write samples to local shards named by ``pattern`` (``dir/data-%06d.tar``); all or nothing."""
    writer = ShardWriter(pattern, maxcount=maxcount, maxsize=maxsize, manifest=manifest)
    try:
        writer.write_all(samples)
        if writer.total_samples == 0:
            raise ValueError("no samples to write")
        return writer.commit()
    except BaseException as exc:
        writer.abort()
        if isinstance(exc, (ValueError, KeyboardInterrupt)) or not isinstance(exc, OSError):
            raise
        raise WriteError(f"writing shards to {pattern} failed: {exc}") from exc


def first_n(iterable: Iterable[Any], n: int) -> list[Any]:
    return list(itertools.islice(iterable, n))


def is_tarfile_readable(path: str) -> bool:
    """Cross-check with the standard library (tests use it to prove interoperability)."""
    try:
        with tarfile.open(path) as tf:
            tf.getmembers()
        return True
    except tarfile.TarError:
        return False
