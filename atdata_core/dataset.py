"""``Dataset[T]``: typed samples streamed from tar shards, in order or shuffled, one by one or batched.

A dataset is a ``DataSource`` (which shards, and how to read them) plus a sample type. Iterating it
parses each shard with ``shards.iter_raw_samples`` and decodes each member with
``samples.decode_sample``, so every error names its shard and sample key. ``on_error="skip"`` turns
bad samples and damaged shards into warnings (never silence) and goes on.

It is also a ready ``IterableDataset`` for a PyTorch ``DataLoader``: in a worker (or a distributed
rank) each iteration reads only its own share of the shards (``split_shards``). Torch is never
imported here; it is consulted only when the program has imported it already.
"""

from __future__ import annotations

import itertools
import random
import sys
import warnings
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any, ClassVar, Generic, Literal, TypeVar, overload

import numpy as np

from .errors import (
    AtdataError,
    FieldTypeError,
    LensError,
    NotMsgpackError,
    SampleError,
    ShardError,
)
from .lens import LensRegistry, find_lens
from .samples import DictSample, PackableSample, decode_sample, is_packable_type
from .shards import (
    RawSample,
    iter_raw_samples,
    iter_sample_payload_batches,
    manifest_url,
    member_span,
    read_manifest,
)
from .sources import DataSource, display_url, source_for_urls

T = TypeVar("T")
U = TypeVar("U")

OnError = Literal["raise", "skip"]


class SkippedSampleWarning(UserWarning):
    """A sample or the rest of a shard was skipped because ``on_error="skip"``."""


# --- worker / rank splitting -----------------------------------------------------------------------


def split_shards(
    shards: Sequence[str], worker_id: int, num_workers: int, rank: int = 0, world_size: int = 1
) -> list[str]:
    """The shards one DataLoader worker of one distributed rank reads: every N-th, no overlap.

    Shards are dealt round-robin over ``world_size * num_workers`` readers, rank-major, so the
    readers of one rank together see exactly that rank's share.
    """
    if num_workers < 1 or world_size < 1:
        raise ValueError("num_workers and world_size must be at least 1")
    if not 0 <= worker_id < num_workers:
        raise ValueError(f"worker_id {worker_id} is outside 0..{num_workers - 1}")
    if not 0 <= rank < world_size:
        raise ValueError(f"rank {rank} is outside 0..{world_size - 1}")
    readers = num_workers * world_size
    return list(shards[rank * num_workers + worker_id :: readers])


def worker_context() -> tuple[int, int, int, int]:
    """``(worker_id, num_workers, rank, world_size)`` from PyTorch, if the program uses it.

    Looks torch up in ``sys.modules`` only: importing it here would cost seconds and hundreds of
    megabytes for programs (like the TUI) that never use it.
    """
    worker_id, num_workers, rank, world_size = 0, 1, 0, 1
    data = sys.modules.get("torch.utils.data")
    get_worker_info = getattr(data, "get_worker_info", None)
    if get_worker_info is not None:
        info = get_worker_info()
        if info is not None:
            worker_id, num_workers = int(info.id), int(info.num_workers)
    dist = sys.modules.get("torch.distributed")
    if dist is not None:
        try:
            if dist.is_available() and dist.is_initialized():
                rank, world_size = int(dist.get_rank()), int(dist.get_world_size())
        except (AttributeError, RuntimeError):
            pass
    return worker_id, num_workers, rank, world_size


_torch_registered = False


def _register_with_torch() -> None:
    """Make ``isinstance(ds, torch.utils.data.IterableDataset)`` true once torch is loaded.

    DataLoader treats anything that is not an ``IterableDataset`` as map-style (and asks for
    ``len``); registering as a virtual subclass avoids both subclassing and importing torch.
    """
    global _torch_registered
    if _torch_registered:
        return
    data = sys.modules.get("torch.utils.data")
    base = getattr(data, "IterableDataset", None)
    register = getattr(base, "register", None)
    if register is None:
        return
    register(Dataset)
    register(SampleStream)
    _torch_registered = True


# --- batches ---------------------------------------------------------------------------------------


class SampleBatch(Generic[T]):
    """Samples collated per field: ``batch.image`` is an array stacked along a new first axis.

    NDArray fields are stacked with ``np.stack`` (they must share shape and dtype); every other
    field is a list. ``batch["name"]`` works for fields whose names clash with attributes here;
    ``batch.samples`` keeps the samples themselves.
    """

    __slots__ = ("_columns", "sample_type", "samples")

    def __init__(self, samples: Sequence[T], sample_type: type[T] | None = None) -> None:
        self.samples: list[T] = list(samples)
        self.sample_type = sample_type if sample_type is not None else _type_of(self.samples)
        self._columns: dict[str, Any] = {}

    def __len__(self) -> int:
        return len(self.samples)

    def __iter__(self) -> Iterator[T]:
        return iter(self.samples)

    def __repr__(self) -> str:
        name = getattr(self.sample_type, "__name__", "?")
        return f"SampleBatch[{name}]({len(self.samples)} samples, fields={self.fields})"

    @property
    def fields(self) -> list[str]:
        """Field names: the sample type's, or a ``DictSample`` batch's first sample's keys."""
        if isinstance(self.sample_type, type) and issubclass(self.sample_type, PackableSample):
            return [f.name for f in self.sample_type.fields()]
        if self.samples and isinstance(self.samples[0], DictSample):
            return self.samples[0].keys()
        return []

    @property
    def keys(self) -> list[str | None]:
        """Each sample's key in its shard."""
        return [getattr(s, "__key__", None) for s in self.samples]

    def column(self, name: str) -> Any:
        """One field over the batch: stacked if every value is an array, else a list."""
        cached = self._columns.get(name)
        if cached is not None:
            return cached
        if name not in self.fields:
            raise AttributeError(f"batch has no field {name!r} (fields: {self.fields})")
        values = []
        for sample in self.samples:
            if isinstance(sample, DictSample):
                if name not in sample:
                    raise FieldTypeError(
                        f"field {name!r} is missing from sample {sample.__key__} of this batch",
                        key=sample.__key__,
                    )
                values.append(sample[name])
            else:
                values.append(getattr(sample, name))
        column: Any = values
        if values and all(isinstance(v, np.ndarray) for v in values):
            first = values[0]
            if any(v.shape != first.shape or v.dtype != first.dtype for v in values):
                shapes = sorted({f"{v.dtype}{list(v.shape)}" for v in values})
                raise FieldTypeError(
                    f"field {name!r} holds arrays of different shapes or dtypes in this batch "
                    f"({', '.join(shapes[:4])}): they cannot be stacked; use batch.samples"
                )
            column = np.stack(values)
        self._columns[name] = column
        return column

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        return self.column(name)

    @overload
    def __getitem__(self, index: int) -> T: ...

    @overload
    def __getitem__(self, index: str) -> Any: ...

    def __getitem__(self, index: int | str) -> Any:
        if isinstance(index, str):
            return self.column(index)
        return self.samples[index]


def _type_of(samples: Sequence[Any]) -> Any:
    return type(samples[0]) if samples else None


def batched(
    samples: Iterable[T],
    batch_size: int,
    sample_type: type[T] | None = None,
    drop_last: bool = False,
) -> Iterator[SampleBatch[T]]:
    """Group samples into ``SampleBatch``es of ``batch_size`` (the last may be shorter)."""
    if batch_size < 1:
        raise ValueError("batch_size must be at least 1")
    iterator = iter(samples)
    while chunk := list(itertools.islice(iterator, batch_size)):
        if drop_last and len(chunk) < batch_size:
            return
        yield SampleBatch(chunk, sample_type)


# --- streams ---------------------------------------------------------------------------------------


class SampleStream(Generic[T]):
    """A re-iterable pass over a dataset (ordered or shuffled, maybe batched).

    Each ``iter()`` starts a new pass; in a DataLoader worker it reads only that worker's shards.
    A shuffled stream without a seed draws one when made, so every worker agrees on the shard
    order; each pass (epoch) then reshuffles, or use ``set_epoch`` to choose.
    """

    def __init__(
        self,
        dataset: Dataset[Any],
        *,
        shuffle: bool = False,
        buffer: int = 1000,
        seed: int | None = None,
        batch_size: int | None = None,
        drop_last: bool = False,
    ) -> None:
        if buffer < 1:
            raise ValueError("buffer must be at least 1")
        self.dataset = dataset
        self.shuffle = shuffle
        self.buffer = buffer
        self.seed = seed if seed is not None else random.SystemRandom().randrange(1 << 63)
        self.batch_size = batch_size
        self.drop_last = drop_last
        self.epoch = 0
        _register_with_torch()

    def set_epoch(self, epoch: int) -> None:
        """Pick the shuffle of a given epoch (like ``DistributedSampler.set_epoch``)."""
        self.epoch = epoch

    def __iter__(self) -> Iterator[Any]:
        samples: Iterator[Any]
        if self.shuffle:
            worker_id, num_workers, rank, world_size = worker_context()
            # string seeds go through SHA-512: the same order in every process and platform
            order_rng = random.Random(f"{self.seed}/{self.epoch}")
            shards = list(self.dataset.shard_list)
            order_rng.shuffle(shards)
            mine = split_shards(shards, worker_id, num_workers, rank, world_size)
            reader = rank * num_workers + worker_id
            rng = random.Random(f"{self.seed}/{self.epoch}/{reader}")
            samples = _shuffle_buffer(self.dataset._iter_shards(mine), self.buffer, rng)
            self.epoch += 1
        else:
            samples = self.dataset._iter_shards(self.dataset._my_shards())
        if self.batch_size is not None:
            return batched(samples, self.batch_size, self.dataset.sample_type, self.drop_last)
        return samples


def _shuffle_buffer(samples: Iterator[T], size: int, rng: random.Random) -> Iterator[T]:
    """Reservoir-style shuffle: keep ``size`` samples, emit a random one as each new one comes."""
    buffer: list[T] = []
    randrange = rng.randrange
    for sample in samples:
        if len(buffer) < size:
            buffer.append(sample)
            continue
        i = randrange(size)
        out, buffer[i] = buffer[i], sample
        yield out
    rng.shuffle(buffer)
    yield from buffer


# --- the dataset -----------------------------------------------------------------------------------

_TYPED: dict[tuple[type, type], type] = {}


def _restore_dataset(state: dict[str, Any]) -> Dataset[Any]:
    ds: Dataset[Any] = Dataset.__new__(Dataset)
    ds.__dict__.update(state)
    return ds


class Dataset(Generic[T]):
    """Typed samples from tar shards: ``Dataset[MySample]("data-{000000..000009}.tar")``.

    ``source`` is a URL, a list of URLs (brace notation allowed; local paths, ``file://``,
    ``http(s)://``, ``s3://``…) or any ``DataSource``. Without a sample type, samples are
    ``DictSample``. ``on_error="skip"`` warns about bad samples and damaged shards and goes on.
    """

    #: Set on ``Dataset[T]`` subclasses made by ``__class_getitem__``.
    _bound_type: ClassVar[Any] = None

    def __class_getitem__(cls, item: Any) -> Any:
        if not is_packable_type(item):
            return super().__class_getitem__(item)  # type: ignore[misc]  # TypeVars, typing
        base = cls.__mro__[0] if cls._bound_type is None else cls.__mro__[1]
        typed = _TYPED.get((base, item))
        if typed is None:
            typed = type(
                f"{base.__name__}[{item.__name__}]",
                (base,),
                {"_bound_type": item, "__module__": base.__module__},
            )
            _TYPED[(base, item)] = typed
        return typed

    def __init__(
        self,
        source: str | Sequence[str] | DataSource,
        sample_type: type[T] | None = None,
        *,
        on_error: OnError = "raise",
        verify_checksums: bool = True,
        lens_registry: LensRegistry | None = None,
    ) -> None:
        chosen: Any = sample_type if sample_type is not None else self._bound_type or DictSample
        if not is_packable_type(chosen):
            raise TypeError(f"sample_type must be a @packable class or DictSample, got {chosen!r}")
        if on_error not in ("raise", "skip"):
            raise ValueError(f"on_error must be 'raise' or 'skip', not {on_error!r}")
        if isinstance(source, str) or (
            isinstance(source, Sequence) and not hasattr(source, "open_shard")
        ):
            resolved: DataSource = source_for_urls(source)
        elif hasattr(source, "open_shard"):
            resolved = source  # type: ignore[assignment]
        else:
            raise TypeError(
                f"a Dataset reads a URL, a list of URLs or a DataSource, not {type(source).__name__}"
            )
        self.source: DataSource = resolved
        self.sample_type: type[T] = chosen
        self.on_error: OnError = on_error
        self.verify_checksums = verify_checksums
        self.lens_registry = lens_registry
        #: What shard bytes are decoded as, then the lens getters that lead to ``sample_type``.
        self._decode_type: Any = chosen
        self._transforms: tuple[Callable[[Any], Any], ...] = ()
        self._manifests: dict[str, list[tuple[str, int, int]] | None] = {}
        _register_with_torch()

    def __reduce__(self) -> tuple[Any, ...]:
        # Dataset[T] classes are made on the fly and cannot be pickled by name: rebuild a plain
        # Dataset with the same state (DataLoader workers started with "spawn" pickle us).
        state = dict(self.__dict__)
        state["_manifests"] = {}
        return (_restore_dataset, (state,))

    def __repr__(self) -> str:
        shards = self.shard_list
        first = display_url(shards[0]) if shards else ""
        return (
            f"Dataset[{getattr(self.sample_type, '__name__', '?')}]"
            f"({first!r}{f' … {len(shards)} shards' if len(shards) > 1 else ''})"
        )

    # --- shards

    @property
    def shard_list(self) -> list[str]:
        """Every shard id (URL), in order."""
        return self.source.shards

    def _my_shards(self) -> list[str]:
        worker_id, num_workers, rank, world_size = worker_context()
        shards = self.shard_list
        if num_workers == 1 and world_size == 1:
            return shards
        mine = split_shards(shards, worker_id, num_workers, rank, world_size)
        if not mine and shards:
            warnings.warn(
                f"reader {rank * num_workers + worker_id} of {num_workers * world_size} gets no "
                f"shard: the dataset has only {len(shards)}; use fewer DataLoader workers",
                SkippedSampleWarning,
                stacklevel=3,
            )
        return mine

    def _raw_shard(self, shard: str) -> Iterator[RawSample]:
        with self.source.open_shard(shard) as stream:
            yield from iter_raw_samples(
                stream, shard=shard, verify_checksums=self.verify_checksums, require_end=True
            )

    def _skip(self, exc: AtdataError, what: str) -> None:
        warnings.warn(f"skipping {what}: {exc}", SkippedSampleWarning, stacklevel=4)

    def _iter_shards(self, shards: Iterable[str]) -> Iterator[T]:
        # The hot loop of every read, flat on purpose: decode_sample's work inlined (same
        # errors, same keys), over lists of msgpack members as the parser verifies them, with no
        # generator in between (each would cost a resume per sample).
        bytes_decoder = getattr(self._decode_type, "bytes_decoder", None)
        decode = bytes_decoder() if bytes_decoder else self._decode_type.from_bytes
        transforms = self._transforms
        skip = self.on_error == "skip"
        verify = self.verify_checksums
        for shard in shards:
            try:
                with self.source.open_shard(shard) as stream:
                    for batch in iter_sample_payload_batches(
                        stream, shard=shard, verify_checksums=verify, require_end=True
                    ):
                        for key, _offset, data in batch:
                            try:
                                if data is None:
                                    raise NotMsgpackError(
                                        "no .msgpack member (it has other members only)"
                                    )
                                sample = decode(data)
                                sample.__key__ = key
                                if transforms:
                                    for transform in transforms:
                                        sample = transform(sample)
                            except SampleError as exc:
                                located = exc.located(shard=shard, key=key)
                                if not skip:
                                    raise located from None
                                self._skip(located, "sample")
                                continue
                            except LensError as exc:
                                located_lens = LensError(f"shard {shard}, sample {key}: {exc}")
                                if not skip:
                                    raise located_lens from exc
                                self._skip(located_lens, "sample")
                                continue
                            yield sample
            except ShardError as exc:
                if not skip:
                    raise
                self._skip(exc, f"the rest of shard {display_url(shard)}")

    # --- iteration

    def __iter__(self) -> Iterator[T]:
        return self._iter_shards(self._my_shards())

    @overload
    def ordered(self, batch_size: None = None, *, drop_last: bool = False) -> SampleStream[T]: ...

    @overload
    def ordered(
        self, batch_size: int, *, drop_last: bool = False
    ) -> SampleStream[SampleBatch[T]]: ...

    def ordered(self, batch_size: int | None = None, *, drop_last: bool = False) -> Any:
        """Samples in shard order (batches of ``batch_size`` when given)."""
        return SampleStream(self, batch_size=batch_size, drop_last=drop_last)

    @overload
    def shuffled(
        self,
        buffer: int = 1000,
        seed: int | None = None,
        batch_size: None = None,
        *,
        drop_last: bool = False,
    ) -> SampleStream[T]: ...

    @overload
    def shuffled(
        self,
        buffer: int = 1000,
        seed: int | None = None,
        *,
        batch_size: int,
        drop_last: bool = False,
    ) -> SampleStream[SampleBatch[T]]: ...

    def shuffled(
        self,
        buffer: int = 1000,
        seed: int | None = None,
        batch_size: int | None = None,
        *,
        drop_last: bool = False,
    ) -> Any:
        """Samples with shard order and a ``buffer``-sized window shuffled (repeatable by ``seed``)."""
        return SampleStream(
            self, shuffle=True, buffer=buffer, seed=seed, batch_size=batch_size, drop_last=drop_last
        )

    def head(self, n: int = 5) -> list[T]:
        """The first ``n`` samples (reads no further than needed)."""
        return list(itertools.islice(self._iter_shards(self.shard_list), n))

    def raw(self, shard: int | str | None = None) -> Iterator[RawSample]:
        """Samples as stored (key, member bytes, offset), of one shard or all: for previews, copies."""
        shards = self.shard_list if shard is None else [self._shard_id(shard)]
        for shard_id in shards:
            try:
                yield from self._raw_shard(shard_id)
            except ShardError as exc:
                if self.on_error != "skip":
                    raise
                self._skip(exc, f"the rest of shard {display_url(shard_id)}")

    # --- random access

    def _shard_id(self, shard: int | str) -> str:
        if isinstance(shard, int):
            shards = self.shard_list
            if not -len(shards) <= shard < len(shards):
                raise IndexError(f"shard {shard} out of range: the dataset has {len(shards)}")
            return shards[shard]
        return shard

    def manifest(self, shard: int | str) -> list[tuple[str, int, int]] | None:
        """``(key, offset, size)`` of every sample of a shard from its sidecar, if it has one."""
        shard_id = self._shard_id(shard)
        if shard_id not in self._manifests:
            data = self.source.read_bytes(manifest_url(shard_id))
            entries = None
            if data is not None:
                try:
                    entries = read_manifest(data)
                except ShardError as exc:
                    warnings.warn(
                        f"ignoring the manifest of {display_url(shard_id)}: {exc}",
                        SkippedSampleWarning,
                        stacklevel=2,
                    )
            self._manifests[shard_id] = entries
        return self._manifests[shard_id]

    def sample(self, shard: int | str, index: int) -> T:
        """Sample ``index`` of a shard: one ranged read with a manifest, else a streamed scan."""
        shard_id = self._shard_id(shard)
        if index < 0:
            raise IndexError("sample index must be 0 or more")
        entries = self.manifest(shard_id)
        raw: RawSample | None = None
        if entries is not None:
            if index >= len(entries):
                raise IndexError(
                    f"shard {display_url(shard_id)} has {len(entries)} samples, no sample {index}"
                )
            key, offset, size = entries[index]
            start, end = member_span(offset, size)
            data = self.source.read_range(shard_id, start, end)
            raw = next(
                iter_raw_samples(
                    data, shard=shard_id, verify_checksums=self.verify_checksums, start_offset=start
                ),
                None,
            )
            if raw is None:
                raise ShardError(
                    f"the manifest points at byte {offset}, past the end of the shard "
                    "(stale manifest?)",
                    shard=display_url(shard_id),
                )
            if raw.key != key:
                if len(f"{key}.msgpack".encode()) <= 100:
                    raise ShardError(
                        f"the manifest says sample {index} is {key!r} at byte {offset}, "
                        f"the shard has {raw.key!r} there (stale manifest?)",
                        shard=display_url(shard_id),
                    )
                raw.key = key  # a long name: the ustar header holds only its first 100 bytes
        else:
            for i, candidate in enumerate(self._raw_shard(shard_id)):
                if i == index:
                    raw = candidate
                    break
            if raw is None:
                raise IndexError(
                    f"shard {display_url(shard_id)} has fewer than {index + 1} samples"
                )
        return self._decode_one(raw, shard_id)

    def _decode_one(self, raw: RawSample, shard: str) -> T:
        data = raw.parts.get("msgpack")
        if data is None:
            raise NotMsgpackError(
                f"no .msgpack member (found {', '.join(raw.parts) or 'nothing'})",
                shard=shard,
                key=raw.key,
            )
        sample = decode_sample(self._decode_type, data, shard=shard, key=raw.key)  # type: ignore[arg-type]
        try:
            for transform in self._transforms:
                sample = transform(sample)
        except LensError as exc:
            raise LensError(f"shard {shard}, sample {raw.key}: {exc}") from exc
        return sample  # type: ignore[no-any-return]

    # --- views

    def as_type(self, view: type[U], *, registry: LensRegistry | None = None) -> Dataset[U]:
        """The same samples seen as ``view`` through the lens registry (see ``lens.find_lens``)."""
        registry = registry if registry is not None else self.lens_registry
        found = find_lens(self.sample_type, view, registry)
        out: Dataset[U] = Dataset.__new__(Dataset[view])  # type: ignore[valid-type]
        out.__dict__.update(self.__dict__)
        out.sample_type = view
        out._manifests = {}
        if found.kind == "identity":
            return out
        if self._decode_type is DictSample and not self._transforms and found.kind == "auto":
            out._decode_type = view  # decode straight into the view: same result, no detour
        else:
            out._transforms = (*self._transforms, found)
        return out


class DatasetDict(dict[str, Dataset[Any]]):
    """Splits of one dataset by name (``{"train": Dataset, "test": Dataset}``)."""

    def __repr__(self) -> str:
        inner = ", ".join(f"{name!r}: {ds!r}" for name, ds in self.items())
        return f"DatasetDict({{{inner}}})"

    @property
    def sample_type(self) -> Any:
        """The sample type shared by every split (``None`` if they differ or there are none)."""
        types = {ds.sample_type for ds in self.values()}
        return types.pop() if len(types) == 1 else None


__all__ = [
    "Dataset",
    "DatasetDict",
    "SampleBatch",
    "SampleStream",
    "SkippedSampleWarning",
    "batched",
    "split_shards",
    "worker_context",
]
