"""Preview benchmarks: time to the first sample on screen, and memory while previewing a huge shard.

Figures, measured through the real ``PreviewScreen`` in a headless app (from the moment the screen
is pushed to the moment its first sample is handled on the event loop), each next to a baseline
measured in the same run:

- local shard: time to first sample vs ``webdataset``'s first sample from the same file
  (target ≤ 100 ms, DESIGN.md);
- 1 GB shard over HTTP (100 MB in quick mode), generated on the fly by a local server (nothing on
  disk): time to first sample vs the same samples in a 10 MB shard (target: within 1.5x + 10 ms,
  i.e. independent of the shard's size), with the bytes the server had sent by then; and vs
  downloading the shard first (what a non-streaming preview costs);
- the same over S3 (a real Ceph gateway, when it can start): a 1 GB object (100 MB quick);
- peak RSS of a child process that previews a 10 GB shard (1 GB quick) served by the generator:
  first page, three more pages, a jump through the manifest to the middle, then a jump without
  one that streams past half the shard (target < 200 MB).
"""

from __future__ import annotations

import asyncio
import contextlib
import http.server
import json
import multiprocessing
import re
import statistics
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

try:
    from benchmarks.common import Row, make_row, measure_in_child
except ImportError:  # run as a script from inside benchmarks/
    from common import Row, make_row, measure_in_child  # type: ignore[no-redef]

import msgpack
import numpy as np

from atdata_core.samples import NDArray, encode_ndarray, packable
from atdata_core.shards import BLOCK, tar_header

MB = 1_000_000
MiB = 1 << 20
RUNS = 5
#: The DESIGN.md targets.
LOCAL_TARGET_MS = 100.0
RSS_TARGET_MB = 200.0


# --- a shard generated on the fly -------------------------------------------------------------------


class GeneratedShard:
    """A deterministic tar shard of ``count`` equal-size samples, produced on demand (no disk).

    Every record has the same size (the index is stored as a fixed-width string), so any byte
    range can be produced without producing what comes before it, and a manifest is easy to give.
    """

    def __init__(self, total_bytes: int, sample_bytes: int, *, manifest: bool = True) -> None:
        self.has_manifest = manifest
        pixels = encode_ndarray(np.zeros(sample_bytes // 4, dtype=np.float32))
        marker = b"@@@@@@@@@@"
        template = msgpack.packb({"index": marker.decode(), "pixels": pixels}, use_bin_type=True)
        self._head, self._tail = template.split(marker)
        self.payload_size = len(template)
        self.record_size = BLOCK + ((self.payload_size + BLOCK - 1) & ~(BLOCK - 1))
        self.count = max(1, total_bytes // self.record_size)
        self.size = self.count * self.record_size + 2 * BLOCK
        self._padding = bytes(self.record_size - BLOCK - self.payload_size)

    def key(self, i: int) -> str:
        return f"gen-{i:010d}"

    def record(self, i: int) -> bytes:
        header = tar_header(f"{self.key(i)}.msgpack", self.payload_size)
        return b"".join((header, self._head, b"%010d" % i, self._tail, self._padding))

    def chunks(self, start: int, end: int) -> Iterator[bytes]:
        """Bytes ``start..end`` (inclusive), record by record."""
        end = min(end, self.size - 1)
        pos = start
        while pos <= end:
            i, within = divmod(pos, self.record_size)
            block = bytes(self.size - pos) if i >= self.count else self.record(i)[within:]
            block = block[: end - pos + 1]
            yield block
            pos += len(block)

    def manifest(self) -> bytes:
        samples = [
            {"key": self.key(i), "offset": i * self.record_size, "size": self.payload_size}
            for i in range(self.count)
        ]
        return json.dumps(
            {"format": "atdata-tui/manifest", "version": 1, "samples": samples}
        ).encode()


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        shards: dict[str, GeneratedShard] = self.server.shards  # type: ignore[attr-defined]
        name = self.path.lstrip("/")
        sidecar_of = shards.get(name[: -len(".manifest.json")] + ".tar")
        if name.endswith(".manifest.json") and sidecar_of is not None and sidecar_of.has_manifest:
            body = sidecar_of.manifest()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return
        shard = shards.get(name)
        if shard is None:
            self.send_error(404)
            return
        start, end = 0, shard.size - 1
        match = re.fullmatch(r"bytes=(\d+)-(\d*)", self.headers.get("Range") or "")
        if match:
            start = int(match.group(1))
            end = min(int(match.group(2) or end), end)
            if start >= shard.size:
                self.send_error(416)
                return
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{end}/{shard.size}")
        else:
            self.send_response(200)
        self.send_header("Content-Length", str(end - start + 1))
        self.end_headers()
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            for chunk in shard.chunks(start, end):
                self.wfile.write(chunk)
                self.server.sent += len(chunk)  # type: ignore[attr-defined]


def _serve_forever(shards: dict[str, GeneratedShard], port: Any, sent: Any) -> None:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    server.shards = shards  # type: ignore[attr-defined]
    server.sent = 0  # type: ignore[attr-defined]
    server.daemon_threads = True
    port.value = server.server_address[1]

    def report() -> None:
        while True:
            sent.value = server.sent  # type: ignore[attr-defined]
            time.sleep(0.001)

    threading.Thread(target=report, daemon=True).start()
    server.serve_forever()


class _Served:
    """A generated-shard server in its own process (so it never takes the measured process's
    GIL); ``sent`` is how many shard bytes it has written so far."""

    def __init__(self, port: int, sent: Any) -> None:
        self.server_address = ("127.0.0.1", port)
        self._sent = sent

    @property
    def sent(self) -> int:
        return int(self._sent.value)


@contextlib.contextmanager
def serve(shards: dict[str, GeneratedShard]) -> Iterator[_Served]:
    ctx = multiprocessing.get_context("fork")
    port, sent = ctx.Value("i", 0), ctx.Value("q", 0)
    process = ctx.Process(target=_serve_forever, args=(shards, port, sent), daemon=True)
    process.start()
    deadline = time.monotonic() + 10
    while not port.value:
        if time.monotonic() > deadline or not process.is_alive():
            raise RuntimeError("the shard server did not start")
        time.sleep(0.01)
    try:
        yield _Served(port.value, sent)
    finally:
        process.terminate()
        process.join(5)


def base_url(server: Any) -> str:
    return f"http://127.0.0.1:{server.server_address[1]}"


# --- the screen, headless ---------------------------------------------------------------------------


def _app(index: Any) -> Any:
    from textual.app import App

    class BenchApp(App[None]):
        def __init__(self) -> None:
            super().__init__()
            self.index = index

    return BenchApp()


async def _wait(predicate: Any, pilot: Any, timeout: float = 120.0) -> None:
    """Poll with a bare ``asyncio.sleep``: ``pilot.pause`` waits for every widget of the screen
    to drain its queue, and doing that every millisecond held back a message posted from a
    worker by ~60 ms (S3 previews measured 95 ms that way, 34 ms without). The time itself is
    taken inside the screen's handler, so the polling step does not add to it."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError("the preview did not answer in time")
        await asyncio.sleep(0.001)


async def _first_sample_runs(pilot: Any, entries: list[Any], runs: int) -> list[list[float]]:
    """Seconds from pushing ``PreviewScreen(entry)`` to its first sample, per entry, interleaved."""
    from atdata_tui.screens.preview import PreviewScreen

    app = pilot.app
    out: list[list[float]] = [[] for _ in entries]
    for _ in range(runs + 1):  # the first round warms imports, connections and caches
        for k, entry in enumerate(entries):
            screen = PreviewScreen(entry, watch=False)
            t0 = time.perf_counter()
            await app.push_screen(screen)
            await _wait(lambda s=screen: s.first_sample_s is not None, pilot)
            seconds = screen._request_started + screen.first_sample_s - t0
            if _ > 0:
                out[k].append(seconds)
            app.pop_screen()
            await pilot.pause(0.01)
    return out


def _screen_times(index: Any, entries: list[Any], runs: int = RUNS) -> list[list[float]]:
    async def main() -> list[list[float]]:
        app = _app(index)
        async with app.run_test(size=(100, 30)) as pilot:
            return await _first_sample_runs(pilot, entries, runs)

    return asyncio.run(main())


# --- figures -----------------------------------------------------------------------------------------


@packable
class Caption:
    """A small text sample with an embedding."""

    text: str
    index: int
    embedding: NDArray


def _local(tmp: Path, quick: bool) -> list[Row]:
    from atdata_core.index import Index

    n = 5_000 if quick else 50_000
    with Index(path=tmp / "index.db", atmosphere=None) as index:
        samples = (
            Caption(text=f"caption {i}", index=i, embedding=np.full(64, i, np.float32))
            for i in range(n)
        )
        entry = index.write(samples, name="local-preview", maxcount=n)
        path = entry.data_urls[0]
        (ours,) = _screen_times(index, [entry])
    import webdataset as wds

    from atdata_core.preview import PreviewSample, stream_shard
    from atdata_core.sources import source_for_urls

    def wds_first() -> float:
        t0 = time.perf_counter()
        dataset = wds.WebDataset(path, shardshuffle=False, empty_check=False)
        next(iter(dataset))
        return time.perf_counter() - t0

    def ours_first() -> float:
        t0 = time.perf_counter()
        events = stream_shard(source_for_urls([path]), path, sample_type=Caption, limit=1)
        first = next(e for e in events if isinstance(e, PreviewSample))
        seconds = time.perf_counter() - t0
        events.close()
        assert first.ok
        return seconds

    wds_first()
    ours_first()
    baseline = statistics.median(wds_first() for _ in range(RUNS)) * 1000
    reader = statistics.median(ours_first() for _ in range(RUNS)) * 1000
    ours_ms = statistics.median(ours) * 1000
    return [
        make_row(
            "preview: first sample on screen, local shard",
            ours_ms,
            "ms",
            target=LOCAL_TARGET_MS,
            lower_is_better=True,
            note=f"median of {RUNS}; {n:,} samples in the shard; from push_screen (compose, "
            "mount, schema lookup, worker start) to the first sample decoded with its schema "
            "and handled on the event loop",
        ),
        make_row(
            "preview: first sample read and decoded, local shard",
            reader,
            "ms",
            baseline=baseline,
            baseline_name="webdataset next(iter(...)), raw bytes, not decoded",
            lower_is_better=True,
            note=f"median of {RUNS}; the streaming core alone (source, mmap, tar parse, decode "
            "with the schema), no UI",
        ),
    ]


def _http(quick: bool) -> list[Row]:
    big_bytes = (100 if quick else 1000) * MB
    sample = 256 << 10
    big = GeneratedShard(big_bytes, sample)
    small = GeneratedShard(10 * MB, sample)
    from atdata_core.index import IndexEntry

    with serve({"big.tar": big, "small.tar": small}) as server:
        url = base_url(server)
        entries = [
            IndexEntry.create(name, "atdata://local/schema/None@1.0.0", [f"{url}/{name}.tar"])
            for name in ("big", "small")
        ]
        big_runs, small_runs = _screen_times(None, entries)
        # bytes the server had written when the first sample of the big shard was read
        sent_at_first = _bytes_at_first_sample(entries[0], server)
        t0 = time.perf_counter()
        with urllib.request.urlopen(f"{url}/big.tar") as response:
            while response.read(MiB):
                pass
        download_ms = (time.perf_counter() - t0) * 1000
    big_ms = statistics.median(big_runs) * 1000
    small_ms = statistics.median(small_runs) * 1000
    label = f"{big.size / MB:,.0f} MB"
    return [
        make_row(
            f"preview: first sample over HTTP, {label} shard",
            big_ms,
            "ms",
            baseline=small_ms,
            baseline_name="same samples, 10 MB shard",
            target=1.5 * small_ms + 10,
            lower_is_better=True,
            note=f"median of {RUNS}; {sample >> 10} KiB samples generated by a local server; the "
            f"server had sent {sent_at_first / MiB:.1f} MiB of {big.size / MiB:,.0f} MiB when "
            "the first sample was shown (socket buffers included)",
        ),
        make_row(
            f"preview: first sample over HTTP vs downloading the {label} shard first",
            big_ms,
            "ms",
            baseline=download_ms,
            baseline_name="download the whole shard first",
            lower_is_better=True,
            note="what a preview that downloads before it parses would cost (loopback, no disk)",
        ),
    ]


def _bytes_at_first_sample(entry: Any, server: Any) -> int:
    from atdata_core.preview import PreviewSample, stream_shard
    from atdata_core.sources import source_for_urls

    time.sleep(0.2)  # let the counter settle after the earlier runs
    before = server.sent
    source = source_for_urls(entry.data_urls)
    events = stream_shard(source, entry.data_urls[0], limit=1)
    for event in events:
        if isinstance(event, PreviewSample):
            time.sleep(0.01)  # the counter is published every millisecond
            sent = server.sent - before
            events.close()
            return sent
    return server.sent - before


def _s3(quick: bool) -> list[Row]:
    figure = f"preview: first sample over S3, {'100 MB' if quick else '1 GB'} object"
    root = Path(__file__).resolve().parents[1]
    if str(root) not in sys.path:
        sys.path.insert(0, str(root))
    try:
        from tests.services import CephS3Server
    except ImportError as exc:
        return [make_row(figure, None, "ms", note=f"skipped: tests/services not importable: {exc}")]
    from atdata_core.index import IndexEntry
    from atdata_core.stores.s3 import S3DataStore

    sample = 256 << 10
    with ExitStack() as stack:
        try:
            server = stack.enter_context(
                CephS3Server(memstore_bytes=(2 if quick else 4) * (1 << 30))
            )
        except Exception as exc:
            return [make_row(figure, None, "ms", note=f"skipped: the gateway did not start: {exc}")]
        server.client().create_bucket(Bucket="bench-preview")
        store = S3DataStore(
            bucket="bench-preview",
            endpoint=server.endpoint_url,
            region=server.region,
            credentials=server.credentials,
        )
        stack.callback(store.close)
        urls = []
        for name, size in (("big", (100 if quick else 1000) * MB), ("small", 10 * MB)):
            shard = GeneratedShard(size, sample)
            output = store.shard_writer(name, maxcount=None).open_output(0)
            for chunk in shard.chunks(0, shard.size - 1):
                output.write(chunk)
            urls.append(output.finish())
            publish = getattr(output, "publish", None)
            if publish is not None:
                publish()
        entries = [
            IndexEntry.create(n, "atdata://local/schema/None@1.0.0", [u])
            for n, u in zip(("big", "small"), urls, strict=True)
        ]
        big_runs, small_runs = _screen_times(None, entries)
    big_ms = statistics.median(big_runs) * 1000
    small_ms = statistics.median(small_runs) * 1000
    return [
        make_row(
            figure,
            big_ms,
            "ms",
            baseline=small_ms,
            baseline_name="same samples, 10 MB object",
            target=1.5 * small_ms + 10,
            lower_is_better=True,
            note=f"median of {RUNS}; real Ceph RADOS gateway; {sample >> 10} KiB samples",
        )
    ]


def _preview_huge(url: str, bare_url: str, count: int) -> dict[str, Any]:
    """In a child: preview a huge HTTP shard through the screen; what was seen, and how long.

    ``url`` has a manifest sidecar; ``bare_url`` serves the same bytes without one.
    """
    from atdata_core.index import IndexEntry
    from atdata_tui.screens.preview import PreviewScreen

    manifest_url = url[: -len(".tar")] + ".manifest.json"
    with_manifest = IndexEntry.create(
        "huge", "atdata://local/schema/None@1.0.0", [url], {"manifests": {url: manifest_url}}
    )
    without = IndexEntry.create("huge-streamed", "atdata://local/schema/None@1.0.0", [bare_url])
    seen: dict[str, Any] = {}

    async def main() -> None:
        app = _app(None)
        async with app.run_test(size=(100, 30)) as pilot:
            for entry, label in ((with_manifest, "manifest"), (without, "stream")):
                screen = PreviewScreen(entry, watch=False)
                await app.push_screen(screen)

                def done(s: Any = screen) -> bool:
                    return not s.loading and s.end is not None

                await _wait(done, pilot, timeout=600)
                kept = [len(screen.samples)]
                if label == "manifest":
                    for _ in range(3):
                        await pilot.press("n")
                        await pilot.pause(0.01)
                        await _wait(done, pilot, timeout=600)
                        kept.append(len(screen.samples))
                t0 = time.perf_counter()
                screen.jump_to(0, count // 2)
                await _wait(lambda s=screen: bool(s.samples), pilot, timeout=900)
                jump_s = time.perf_counter() - t0
                await _wait(done, pilot, timeout=900)
                seen[label] = {
                    "kept": kept,
                    "jump_s": jump_s,
                    "first_key": screen.samples[0].key if screen.samples else None,
                }
                app.pop_screen()
                await pilot.pause(0.05)

    asyncio.run(main())
    return seen


def _rss(quick: bool) -> list[Row]:
    size = (1 if quick else 10) * 1000 * MB
    shard = GeneratedShard(size, 1 * MiB)
    bare = GeneratedShard(size, 1 * MiB, manifest=False)
    with serve({"huge.tar": shard, "bare.tar": bare}) as server:
        url = f"{base_url(server)}/huge.tar"
        seen, peak = measure_in_child(
            _preview_huge, url, f"{base_url(server)}/bare.tar", shard.count
        )
    expected = shard.key(shard.count // 2)
    ok = all(v["first_key"] == expected for v in seen.values())
    manifest, stream = seen["manifest"], seen["stream"]
    return [
        make_row(
            f"preview: peak RSS previewing a {shard.size / 1e9:.0f} GB shard",
            peak,
            "MB",
            target=RSS_TARGET_MB,
            lower_is_better=True,
            note=f"{shard.count:,} samples of 1 MiB over HTTP; pages kept {manifest['kept']} "
            f"samples (the 64 MB cap); the sample #{shard.count // 2:,} was on screen "
            f"{manifest['jump_s'] * 1000:.0f} ms after the jump with the manifest (one ranged "
            f"GET), {stream['jump_s']:.1f} s without one (streaming past half the shard)"
            + ("" if ok else "; WRONG SAMPLE after a jump"),
        )
    ]


def run(quick: bool) -> list[Row]:
    """Time to first sample (local, HTTP, S3) and peak RSS while previewing a huge shard."""
    rows: list[Row] = []
    tmp = Path(tempfile.mkdtemp(prefix="atdata-bench-preview-"))
    benches = (
        ("preview: peak RSS", lambda: _rss(quick)),  # first: its child forks a small parent
        ("preview: local", lambda: _local(tmp, quick)),
        ("preview: HTTP", lambda: _http(quick)),
        ("preview: S3", lambda: _s3(quick)),
    )
    try:
        for name, bench in benches:
            try:
                rows.extend(bench())
            except Exception as exc:  # one broken figure must not hide the others
                rows.append(make_row(name, None, "", note=f"failed: {type(exc).__name__}: {exc}"))
    finally:
        import shutil

        shutil.rmtree(tmp, ignore_errors=True)
    return rows


if __name__ == "__main__":
    for row in run(quick="--quick" in sys.argv):
        print(row)
