"""Tar shards: the exact bytes we write, interoperability both ways, rollover, manifests, damage."""

from __future__ import annotations

import hashlib
import io
import json
import os
import pathlib
import tarfile
from typing import Any

import numpy as np
import pytest
import webdataset as wds

from atdata_core.errors import (
    CorruptShardError,
    ShardError,
    SourceError,
    TruncatedShardError,
    WriteError,
)
from atdata_core.samples import NDArray, decode_sample, packable
from atdata_core.shards import (
    BLOCK,
    MAX_MEMBER_SIZE,
    ShardWriter,
    expand_braces,
    iter_members,
    iter_raw_samples,
    iter_sample_payloads,
    manifest_url,
    member_span,
    open_local,
    read_manifest,
    shard_name,
    split_key,
    tar_header,
    write_shards,
)

FIXTURES = pathlib.Path(__file__).parent / "fixtures"
KEY = "baefe796-e53b-11f1-8000-000000000000"
VECTOR = bytes.fromhex("033c663402020000000000000002000000000000000000803f000000400000404000008040")


@packable
class Img:
    image: NDArray
    label: str


@packable
class Small:
    text: str
    n: int
    x: float


def small(n: int) -> list[Small]:
    return [Small(f"sample {i}", i, i / 2) for i in range(n)]


# --- the exact bytes, built by hand from FORMATS.md ------------------------------------------------


def ustar_header(name: bytes, size: int) -> bytes:
    """A POSIX ustar header written field by field (independently of atdata_core)."""
    h = bytearray(BLOCK)
    h[0 : len(name)] = name
    h[100:108] = b"0000644\0"  # mode
    h[108:116] = b"0000000\0"  # uid
    h[116:124] = b"0000000\0"  # gid
    h[124:136] = b"%011o\0" % size
    h[136:148] = b"%011o\0" % 0  # mtime
    h[148:156] = b" " * 8  # checksum counts as spaces
    h[156:157] = b"0"  # regular file
    h[257:263] = b"ustar\0"
    h[263:265] = b"00"
    h[148:156] = b"%06o\0 " % sum(h)
    return bytes(h)


def fixture_payload() -> bytes:
    """``{"image": <NDArray test vector>, "label": "cat"}`` as msgpack, byte by byte."""
    return (
        b"\x82"  # fixmap, 2 entries
        + b"\xa5image"
        + b"\xc4"
        + bytes([len(VECTOR)])
        + VECTOR  # bin 8
        + b"\xa5label"
        + b"\xa3cat"
    )


def fixture_shard() -> bytes:
    payload = fixture_payload()
    member = ustar_header(f"{KEY}.msgpack".encode(), len(payload))
    member += payload + bytes(-len(payload) % BLOCK)
    return member + bytes(2 * BLOCK)


def test_hand_built_payload_is_what_we_pack() -> None:
    sample = Img(np.array([[1, 2], [3, 4]], dtype=np.float32), "cat")
    assert sample.packed == fixture_payload()


def test_hand_built_shard_is_read_by_us(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "fixture.tar"
    path.write_bytes(fixture_shard())
    with open_local(path) as buf:
        raws = list(iter_raw_samples(buf, shard=str(path)))
    assert [r.key for r in raws] == [KEY]
    assert raws[0].offset == 0
    sample = decode_sample(Img, raws[0].msgpack, shard=str(path), key=KEY)
    assert sample.label == "cat" and sample.image.tolist() == [[1, 2], [3, 4]]
    assert sample.__key__ == KEY


def test_hand_built_shard_is_read_by_tarfile(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "fixture.tar"
    path.write_bytes(fixture_shard())
    with tarfile.open(path) as tf:
        members = tf.getmembers()
        assert [m.name for m in members] == [f"{KEY}.msgpack"]
        assert members[0].isfile() and members[0].size == len(fixture_payload())
        assert tf.extractfile(members[0]).read() == fixture_payload()  # type: ignore[union-attr]


def test_our_writer_produces_the_hand_built_bytes(tmp_path: pathlib.Path) -> None:
    infos = write_shards(
        [{"__key__": KEY, "msgpack": fixture_payload()}], str(tmp_path / "s-%06d.tar")
    )
    assert pathlib.Path(infos[0].url).read_bytes() == fixture_shard()
    assert infos[0].sha256 == hashlib.sha256(fixture_shard()).hexdigest()
    assert tar_header(f"{KEY}.msgpack", len(fixture_payload())) == fixture_shard()[:BLOCK]


# --- the committed atdata-style fixture (webdataset TarWriter) -------------------------------------


def test_committed_atdata_style_fixture() -> None:
    expected = json.loads((FIXTURES / "expected.json").read_text())
    path = FIXTURES / "atdata_style.tar"

    @packable
    class Scored:
        image: NDArray
        label: str
        score: float

    for source in ("mmap", "stream"):
        if source == "mmap":
            with open_local(path) as buf:
                raws = [(r.key, bytes(r.msgpack)) for r in iter_raw_samples(buf)]  # type: ignore[arg-type]
        else:
            with open(path, "rb") as f:
                raws = [(r.key, bytes(r.msgpack)) for r in iter_raw_samples(f)]  # type: ignore[arg-type]
        assert [k for k, _ in raws] == [e["key"] for e in expected]
        for (key, data), want in zip(raws, expected, strict=True):
            sample = decode_sample(Scored, data, key=key)
            assert sample.image.dtype == np.float32
            assert sample.image.tolist() == want["image"]
            assert (sample.label, sample.score) == (want["label"], want["score"])


# --- interoperability ------------------------------------------------------------------------------


def test_our_shards_are_read_by_tarfile(tmp_path: pathlib.Path) -> None:
    samples = small(30)
    infos = write_shards(samples, str(tmp_path / "s-%06d.tar"), maxcount=10)
    names = []
    for info in infos:
        with tarfile.open(info.url) as tf:
            for member in tf:
                data = tf.extractfile(member).read()  # type: ignore[union-attr]
                names.append(member.name)
                assert Small.from_bytes(data).n == len(names) - 1
    assert len(names) == 30 and all(n.endswith(".msgpack") for n in names)


def test_our_shards_are_read_by_webdataset(tmp_path: pathlib.Path) -> None:
    samples = small(25)
    write_shards(samples, str(tmp_path / "s-%06d.tar"), maxcount=10)
    url = str(tmp_path / "s-{000000..000002}.tar")
    got = [Small.from_bytes(item["msgpack"]).n for item in wds.WebDataset(url, shardshuffle=False)]
    assert got == list(range(25))


def test_webdataset_tarwriter_shards_are_read_by_us(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "wds.tar"
    with wds.TarWriter(str(path)) as writer:
        for sample in small(12):
            writer.write(sample.as_wds)
    with open_local(path) as buf:
        got = [decode_sample(Small, r.msgpack, key=r.key).n for r in iter_raw_samples(buf)]  # type: ignore[arg-type]
    assert got == list(range(12))


def test_webdataset_shardwriter_pattern_shards_are_read_by_us(tmp_path: pathlib.Path) -> None:
    pattern = str(tmp_path / "w-%06d.tar")
    with wds.ShardWriter(pattern, maxcount=5, verbose=0) as writer:
        for sample in small(12):
            writer.write(sample.as_wds)
    files = sorted(p.name for p in tmp_path.iterdir())
    assert files == ["w-000000.tar", "w-000001.tar", "w-000002.tar"]
    got = []
    for url in expand_braces(str(tmp_path / "w-{000000..000002}.tar")):
        with open_local(url) as buf:
            got += [Small.from_bytes(r.msgpack).n for r in iter_raw_samples(buf)]  # type: ignore[arg-type]
    assert got == list(range(12))


def test_multi_part_webdataset_samples_group_by_key(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "parts.tar"
    with wds.TarWriter(str(path)) as writer:
        writer.write({"__key__": "a/x001", "jpg": b"JPEG", "cls": b"3", "json": b"{}"})
        writer.write({"__key__": "a/x002", "jpg": b"JPEG2", "cls": b"4"})
    with open_local(path) as buf:
        raws = list(iter_raw_samples(buf))
    assert [r.key for r in raws] == ["a/x001", "a/x002"]
    assert sorted(raws[0].parts) == ["cls", "jpg", "json"]
    assert bytes(raws[1].parts["cls"]) == b"4"
    assert raws[0].msgpack is None


def test_tarfile_pax_and_gnu_long_names_and_directories(tmp_path: pathlib.Path) -> None:
    long_key = "k" * 150
    for fmt in (tarfile.PAX_FORMAT, tarfile.GNU_FORMAT, tarfile.USTAR_FORMAT):
        path = tmp_path / f"fmt{fmt}.tar"
        with tarfile.open(path, "w", format=fmt) as tf:
            info = tarfile.TarInfo("somedir")
            info.type = tarfile.DIRTYPE
            tf.addfile(info)
            name = f"somedir/{long_key if fmt != tarfile.USTAR_FORMAT else 'short'}.msgpack"
            payload = Small("é", 1, 2.0).packed
            info = tarfile.TarInfo(name)
            info.size = len(payload)
            tf.addfile(info, io.BytesIO(payload))
        with open(path, "rb") as f:
            members = list(iter_members(f))
        assert [m.name for m in members] == [name]
        assert Small.from_bytes(bytes(members[0].data)).text == "é"


def test_ustar_prefix_field(tmp_path: pathlib.Path) -> None:
    name = "p" * 120 + "/sample.msgpack"  # fits ustar only with the prefix field
    path = tmp_path / "prefix.tar"
    with tarfile.open(path, "w", format=tarfile.USTAR_FORMAT) as tf:
        info = tarfile.TarInfo(name)
        info.size = 3
        tf.addfile(info, io.BytesIO(b"abc"))
    with open_local(path) as buf:
        assert [m.name for m in iter_members(buf)] == [name]


def test_signed_checksums_are_accepted() -> None:
    header = bytearray(ustar_header("é.msgpack".encode(), 0))
    header[148:156] = b" " * 8
    signed = sum(b - 256 if b > 127 else b for b in header)
    header[148:156] = b"%06o\0 " % signed
    members = list(iter_members(bytes(header) + bytes(2 * BLOCK)))
    assert [m.name for m in members] == ["é.msgpack"]


# --- writing ---------------------------------------------------------------------------------------


def test_read_then_rewrite_is_byte_identical(tmp_path: pathlib.Path) -> None:
    arrays = [
        Img(np.random.default_rng(i).random((i + 1, 3)).astype(np.float32), f"l{i}")
        for i in range(20)
    ]
    first = write_shards(arrays, str(tmp_path / "a-%06d.tar"), maxcount=7)
    copy = ShardWriter(str(tmp_path / "b-%06d.tar"), maxcount=7)
    for info in first:
        with open_local(info.url) as buf:
            for raw in iter_raw_samples(buf):
                copy.write_member(f"{raw.key}.msgpack", bytes(raw.msgpack), key=raw.key)  # type: ignore[arg-type]
    second = copy.commit()
    assert [i.sha256 for i in first] == [i.sha256 for i in second]
    for a, b in zip(first, second, strict=True):
        assert pathlib.Path(a.url).read_bytes() == pathlib.Path(b.url).read_bytes()


def test_maxcount_rollover(tmp_path: pathlib.Path) -> None:
    infos = write_shards(small(25), str(tmp_path / "s-%06d.tar"), maxcount=10)
    assert [i.samples for i in infos] == [10, 10, 5]
    for info in infos:
        data = pathlib.Path(info.url).read_bytes()
        assert info.bytes == len(data)
        assert info.sha256 == hashlib.sha256(data).hexdigest()
        assert len(info.keys) == info.samples


def test_maxsize_rollover(tmp_path: pathlib.Path) -> None:
    maxsize = 6 * 1024
    infos = write_shards(small(40), str(tmp_path / "s-%06d.tar"), maxcount=None, maxsize=maxsize)
    assert len(infos) > 1
    assert sum(i.samples for i in infos) == 40
    for info in infos:
        assert os.path.getsize(info.url) <= maxsize


def test_percent_pattern_really_expands(tmp_path: pathlib.Path) -> None:
    write_shards(small(5), str(tmp_path / "data-%06d.tar"), maxcount=2)
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "data-000000.tar",
        "data-000001.tar",
        "data-000002.tar",
    ]
    assert shard_name("x/%04d.tar", 12) == "x/0012.tar"
    with pytest.raises(ValueError, match="placeholder"):
        shard_name("data.tar", 0)


def test_nothing_visible_until_commit_and_abort_cleans_up(tmp_path: pathlib.Path) -> None:
    writer = ShardWriter(str(tmp_path / "s-%06d.tar"), maxcount=2, manifest=True)
    writer.write_all(small(5))
    writer.finish()
    assert not any(p.name.startswith("s-") for p in tmp_path.iterdir())
    writer.abort()
    assert list(tmp_path.iterdir()) == []

    with pytest.raises(RuntimeError), ShardWriter(str(tmp_path / "t-%06d.tar")) as w:
        w.write_all(small(3))
        raise RuntimeError("boom")
    assert list(tmp_path.iterdir()) == []


def test_manifests_point_at_each_sample(tmp_path: pathlib.Path) -> None:
    infos = write_shards(small(23), str(tmp_path / "s-%06d.tar"), maxcount=10, manifest=True)
    for info in infos:
        assert info.manifest_url == manifest_url(info.url)
        entries = read_manifest(pathlib.Path(info.manifest_url).read_bytes())
        doc = json.loads(pathlib.Path(info.manifest_url).read_text())
        assert doc["sha256"] == info.sha256 and len(entries) == info.samples
        data = pathlib.Path(info.url).read_bytes()
        for key, offset, size in entries:
            start, end = member_span(offset, size)
            raws = list(iter_raw_samples(data[start : end + 1], start_offset=start))
            assert [r.key for r in raws] == [key]
            assert raws[0].offset == offset
            assert len(raws[0].msgpack) == size  # type: ignore[arg-type]


def test_manifest_offsets_skip_long_name_records(tmp_path: pathlib.Path) -> None:
    writer = ShardWriter(str(tmp_path / "s-%06d.tar"), manifest=True)
    long_key = "x" * 130
    writer.write((long_key, b"\x80"))
    writer.write(("short", b"\x81"))
    (info,) = writer.commit()
    entries = read_manifest(pathlib.Path(info.manifest_url or "").read_bytes())
    data = pathlib.Path(info.url).read_bytes()
    for key, offset, size in entries:
        start, end = member_span(offset, size)
        (raw,) = iter_raw_samples(data[start : end + 1])
        assert bytes(raw.msgpack or b"") in (b"\x80", b"\x81")
        assert key.startswith(raw.key[:90])


def test_manifest_url_and_bad_manifests() -> None:
    assert manifest_url("s3://b/data-000001.tar") == "s3://b/data-000001.manifest.json"
    with pytest.raises(ShardError, match="malformed"):
        read_manifest(b"{not json")
    with pytest.raises(ShardError, match="malformed"):
        read_manifest(json.dumps({"samples": [{"key": "a"}]}))


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("data-{000000..000002}.tar", ["data-000000.tar", "data-000001.tar", "data-000002.tar"]),
        ("{a,b}/x-{1..2}.tar", ["a/x-1.tar", "a/x-2.tar", "b/x-1.tar", "b/x-2.tar"]),
        ("s-{3..1}.tar", ["s-3.tar", "s-2.tar", "s-1.tar"]),
        ("plain.tar", ["plain.tar"]),
        (
            "s3://bucket/{train,val}-{00..01}.tar",
            [
                "s3://bucket/train-00.tar",
                "s3://bucket/train-01.tar",
                "s3://bucket/val-00.tar",
                "s3://bucket/val-01.tar",
            ],
        ),
    ],
)
def test_brace_expansion(url: str, expected: list[str]) -> None:
    assert expand_braces(url) == expected


def test_brace_expansion_matches_braceexpand_for_ranges() -> None:
    braceexpand = pytest.importorskip("braceexpand").braceexpand
    url = "d/{train,test}-{000000..000011}.tar"
    assert expand_braces(url) == list(braceexpand(url))


def test_split_key() -> None:
    assert split_key("a/b.c/key.seg.jpg") == ("a/b.c/key", "seg.jpg")
    assert split_key("noext") == ("noext", "")


# --- reading modes ---------------------------------------------------------------------------------


class Trickle(io.RawIOBase):
    """A stream that hands out a few bytes per read, like a slow network."""

    def __init__(self, data: bytes, step: int) -> None:
        self._data = data
        self._pos = 0
        self._step = step

    def readable(self) -> bool:
        return True

    def read(self, n: int = -1) -> bytes:
        take = self._step if n < 0 else min(n, self._step)
        out = self._data[self._pos : self._pos + take]
        self._pos += len(out)
        return out


@pytest.mark.parametrize("step", [1, 7, 512, 4096, 1 << 20])
def test_streams_of_any_chunking_parse_like_buffers(tmp_path: pathlib.Path, step: int) -> None:
    samples = [Img(np.full((i % 5, 40), i, np.uint8), "x" * i) for i in range(30)]
    (info,) = write_shards(samples, str(tmp_path / "s-%06d.tar"))
    data = pathlib.Path(info.url).read_bytes()
    want = [(m.name, m.offset, bytes(m.data)) for m in iter_members(data)]
    got = [(m.name, m.offset, bytes(m.data)) for m in iter_members(Trickle(data, step))]
    assert got == want and len(want) == 30


def test_bytearray_and_memoryview_sources(tmp_path: pathlib.Path) -> None:
    data = fixture_shard()
    for source in (bytearray(data), memoryview(data), data):
        assert [m.name for m in iter_members(source)] == [f"{KEY}.msgpack"]


def test_open_local_missing_and_empty(tmp_path: pathlib.Path) -> None:
    with pytest.raises(SourceError, match="file not found"), open_local(tmp_path / "nope.tar"):
        pass
    (tmp_path / "empty.tar").write_bytes(b"")
    with open_local(tmp_path / "empty.tar") as buf:
        assert list(iter_members(buf)) == []


def test_a_stream_may_end_without_the_end_blocks() -> None:
    data = fixture_shard()[: -2 * BLOCK]
    assert len(list(iter_members(io.BytesIO(data)))) == 1
    assert len(list(iter_members(data))) == 1


# --- damage ----------------------------------------------------------------------------------------


def _shard_bytes(tmp_path: pathlib.Path, n: int = 3) -> tuple[bytes, list[Any]]:
    (info,) = write_shards(small(n), str(tmp_path / "s-%06d.tar"))
    return pathlib.Path(info.url).read_bytes(), info.keys


def _read_all(data: bytes | io.BytesIO, **kw: Any) -> list[Any]:
    return [(r.key, bytes(r.msgpack or b"")) for r in iter_raw_samples(data, **kw)]  # type: ignore[arg-type]


@pytest.mark.parametrize("as_stream", [False, True])
def test_bad_checksum_is_a_corrupt_shard(tmp_path: pathlib.Path, as_stream: bool) -> None:
    data, _ = _shard_bytes(tmp_path)
    broken = bytearray(data)
    broken[1024 + 5] ^= 0x01  # a byte of the second member's name
    source = io.BytesIO(bytes(broken)) if as_stream else bytes(broken)
    with pytest.raises(CorruptShardError, match="checksum mismatch at byte 1024") as info:
        _read_all(source, shard="shard-7.tar")
    assert "shard-7.tar" in str(info.value) and info.value.shard == "shard-7.tar"
    assert not isinstance(info.value, TruncatedShardError)
    # without verification the damaged name is simply read
    assert len(_read_all(bytes(broken), verify_checksums=False)) == 3


@pytest.mark.parametrize("as_stream", [False, True])
@pytest.mark.parametrize("cut", [1024 + 100, 1024 + 600, 2 * 1024 - 1])
def test_truncated_shards(tmp_path: pathlib.Path, as_stream: bool, cut: int) -> None:
    big = [Small("t" * 900, i, 0.0) for i in range(3)]
    (info,) = write_shards(big, str(tmp_path / "s-%06d.tar"))
    data = pathlib.Path(info.url).read_bytes()[: 2048 + cut]
    source = io.BytesIO(data) if as_stream else data
    with pytest.raises(TruncatedShardError, match="ends inside") as err:
        _read_all(source, shard="cut.tar")
    assert "cut.tar" in str(err.value)


def test_not_a_tar_at_all() -> None:
    with pytest.raises(CorruptShardError, match="checksum"):
        _read_all(b"<html>" + b"x" * 2000, shard="index.html")


def test_bad_size_field(tmp_path: pathlib.Path) -> None:
    header = bytearray(ustar_header(b"k.msgpack", 0))
    header[124:136] = b"0000000009z\0"
    header[148:156] = b" " * 8
    header[148:156] = b"%06o\0 " % sum(header)
    with pytest.raises(CorruptShardError, match="size field"):
        _read_all(bytes(header) + bytes(1024), shard="s.tar")


def test_absurd_size_is_refused(tmp_path: pathlib.Path) -> None:
    header = bytearray(ustar_header(b"k.msgpack", 0))
    header[124:136] = b"\x80" + (MAX_MEMBER_SIZE + 1).to_bytes(11, "big")
    header[148:156] = b" " * 8
    header[148:156] = b"%06o\0 " % sum(header)
    with pytest.raises(CorruptShardError, match="declares size"):
        _read_all(bytes(header) + bytes(1024), shard="s.tar")


@pytest.mark.parametrize("name", [b"/etc/passwd.msgpack", b"a/../../x.msgpack", b"../x.msgpack"])
def test_unsafe_member_names(name: bytes) -> None:
    data = ustar_header(name, 1) + b"\x80" + bytes(511) + bytes(1024)
    with pytest.raises(CorruptShardError, match="unsafe member name"):
        _read_all(data, shard="s.tar")


def test_base256_sizes_are_read() -> None:
    header = bytearray(ustar_header(b"k.bin", 0))
    header[124:136] = b"\x80" + (3).to_bytes(11, "big")
    header[148:156] = b" " * 8
    header[148:156] = b"%06o\0 " % sum(header)
    data = bytes(header) + b"abc" + bytes(509) + bytes(1024)
    (member,) = iter_members(data)
    assert bytes(member.data) == b"abc"


# --- the batched reader ----------------------------------------------------------------------------


def _retarred(data: bytes, checksum: Any) -> bytes:
    """Every header of ``data`` rewritten with ``checksum(header_with_spaces) -> 8 bytes``."""
    out = bytearray(data)
    for member in iter_members(data):
        start = member.offset
        header = bytearray(out[start : start + BLOCK])
        header[148:156] = b" " * 8
        header[148:156] = checksum(bytes(header))
        out[start : start + BLOCK] = header
    return bytes(out)


@pytest.mark.parametrize(
    "layout",
    [
        lambda h: b"%07o\0" % sum(h),  # 7 digits, as some writers do
        lambda h: b" %06o\0" % sum(h),  # leading space
        lambda h: b"%06o  " % sum(h),  # space-terminated
    ],
)
def test_other_checksum_layouts_in_long_runs(tmp_path: pathlib.Path, layout: Any) -> None:
    """Batches of 16+ headers are checked with numpy; other layouts fall back per header."""
    (info,) = write_shards(small(300), str(tmp_path / "s-%06d.tar"))
    data = _retarred(pathlib.Path(info.url).read_bytes(), layout)
    assert [r.key for r in iter_raw_samples(data)] == info.keys
    broken = bytearray(data)
    broken[1024 * 200 + 3] ^= 0x20
    with pytest.raises(CorruptShardError, match=f"at byte {1024 * 200}"):
        _read_all(bytes(broken))


def test_members_before_a_bad_header_in_a_batch_are_yielded(tmp_path: pathlib.Path) -> None:
    (info,) = write_shards(small(300), str(tmp_path / "s-%06d.tar"))
    broken = bytearray(pathlib.Path(info.url).read_bytes())
    broken[1024 * 250 + 3] ^= 0x20
    got = []
    with pytest.raises(CorruptShardError):
        for raw in iter_raw_samples(bytes(broken)):
            got.append(raw.key)
    assert got == info.keys[:250]


def test_garbage_size_behind_a_bad_checksum_is_reported_as_the_checksum(
    tmp_path: pathlib.Path,
) -> None:
    data, _ = _shard_bytes(tmp_path, 3)
    broken = bytearray(data)
    broken[1024 + 124 : 1024 + 136] = b"77777777777\0"  # a huge size, checksum not updated
    with pytest.raises(CorruptShardError, match="checksum mismatch at byte 1024"):
        _read_all(bytes(broken))


def test_sample_payloads(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "mixed.tar"
    with wds.TarWriter(str(path)) as writer:
        writer.write({"__key__": "a", "msgpack": b"\x80", "jpg": b"J"})
        writer.write({"__key__": "b", "jpg": b"J"})
        writer.write({"__key__": "c", "cls": b"1", "msgpack": b"\x81"})
    with open_local(path) as buf:
        got = [(k, None if d is None else bytes(d)) for k, _o, d in iter_sample_payloads(buf)]
    assert got == [("a", b"\x80"), ("b", None), ("c", b"\x81")]


def test_mapped_pages_are_released_while_reading(
    tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import atdata_core.shards as shards_mod

    monkeypatch.setattr(shards_mod, "_RELEASE_EVERY", 64 << 10)
    samples = [Img(np.full((64, 64), i, np.float32), str(i)) for i in range(40)]
    (info,) = write_shards(samples, str(tmp_path / "s-%06d.tar"))
    with open_local(info.url) as buf:
        raws = list(iter_raw_samples(buf))
    # the views into released pages still read the right bytes (they fault back in)
    assert [decode_sample(Img, r.msgpack).image[0, 0] for r in raws] == list(range(40))  # type: ignore[arg-type]


# --- the writer's fast paths -----------------------------------------------------------------------


@pytest.mark.parametrize("name", ["k.msgpack", "é" * 30 + ".msgpack", "x" * 100, "a/b/c.jpg"])
@pytest.mark.parametrize("size", [0, 1, 511, 512, 8**11 - 1])
def test_fast_headers_equal_the_field_by_field_ones(name: str, size: int) -> None:
    assert tar_header(name, size) == ustar_header(name.encode(), size)


def test_new_keys_are_uuid1_like_atdata() -> None:
    import time
    import uuid

    from atdata_core.samples import new_key

    keys = [new_key() for _ in range(2000)]
    assert len(set(keys)) == 2000
    parsed = [uuid.UUID(k) for k in keys]
    assert all(u.version == 1 and u.node == 0 and u.clock_seq == 0 for u in parsed)
    assert [u.time for u in parsed] == sorted(u.time for u in parsed)
    assert abs((parsed[0].time - 0x01B21DD213814000) / 1e7 - time.time()) < 5
    assert keys[0][14] == "1" and keys[0].endswith("-8000-000000000000")


class _Recording:
    """A ShardOutput that keeps chunks in memory and can fail on demand."""

    def __init__(self, fail_after: int | None = None) -> None:
        self.chunks: list[bytes] = []
        self.fail_after = fail_after
        self.state = "open"

    def write(self, data: bytes) -> None:
        if self.fail_after is not None and len(self.chunks) >= self.fail_after:
            raise OSError(28, "No space left on device")
        self.chunks.append(bytes(data))

    def finish(self) -> str:
        self.state = "finished"
        return f"mem://{id(self)}"

    def abort(self) -> None:
        self.state = "aborted"


def test_custom_outputs_get_the_exact_shard_bytes() -> None:
    outputs: list[_Recording] = []

    def open_output(i: int) -> _Recording:
        outputs.append(_Recording())
        return outputs[-1]

    samples = [Img(np.full((300, 300), i, np.uint8), str(i)) for i in range(30)]  # ~90 KB each
    with ShardWriter(open_output=open_output, maxcount=20) as writer:
        writer.write_all(samples)
    infos = writer.shards
    assert [o.state for o in outputs] == ["finished", "finished"]
    assert 1 < len(outputs[0].chunks) < 20  # handed over in chunks, not record by record
    for info, output in zip(infos, outputs, strict=True):
        data = b"".join(output.chunks)
        assert hashlib.sha256(data).hexdigest() == info.sha256 and len(data) == info.bytes
        assert [r.key for r in iter_raw_samples(data, require_end=True)] == info.keys


def test_a_failing_output_fails_the_write_and_aborts() -> None:
    outputs: list[_Recording] = []

    def open_output(i: int) -> _Recording:
        outputs.append(_Recording(fail_after=1))
        return outputs[-1]

    samples = [Img(np.zeros((300, 300), np.uint8), str(i)) for i in range(40)]
    with pytest.raises(OSError, match="No space left"), ShardWriter(open_output=open_output) as w:
        w.write_all(samples)
    assert outputs[0].state == "aborted"


def test_local_write_errors_surface_from_the_writer_thread(
    tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from atdata_core.shards import LocalShardOutput

    real_write = LocalShardOutput.write
    calls: list[int] = []

    def failing(self: LocalShardOutput, data: bytes) -> None:
        calls.append(len(data))
        if len(calls) > 2:
            raise OSError(28, "No space left on device")
        real_write(self, data)

    monkeypatch.setattr(LocalShardOutput, "write", failing)
    samples = [Img(np.zeros((300, 300), np.uint8), str(i)) for i in range(40)]
    with pytest.raises(WriteError, match="No space left"):
        write_shards(samples, str(tmp_path / "s-%06d.tar"))
    assert list(tmp_path.iterdir()) == []  # the partial file is gone


def test_every_shard_is_durable_before_any_is_published(
    tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """fsync of shard N overlaps writing shard N+1, but no rename comes before the last fsync."""
    events: list[str] = []
    real_fsync, real_replace = os.fsync, os.replace
    monkeypatch.setattr(os, "fsync", lambda fd: (events.append("fsync"), real_fsync(fd))[1])
    monkeypatch.setattr(
        os, "replace", lambda a, b: (events.append("replace"), real_replace(a, b))[1]
    )
    samples = [Img(np.full((64, 64), i, np.uint8), str(i)) for i in range(50)]
    infos = write_shards(samples, str(tmp_path / "s-%06d.tar"), maxcount=10)
    assert len(infos) == 5 and events == ["fsync"] * 5 + ["replace"] * 5
    for info in infos:  # the digests filled in after the background finish are the files'
        assert hashlib.sha256(pathlib.Path(info.url).read_bytes()).hexdigest() == info.sha256


def test_a_failed_fsync_behind_the_next_shard_fails_the_write_and_leaves_nothing(
    tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_fsync = os.fsync
    calls: list[int] = []

    def failing(fd: int) -> None:
        calls.append(fd)
        if len(calls) == 2:
            raise OSError(5, "Input/output error")
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", failing)
    samples = [Img(np.full((64, 64), i, np.uint8), str(i)) for i in range(50)]
    with pytest.raises((OSError, WriteError), match="Input/output error"):
        write_shards(samples, str(tmp_path / "s-%06d.tar"), maxcount=10)
    assert list(tmp_path.iterdir()) == []
