"""SIGKILL a writer mid-way through S3 writes and PDS promotions: nothing points at partial data.

The same harness as ``test_crash_safety.py``, against the real servers:

- **S3**: a process runs ``Index.write`` in a loop into a repository whose store is
  ``S3DataStore`` on the Ceph RADOS gateway (shards of several MB, so multipart uploads are in
  flight at some kills; small one-PUT shards and manifests too) and is killed after a different
  delay each round. Every surviving entry must verify (SHA-256 of every shard, read back through
  S3) and be complete; ``gc`` must find the leftovers (orphan shards, incomplete multipart
  uploads), none of them referenced, and after ``gc`` the bucket holds only referenced objects.
- **PDS**: a process logs in to the local PDS and promotes local entries (and publishes some
  datasets straight to blobs with ``promote_dataset``) in a loop, killed after a different delay
  each round. Every entry record must reference blobs that exist and hash to their recorded
  SHA-256 and CID, every label must point at an existing entry; re-running the promotions to
  completion (twice) must create no duplicate schema, entry or label record.

Credentials reach the subprocesses through environment variables, never argv.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from atdata_core.gc import collect_garbage
from atdata_core.index import Index
from atdata_core.samples import NDArray, packable
from atdata_core.stores.s3 import MIN_PART_SIZE, S3DataStore, forget_bucket, parse_s3_url

MiB = 1 << 20


def _run_and_kill(script: str, args: list[str], env: dict[str, str], delay: float) -> list[str]:
    """Start ``script``, wait for its "ready" line, SIGKILL it ``delay`` s later; its output."""
    proc = subprocess.Popen(
        [sys.executable, "-c", script, *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert proc.stdout is not None and proc.stderr is not None
        first = proc.stdout.readline().strip()
        if first != "ready":
            proc.kill()
            pytest.fail(f"the child did not start: {first!r}\n{proc.stderr.read()[-3000:]}")
        time.sleep(delay)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    out = proc.stdout.read().splitlines()
    err = proc.stderr.read()
    # a child that died by itself (a bug in the script, a refused write) is not a kill
    assert proc.returncode == -signal.SIGKILL, err[-3000:]
    proc.stdout.close()
    proc.stderr.close()
    return out


def _child_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    return {**os.environ, "ATDATA_TUI_HOME": str(tmp_path / "home"), **extra}


# --- S3 ----------------------------------------------------------------------------------------

S3_WRITER = r"""
import os, sys, numpy as np
from atdata_core.index import Index
from atdata_core.samples import packable, NDArray
from atdata_core.stores.s3 import S3DataStore, MIN_PART_SIZE

@packable
class Frame:
    data: NDArray
    i: int

db, bucket, endpoint, region, tag = sys.argv[1:6]
store = S3DataStore(
    bucket=bucket,
    endpoint=endpoint,
    region=region,
    credentials={
        "access_key": os.environ["ATDATA_TEST_S3_ACCESS_KEY"],
        "secret_key": os.environ["ATDATA_TEST_S3_SECRET_KEY"],
    },
    prefix="crash",
    part_size=MIN_PART_SIZE,
)
store.client  # boto3 is imported and the client made before "ready"
index = Index(path=db, data_store=store, atmosphere=None)
print("ready", flush=True)
for round_ in range(1000):
    if round_ % 3 == 2:  # small shards: one put_object each, with manifests
        samples = (Frame(data=np.full(64 << 10, i % 251, np.uint8), i=i) for i in range(40))
        name = f"small-{tag}-{round_}"
        index.write(samples, name=name, maxcount=10, manifest=True)
    else:  # 3 shards of 6 MiB: multipart uploads of a 5 MiB part and a 1 MiB part
        samples = (Frame(data=np.full(1 << 20, i % 251, np.uint8), i=i) for i in range(18))
        name = f"big-{tag}-{round_}"
        index.write(samples, name=name, maxcount=6, manifest=round_ % 2 == 1)
    print("wrote", name, flush=True)
"""

#: (samples, shards) of each kind of dataset the writer makes.
S3_SHAPES = {"big": (18, 3), "small": (40, 4)}
S3_ROUNDS = 10


@pytest.fixture
def s3_index(tmp_path: Path, s3_server: Any, s3_bucket: str) -> Iterator[Index]:
    """The test's own view of the index the writer fills (its store registers the bucket)."""
    store = S3DataStore(
        bucket=s3_bucket,
        endpoint=s3_server.endpoint_url,
        region=s3_server.region,
        credentials=s3_server.credentials,
        prefix="crash",
        part_size=MIN_PART_SIZE,
    )
    index = Index(path=tmp_path / "index.db", data_store=store, atmosphere=None)
    yield index
    index.close()
    store.close()
    forget_bucket(s3_bucket)


@pytest.mark.slow
def test_sigkill_during_s3_writes_never_leaves_a_broken_entry(
    tmp_path: Path, s3_server: Any, s3_bucket: str, s3_index: Index
) -> None:
    started = time.monotonic()
    env = _child_env(
        tmp_path,
        ATDATA_TEST_S3_ACCESS_KEY=s3_server.access_key,
        ATDATA_TEST_S3_SECRET_KEY=s3_server.secret_key,
    )
    db = str(tmp_path / "index.db")
    # Delays spread over the life of a write (an 18 MiB dataset takes about half a second).
    delays = [0.05 + 0.23 * i for i in range(S3_ROUNDS)]
    wrote = 0
    for i, delay in enumerate(delays):
        out = _run_and_kill(
            S3_WRITER,
            [db, s3_bucket, s3_server.endpoint_url, s3_server.region, str(i)],
            env,
            delay,
        )
        wrote += sum(line.startswith("wrote ") for line in out)

    index = s3_index
    entries = list(index.iter_entries())
    assert entries, "the writer never completed a dataset: the kill points are too early"
    assert len(entries) >= wrote  # an entry reported written is there
    for entry in entries:
        samples, shards = S3_SHAPES[entry.name.split("-")[0]]
        assert (entry.samples, entry.shards) == (samples, shards), entry.name
        assert all(u.startswith(f"s3://{s3_bucket}/crash/") for u in entry.data_urls)
        report = index.verify(entry)  # re-hashes every shard through S3
        assert report.ok, [s for s in report.shards if s.status != "ok"]

    referenced = {u for e in entries for u in e.data_urls} | {
        m for e in entries for m in e.manifests.values()
    }
    referenced_keys = {parse_s3_url(u)[1] for u in referenced}

    dry = collect_garbage(index, dry_run=True, min_age=0)
    # The kills must have landed mid-write at least once, or this test proves nothing.
    assert dry.total > 0
    assert not set(dry.orphan_shards) & referenced
    assert not {u.split(" ", 1)[0] for u in dry.incomplete_uploads} & referenced
    assert set(s3_server.open_uploads(s3_bucket)) == {
        parse_s3_url(u.split(" ", 1)[0])[1] for u in dry.incomplete_uploads
    }
    done = collect_garbage(index, dry_run=False, min_age=0)
    assert done.total == dry.total and done.removed
    assert set(s3_server.keys(s3_bucket)) == referenced_keys
    assert s3_server.open_uploads(s3_bucket) == []
    assert collect_garbage(index, dry_run=True, min_age=0).total == 0
    for entry in entries:  # still readable after gc
        assert index.verify(entry).ok
    print(
        f"\nS3: {S3_ROUNDS} kills, {len(entries)} complete entries, "
        f"{len(dry.orphan_shards)} orphan shards + {len(dry.incomplete_uploads)} incomplete "
        f"uploads cleaned, {time.monotonic() - started:.1f}s"
    )


# --- PDS ---------------------------------------------------------------------------------------

PROMOTER = r"""
import os, sys, time
from atdata_core.atmosphere import AtmosphereBackend, AtmosphereClient
from atdata_core.atmosphere.lexicons import LABEL
from atdata_core.index import Index

db, handle, pds, plc = sys.argv[1:5]
direct = set(sys.argv[5].split(","))
client = AtmosphereClient(plc=plc, handle_resolver=pds, session_file=None, timeout=20.0)
client.login(handle, os.environ["ATDATA_TEST_PDS_PASSWORD"], save=False)
backend = AtmosphereBackend(client)
index = Index(path=db, atmosphere=backend)
names = sorted(e.name for e in index.iter_entries())
labels = {v.value.get("name") for v in client.iter_records(client.did, LABEL)}
t0 = time.monotonic()
print("ready", flush=True)
for name in names:
    # like a user retrying: what is not done yet (a killed promotion resumes here)
    state = index.resolve_entry(name).metadata.get("atproto") or {}
    if state.get("status") != "done":
        index.promote_entry(name)
        print("promoted", name, f"{time.monotonic() - t0:.2f}", flush=True)
    if name in direct and f"direct-{name}" not in labels:
        backend.promote_dataset(index.get_dataset(name), name=f"direct-{name}", maxcount=4)
        print("published", f"direct-{name}", f"{time.monotonic() - t0:.2f}", flush=True)
print("all done", f"{time.monotonic() - t0:.2f}", flush=True)
time.sleep(3600)
"""


@packable
class Reading:
    """A sample of about 128 KB: shards of four are blobs of about 512 KB."""

    data: NDArray
    i: int


PDS_DATASETS = 32
PDS_SAMPLES, PDS_SHARDS = 16, 4
PDS_ROUNDS = 8


def _readings(seed: int) -> Iterator[Reading]:
    for i in range(PDS_SAMPLES):
        yield Reading(data=np.full(128 << 10, (seed * 31 + i) % 251, np.uint8), i=i)


def _records(client: Any, did: str, collection: str) -> list[Any]:
    return list(client.iter_records(did, collection))


def _check_published(index: Index, client: Any, did: str) -> dict[str, list[Any]]:
    """Every entry's blobs exist and hash to their recorded SHA-256 and CID; labels resolve."""
    from atdata_core.atmosphere import blob_cid
    from atdata_core.atmosphere.client import parse_blob_url
    from atdata_core.atmosphere.lexicons import ENTRY, LABEL, SCHEMA

    found = {c: _records(client, did, c) for c in (SCHEMA, ENTRY, LABEL)}
    for view in found[ENTRY]:
        blobs = view.value["storage"]["blobs"]
        remote = index.resolve_entry(view.uri)
        assert (remote.samples, remote.shards) == (PDS_SAMPLES, PDS_SHARDS), view.uri
        report = index.verify(remote)  # streams every blob through getBlob and hashes it
        assert report.ok, [s for s in report.shards if s.status != "ok"]
        assert len(report.shards) == len(blobs) == PDS_SHARDS
        for check, blob in zip(report.shards, blobs, strict=True):
            parsed = parse_blob_url(check.url)
            assert parsed is not None and parsed[2] == blob["blob"]["ref"]["$link"]
            assert blob["checksum"]["digest"] == check.actual
            assert blob_cid(check.actual or "") == parsed[2]
            assert check.bytes == blob["blob"]["size"]
    entry_uris = {v.uri for v in found[ENTRY]}
    for view in found[LABEL]:
        assert view.value["datasetUri"] in entry_uris, view.uri  # no label to a missing entry
        assert client.get_record_uri(view.value["datasetUri"]) is not None
    return found


def _no_duplicates(found: dict[str, list[Any]], names: list[str] | None = None) -> None:
    """One schema record per name, version and content; at most (or, given ``names``, exactly)
    one entry and one label per dataset name."""
    from atdata_core.atmosphere.lexicons import ENTRY, LABEL, SCHEMA
    from atdata_core.atmosphere.records import schema_signature

    schemas = Counter(
        (v.value["name"], v.value["version"], schema_signature(v.value)) for v in found[SCHEMA]
    )
    assert set(schemas.values()) <= {1}, schemas
    entries = Counter(v.value["name"] for v in found[ENTRY])
    labels = Counter(v.value["name"] for v in found[LABEL])
    if names is None:
        assert set(entries.values()) <= {1}, entries
        assert set(labels.values()) <= {1} and set(labels) <= set(entries), labels
    else:
        assert entries == labels == Counter(names)


@pytest.mark.slow
def test_sigkill_during_promotion_leaves_no_broken_record_and_a_retry_no_duplicate(
    tmp_path: Path, pds_server: Any, pds_account: Any
) -> None:
    from atdata_core.atmosphere import AtmosphereBackend, AtmosphereClient

    started = time.monotonic()
    client = AtmosphereClient(
        plc=pds_server.plc_url, handle_resolver=pds_server.url, session_file=None, timeout=20.0
    )
    client.login(pds_account.handle, pds_account.password, save=False)
    did = pds_account.did
    backend = AtmosphereBackend(client)
    db = tmp_path / "local" / "index.db"
    index = Index(path=db, atmosphere=backend)
    names = [f"ds-{k:02d}" for k in range(PDS_DATASETS)]
    for k, name in enumerate(names):
        index.write(_readings(k), name=name, maxcount=PDS_SAMPLES // PDS_SHARDS)
    direct = names[::4]  # also published straight to blobs with promote_dataset
    every_name = names + [f"direct-{n}" for n in direct]

    env = _child_env(
        tmp_path, ATDATA_TEST_PDS_PASSWORD=pds_account.password, TMPDIR=str(tmp_path / "spool")
    )
    (tmp_path / "spool").mkdir()
    args = [str(db), pds_account.handle, pds_server.url, pds_server.plc_url, ",".join(direct)]
    # Delays spread over the work (promoting one 2 MB dataset takes about 0.1 s here).
    delays = [0.05 + 0.1 * i for i in range(PDS_ROUNDS)]
    killed_mid_promotion = 0  # rounds that left a local entry's promotion in progress
    idle_kills = 0  # rounds whose child had finished everything before the kill
    for delay in delays:
        out = _run_and_kill(PROMOTER, args, env, delay)
        idle_kills += any(line.startswith("all done") for line in out)
        states = [
            ((e.metadata or {}).get("atproto") or {}).get("status") for e in index.iter_entries()
        ]
        killed_mid_promotion += "in_progress" in states
    # The kills must have landed mid-promotion at least once, or this test proves nothing.
    assert killed_mid_promotion >= 1
    # blob spool files have no name, so a kill mid-upload leaves nothing in the temp dir
    assert list((tmp_path / "spool").iterdir()) == []

    from atdata_core.atmosphere.lexicons import ENTRY, LABEL

    before = _check_published(index, client, did)
    assert before[ENTRY], "the child never published an entry: the kill points are too early"
    before_uris = {v.uri for c in before.values() for v in c}
    _no_duplicates(before)

    # Retry everything to completion, twice: the second run must change nothing.
    counts = []
    for _ in range(2):
        for name in names:
            index.promote_entry(name)
        for name in direct:
            backend.promote_dataset(index.get_dataset(name), name=f"direct-{name}", maxcount=4)
        after = _check_published(index, client, did)
        _no_duplicates(after, every_name)
        assert before_uris <= {v.uri for c in after.values() for v in c}
        counts.append({c: len(v) for c, v in after.items()})
    assert counts[0] == counts[1]
    assert counts[0][ENTRY] == counts[0][LABEL] == len(every_name)
    assert all(
        ((e.metadata or {}).get("atproto") or {}).get("status") == "done"
        for e in index.iter_entries()
    )
    index.close()
    client.close()
    print(
        f"\nPDS: {PDS_ROUNDS} kills ({killed_mid_promotion} mid-promotion of a local entry, "
        f"{idle_kills} after all work was done), {len(before[ENTRY])}/{len(every_name)} entries "
        f"published before the retry, all verified; {len(every_name) - len(before[ENTRY])} "
        f"finished by the retry, no duplicates, no spool file left; "
        f"{time.monotonic() - started:.1f}s"
    )
