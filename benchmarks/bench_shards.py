"""Shard reading and writing: ours against webdataset and tarfile on the same shards, same run.

Cases: 100,000 small samples (str/int/float), 10,000 64x64x3 uint8 array samples (12 KB), and
~1 MB float32 array samples (to measure GB/s). For each, every reader runs in a fresh child (so
each row has its own peak RSS), best of five passes over page-cached shards, timed in process
CPU time (every reader is single-threaded, so this equals wall time on an idle machine and is not
skewed by neighbours on a shared one):

* ours: ``Dataset[T]`` iteration, i.e. tar parsing, checksum verification and typed decode;
* ours (parse only): ``shards.iter_raw_samples`` without decode, for reference;
* ``webdataset.WebDataset`` iteration plus ``msgpack.unpackb`` of each sample (no typed decode);
* ``tarfile`` plus ``msgpack.unpackb``.

Writing: ``shards.write_shards`` (packing, checksums, SHA-256, fsync, atomic rename) against
webdataset's ``TarWriter`` and ``ShardWriter`` (what atdata 0.7 writes through), packing included,
best of three in wall time (ours hashes and writes on a second thread, which CPU time would
count against it), into the same temporary directory.

atdata 0.7 itself, the baseline DESIGN.md names, reads and writes the same cases in its own
interpreter (``benchmarks/atdata07.py`` makes that environment once, in the cache directory).

Targets (DESIGN.md): reading small samples ≥10x atdata 0.7 and ≥10x webdataset iteration, ≥1 GB/s
on large array samples; writing ≥3x atdata 0.7 (≥3x webdataset's ShardWriter, which atdata 0.7
writes through, when atdata 0.7 cannot be installed).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tarfile
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import msgpack
import numpy as np

from atdata_core.dataset import Dataset
from atdata_core.samples import NDArray, packable
from atdata_core.shards import iter_raw_samples, open_local, write_shards
from benchmarks import atdata07
from benchmarks.common import Row, best_of, make_row, measure_in_child, timed

REPEATS = 3
#: Reads are single-threaded and short: more passes, timed in CPU time (see common.timed).
READ_REPEATS = 5


def _quick() -> bool:
    """Set by ``run(quick=True)`` in the environment, so the child processes see it too."""
    return os.environ.get("ATDATA_BENCH_QUICK") == "1"


def _passes(full: int) -> int:
    return 2 if _quick() else full


@packable
class SmallSample:
    text: str
    n: int
    x: float


@packable
class ArraySample:
    image: NDArray
    label: int


def small_samples(n: int) -> list[SmallSample]:
    return [SmallSample(f"sample number {i}", i, i * 0.5) for i in range(n)]


def image_samples(n: int) -> list[ArraySample]:
    rng = np.random.default_rng(0)
    base = rng.integers(0, 255, (64, 64, 3), dtype=np.uint8)
    return [ArraySample(np.roll(base, i, axis=0), i) for i in range(n)]


def large_samples(n: int) -> Iterator[ArraySample]:
    base = np.random.default_rng(1).random((512, 512), dtype=np.float32)  # 1 MiB
    for i in range(n):
        yield ArraySample(base + i, i)


# --- readers (each returns the number of samples of one full pass) ---------------------------------


def read_ours(urls: list[str], sample_type: type) -> int:
    count = 0
    for _ in Dataset(urls, sample_type):
        count += 1
    return count


def read_ours_raw(urls: list[str]) -> int:
    count = 0
    for url in urls:
        with open_local(url) as buf:
            for _ in iter_raw_samples(buf, shard=url):
                count += 1
    return count


def read_webdataset(urls: list[str]) -> int:
    import webdataset as wds

    count = 0
    for sample in wds.WebDataset(urls, shardshuffle=False, empty_check=False):
        msgpack.unpackb(sample["msgpack"], raw=False)
        count += 1
    return count


def read_tarfile(urls: list[str]) -> int:
    count = 0
    for url in urls:
        with tarfile.open(url) as tf:
            for member in tf:
                if member.isfile():
                    msgpack.unpackb(tf.extractfile(member).read(), raw=False)  # type: ignore[union-attr]
                    count += 1
    return count


def _timed_passes(reader: Callable[..., int], *args: Any) -> tuple[float, int]:
    reader(*args)  # warm: page cache, imports, codec compilation
    seconds, count = best_of(lambda: reader(*args), _passes(READ_REPEATS), cpu=True)
    return seconds, count


def measure_read(reader: Callable[..., int], *args: Any) -> tuple[float, int, float]:
    """Seconds of the best pass, samples per pass, and the child's peak RSS in MB."""
    (seconds, count), peak = measure_in_child(_timed_passes, reader, *args)
    return seconds, count, peak


# --- writers ---------------------------------------------------------------------------------------


def write_ours(samples: list[Any], out: Path, maxcount: int) -> list[str]:
    infos = write_shards(samples, str(out / "ours-%06d.tar"), maxcount=maxcount)
    return [i.url for i in infos]


def write_wds_tarwriter(samples: list[Any], out: Path, maxcount: int) -> None:
    import webdataset as wds

    with wds.TarWriter(str(out / "wds-single.tar")) as writer:
        for sample in samples:
            writer.write(sample.as_wds)


def write_wds_shardwriter(samples: list[Any], out: Path, maxcount: int) -> None:
    import webdataset as wds

    with wds.ShardWriter(str(out / "wds-%06d.tar"), maxcount=maxcount, verbose=0) as writer:
        for sample in samples:
            writer.write(sample.as_wds)


def measure_write(
    writer: Callable[[list[Any], Path, int], Any],
    samples: list[Any],
    maxcount: int,
    where: str | None = None,
) -> float:
    """Best seconds to write ``samples`` (each pass into a fresh directory under ``where``)."""
    best = float("inf")
    for _ in range(_passes(REPEATS)):
        out = Path(tempfile.mkdtemp(prefix="bench-write-", dir=where))
        try:
            with timed() as t:
                writer(samples, out, maxcount)
            best = min(best, t.seconds)
        finally:
            shutil.rmtree(out, ignore_errors=True)
    return best


# --- the run ---------------------------------------------------------------------------------------


def _rate(count: int, seconds: float) -> float:
    return count / seconds if seconds > 0 else 0.0


def _mb(urls: list[str]) -> float:
    return sum(os.path.getsize(u) for u in urls) / 1e6


#: The atdata 0.7 interpreter for this run, or why there is none (set once by ``run``).
Atdata07 = tuple[str | None, str]


def _atdata07_row(
    figure: str, ours: float, result: dict[str, float] | None, why: str, *, target_x: float | None
) -> Row:
    """Ours against atdata 0.7 on the same case; without atdata 0.7, a row that says why."""
    if result is None:
        return make_row(figure, ours, "samples/s", note=f"atdata 0.7 not measured: {why}", digits=0)
    theirs = _rate(int(result["count"]), result["seconds"])
    return make_row(
        figure,
        ours,
        "samples/s",
        baseline=theirs,
        baseline_name=f"atdata {atdata07.ATDATA07_VERSION}",
        target=target_x * theirs if target_x else None,
        peak_rss=result.get("peak_mb"),
        note=f"atdata's own API on CPython {result.get('python', '?')}; peak RSS is atdata's",
        digits=0,
    )


def _read_rows(
    label: str, case: str, urls: list[str], sample_type: type, a07: Atdata07, *, small: bool
) -> list[Row]:
    """Rows for one case: ours against atdata 0.7, webdataset and tarfile; ours parse-only."""
    mb = _mb(urls)
    ours_s, n, ours_rss = measure_read(read_ours, urls, sample_type)
    wds_s, wds_n, wds_rss = measure_read(read_webdataset, urls)
    assert n == wds_n, (n, wds_n)
    ours, wds_rate = _rate(n, ours_s), _rate(n, wds_s)
    python, why = a07
    result = None
    if python:
        result, why = atdata07.measure(
            python, "read", case, atdata07.brace_pattern(urls), passes=_passes(READ_REPEATS)
        )
        if result is not None and int(result["count"]) != n:
            result, why = None, f"atdata 0.7 read {result['count']} samples, not {n}"
    rows = [
        _atdata07_row(
            f"read {label}: vs atdata 0.7", ours, result, why, target_x=10 if small else None
        ),
        make_row(
            f"read {label}: typed samples/s",
            ours,
            "samples/s",
            baseline=wds_rate,
            baseline_name="webdataset+msgpack",
            target=10 * wds_rate if small else None,
            peak_rss=ours_rss,
            note=(
                f"{n:,} samples, {mb:,.0f} MB; ours verifies header checksums and decodes to "
                f"{sample_type.__name__}; the baseline only unpacks msgpack"
            ),
            digits=0,
        ),
        make_row(
            f"read {label}: MB/s",
            mb / ours_s,
            "MB/s",
            baseline=mb / wds_s,
            baseline_name="webdataset+msgpack",
            peak_rss=ours_rss,
            digits=0,
        ),
    ]
    if _quick():  # a smoke test: the reference rows (tarfile, parse only) are for full runs
        return rows
    raw_s, _, raw_rss = measure_read(read_ours_raw, urls)
    tar_s, tar_n, tar_rss = measure_read(read_tarfile, urls)
    assert n == tar_n, (n, tar_n)
    tar_rate = _rate(n, tar_s)
    return [
        *rows,
        make_row(
            f"read {label}: vs tarfile",
            ours,
            "samples/s",
            baseline=tar_rate,
            baseline_name="tarfile+msgpack",
            peak_rss=tar_rss,
            note="peak RSS is tarfile's",
            digits=0,
        ),
        make_row(
            f"read {label}: parse only",
            _rate(n, raw_s),
            "samples/s",
            baseline=wds_rate,
            baseline_name="webdataset+msgpack",
            peak_rss=raw_rss,
            note=f"iter_raw_samples, no decode ({mb / raw_s:,.0f} MB/s); webdataset RSS "
            f"{wds_rss:,.0f} MB",
            digits=0,
        ),
    ]


def _write_rows(
    label: str, case: str, samples: list[Any], maxcount: int, a07: Atdata07
) -> list[Row]:
    n = len(samples)
    ours_s = measure_write(write_ours, samples, maxcount)
    tar_s = measure_write(write_wds_tarwriter, samples, maxcount)
    shard_s = measure_write(write_wds_shardwriter, samples, maxcount)
    python, why = a07
    result = None
    if python:
        result, why = atdata07.measure(
            python,
            "write",
            case,
            tempfile.gettempdir(),
            n=n,
            maxcount=maxcount,
            passes=_passes(REPEATS),
        )
    ours = _rate(n, ours_s)
    return [
        _atdata07_row(f"write {label}: vs atdata 0.7", ours, result, why, target_x=3),
        make_row(
            f"write {label}: vs webdataset ShardWriter",
            ours,
            "samples/s",
            baseline=_rate(n, shard_s),
            baseline_name="webdataset ShardWriter",
            # the stand-in for atdata 0.7 (which writes through it) only when that is missing
            target=3 * _rate(n, shard_s) if result is None else None,
            note="both pack the same samples with our codec; ours also hashes (SHA-256), fsyncs "
            "and renames each shard; RSS includes the samples in memory",
            digits=0,
        ),
        make_row(
            f"write {label}: vs TarWriter",
            ours,
            "samples/s",
            baseline=_rate(n, tar_s),
            baseline_name="webdataset TarWriter",
            digits=0,
        ),
        *([] if _quick() else _tmpfs_rows(label, samples, maxcount)),
    ]


def _tmpfs_rows(label: str, samples: list[Any], maxcount: int) -> list[Row]:
    """The same write into RAM (``/dev/shm``): the writers' own cost, without the disk.

    On disk, ours waits for ``fsync`` (a shard is durable before it is renamed into place)
    while webdataset leaves its data in the page cache, so big samples measure the disk.
    """
    shm = "/dev/shm"
    size = sum(len(s.packed) for s in samples[:100]) * len(samples) // min(len(samples), 100)
    try:
        free = shutil.disk_usage(shm).free
    except OSError:
        return []
    if free < 4 * size + (256 << 20):
        return []
    n = len(samples)
    ours_s = measure_write(write_ours, samples, maxcount, shm)
    shard_s = measure_write(write_wds_shardwriter, samples, maxcount, shm)
    return [
        make_row(
            f"write {label} to tmpfs: samples/s",
            _rate(n, ours_s),
            "samples/s",
            baseline=_rate(n, shard_s),
            baseline_name="webdataset ShardWriter",
            note="/dev/shm: the writers without the disk (fsync is free there)",
            digits=0,
        )
    ]


def _first_sample(url: str, sample_type: type) -> Any:
    return Dataset(url, sample_type).head(1)


def _first_sample_ms(url: str, sample_type: type) -> float:
    _first_sample(url, sample_type)
    seconds, _ = best_of(lambda: _first_sample(url, sample_type), 5)
    return seconds * 1e3


def run(quick: bool) -> list[Row]:
    os.environ["ATDATA_BENCH_QUICK"] = "1" if quick else "0"
    n_small = 20_000 if quick else 100_000
    n_image = 2_000 if quick else 10_000
    n_large = 150 if quick else 1_000
    rows: list[Row] = []
    root = Path(tempfile.mkdtemp(prefix="bench-shards-"))
    try:
        a07 = atdata07.atdata07_python()
        # --- small samples
        small = small_samples(n_small)
        # the same number of shards in both modes: a write overlaps shard N's fsync with N+1
        per_small, per_image = n_small // 10, n_image // 5
        rows += _write_rows(f"{n_small // 1000}k small samples", "small", small, per_small, a07)
        urls = [
            i.url for i in write_shards(small, str(root / "small-%06d.tar"), maxcount=per_small)
        ]
        del small
        rows += _read_rows("small samples", "small", urls, SmallSample, a07, small=True)

        # --- 64x64x3 uint8 images
        images = image_samples(n_image)
        rows += _write_rows(f"{n_image // 1000}k 12 KB arrays", "image", images, per_image, a07)
        urls = [i.url for i in write_shards(images, str(root / "img-%06d.tar"), maxcount=per_image)]
        del images
        rows += _read_rows("12 KB arrays", "image", urls, ArraySample, a07, small=False)

        # --- ~1 MB arrays: GB/s
        urls = [
            i.url
            for i in write_shards(
                large_samples(n_large), str(root / "large-%06d.tar"), maxcount=250
            )
        ]
        mb = _mb(urls)
        ours_s, n, ours_rss = measure_read(read_ours, urls, ArraySample)
        wds_s, _, wds_rss = measure_read(read_webdataset, urls)
        rows.append(
            make_row(
                "read 1 MB arrays: MB/s",
                mb / ours_s,
                "MB/s",
                baseline=mb / wds_s,
                baseline_name="webdataset+msgpack",
                target=1000.0,
                peak_rss=ours_rss,
                note=f"{n:,} samples of 512x512 float32, {mb:,.0f} MB, typed decode; "
                f"webdataset RSS {wds_rss:,.0f} MB",
                digits=0,
            )
        )
        first_ms, first_rss = measure_in_child(_first_sample_ms, urls[0], ArraySample)
        rows.append(
            make_row(
                f"first sample of a {os.path.getsize(urls[0]) / 1e6:,.0f} MB local shard",
                first_ms,
                "ms",
                target=100.0,
                lower_is_better=True,
                peak_rss=first_rss,
                note="Dataset(url).head(1): open, map, parse, decode (fresh process)",
            )
        )
    finally:
        with contextlib.suppress(OSError):
            shutil.rmtree(root)
    return rows
