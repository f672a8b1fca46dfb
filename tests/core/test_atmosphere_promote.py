"""Promotion on the real local PDS: the plan, the end-to-end result, and resuming after failures.

"No duplicates" is checked the only way that means anything: by listing every record of the
account after the retry.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from atdata_core.atmosphere import (
    AtmosphereBackend,
    AtmosphereClient,
    BlobTooLargeError,
    LexiconSet,
    PromotionProgress,
)
from atdata_core.atmosphere.lexicons import ENTRY, LABEL, SCHEMA
from atdata_core.errors import AtmosphereError, CancelledError
from atdata_core.index import Index

from .test_atmosphere_helpers import *  # noqa: F403  (fixtures)
from .test_atmosphere_helpers import (
    AtmoSample,
    all_records,
    make_client,
    make_samples,
    record_counts,
    same_sample,
)


class Boom(RuntimeError):
    """Injected failure."""


def _write_local(index: Index, name: str, count: int = 23, maxcount: int = 5) -> Any:
    samples = make_samples(count)
    entry = index.write(
        samples, name=name, maxcount=maxcount, description=f"{name} data", tags=["t"]
    )
    return entry, samples


def _read_back(pds_server: Any, tmp_path: Path, ref: str) -> list[Any]:
    reader = Index(
        path=tmp_path / f"reader-{abs(hash(ref)) % 10_000}" / "i.db",
        atmosphere=AtmosphereBackend(make_client(pds_server, tmp_path, session_file=None)),
    )
    try:
        return list(reader.get_dataset(ref))
    finally:
        reader.close()


def _validate_account(client: AtmosphereClient, did: str, lexicons: LexiconSet) -> None:
    for collection in (SCHEMA, ENTRY, LABEL):
        for view in all_records(client, did, collection):
            lexicons.validate_record(collection, view.value)


def test_promotion_end_to_end(
    atmo_index: Index,
    atmo_client: AtmosphereClient,
    pds_server: Any,
    tmp_path: Path,
    lexicons: LexiconSet,
) -> None:
    info = atmo_client.require_login()
    entry, samples = _write_local(atmo_index, "digits", count=23, maxcount=5)
    plan = atmo_index.plan_promotion("digits", license="CC0-1.0")
    assert (plan.did, plan.handle, plan.pds) == (info.did, info.handle, info.pds)
    assert plan.storage == "blobs" and len(plan.blobs) == 5
    assert [b.action for b in plan.blobs] == ["upload"] * 5
    assert plan.upload_bytes == entry.size_bytes == sum(b.size for b in plan.blobs)
    assert [b.sha256 for b in plan.blobs] == [entry.checksums[u] for u in entry.data_urls]
    assert (plan.schema.action, plan.entry.action, plan.label.action) == ("create",) * 3
    assert plan.schema_name == "AtmoSample" and plan.schema_version == "1.0.0"
    text = plan.describe()
    for needle in (
        "@" + info.handle,
        "AtmoSample@1.0.0",
        "will create",
        "5 to upload",
        plan.entry.uri,
    ):
        assert needle in text
    assert record_counts(atmo_client, info.did)[ENTRY] == 0  # planning wrote nothing

    events: list[PromotionProgress] = []
    uri = plan.execute(progress=events.append)
    assert uri == plan.entry.uri
    steps = [e.step for e in events]
    assert steps[0] == "schema" and steps[-1] == "done" and "upload" in steps and "entry" in steps
    assert events[-1].bytes_done == plan.upload_bytes and events[-1].blobs_done == 5
    assert events[-1].records_created == 3

    local = atmo_index.resolve_entry("digits")
    state = local.metadata["atproto"]
    assert local.at_uri == uri and state["status"] == "done"
    assert state["schema_uri"] == plan.schema.uri and state["label_uri"] == plan.label.uri
    assert [state["blobs"][u]["cid"] for u in local.data_urls] == [b.cid for b in plan.blobs]

    got = _read_back(pds_server, tmp_path, f"@{info.handle}/digits")
    assert len(got) == 23 and all(same_sample(a, b) for a, b in zip(samples, got, strict=True))
    assert [g.__key__ for g in got] == [r.key for r in atmo_index.get_dataset("digits").raw()]
    assert record_counts(atmo_client, info.did) == {
        SCHEMA: 1,
        ENTRY: 1,
        LABEL: 1,
        "science.alt.dataset.lens": 0,
    }
    _validate_account(atmo_client, info.did, lexicons)
    remote = atmo_index.resolve_entry(uri)
    assert (
        remote.license == "CC0-1.0" and remote.description == "digits data" and remote.samples == 23
    )
    assert atmo_index.verify(remote).ok

    again = atmo_index.plan_promotion("digits", license="CC0-1.0")
    assert again.nothing_to_do and [b.action for b in again.blobs] == ["referenced"] * 5
    assert "Nothing to do" in again.describe()
    assert again.execute() == uri
    assert record_counts(atmo_client, info.did)[ENTRY] == 1


def test_plan_reuses_an_existing_schema_record(
    atmo_index: Index, atmo_client: AtmosphereClient
) -> None:
    info = atmo_client.require_login()
    _write_local(atmo_index, "first", count=6)
    first = atmo_index.plan_promotion("first")
    assert first.schema.action == "create"
    first.execute()
    _write_local(atmo_index, "second", count=4)
    second = atmo_index.plan_promotion("second")
    assert second.schema.action == "exists" and second.schema.uri == first.schema.uri
    assert "exists" in second.describe()
    second.execute()
    counts = record_counts(atmo_client, info.did)
    assert counts[SCHEMA] == 1 and counts[ENTRY] == 2 and counts[LABEL] == 2


def test_interrupted_after_the_schema_record_resumes_without_duplicates(
    atmo_index: Index, atmo_client: AtmosphereClient, pds_server: Any, tmp_path: Path
) -> None:
    info = atmo_client.require_login()
    _, samples = _write_local(atmo_index, "flaky", count=17, maxcount=4)

    def fail_after_schema(event: PromotionProgress) -> None:
        if event.step == "schema":
            raise Boom("network fell over right after the schema record")

    with pytest.raises(Boom):
        atmo_index.promote_entry("flaky", progress=fail_after_schema)
    state = atmo_index.resolve_entry("flaky").metadata["atproto"]
    assert state["status"] == "in_progress" and "schema_uri" in state and "entry_uri" not in state
    assert record_counts(atmo_client, info.did)[SCHEMA] == 1
    assert record_counts(atmo_client, info.did)[ENTRY] == 0

    retry = atmo_index.plan_promotion("flaky")
    assert retry.schema.action == "exists" and retry.schema.uri == state["schema_uri"]
    assert retry.entry.action == "create" and len(retry.blobs_to_upload) == 5
    retry.execute()
    assert record_counts(atmo_client, info.did) == {
        SCHEMA: 1,
        ENTRY: 1,
        LABEL: 1,
        "science.alt.dataset.lens": 0,
    }
    got = _read_back(pds_server, tmp_path, f"@{info.handle}/flaky")
    assert all(same_sample(a, b) for a, b in zip(samples, got, strict=True)) and len(got) == 17


def test_interrupted_after_the_entry_record_creates_no_second_entry(
    atmo_index: Index, atmo_client: AtmosphereClient
) -> None:
    info = atmo_client.require_login()
    _write_local(atmo_index, "late", count=9, maxcount=4)

    def fail_after_entry(event: PromotionProgress) -> None:
        if event.step == "entry":
            raise Boom("lost the connection before the label")

    with pytest.raises(Boom):
        atmo_index.promote_entry("late", progress=fail_after_entry)
    assert record_counts(atmo_client, info.did)[ENTRY] == 1
    assert record_counts(atmo_client, info.did)[LABEL] == 0
    retry = atmo_index.plan_promotion("late")
    assert retry.entry.action == "exists" and retry.label.action == "create"
    assert not retry.blobs_to_upload  # the entry already references every blob
    uri = retry.execute()
    counts = record_counts(atmo_client, info.did)
    assert counts[ENTRY] == 1 and counts[LABEL] == 1 and counts[SCHEMA] == 1
    assert atmo_index.resolve_entry(f"@{info.handle}/late").at_uri == uri


def test_promotion_survives_the_pds_going_down_mid_upload(
    atmo_index: Index, atmo_client: AtmosphereClient, pds_server: Any, tmp_path: Path
) -> None:
    info = atmo_client.require_login()
    _, samples = _write_local(atmo_index, "outage", count=20, maxcount=4)
    stopped = []

    def stop_the_pds(event: PromotionProgress) -> None:
        if event.step == "upload" and event.blobs_done >= 2 and not stopped:
            stopped.append(True)
            pds_server.stop()

    try:
        with pytest.raises(AtmosphereError, match="cannot reach"):
            atmo_index.promote_entry("outage", progress=stop_the_pds)
    finally:
        pds_server.start_pds()
    assert stopped
    state = atmo_index.resolve_entry("outage").metadata["atproto"]
    assert len(state["blobs"]) >= 2 and "entry_uri" not in state
    atmo_index.promote_entry("outage")
    counts = record_counts(atmo_client, info.did)
    assert counts[SCHEMA] == 1 and counts[ENTRY] == 1 and counts[LABEL] == 1
    got = _read_back(pds_server, tmp_path, f"@{info.handle}/outage")
    assert len(got) == 20 and all(same_sample(a, b) for a, b in zip(samples, got, strict=True))


def test_cancel_stops_and_a_retry_finishes(
    atmo_index: Index, atmo_client: AtmosphereClient
) -> None:
    info = atmo_client.require_login()
    _write_local(atmo_index, "cancelled", count=12, maxcount=3)
    uploaded = []

    def progress(event: PromotionProgress) -> None:
        uploaded.append(event.blobs_done)

    with pytest.raises(CancelledError, match="retry resumes"):
        atmo_index.promote_entry(
            "cancelled", progress=progress, cancel=lambda: bool(uploaded) and uploaded[-1] >= 1
        )
    assert record_counts(atmo_client, info.did)[ENTRY] == 0
    atmo_index.promote_entry("cancelled")
    assert record_counts(atmo_client, info.did)[ENTRY] == 1


def test_index_write_to_a_handle_writes_locally_then_promotes(
    atmo_index: Index, atmo_client: AtmosphereClient, pds_server: Any, tmp_path: Path
) -> None:
    info = atmo_client.require_login()
    samples = make_samples(11)
    entry = atmo_index.write(samples, name=f"@{info.handle}/direct", maxcount=4)
    assert entry.repo == "local" and entry.name == "direct" and entry.promoted
    got = _read_back(pds_server, tmp_path, f"@{info.handle}/direct")
    assert all(same_sample(a, b) for a, b in zip(samples, got, strict=True)) and len(got) == 11


def test_shards_over_the_blob_limit_are_refused_with_the_fix(
    atmo_client: AtmosphereClient, tmp_path: Path
) -> None:
    index = Index(
        path=tmp_path / "big" / "i.db",
        atmosphere=AtmosphereBackend(atmo_client, max_blob_size=20_000),
    )
    index.write(make_samples(40, width=50), name="chunky", maxcount=1000)
    with pytest.raises(BlobTooLargeError, match="maxsize="):
        index.plan_promotion("chunky")
    info = atmo_client.require_login()
    assert all_records(atmo_client, info.did, SCHEMA) == []  # refused before writing anything
    index.close()


def test_http_shards_are_referenced_not_uploaded(
    atmo_index: Index, atmo_client: AtmosphereClient, lexicons: LexiconSet
) -> None:
    info = atmo_client.require_login()
    schema_ref = atmo_index.publish_schema(AtmoSample)
    urls = [f"https://data.example.com/web-{i:06d}.tar" for i in range(3)]
    atmo_index.add_entry(
        urls, name="on-the-web", schema_ref=schema_ref, metadata={"checksums": {urls[0]: "ab" * 32}}
    )
    plan = atmo_index.plan_promotion("on-the-web")
    assert plan.storage == "http" and plan.blobs == [] and plan.upload_bytes == 0
    assert "referenced by URL" in plan.describe()
    uri = plan.execute()
    remote = atmo_index.resolve_entry(uri)
    assert remote.data_urls == urls and remote.checksums == {urls[0]: "ab" * 32}
    _validate_account(atmo_client, info.did, lexicons)


def test_a_mixed_or_local_only_plan_is_refused(
    atmo_index: Index, atmo_client: AtmosphereClient
) -> None:
    entry, _ = _write_local(atmo_index, "local-only", count=3)
    with pytest.raises(AtmosphereError, match="must be uploaded as PDS blobs"):
        atmo_index.atmosphere.plan_promotion(atmo_index, entry, blobs=False)
    schema_ref = atmo_index.publish_schema(AtmoSample)
    atmo_index.add_entry(
        [entry.data_urls[0], "https://x.example/a.tar"], name="mixed", schema_ref=schema_ref
    )
    with pytest.raises(AtmosphereError, match="mixes local and remote"):
        atmo_index.plan_promotion("mixed")
