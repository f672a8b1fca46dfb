"""S3 benchmarks against a real Ceph RADOS Gateway: throughput and time to first sample.

Figures, each measured side by side with its baseline in the same run, on the same gateway:
- write MB/s: ``S3DataStore.write_shards`` of large-array samples (encoding, tar framing, SHA-256
  and multipart upload, overlapped) vs the two-step way with plain boto3 (the same samples to
  local shards, then ``upload_fileobj``); and our multipart output alone fed the finished shard
  bytes vs ``upload_fileobj`` of those very bytes (what the S3 side costs, without encoding);
- read MB/s: iterating a ``Dataset`` over those shards (parsing and decoding every array) vs plain
  boto3 ``get_object`` of the same objects, read in 1 MiB chunks;
- time to first sample of a 1 GB shard (100 MB in quick mode) vs a 10 MB shard of the same
  samples: streaming means it must not depend on the shard's size (DESIGN.md: one round trip
  plus about the bytes of that sample; a 1 GB shard is never downloaded to show its first sample).

The gateway is started with the test suite's helper (``tests/services``); where it cannot start
the rows are skipped with a note. Its object store lives in memory (memstore), and the full run
writes about 1.6 GB: expect the OSD to hold several GB of RAM until the run ends.
"""

from __future__ import annotations

import shutil
import statistics
import sys
import tempfile
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

try:
    from benchmarks.common import Row, make_row, timed
except ImportError:  # run as a script from inside benchmarks/
    from common import Row, make_row, timed  # type: ignore[no-redef]

import numpy as np

from atdata_core.dataset import Dataset
from atdata_core.samples import NDArray, packable
from atdata_core.shards import ShardWriter

MB = 1_000_000
MiB = 1 << 20
#: Throughput: ours must reach this share of plain boto3 on the same bytes.
THROUGHPUT_SHARE = 0.8
TTFS_RUNS = 7


@packable
class Frame:
    """One large array sample (the layout of image or tensor datasets)."""

    index: int
    pixels: NDArray


def _frames(n: int, size: int) -> Iterator[Frame]:
    base = np.arange(size // 4, dtype=np.float32)
    for i in range(n):
        yield Frame(index=i, pixels=base + i)


class _Gateway:
    """A Ceph RADOS Gateway for the run, or the reason there is none."""

    def __init__(self, stack: ExitStack, memstore_bytes: int) -> None:
        self.server: Any = None
        self.note = ""
        root = Path(__file__).resolve().parents[1]
        if str(root) not in sys.path:
            sys.path.insert(0, str(root))
        try:
            from tests.services import CephS3Server
        except ImportError as exc:
            self.note = f"tests/services not importable: {exc}"
            return
        try:
            self.server = stack.enter_context(CephS3Server(memstore_bytes=memstore_bytes))
        except Exception as exc:
            self.note = f"the Ceph gateway did not start: {str(exc).splitlines()[0]}"

    def store(self, bucket: str, **options: Any) -> Any:
        from atdata_core.stores.s3 import S3DataStore

        self.server.client().create_bucket(Bucket=bucket)
        return S3DataStore(
            bucket=bucket,
            endpoint=self.server.endpoint_url,
            region=self.server.region,
            credentials={
                "access_key": self.server.access_key,
                "secret_key": self.server.secret_key,
            },
            **options,
        )


def _size_of(store: Any, url: str) -> int:
    from atdata_core.stores.s3 import parse_s3_url

    return int(
        store.client.head_object(Bucket=store.bucket, Key=parse_s3_url(url)[1])["ContentLength"]
    )


def _read_all(body: Any) -> int:
    """Read a ``get_object`` body in 1 MiB chunks (how one reads a big object with plain boto3)."""
    total = 0
    while chunk := body.read(MiB):
        total += len(chunk)
    return total


def _throughput(gateway: _Gateway, tmp: Path, quick: bool) -> list[Row]:
    from boto3.s3.transfer import TransferConfig

    from atdata_core.stores.s3 import S3ShardOutput, parse_s3_url

    total = (64 if quick else 256) * MiB
    repeats = 2 if quick else 1  # the gateway keeps deleted data in RAM for a while: few repeats
    sample = 4 * MiB
    n = total // sample
    store = gateway.store("bench-throughput")
    raw = gateway.server.client()  # plain boto3, the fixture's settings
    config = TransferConfig()  # boto3's defaults: 8 MiB parts, 10 threads
    times: dict[str, list[float]] = {name: [] for name in ("write", "local", "upload")}
    times.update(transport=[], read=[], base_read=[])
    nbytes = 0
    try:
        for rep in range(repeats):  # interleaved, so the shared machine's drift hits all alike
            # ours: samples → shards in S3 (256 MiB shards: multipart, 4 parts in flight)
            with timed() as t:
                urls = store.write_shards(
                    _frames(n, sample), prefix=f"ours{rep}", maxcount=None, maxsize=256 * MiB
                )
            times["write"].append(t.seconds)
            nbytes = sum(_size_of(store, u) for u in urls)

            # baseline, the two-step way: the same samples to local shards, then upload_fileobj
            with timed() as t:
                local = ShardWriter(str(tmp / "data-%06d.tar"), maxcount=None, maxsize=256 * MiB)
                local.write_all(_frames(n, sample))
                infos = local.commit()
            times["local"].append(t.seconds)
            assert sum(i.bytes for i in infos) == nbytes, "local shards differ from ours"
            base_keys = [f"baseline{rep}/data-{i:06d}.tar" for i in range(len(infos))]
            with timed() as t:
                for info, key in zip(infos, base_keys, strict=True):
                    with open(info.url, "rb") as f:
                        raw.upload_fileobj(f, store.bucket, key, Config=config)
            times["upload"].append(t.seconds)

            # ours, transport only: the same bytes fed to S3ShardOutput in 1 MiB writes
            transport_keys = [f"transport{rep}/data-{i:06d}.tar" for i in range(len(infos))]
            with timed() as t:
                for info, key in zip(infos, transport_keys, strict=True):
                    output = S3ShardOutput(store, key)
                    with open(info.url, "rb") as f:
                        while block := f.read(MiB):
                            output.write(block)
                    output.finish()
            times["transport"].append(t.seconds)
            for info in infos:
                Path(info.url).unlink()

            # reads: ours parses and decodes every array; the baseline only reads the bytes
            with timed() as t:
                count = sum(1 for frame in Dataset(urls, Frame) if frame.pixels.size)
            times["read"].append(t.seconds)
            assert count == n, f"read {count} of {n} samples"
            with timed() as t:
                got = sum(
                    _read_all(raw.get_object(Bucket=store.bucket, Key=key)["Body"])
                    for key in base_keys
                )
            times["base_read"].append(t.seconds)
            assert got == nbytes

            keys = [parse_s3_url(u)[1] for u in urls] + base_keys + transport_keys
            raw.delete_objects(Bucket=store.bucket, Delete={"Objects": [{"Key": k} for k in keys]})
    finally:
        store.close()
    mb = nbytes / MB
    rate = {name: mb / min(seconds) for name, seconds in times.items()}
    two_step = mb / min(a + b for a, b in zip(times["local"], times["upload"], strict=True))
    best = f"best of {repeats}; " if repeats > 1 else ""
    return [
        make_row(
            f"s3 write: {mb:,.0f} MB of 4 MiB array samples",
            rate["write"],
            "MB/s",
            baseline=two_step,
            baseline_name="local shards, then boto3 upload_fileobj",
            target=THROUGHPUT_SHARE * two_step,
            note=f"{best}samples to S3 shards: encoding, framing, SHA-256 and multipart upload "
            f"(8 MiB parts, 4 in flight) overlap; the baseline does the same in two steps "
            f"(local shards {rate['local']:,.0f} MB/s, upload {rate['upload']:,.0f} MB/s); "
            f"target {THROUGHPUT_SHARE:.0%} of the baseline",
        ),
        make_row(
            f"s3 write, transport only: {mb:,.0f} MB of shard bytes",
            rate["transport"],
            "MB/s",
            baseline=rate["upload"],
            baseline_name="boto3 upload_fileobj (same bytes)",
            target=THROUGHPUT_SHARE * rate["upload"],
            note=f"{best}S3ShardOutput fed the finished shard bytes in 1 MiB writes (no "
            "encoding): what the multipart output itself costs; target "
            f"{THROUGHPUT_SHARE:.0%} of the baseline",
        ),
        make_row(
            f"s3 read: {mb:,.0f} MB of 4 MiB array samples",
            rate["read"],
            "MB/s",
            baseline=rate["base_read"],
            baseline_name="boto3 get_object, read in 1 MiB chunks (same bytes)",
            target=THROUGHPUT_SHARE * rate["base_read"],
            note=f"{best}ours streams, parses and decodes every sample; the baseline only "
            f"reads the bytes; target {THROUGHPUT_SHARE:.0%} of the baseline",
        ),
    ]


def _first_sample(url: str) -> tuple[float, int]:
    """Seconds from a new Dataset to its first sample, and the bytes that took."""
    with timed() as t:
        ds = Dataset([url], Frame)
        iterator = iter(ds)
        first = next(iterator)
    elapsed = t.seconds
    iterator.close()
    assert first.index == 0
    return elapsed, int(getattr(ds.source, "bytes_read", 0))


def _time_to_first_sample(gateway: _Gateway, quick: bool) -> list[Row]:
    big_mb = 100 if quick else 1000
    sample = 256 << 10
    store = gateway.store("bench-first-sample")
    try:
        (big,) = store.write_shards(
            _frames(big_mb * MB // sample, sample), prefix="big", maxcount=None
        )
        (small,) = store.write_shards(
            _frames(10 * MB // sample, sample), prefix="small", maxcount=None
        )
        big_size, small_size = _size_of(store, big), _size_of(store, small)
        _first_sample(small)  # warm the client and its connection pool
        big_runs, small_runs = [], []
        big_bytes = small_bytes = 0
        for _ in range(TTFS_RUNS):  # interleaved, so drift hits both alike
            seconds, big_bytes = _first_sample(big)
            big_runs.append(seconds)
            seconds, small_bytes = _first_sample(small)
            small_runs.append(seconds)
        store.delete_urls([big, small])
    finally:
        store.close()
    big_ms = statistics.median(big_runs) * 1000
    small_ms = statistics.median(small_runs) * 1000
    return [
        make_row(
            f"s3 time to first sample: {big_size / MB:,.0f} MB shard",
            big_ms,
            "ms",
            baseline=small_ms,
            baseline_name=f"same samples, {small_size / MB:,.0f} MB shard",
            target=1.5 * small_ms + 10,
            lower_is_better=True,
            note=f"median of {TTFS_RUNS}; one GET each; read {big_bytes / MiB:.1f} MiB of the "
            f"big shard vs {small_bytes / MiB:.1f} MiB of the small one ({sample >> 10} KiB "
            "samples); target: within 1.5x + 10 ms of the small shard",
        )
    ]


def run(quick: bool) -> list[Row]:
    """S3 write/read throughput and time to first sample, against plain boto3 and a small shard."""
    figures = [
        ("s3 write: array samples", "MB/s"),
        ("s3 write, transport only", "MB/s"),
        ("s3 read: array samples", "MB/s"),
        (f"s3 time to first sample: {'100 MB' if quick else '1 GB'} shard", "ms"),
    ]
    tmp = Path(tempfile.mkdtemp(prefix="atdata-bench-s3-"))
    rows: list[Row] = []
    try:
        with ExitStack() as stack:
            memstore = (2 if quick else 5) * (1 << 30)
            gateway = _Gateway(stack, memstore)
            if gateway.server is None:
                return [make_row(f, None, u, note=f"skipped: {gateway.note}") for f, u in figures]
            for bench in (
                lambda: _throughput(gateway, tmp, quick),
                lambda: _time_to_first_sample(gateway, quick),
            ):
                try:
                    rows.extend(bench())
                except Exception as exc:  # one broken figure must not hide the others
                    rows.append(
                        make_row(
                            "s3 benchmark", None, "", note=f"failed: {type(exc).__name__}: {exc}"
                        )
                    )
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return rows


if __name__ == "__main__":
    for row in run(quick="--quick" in sys.argv):
        print(row)
