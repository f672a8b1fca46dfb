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

Targets (DESIGN.md): reading ≥10x the baseline on small samples, ≥1 GB/s on large array samples,
writing ≥3x the baseline. atdata 0.7 itself is measured too when an interpreter with it installed
is found (``ATDATA07_PYTHON`` or ``/tmp/atdata07-venv/bin/python``; atdata 0.7 needs Python ≥3.12).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import tarfile
import tempfile
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import msgpack
import numpy as np

from atdata_core.dataset import Dataset
from atdata_core.samples import NDArray, packable
from atdata_core.shards import iter_raw_samples, open_local, write_shards
from benchmarks.common import Row, best_of, make_row, measure_in_child, timed

REPEATS = 3
#: Reads are single-threaded and short: more passes, timed in CPU time (see common.timed).
READ_REPEATS = 5


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
    seconds, count = best_of(lambda: reader(*args), READ_REPEATS, cpu=True)
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
    for _ in range(REPEATS):
        out = Path(tempfile.mkdtemp(prefix="bench-write-", dir=where))
        try:
            with timed() as t:
                writer(samples, out, maxcount)
            best = min(best, t.seconds)
        finally:
            shutil.rmtree(out, ignore_errors=True)
    return best


# --- atdata 0.7, when an interpreter with it exists ------------------------------------------------


def atdata07_python() -> str | None:
    candidates = [os.environ.get("ATDATA07_PYTHON", ""), "/tmp/atdata07-venv/bin/python"]
    for python in candidates:
        if not python or not os.path.exists(python):
            continue
        probe = subprocess.run(
            [python, "-c", "import atdata"], capture_output=True, timeout=120, check=False
        )
        if probe.returncode == 0:
            return python
    return None


_ATDATA07_SCRIPT = textwrap.dedent(
    """
    import json, sys, time, tempfile
    import atdata

    @atdata.packable
    class SmallSample:
        text: str
        n: int
        x: float

    urls = json.loads(sys.argv[1])
    n = int(sys.argv[2])
    ds = atdata.Dataset[SmallSample](urls[0] if len(urls) == 1 else urls)
    best = float("inf")
    for _ in range(3):
        t = time.perf_counter()
        count = sum(1 for _ in ds.ordered(batch_size=None))
        best = min(best, time.perf_counter() - t)
    samples = [SmallSample(text=f"sample number {i}", n=i, x=i * 0.5) for i in range(n)]
    out = tempfile.mkdtemp()
    t = time.perf_counter()
    import webdataset as wds
    with wds.writer.ShardWriter(out + "/a-%06d.tar", maxcount=10000, verbose=0) as w:
        for s in samples:
            w.write(s.as_wds)
    write = time.perf_counter() - t
    print(json.dumps({"read_s": best, "count": count, "write_s": write}))
    """
)


def measure_atdata07(python: str, urls: list[str], n: int) -> tuple[dict[str, float] | None, str]:
    """atdata 0.7's read and write figures, or ``None`` and why not."""
    import json

    try:
        out = subprocess.run(
            [python, "-c", _ATDATA07_SCRIPT, json.dumps(urls), str(n)],
            capture_output=True,
            text=True,
            timeout=1800,
            check=False,
        )
    except subprocess.SubprocessError as exc:
        return None, f"atdata 0.7 run failed: {exc}"
    if out.returncode != 0:
        last = (out.stderr.strip().splitlines() or ["no output"])[-1]
        return None, f"atdata 0.7 run failed: {last[:200]}"
    try:
        return json.loads(out.stdout.strip().splitlines()[-1]), ""
    except (ValueError, IndexError):
        return None, "atdata 0.7 run printed no result"


# --- the run ---------------------------------------------------------------------------------------


def _rate(count: int, seconds: float) -> float:
    return count / seconds if seconds > 0 else 0.0


def _mb(urls: list[str]) -> float:
    return sum(os.path.getsize(u) for u in urls) / 1e6


def _read_rows(
    label: str, urls: list[str], sample_type: type, *, small: bool
) -> tuple[list[Row], float]:
    """Rows for one case: ours, ours parse-only, webdataset, tarfile. Returns wds samples/s too."""
    mb = _mb(urls)
    ours_s, n, ours_rss = measure_read(read_ours, urls, sample_type)
    raw_s, _, raw_rss = measure_read(read_ours_raw, urls)
    wds_s, wds_n, wds_rss = measure_read(read_webdataset, urls)
    tar_s, tar_n, tar_rss = measure_read(read_tarfile, urls)
    assert n == wds_n == tar_n, (n, wds_n, tar_n)
    ours, wds_rate, tar_rate = _rate(n, ours_s), _rate(n, wds_s), _rate(n, tar_s)
    rows = [
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
                + ("; aim ≥200k/s" if small else "")
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
    return rows, wds_rate


def _write_rows(label: str, samples: list[Any], maxcount: int) -> list[Row]:
    n = len(samples)
    ours_s = measure_write(write_ours, samples, maxcount)
    tar_s = measure_write(write_wds_tarwriter, samples, maxcount)
    shard_s = measure_write(write_wds_shardwriter, samples, maxcount)
    return [
        make_row(
            f"write {label}: samples/s",
            _rate(n, ours_s),
            "samples/s",
            baseline=_rate(n, shard_s),
            baseline_name="webdataset ShardWriter",
            target=3 * _rate(n, shard_s),
            note="ours also hashes (SHA-256), fsyncs and renames each shard; baseline "
            "ShardWriter is what atdata 0.7 writes through; RSS includes the samples in memory",
            digits=0,
        ),
        make_row(
            f"write {label}: vs TarWriter",
            _rate(n, ours_s),
            "samples/s",
            baseline=_rate(n, tar_s),
            baseline_name="webdataset TarWriter",
            digits=0,
        ),
        *_tmpfs_rows(label, samples, maxcount),
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
    n_small = 20_000 if quick else 100_000
    n_image = 2_000 if quick else 10_000
    n_large = 150 if quick else 1_000
    rows: list[Row] = []
    root = Path(tempfile.mkdtemp(prefix="bench-shards-"))
    try:
        # --- small samples
        small = small_samples(n_small)
        rows += _write_rows(f"{n_small // 1000}k small samples", small, 10_000)
        urls = [i.url for i in write_shards(small, str(root / "small-%06d.tar"), maxcount=10_000)]
        del small
        read_rows, _ = _read_rows("small samples", urls, SmallSample, small=True)
        rows += read_rows
        python = atdata07_python()
        if python is None:
            rows[-4].note += (
                "; atdata 0.7 not measured: no interpreter with it (it needs Python ≥3.12; "
                "set ATDATA07_PYTHON)"
            )
        else:
            result, why = measure_atdata07(python, urls, n_small)
            if why:
                rows[-4].note += f"; {why}"
            if result:
                rows.append(
                    make_row(
                        "read small samples vs atdata 0.7",
                        rows[-4].ours,
                        "samples/s",
                        baseline=_rate(int(result["count"]), result["read_s"]),
                        baseline_name="atdata 0.7",
                        target=10 * _rate(int(result["count"]), result["read_s"]),
                        digits=0,
                    )
                )
                rows.append(
                    make_row(
                        "write small samples vs atdata 0.7",
                        rows[0].ours,
                        "samples/s",
                        baseline=_rate(n_small, result["write_s"]),
                        baseline_name="atdata 0.7 (ShardWriter)",
                        target=3 * _rate(n_small, result["write_s"]),
                        digits=0,
                    )
                )

        # --- 64x64x3 uint8 images
        images = image_samples(n_image)
        rows += _write_rows(f"{n_image // 1000}k 12 KB arrays", images, 2_000)
        urls = [i.url for i in write_shards(images, str(root / "img-%06d.tar"), maxcount=2_000)]
        del images
        read_rows, _ = _read_rows("12 KB arrays", urls, ArraySample, small=False)
        rows += read_rows

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
