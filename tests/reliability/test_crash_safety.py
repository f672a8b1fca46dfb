"""SIGKILL a writer at many points of ``Index.write``: the index never points at partial data.

Each round starts a real process that writes datasets in a loop and kills it after a different
delay. Afterwards every entry's shards must exist and match their checksums, and ``gc`` must find
and remove exactly the leftovers (orphan shards, ``.partial-`` files) so the store is clean.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from atdata_core.gc import collect_garbage
from atdata_core.index import Index

WRITER = r"""
import sys, numpy as np
from atdata_core.index import Index
from atdata_core.samples import packable, NDArray

@packable
class Blob:
    data: NDArray
    i: int

index = Index(path=sys.argv[1])
print("ready", flush=True)
for round_ in range(1000):
    samples = (Blob(data=np.full(4096, i % 251, np.uint8), i=i) for i in range(600))
    index.write(samples, name=f"ds-{sys.argv[2]}-{round_}", maxcount=100)
"""

ROUNDS = 12


def _run_and_kill(db: Path, tag: str, delay: float) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(db), tag], stdout=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "ready"
        time.sleep(delay)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)


@pytest.mark.slow
def test_sigkill_during_writes_never_leaves_a_broken_entry(tmp_path: Path) -> None:
    db = tmp_path / "index.db"
    Index(path=db).close()
    # Delays spread over the life of a write (one write of 6 shards takes tens of milliseconds).
    delays = [0.005 + 0.037 * i for i in range(ROUNDS)]
    for i, delay in enumerate(delays):
        _run_and_kill(db, str(i), delay)

    index = Index(path=db)
    entries = list(index.iter_entries())
    assert entries, "the writer never completed a dataset: the kill points are too early"
    for entry in entries:
        assert entry.samples == 600 and entry.shards == 6
        report = index.verify(entry)
        assert report.ok, [s for s in report.shards if s.status != "ok"]

    dry = collect_garbage(index, dry_run=True, min_age=0)
    # The kills must have landed mid-write at least once, or this test proves nothing.
    assert dry.total > 0
    referenced = {u for e in entries for u in e.data_urls}
    assert not set(dry.orphan_shards) & referenced
    done = collect_garbage(index, dry_run=False, min_age=0)
    assert done.total == dry.total
    remaining = [
        str(p) for p in (tmp_path / "shards").rglob("*") if p.is_file() and str(p) not in referenced
    ]
    assert remaining == []
    assert collect_garbage(index, dry_run=True, min_age=0).total == 0
    # Entries are still readable after gc.
    for entry in entries:
        assert index.verify(entry).ok


def test_gc_leaves_young_files_alone(tmp_path: Path) -> None:
    index = Index(path=tmp_path / "index.db")
    shard_dir = tmp_path / "shards" / "x" / "tok"
    shard_dir.mkdir(parents=True)
    orphan = shard_dir / "data-000000.tar"
    orphan.write_bytes(b"\0" * 1024)
    partial = shard_dir / ".data-000001.tar.partial-abc"
    partial.write_bytes(b"\0" * 10)
    report = collect_garbage(index, dry_run=False)
    assert report.total == 0 and report.skipped_young == 2
    old = time.time() - 7200
    os.utime(orphan, (old, old))
    os.utime(partial, (old, old))
    report = collect_garbage(index, dry_run=False)
    assert report.orphan_shards == [str(orphan)] and report.partial_files == [str(partial)]
    assert not orphan.exists() and not partial.exists()


def test_gc_command_lists_then_deletes(tmp_path: Path) -> None:
    import json

    exe = str(Path(sys.executable).with_name("atdata-tui"))
    env = {**os.environ, "ATDATA_TUI_HOME": str(tmp_path / "home")}
    store = tmp_path / "home" / "data" / "shards" / "lost" / "tok"
    store.mkdir(parents=True)
    (store / "data-000000.tar").write_bytes(b"\0" * 1024)
    listed = subprocess.run(
        [exe, "gc", "--min-age", "0", "--json"], env=env, capture_output=True, text=True, timeout=60
    )
    assert listed.returncode == 0, listed.stderr
    assert json.loads(listed.stdout)["orphan_shards"] == [str(store / "data-000000.tar")]
    assert (store / "data-000000.tar").exists()
    deleted = subprocess.run(
        [exe, "gc", "--min-age", "0", "--delete"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert deleted.returncode == 0 and "removed 1" in deleted.stderr
    assert not (store / "data-000000.tar").exists()
