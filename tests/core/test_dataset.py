"""Datasets and data sources: iteration, batches, shuffling, workers, random access, bad data, HTTP."""

from __future__ import annotations

import abc
import contextlib
import gzip
import http.server
import pathlib
import pickle
import socket
import sys
import threading
import time
import types
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import msgpack
import numpy as np
import pytest

from atdata_core import dataset as dataset_mod
from atdata_core import sources as sources_mod
from atdata_core.dataset import (
    Dataset,
    DatasetDict,
    SampleBatch,
    SkippedSampleWarning,
    split_shards,
    worker_context,
)
from atdata_core.errors import (
    AtdataError,
    CorruptShardError,
    FieldTypeError,
    MissingFieldError,
    NDArrayError,
    NotMsgpackError,
    SampleError,
    ShardError,
    SourceError,
    TruncatedShardError,
)
from atdata_core.samples import DictSample, NDArray, packable
from atdata_core.shards import ShardWriter, manifest_url, write_shards
from atdata_core.sources import (
    MultiSource,
    URLSource,
    check_untrusted_url,
    display_url,
    register_lazy_source,
    register_source,
    source_for_urls,
)


@packable
class Img:
    image: NDArray
    label: str
    n: int


@packable
class Label:
    label: str


def img(i: int, shape: tuple[int, ...] = (4, 3)) -> Img:
    return Img(np.full(shape, i, dtype=np.float32), f"label-{i}", i)


def write(
    tmp_path: pathlib.Path,
    n: int = 25,
    *,
    maxcount: int = 10,
    manifest: bool = False,
    prefix: str = "data",
    make: Any = img,
) -> str:
    """Write ``n`` samples; return the brace URL of the shards."""
    infos = write_shards(
        (make(i) for i in range(n)),
        str(tmp_path / f"{prefix}-%06d.tar"),
        maxcount=maxcount,
        manifest=manifest,
    )
    return str(tmp_path / f"{prefix}-{{000000..{len(infos) - 1:06d}}}.tar")


# --- basics ----------------------------------------------------------------------------------------


def test_typed_dataset_by_subscript(tmp_path: pathlib.Path) -> None:
    url = write(tmp_path)
    ds = Dataset[Img](url)
    assert ds.sample_type is Img and isinstance(ds, Dataset)
    assert Dataset[Img] is Dataset[Img]
    assert len(ds.shard_list) == 3
    samples = list(ds)
    assert [s.n for s in samples] == list(range(25))
    assert samples[3].image.shape == (4, 3) and samples[3].__key__
    assert [s.n for s in ds.ordered()] == list(range(25))
    assert "Dataset[Img]" in repr(ds) and "3 shards" in repr(ds)


def test_untyped_dataset_yields_dict_samples(tmp_path: pathlib.Path) -> None:
    ds = Dataset(write(tmp_path, 5))
    first = ds.head(1)[0]
    assert isinstance(first, DictSample)
    assert first.label == "label-0" and first.image.shape == (4, 3)
    assert Dataset(write(tmp_path, 5, prefix="b"), Img).sample_type is Img


def test_head_and_raw(tmp_path: pathlib.Path) -> None:
    ds = Dataset[Img](write(tmp_path))
    assert [s.n for s in ds.head(12)] == list(range(12))
    raws = list(ds.raw())
    assert len(raws) == 25 and raws[0].shard == ds.shard_list[0]
    assert raws[0].offset == 0 and raws[1].offset > 0
    assert len(list(ds.raw(shard=2))) == 5
    assert Img.from_bytes(bytes(raws[11].msgpack)).n == 11  # type: ignore[arg-type]


def test_bad_arguments(tmp_path: pathlib.Path) -> None:
    url = write(tmp_path, 3)
    with pytest.raises(TypeError, match="packable"):
        Dataset(url, int)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="on_error"):
        Dataset(url, on_error="ignore")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="DataSource"):
        Dataset(42)  # type: ignore[arg-type]


def test_a_data_source_object_is_accepted(tmp_path: pathlib.Path) -> None:
    url = write(tmp_path, 5)
    ds = Dataset[Img](URLSource(url))
    assert len(list(ds)) == 5


def test_dataset_pickles_for_spawned_workers(tmp_path: pathlib.Path) -> None:
    ds = Dataset[Img](write(tmp_path, 5)).as_type(Label)
    again = pickle.loads(pickle.dumps(ds))
    assert again.sample_type is Label
    assert [s.label for s in again] == [f"label-{i}" for i in range(5)]


def test_dataset_dict(tmp_path: pathlib.Path) -> None:
    splits = DatasetDict(
        train=Dataset[Img](write(tmp_path, 4, prefix="train")),
        test=Dataset[Img](write(tmp_path, 2, prefix="test")),
    )
    assert splits.sample_type is Img
    assert len(list(splits["test"])) == 2
    assert "train" in repr(splits)


# --- batches ---------------------------------------------------------------------------------------


def test_batches_stack_arrays_and_list_the_rest(tmp_path: pathlib.Path) -> None:
    ds = Dataset[Img](write(tmp_path))
    batches = list(ds.ordered(batch_size=4))
    assert [len(b) for b in batches] == [4, 4, 4, 4, 4, 4, 1]
    first = batches[0]
    assert isinstance(first, SampleBatch)
    assert first.image.shape == (4, 4, 3) and first.image.dtype == np.float32
    assert first.label == ["label-0", "label-1", "label-2", "label-3"]
    assert first.n == [0, 1, 2, 3]
    assert first["label"] is first.label  # cached column
    assert first[2].n == 2 and [s.n for s in first] == [0, 1, 2, 3]
    assert len(first.keys) == 4 and first.fields == ["image", "label", "n"]
    assert [len(b) for b in ds.ordered(batch_size=4, drop_last=True)] == [4] * 6
    with pytest.raises(AttributeError):
        _ = first.nope


def test_dict_sample_batches(tmp_path: pathlib.Path) -> None:
    batch = next(iter(Dataset(write(tmp_path, 6)).ordered(batch_size=3)))
    assert batch.image.shape == (3, 4, 3)
    assert batch.label == ["label-0", "label-1", "label-2"]


def test_arrays_of_different_shapes_cannot_be_stacked(tmp_path: pathlib.Path) -> None:
    url = write(tmp_path, 4, make=lambda i: img(i, (i + 1, 2)))
    batch = next(iter(Dataset[Img](url).ordered(batch_size=4)))
    with pytest.raises(FieldTypeError, match="different shapes"):
        _ = batch.image
    assert [s.image.shape for s in batch.samples][-1] == (4, 2)


def test_zero_batch_size_is_refused(tmp_path: pathlib.Path) -> None:
    with pytest.raises(ValueError, match="batch_size"):
        list(Dataset[Img](write(tmp_path, 2)).ordered(batch_size=0))


# --- shuffling -------------------------------------------------------------------------------------


def test_shuffle_is_deterministic_with_a_seed(tmp_path: pathlib.Path) -> None:
    ds = Dataset[Img](write(tmp_path, 60))
    a = [s.n for s in ds.shuffled(buffer=16, seed=7)]
    b = [s.n for s in ds.shuffled(buffer=16, seed=7)]
    c = [s.n for s in ds.shuffled(buffer=16, seed=8)]
    assert a == b
    assert a != c
    assert sorted(a) == list(range(60))
    assert a != list(range(60))


def test_shuffle_changes_per_epoch_but_is_reproducible(tmp_path: pathlib.Path) -> None:
    ds = Dataset[Img](write(tmp_path, 40))
    stream = ds.shuffled(buffer=8, seed=3)
    epoch0 = [s.n for s in stream]
    epoch1 = [s.n for s in stream]
    assert epoch0 != epoch1
    stream.set_epoch(1)
    assert [s.n for s in stream] == epoch1
    again = ds.shuffled(buffer=8, seed=3)
    assert [s.n for s in again] == epoch0


def test_shuffle_with_buffer_one_only_shuffles_shards(tmp_path: pathlib.Path) -> None:
    ds = Dataset[Img](write(tmp_path, 30, maxcount=5))
    order = [s.n for s in ds.shuffled(buffer=1, seed=0)]
    runs = [order[i : i + 5] for i in range(0, 30, 5)]
    assert all(run == list(range(run[0], run[0] + 5)) for run in runs)
    assert [run[0] for run in runs] != [0, 5, 10, 15, 20, 25]


def test_shuffled_batches(tmp_path: pathlib.Path) -> None:
    ds = Dataset[Img](write(tmp_path, 20))
    batches = list(ds.shuffled(buffer=5, seed=1, batch_size=8))
    assert [len(b) for b in batches] == [8, 8, 4]
    assert batches[0].image.shape == (8, 4, 3)
    assert sorted(n for b in batches for n in b.n) == list(range(20))


def test_unseeded_shuffle_draws_a_seed_once(tmp_path: pathlib.Path) -> None:
    ds = Dataset[Img](write(tmp_path, 20))
    stream = ds.shuffled(buffer=4)
    assert isinstance(stream.seed, int)
    copy = pickle.loads(pickle.dumps(stream))  # what a worker receives
    assert [s.n for s in copy] == [s.n for s in stream]


# --- workers and ranks -----------------------------------------------------------------------------


def test_split_shards_partitions() -> None:
    shards = [f"s{i}" for i in range(10)]
    parts = [split_shards(shards, w, 3, r, 2) for r in range(2) for w in range(3)]
    assert sorted(s for p in parts for s in p) == sorted(shards)
    assert sum(len(p) for p in parts) == 10
    assert split_shards(shards, 0, 1) == shards
    assert split_shards(shards, 1, 2) == ["s1", "s3", "s5", "s7", "s9"]
    assert split_shards(shards, 0, 1, rank=1, world_size=2) == ["s1", "s3", "s5", "s7", "s9"]
    for bad in [(0, 0, 0, 1), (3, 3, 0, 1), (0, 1, 2, 2), (0, 1, 0, 0)]:
        with pytest.raises(ValueError):
            split_shards(shards, *bad)


@dataclass
class _WorkerInfo:
    id: int
    num_workers: int


@dataclass
class FakeTorch:
    """Just enough of ``torch`` in ``sys.modules`` to look like a DataLoader worker."""

    worker: _WorkerInfo | None = None
    rank: int = 0
    world_size: int = 1
    modules: dict[str, types.ModuleType] = field(default_factory=dict)

    def install(self, monkeypatch: pytest.MonkeyPatch) -> type:
        torch = types.ModuleType("torch")
        utils = types.ModuleType("torch.utils")
        data = types.ModuleType("torch.utils.data")
        dist = types.ModuleType("torch.distributed")

        class IterableDataset(abc.ABC):  # noqa: B024 - like torch's, an ABC with no methods
            pass

        data.IterableDataset = IterableDataset  # type: ignore[attr-defined]
        data.get_worker_info = lambda: self.worker  # type: ignore[attr-defined]
        dist.is_available = lambda: True  # type: ignore[attr-defined]
        dist.is_initialized = lambda: self.world_size > 1  # type: ignore[attr-defined]
        dist.get_rank = lambda: self.rank  # type: ignore[attr-defined]
        dist.get_world_size = lambda: self.world_size  # type: ignore[attr-defined]
        torch.utils = utils  # type: ignore[attr-defined]
        utils.data = data  # type: ignore[attr-defined]
        for name, mod in {
            "torch": torch,
            "torch.utils": utils,
            "torch.utils.data": data,
            "torch.distributed": dist,
        }.items():
            monkeypatch.setitem(sys.modules, name, mod)
        monkeypatch.setattr(dataset_mod, "_torch_registered", False)
        return IterableDataset


def test_no_torch_means_one_reader() -> None:
    if "torch" in sys.modules:
        pytest.skip("torch is loaded in this process")
    assert worker_context() == (0, 1, 0, 1)


def test_workers_read_disjoint_shards(
    tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = write(tmp_path, 40, maxcount=5)  # 8 shards
    fake = FakeTorch()
    fake.install(monkeypatch)
    ds = Dataset[Img](url)
    seen: list[int] = []
    for rank in range(2):
        for worker in range(2):
            fake.worker, fake.rank, fake.world_size = _WorkerInfo(worker, 2), rank, 2
            assert worker_context() == (worker, 2, rank, 2)
            mine = [s.n for s in ds]
            assert len(mine) == 10
            seen += mine
            shuffled = [s.n for s in ds.shuffled(buffer=3, seed=5)]
            assert len(shuffled) == 10
    assert sorted(seen) == list(range(40))


def test_shuffled_workers_agree_on_the_shard_order(
    tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = write(tmp_path, 40, maxcount=5)
    fake = FakeTorch()
    fake.install(monkeypatch)
    stream = Dataset[Img](url).shuffled(buffer=4)  # no seed: drawn once, shared by workers
    seen = []
    for worker in range(4):
        fake.worker = _WorkerInfo(worker, 4)
        stream.set_epoch(0)
        seen += [s.n for s in stream]
    assert sorted(seen) == list(range(40))


def test_a_worker_without_shards_is_warned(
    tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = write(tmp_path, 4, maxcount=2)  # 2 shards
    fake = FakeTorch(worker=_WorkerInfo(2, 3))
    fake.install(monkeypatch)
    with pytest.warns(SkippedSampleWarning, match="gets no shard"):
        assert list(Dataset[Img](url)) == []


def test_registered_as_torch_iterable_dataset(
    tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    iterable_dataset = FakeTorch().install(monkeypatch)
    ds = Dataset[Img](write(tmp_path, 2))
    assert isinstance(ds, iterable_dataset)
    assert isinstance(ds.shuffled(seed=1), iterable_dataset)


# --- lenses through datasets -----------------------------------------------------------------------


def test_as_type_structural_and_from_dict(tmp_path: pathlib.Path) -> None:
    url = write(tmp_path, 5)
    labels = Dataset[Img](url).as_type(Label)
    assert labels.sample_type is Label
    got = list(labels)
    assert [s.label for s in got] == [f"label-{i}" for i in range(5)]
    assert got[0].__key__ is not None
    typed = Dataset(url).as_type(Img)
    assert typed._decode_type is Img  # decoded straight into the view, no DictSample detour
    assert [s.n for s in typed] == list(range(5))
    assert Dataset[Img](url).as_type(Img).sample_type is Img
    back = list(Dataset[Img](url).as_type(DictSample))
    assert back[0].label == "label-0"


def test_as_type_without_a_lens(tmp_path: pathlib.Path) -> None:
    @packable
    class Other:
        something: str

    from atdata_core.errors import LensError

    with pytest.raises(LensError, match="no lens from Img to Other"):
        Dataset[Img](write(tmp_path, 1)).as_type(Other)


# --- random access ---------------------------------------------------------------------------------


class CountingSource:
    """A DataSource wrapper that records every call (to prove one ranged read per sample)."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.calls: list[tuple[str, Any]] = []

    @property
    def shards(self) -> list[str]:
        return self.inner.shards

    def list_shards(self) -> list[str]:
        return self.inner.list_shards()

    @contextlib.contextmanager
    def open_shard(self, shard_id: str) -> Iterator[Any]:
        self.calls.append(("open_shard", shard_id))
        with self.inner.open_shard(shard_id) as stream:
            yield stream

    def read_range(self, shard_id: str, start: int, end: int) -> bytes:
        self.calls.append(("read_range", (shard_id, start, end)))
        return self.inner.read_range(shard_id, start, end)

    def read_bytes(self, url: str) -> bytes | None:
        self.calls.append(("read_bytes", url))
        return self.inner.read_bytes(url)


def test_sample_with_a_manifest_is_one_ranged_read(tmp_path: pathlib.Path) -> None:
    source = CountingSource(URLSource(write(tmp_path, 25, manifest=True)))
    ds = Dataset[Img](source)
    assert ds.sample(1, 3).n == 13
    assert ds.sample(2, 4).n == 24
    assert ds.sample(ds.shard_list[0], 0).n == 0
    kinds = [kind for kind, _ in source.calls]
    assert kinds.count("read_range") == 3 and "open_shard" not in kinds
    assert kinds.count("read_bytes") == 3  # one manifest per shard, then cached
    _, (_, start, end) = source.calls[1]
    assert end - start + 1 < 1024  # header + this sample's bytes only
    assert ds.sample(1, 3).__key__ == list(ds.raw(1))[3].key
    with pytest.raises(IndexError, match="has 5 samples"):
        ds.sample(2, 5)
    with pytest.raises(IndexError):
        ds.sample(7, 0)


def test_sample_without_a_manifest_streams(tmp_path: pathlib.Path) -> None:
    source = CountingSource(URLSource(write(tmp_path, 25)))
    ds = Dataset[Img](source)
    assert ds.sample(1, 9).n == 19
    kinds = [kind for kind, _ in source.calls]
    assert kinds == ["read_bytes", "open_shard"]
    with pytest.raises(IndexError, match="fewer than 11"):
        ds.sample(1, 10)


def test_sample_with_long_keys_through_the_manifest(tmp_path: pathlib.Path) -> None:
    writer = ShardWriter(str(tmp_path / "s-%06d.tar"), manifest=True)
    keys = [f"{'k' * 120}-{i}" for i in range(3)]
    for i, key in enumerate(keys):
        sample = img(i)
        sample.__key__ = key
        writer.write(sample)
    (info,) = writer.commit()
    ds = Dataset[Img](info.url)
    assert [s.__key__ for s in ds] == keys
    assert ds.sample(0, 2).__key__ == keys[2] and ds.sample(0, 2).n == 2


def test_stale_manifest_is_detected(tmp_path: pathlib.Path) -> None:
    url = write(tmp_path, 5, manifest=True, maxcount=5)
    shard = Dataset(url).shard_list[0]
    other = write_shards([img(9)], str(tmp_path / "x-%06d.tar"))
    pathlib.Path(shard).write_bytes(pathlib.Path(other[0].url).read_bytes())
    with pytest.raises(ShardError):
        Dataset[Img](url).sample(0, 1)


def test_malformed_manifest_falls_back_to_streaming(tmp_path: pathlib.Path) -> None:
    url = write(tmp_path, 5, manifest=True, maxcount=5)
    shard = Dataset(url).shard_list[0]
    pathlib.Path(manifest_url(shard)).write_text("{oops")
    with pytest.warns(SkippedSampleWarning, match="ignoring the manifest"):
        assert Dataset[Img](url).sample(0, 4).n == 4


# --- bad data --------------------------------------------------------------------------------------


def _bad_shard(tmp_path: pathlib.Path, bad: dict[str, bytes]) -> tuple[str, list[str]]:
    """A shard with good samples around the given bad members (key → msgpack member bytes)."""
    writer = ShardWriter(str(tmp_path / "bad-%06d.tar"))
    order = []
    for i, (key, payload) in enumerate(bad.items()):
        good = img(i)
        good.__key__ = f"good-{i}"
        writer.write(good)
        writer.write((key, payload))
        order += [f"good-{i}", key]
    (info,) = writer.commit()
    return info.url, order


def _blob(dtype: bytes, shape: list[int], payload: bytes) -> bytes:
    import struct

    return (
        bytes([len(dtype)])
        + dtype
        + bytes([len(shape)])
        + struct.pack(f"<{len(shape)}q", *shape)
        + payload
    )


def _sample_map(**fields: Any) -> bytes:
    base = {"image": _blob(b"<f4", [1], b"\0" * 4), "label": "x", "n": 1}
    base.update(fields)
    return msgpack.packb({k: v for k, v in base.items() if v is not _MISSING}, use_bin_type=True)


_MISSING = object()

BAD_SAMPLES: dict[str, tuple[bytes, type[SampleError], str]] = {
    "not-msgpack": (b"\xc1\xc1 definitely not msgpack", NotMsgpackError, "msgpack"),
    "not-a-map": (msgpack.packb([1, 2, 3]), NotMsgpackError, "not a map"),
    "missing-field": (_sample_map(label=_MISSING), MissingFieldError, "'label'"),
    "wrong-type": (_sample_map(n="seven"), FieldTypeError, "should be int"),
    "bad-dtype": (_sample_map(image=_blob(b"zz9", [1], b"\0")), NDArrayError, "dtype"),
    "negative-dim": (_sample_map(image=_blob(b"<f4", [-2], b"")), NDArrayError, "negative"),
    "absurd-shape": (
        _sample_map(image=_blob(b"<f4", [1 << 31, 1 << 31, 1 << 31], b"")),
        NDArrayError,
        "needs",
    ),
    "wrong-length": (_sample_map(image=_blob(b"<f4", [3], b"\0" * 8)), NDArrayError, "needs 12"),
    "object-dtype": (_sample_map(image=_blob(b"|O", [1], b"\0" * 8)), NDArrayError, "object"),
}


@pytest.mark.parametrize("case", sorted(BAD_SAMPLES))
def test_bad_samples_raise_their_error_with_shard_and_key(
    tmp_path: pathlib.Path, case: str
) -> None:
    payload, error, message = BAD_SAMPLES[case]
    url, _ = _bad_shard(tmp_path, {f"bad-{case}": payload})
    with pytest.raises(error, match=message) as info:
        list(Dataset[Img](url))
    assert info.value.shard == url and info.value.key == f"bad-{case}"
    assert url in str(info.value) and f"bad-{case}" in str(info.value)


def test_skip_warns_about_every_bad_sample_and_keeps_the_good(tmp_path: pathlib.Path) -> None:
    bad = {f"bad-{case}": payload for case, (payload, _, _) in BAD_SAMPLES.items()}
    url, order = _bad_shard(tmp_path, bad)
    with pytest.warns(SkippedSampleWarning) as record:
        got = list(Dataset[Img](url, on_error="skip"))
    assert [s.__key__ for s in got] == [k for k in order if k.startswith("good")]
    # Only ours: a garbage-collected socket of another test may add a ResourceWarning here.
    messages = [str(w.message) for w in record if issubclass(w.category, SkippedSampleWarning)]
    assert len(messages) == len(BAD_SAMPLES)
    for (case, (_, _, problem)), text in zip(BAD_SAMPLES.items(), messages, strict=True):
        assert f"bad-{case}" in text and url in text and problem.strip("'") in text


def test_a_member_that_is_not_a_sample(tmp_path: pathlib.Path) -> None:
    writer = ShardWriter(str(tmp_path / "s-%06d.tar"))
    writer.write_member("k1.jpg", b"JPEG", key="k1")
    (info,) = writer.commit()
    with pytest.raises(NotMsgpackError, match=r"sample k1: no \.msgpack member"):
        list(Dataset(info.url))


def _corrupt(tmp_path: pathlib.Path) -> tuple[str, str]:
    url = write(tmp_path, 20, maxcount=10)
    first = Dataset(url).shard_list[0]
    data = bytearray(pathlib.Path(first).read_bytes())
    data[1024 * 5 + 10] ^= 0xFF  # the 6th member's header
    pathlib.Path(first).write_bytes(bytes(data))
    return url, first


def test_corrupt_shard_raises(tmp_path: pathlib.Path) -> None:
    url, first = _corrupt(tmp_path)
    with pytest.raises(CorruptShardError, match="checksum") as info:
        list(Dataset[Img](url))
    assert first in str(info.value)


def test_corrupt_shard_is_skipped_with_a_warning(tmp_path: pathlib.Path) -> None:
    url, first = _corrupt(tmp_path)
    with pytest.warns(SkippedSampleWarning, match="rest of shard") as record:
        got = [s.n for s in Dataset[Img](url, on_error="skip")]
    assert got == list(range(5)) + list(range(10, 20))
    assert first in str(record[0].message)


def test_truncated_shard(tmp_path: pathlib.Path) -> None:
    url = write(tmp_path, 20, maxcount=10)
    last = Dataset(url).shard_list[-1]
    data = pathlib.Path(last).read_bytes()
    pathlib.Path(last).write_bytes(data[: len(data) // 2 + 100])
    with pytest.raises(TruncatedShardError) as info:
        list(Dataset[Img](url))
    assert last in str(info.value)
    with pytest.warns(SkippedSampleWarning, match="ends inside"):
        got = list(Dataset[Img](url, on_error="skip"))
    assert 10 < len(got) < 20


def test_missing_shard(tmp_path: pathlib.Path) -> None:
    url = write(tmp_path, 20, maxcount=10)
    pathlib.Path(Dataset(url).shard_list[0]).unlink()
    with pytest.raises(SourceError, match="file not found"):
        list(Dataset[Img](url))
    with pytest.warns(SkippedSampleWarning, match="file not found"):
        assert len(list(Dataset[Img](url, on_error="skip"))) == 10


def test_checksum_verification_can_be_turned_off(tmp_path: pathlib.Path) -> None:
    url = write(tmp_path, 10, maxcount=10)
    shard = Dataset(url).shard_list[0]
    data = bytearray(pathlib.Path(shard).read_bytes())
    data[1024 * 2 + 300] ^= 0x01  # inside the (unused) linkname field of the 3rd header
    pathlib.Path(shard).write_bytes(bytes(data))
    with pytest.raises(CorruptShardError):
        list(Dataset[Img](url))
    assert len(list(Dataset[Img](url, verify_checksums=False))) == 10


# --- sources ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "https://example.com/a.tar",
        "http://example.com:8080/x/{0..3}.tar",
        "s3://bucket/key.tar",
        "at://did:plc:abc/science.alt.dataset.entry/3k",
    ],
)
def test_untrusted_urls_allowed(url: str) -> None:
    assert check_untrusted_url(url) == url


@pytest.mark.parametrize(
    "url",
    [
        "/etc/passwd",
        "file:///etc/passwd",
        "../data.tar",
        "ftp://example.com/a.tar",
        "gopher://x/",
        "javascript:alert(1)",
        "https://example.com/a b.tar",
        "https://example.com/\n.tar",
        "https:///nohost.tar",
        "",
    ],
)
def test_untrusted_urls_refused(url: str) -> None:
    with pytest.raises(SourceError, match="refusing"):
        check_untrusted_url(url)


def test_display_url_hides_secrets() -> None:
    shown = display_url("https://user:pw@host.example/a.tar?X-Amz-Signature=secret")
    assert "secret" not in shown and "pw" not in shown
    assert shown == "https://user@host.example/a.tar?…"
    assert display_url("/local/path.tar") == "/local/path.tar"


def test_source_for_urls_routes_by_scheme(tmp_path: pathlib.Path) -> None:
    url = write(tmp_path, 3, maxcount=1)
    source = source_for_urls(url)
    assert isinstance(source, URLSource) and len(source.shards) == 3
    assert source.list_shards() == source.shards
    both = source_for_urls([source.shards[0], "https://example.com/x.tar"])
    assert isinstance(both, URLSource)  # one URLSource reads local and HTTP shards alike
    with pytest.raises(SourceError, match="no data source reads nope://"):
        source_for_urls("nope://x/y.tar")
    with pytest.raises(AtdataError, match="no shard URLs"):
        source_for_urls([])


def test_mixed_sources_route_each_shard(
    tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sources_mod, "_REGISTRY", dict(sources_mod._REGISTRY))
    url = write(tmp_path, 6, maxcount=3)
    local = URLSource(url).shards

    class Mirror(URLSource):
        """Serves mirror://N as the N-th local shard."""

        def __init__(self, urls: list[str]) -> None:
            self._urls = list(urls)

        def open_shard(self, shard_id: str) -> Any:
            return URLSource(local).open_shard(local[int(shard_id.split("//")[1])])

    register_source("mirror", Mirror)
    source = source_for_urls([local[0], "mirror://1"])
    assert isinstance(source, MultiSource)
    assert source.shards == [local[0], "mirror://1"]
    assert [s.n for s in Dataset[Img](source)] == list(range(6))


def test_file_urls(tmp_path: pathlib.Path) -> None:
    url = write(tmp_path, 3, maxcount=3)
    path = Dataset(url).shard_list[0]
    ds = Dataset[Img](pathlib.Path(path).as_uri())
    assert [s.n for s in ds] == [0, 1, 2]
    with pytest.raises(SourceError, match="this machine"):
        list(Dataset[Img]("file://otherhost/x.tar"))


def test_gzipped_shards(tmp_path: pathlib.Path) -> None:
    url = write(tmp_path, 4, maxcount=4)
    path = pathlib.Path(Dataset(url).shard_list[0])
    gz = tmp_path / "data.tar.gz"
    gz.write_bytes(gzip.compress(path.read_bytes()))
    assert [s.n for s in Dataset[Img](str(gz))] == [0, 1, 2, 3]
    (tmp_path / "bad.tar.gz").write_bytes(b"\x1f\x8b\x08\x00garbage")
    with pytest.raises(SourceError, match="gzip"):
        list(Dataset[Img](str(tmp_path / "bad.tar.gz")))


def test_local_read_range_and_read_bytes(tmp_path: pathlib.Path) -> None:
    url = write(tmp_path, 3, maxcount=3)
    source = URLSource(url)
    shard = source.shards[0]
    data = pathlib.Path(shard).read_bytes()
    assert source.read_range(shard, 10, 19) == data[10:20]
    assert source.read_range(shard, len(data) - 4, len(data) + 10**9) == data[-4:]
    assert source.read_bytes(str(tmp_path / "absent.json")) is None
    assert source.read_bytes(shard) == data
    with pytest.raises(ValueError):
        source.read_range(shard, 5, 2)


def test_lazy_sources(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sources_mod, "_REGISTRY", dict(sources_mod._REGISTRY))
    register_lazy_source("gone", "atdata_core.stores.no_such_store", "GoneSource", hint="see X")
    with pytest.raises(
        AtdataError, match=r"gone:// URLs need atdata_core.stores.no_such_store.*see X"
    ):
        source_for_urls("gone://b/k.tar")

    made: list[list[str]] = []

    class FakeSource(URLSource):
        def __init__(self, urls: list[str]) -> None:
            made.append(urls)
            self._urls = urls

    module = types.ModuleType("fake_store_for_tests")
    module.FakeSource = FakeSource  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "fake_store_for_tests", module)
    register_lazy_source("fake", "fake_store_for_tests", "FakeSource")
    source = source_for_urls("fake://b/{0..1}.tar")
    assert isinstance(source, FakeSource) and made == [["fake://b/0.tar", "fake://b/1.tar"]]
    assert sources_mod._REGISTRY["fake"] is FakeSource  # resolved once, then direct

    register_source("self", lambda urls: FakeSource(urls))
    assert isinstance(source_for_urls("self://x"), FakeSource)


def test_lazy_source_with_a_missing_dependency(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sources_mod, "_REGISTRY", dict(sources_mod._REGISTRY))
    module = types.ModuleType("needs_dep_for_tests")

    def fail_import(name: str, *args: Any, **kwargs: Any) -> Any:
        if name == "needs_dep_for_tests":
            raise ModuleNotFoundError("No module named 'boto9'", name="boto9")
        return real_import(name, *args, **kwargs)

    import importlib

    real_import = importlib.import_module
    monkeypatch.setattr(importlib, "import_module", fail_import)
    del module
    register_lazy_source("dep", "needs_dep_for_tests", "X", hint="pip install boto9")
    with pytest.raises(AtdataError, match=r"the package 'boto9'.*pip install boto9"):
        source_for_urls("dep://b/k")


def test_s3_is_registered_lazily() -> None:
    assert "s3" in sources_mod._REGISTRY


# --- HTTP ------------------------------------------------------------------------------------------


@dataclass
class Served:
    base: str
    root: pathlib.Path
    requests: list[dict[str, Any]]
    options: dict[str, Any]


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    served: Served

    def log_message(self, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        served = self.server.served  # type: ignore[attr-defined]
        options = served.options
        entry: dict[str, Any] = {"path": self.path, "range": self.headers.get("Range"), "sent": 0}
        served.requests.append(entry)
        if options.get("delay"):
            time.sleep(options["delay"])
        path = served.root / self.path.split("?", 1)[0].lstrip("/")
        if not path.is_file():
            entry["status"] = 404
            self.send_response(404)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        data = path.read_bytes()
        start, end = 0, len(data) - 1
        rng = self.headers.get("Range")
        if rng and options.get("ranges", True):
            a, b = rng.removeprefix("bytes=").split("-")
            start, end = int(a), min(int(b), len(data) - 1)
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{end}/{len(data)}")
            entry["status"] = 206
        else:
            self.send_response(200)
            entry["status"] = 200
        body = data[start : end + 1]
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if options.get("cut_at") is not None:
            body = body[: options["cut_at"]]
        try:
            for i in range(0, len(body), 65536):
                self.wfile.write(body[i : i + 65536])
                entry["sent"] += len(body[i : i + 65536])
            if options.get("cut_at") is not None:
                self.close_connection = True
        except (BrokenPipeError, ConnectionResetError):
            pass


@pytest.fixture
def http_root(tmp_path: pathlib.Path) -> Iterator[Served]:
    root = tmp_path / "www"
    root.mkdir()
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    server.daemon_threads = True
    served = Served(f"http://127.0.0.1:{server.server_address[1]}", root, [], {})
    server.served = served  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield served
    finally:
        server.shutdown()
        server.server_close()


def test_http_streaming_dataset(http_root: Served) -> None:
    write(http_root.root, 25, manifest=True)
    ds = Dataset[Img](f"{http_root.base}/data-{{000000..000002}}.tar")
    assert [s.n for s in ds] == list(range(25))
    assert [r["status"] for r in http_root.requests] == [200, 200, 200]
    batch = next(iter(ds.ordered(batch_size=5)))
    assert batch.image.shape == (5, 4, 3)


def test_http_sample_is_one_ranged_get(http_root: Served) -> None:
    write(http_root.root, 25, manifest=True)
    ds = Dataset[Img](f"{http_root.base}/data-{{000000..000002}}.tar")
    assert ds.sample(1, 7).n == 17
    manifest_get, sample_get = http_root.requests
    assert manifest_get["path"].endswith("data-000001.manifest.json")
    assert sample_get["path"].endswith("data-000001.tar") and sample_get["status"] == 206
    assert sample_get["sent"] < 1024
    http_root.requests.clear()
    assert ds.sample(1, 8).n == 18
    assert len(http_root.requests) == 1  # the manifest is cached


def test_http_server_that_ignores_ranges(http_root: Served) -> None:
    write(http_root.root, 10, manifest=True)
    http_root.options["ranges"] = False
    ds = Dataset[Img](f"{http_root.base}/data-000000.tar")
    assert ds.sample(0, 6).n == 6
    source = URLSource(f"{http_root.base}/data-000000.tar")
    data = (http_root.root / "data-000000.tar").read_bytes()
    assert source.read_range(source.shards[0], 100, 199) == data[100:200]


def test_http_first_sample_does_not_download_the_shard(http_root: Served) -> None:
    big = [Img(np.full((512, 512), i, np.float32), "x", i) for i in range(24)]  # 1 MB each
    write_shards(big, str(http_root.root / "big-%06d.tar"))
    source = CountingSource(URLSource(f"{http_root.base}/big-000000.tar"))
    streams: list[Any] = []
    inner_open = source.inner.open_shard

    @contextlib.contextmanager
    def spy(shard_id: str) -> Iterator[Any]:
        with inner_open(shard_id) as stream:
            streams.append(stream)
            yield stream

    source.inner.open_shard = spy
    first = Dataset[Img](source).head(1)[0]
    assert first.n == 0 and first.image.shape == (512, 512)
    assert streams[0].received < 3 * (1 << 20)  # ~one sample, not the 24 MB shard


def test_http_errors_name_the_url(http_root: Served) -> None:
    write(http_root.root, 10)
    url = f"{http_root.base}/missing-000000.tar?token=secret"
    with pytest.raises(SourceError, match="HTTP 404 not found") as info:
        list(Dataset[Img](url))
    assert "missing-000000.tar" in str(info.value) and "secret" not in str(info.value)
    good = f"{http_root.base}/data-000000.tar"
    with pytest.warns(SkippedSampleWarning, match="404"):
        got = list(Dataset[Img]([url, good], on_error="skip"))
    assert len(got) == 10
    assert URLSource(good).read_bytes(f"{http_root.base}/nothing.json") is None


def test_http_connection_refused() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(SourceError, match="cannot reach") as info:
        list(Dataset[Img](f"http://127.0.0.1:{port}/x.tar"))
    assert f"127.0.0.1:{port}/x.tar" in str(info.value)


def test_http_timeout(http_root: Served) -> None:
    write(http_root.root, 2)
    http_root.options["delay"] = 2.0
    source = URLSource(f"{http_root.base}/data-000000.tar", timeout=0.3)
    started = time.monotonic()
    with pytest.raises(SourceError, match="timed out"):
        list(Dataset[Img](source))
    assert time.monotonic() - started < 1.9


def test_http_connection_cut_mid_body(http_root: Served) -> None:
    write(http_root.root, 10)
    http_root.options["cut_at"] = 3000
    with pytest.raises(SourceError, match="connection closed after 3000 of"):
        list(Dataset[Img](f"{http_root.base}/data-000000.tar"))


def test_http_gzip_shard(http_root: Served) -> None:
    write(http_root.root, 4, maxcount=4)
    data = (http_root.root / "data-000000.tar").read_bytes()
    (http_root.root / "z.tar.gz").write_bytes(gzip.compress(data))
    assert [s.n for s in Dataset[Img](f"{http_root.base}/z.tar.gz")] == [0, 1, 2, 3]


def test_url_source_refuses_other_schemes() -> None:
    with pytest.raises(SourceError, match="not ftp://"):
        URLSource("ftp://example.com/x.tar")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        source = URLSource("/tmp/x.tar")
    with pytest.raises(SourceError, match="http"):
        source.read_bytes("ftp://example.com/x.json")
