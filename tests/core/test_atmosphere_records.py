"""Records without a network: building them to the lexicons, and refusing malformed ones.

The lexicon validator is itself tested first (it must reject what the lexicons forbid), so that
"every record we build validates" means something.
"""

from __future__ import annotations

import base64
import copy
from typing import Any

import msgpack
import pytest

from atdata_core import schema as schema_mod
from atdata_core.atmosphere import LexiconSet, LexiconValidationError
from atdata_core.atmosphere.blobs import blob_cid
from atdata_core.atmosphere.lexicons import ENTRY, LABEL, LENS, SCHEMA
from atdata_core.atmosphere.promote import deterministic_tid, make_tid, schema_rkey
from atdata_core.atmosphere.records import (
    CodeReference,
    DatasetSize,
    EntryRecord,
    LabelRecord,
    LensRecord,
    Storage,
    decode_metadata,
    iso_datetime,
    parse_schema,
    schema_to_record,
)
from atdata_core.errors import RecordError

from .test_atmosphere_helpers import *  # noqa: F403  (fixtures)
from .test_atmosphere_helpers import AtmoSample

DID = "did:plc:abcdefghijklmnopqrstuvwx"
PDS = "https://pds.example.com"
SCHEMA_URI = f"at://{DID}/{SCHEMA}/AtmoSample-1.0.0-0123456789abcdef"
ENTRY_URI = f"at://{DID}/{ENTRY}/3kabcdefghij2"
SHA = "ab" * 32


def _entry(storage: Storage, **kw: Any) -> EntryRecord:
    return EntryRecord(
        name="mnist",
        schema_ref=SCHEMA_URI,
        storage=storage,
        created_at="2025-01-02 03:04:05",
        description="digits",
        tags=["vision", "small"],
        license="CC-BY-4.0",
        size=DatasetSize(100, 12345, 2),
        metadata={"shard_samples": [60, 40], "source": "test"},
        **kw,
    )


def _storages() -> list[Storage]:
    return [
        Storage.http(
            [("https://data.example.com/a-000000.tar", SHA), ("https://x.org/b.tar", None)]
        ),
        Storage.s3(
            "bucket-1", [("p/a.tar", SHA), ("p/b.tar", None)], region="eu", endpoint="https://s3.x"
        ),
        Storage.blobs(
            [(blob_cid(SHA), 1000, SHA), (blob_cid("cd" * 32), 20, None)], pds=PDS, did=DID
        ),
    ]


# --- the validator rejects what the lexicons forbid --------------------------------------------------


def test_validator_accepts_a_valid_label_and_rejects_each_violation(lexicons: LexiconSet) -> None:
    good = LabelRecord("mnist", ENTRY_URI, "2025-01-02T03:04:05Z", "1.0", "d").to_record()
    lexicons.validate_record(LABEL, good)
    bad_cases = {
        "missing name": {k: v for k, v in good.items() if k != "name"},
        "name too long": {**good, "name": "x" * 201},
        "name not a string": {**good, "name": 5},
        "not an at-uri": {**good, "datasetUri": "https://example.com"},
        "bad datetime": {**good, "createdAt": "yesterday"},
        "datetime without zone": {**good, "createdAt": "2025-01-02T03:04:05"},
        "wrong $type": {**good, "$type": ENTRY},
    }
    for what, record in bad_cases.items():
        with pytest.raises(LexiconValidationError):
            lexicons.validate_record(LABEL, record)
        assert what  # every case above must fail


def test_validator_checks_unions_blobs_bytes_and_arrays(lexicons: LexiconSet) -> None:
    record = _entry(_storages()[2]).to_record()
    lexicons.validate_record(ENTRY, record)
    too_big = copy.deepcopy(record)
    too_big["storage"]["blobs"][0]["blob"]["size"] = 52_428_801
    wrong_mime = copy.deepcopy(record)
    wrong_mime["storage"]["blobs"][0]["blob"]["mimeType"] = "image/png"
    unknown_storage = copy.deepcopy(record)
    unknown_storage["storage"]["$type"] = "science.alt.dataset.storageFloppy"
    lexicons.validate_record(ENTRY, unknown_storage)  # unions are open unless "closed": true
    # ...but our parser refuses storage kinds it cannot read
    with pytest.raises(RecordError, match="unknown storage"):
        EntryRecord.parse(unknown_storage, uri=ENTRY_URI, did=DID, pds=PDS)
    empty_shards = copy.deepcopy(record)
    empty_shards["storage"]["blobs"] = []
    bad_bytes = {**record, "metadata": {"$bytes": "!!!not base64!!!"}}
    huge_bytes = {
        **record,
        "metadata": {"$bytes": base64.b64encode(b"x" * 100_001).decode()},
    }
    many_tags = {**record, "tags": [f"t{i}" for i in range(31)]}
    negative_size = {**record, "size": {"samples": -1}}
    for bad in (
        too_big,
        wrong_mime,
        empty_shards,
        bad_bytes,
        huge_bytes,
        many_tags,
        negative_size,
    ):
        with pytest.raises(LexiconValidationError):
            lexicons.validate_record(ENTRY, bad)


# --- what we build validates -------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["http", "s3", "blobs"])
def test_entry_records_validate_and_round_trip(lexicons: LexiconSet, kind: str) -> None:
    storage = next(s for s in _storages() if s.kind == kind)
    record = _entry(storage).to_record()
    lexicons.validate_record(ENTRY, record)
    assert record["createdAt"] == "2025-01-02T03:04:05.000Z"
    assert record["storage"]["$type"] == f"science.alt.dataset.storage{kind.capitalize()}" or (
        kind == "s3" and record["storage"]["$type"] == "science.alt.dataset.storageS3"
    )
    parsed = EntryRecord.parse(record, uri=ENTRY_URI, did=DID, pds=PDS)
    assert parsed.name == "mnist" and parsed.schema_ref == SCHEMA_URI
    assert parsed.storage.urls == storage.urls
    assert parsed.metadata == {"shard_samples": [60, 40], "source": "test"}
    entry = parsed.to_index_entry(uri=ENTRY_URI, cid="bafyx", did=DID, handle="a.test", pds=PDS)
    assert entry.repo == "_atmosphere" and entry.schema_ref == SCHEMA_URI
    assert entry.samples == 100 and entry.size_bytes == 12345 and entry.tags == ["vision", "small"]
    assert entry.at_uri == ENTRY_URI and entry.description == "digits"
    assert entry.checksums == {storage.urls[0]: SHA}  # "none" checksums are not claimed
    assert entry.shard_samples == dict(zip(storage.urls, [60, 40], strict=True))


def test_blob_shards_read_back_as_getblob_urls() -> None:
    record = _entry(_storages()[2]).to_record()
    parsed = EntryRecord.parse(record, uri=ENTRY_URI, did=DID, pds=PDS)
    url = parsed.storage.urls[0]
    assert (
        url
        == f"{PDS}/xrpc/com.atproto.sync.getBlob?did={DID.replace(':', '%3A')}&cid={blob_cid(SHA)}"
    )
    assert parsed.storage.shards[0].size == 1000


def test_atdata_style_object_metadata_and_legacy_records_are_read() -> None:
    legacy = {
        "$type": "ac.foundation.dataset.record",
        "name": "old",
        "schemaRef": SCHEMA_URI,
        "storage": {
            "$type": "ac.foundation.dataset.storageExternal",
            "urls": ["https://data.example.com/old-{000000..000002}.tar"],
        },
        "createdAt": "2024-05-06T07:08:09.123456+00:00",
        "metadata": {"split": "train", "custom": {"model": "bert"}},
    }
    parsed = EntryRecord.parse(
        legacy, uri=f"at://{DID}/ac.foundation.dataset.record/3k", did=DID, pds=PDS
    )
    assert parsed.storage.kind == "external" and len(parsed.storage.urls) == 3
    assert parsed.metadata == {"split": "train", "custom": {"model": "bert"}}
    packed = {"$bytes": base64.b64encode(msgpack.packb({"a": [1, 2]})).decode().rstrip("=")}
    assert decode_metadata(packed, "x") == {"a": [1, 2]}


def test_schema_records_validate_and_keep_field_order(lexicons: LexiconSet) -> None:
    local = schema_mod.schema_record(AtmoSample, version="1.0.0")
    record = schema_to_record(local)
    lexicons.validate_record(SCHEMA, record)
    # a PDS stores DAG-CBOR: map keys come back sorted; the order must survive anyway
    shuffled = copy.deepcopy(record)
    props = shuffled["schema"]["properties"]
    shuffled["schema"]["properties"] = dict(
        sorted(props.items(), key=lambda kv: (len(kv[0]), kv[0]))
    )
    back = parse_schema(shuffled, uri=SCHEMA_URI)
    assert [f["name"] for f in back["fields"]] == [f["name"] for f in local["fields"]]
    assert back["$ref"] == SCHEMA_URI
    assert schema_mod.content_hash(back) == schema_mod.content_hash(local)
    cls = schema_mod.sample_type_from_record(back)
    assert [f.name for f in cls.fields()] == [f.name for f in AtmoSample.fields()]


def test_label_and_lens_records_validate(lexicons: LexiconSet) -> None:
    label = LabelRecord("mnist", ENTRY_URI, "2025-01-02T03:04:05Z", None, None).to_record()
    lexicons.validate_record(LABEL, label)
    assert "version" not in label and LabelRecord.parse(label, uri="at://x/y.z.w/1").version is None
    code = CodeReference("https://github.com/o/r", "a" * 40, "lenses.py:f", "main", "python")
    lens = LensRecord(
        "to-gray",
        SCHEMA_URI,
        SCHEMA_URI,
        code,
        code,
        description="rgb to gray",
        source_schema_version=">=1.0.0",
        metadata={"author": "me"},
    ).to_record()
    lexicons.validate_record(LENS, lens)
    back = LensRecord.parse(lens, uri=f"at://{DID}/{LENS}/3k")
    assert back.getter_code == code and back.source_schema_version == ">=1.0.0"
    assert not callable(back) and isinstance(back.getter_code.path, str)


def test_building_refuses_values_over_the_lexicon_limits() -> None:
    with pytest.raises(RecordError, match="200"):
        _entry(
            _storages()[0],
        ).__class__(name="x" * 201, schema_ref=SCHEMA_URI, storage=_storages()[0]).to_record()
    with pytest.raises(RecordError, match="tags"):
        EntryRecord("n", SCHEMA_URI, _storages()[0], tags=[str(i) for i in range(31)]).to_record()
    with pytest.raises(RecordError, match="at://"):
        EntryRecord("n", "atdata://local/schema/S@1.0.0", _storages()[0]).to_record()
    long = _entry(_storages()[0])
    long.description = "é" * 6000
    out = long.to_record()["description"]
    assert len(out.encode()) <= 5000 and out.endswith("…")


# --- malformed records are RecordErrors ----------------------------------------------------------------


def _good_entry() -> dict[str, Any]:
    return _entry(_storages()[0]).to_record()


@pytest.mark.parametrize(
    "mutate,match",
    [
        (lambda r: r.pop("storage"), "storage"),
        (lambda r: r.pop("name"), "name"),
        (lambda r: r.update(name=12), "name"),
        (lambda r: r.update(name="x" * 1_000_000), "name"),
        (lambda r: r.update(schemaRef="file:///etc/passwd"), "schemaRef"),
        (lambda r: r.update(storage="https://x"), "storage"),
        (lambda r: r["storage"].update(shards=[{"url": "file:///etc/passwd"}]), "file://"),
        (lambda r: r["storage"].update(shards=[{"url": "/etc/passwd"}]), "local path"),
        (lambda r: r["storage"].update(shards=[{"url": "pipe:cat /etc/passwd"}]), "refusing"),
        (lambda r: r["storage"].update(shards="nope"), "shards"),
        (
            lambda r: r["storage"].update(shards=[{"url": "https://x.org/a", "checksum": 5}]),
            "checksum",
        ),
        (lambda r: r.update(tags=["ok", 7]), "tags"),
        (lambda r: r.update(size={"samples": "many"}), "samples"),
        (lambda r: r.update(metadata={"$bytes": "%%%"}), "base64"),
        (lambda r: r.update(metadata=[1, 2]), "metadata"),
        (lambda r: r.update(createdAt="not a date"), "createdAt"),
        (lambda r: r.update({"$type": "app.bsky.feed.post"}), r"\$type"),
        (
            lambda r: r.update(
                storage={
                    "$type": "science.alt.dataset.storageExternal",
                    "urls": ["https://x/{0..999999999}.tar"],
                }
            ),
            "expands",
        ),
    ],
)
def test_malformed_entry_records_raise_record_error(mutate: Any, match: str) -> None:
    record = _good_entry()
    mutate(record)
    with pytest.raises(RecordError, match=match):
        EntryRecord.parse(record, uri=ENTRY_URI, did=DID, pds=PDS)


@pytest.mark.parametrize(
    "field_name",
    ["__class__", "os.system('rm -rf /')", "a b", "", "x" * 300, "for", "_atdata_x", "self"],
)
def test_hostile_schema_field_names_raise_record_error(field_name: str) -> None:
    record = schema_to_record(schema_mod.schema_record(AtmoSample, version="1.0.0"))
    record["schema"]["properties"][field_name] = {"type": "string"}
    record["metadata"] = {}
    with pytest.raises(RecordError):
        parse_schema(record, uri=SCHEMA_URI)


def test_other_malformed_schema_records_raise_record_error() -> None:
    base = schema_to_record(schema_mod.schema_record(AtmoSample, version="1.0.0"))
    cases = [
        {k: v for k, v in base.items() if k != "schema"},
        {**base, "schema": "text"},
        {**base, "name": ["list"]},
        {**base, "name": "import os"},
        {**base, "version": "1.0.0; rm -rf"},
        {**base, "schema": {**base["schema"], "properties": {"a": {"type": "klingon"}}}},
        {**base, "schema": {**base["schema"], "properties": {"a": {"$ref": "file:///etc/passwd"}}}},
        {**base, "atdataSchemaVersion": 99},
        {**base, "description": "d" * 10_000},
    ]
    for record in cases:
        with pytest.raises(RecordError):
            parse_schema(record, uri=SCHEMA_URI)


def test_malformed_labels_and_lenses_raise_record_error() -> None:
    good = LabelRecord("mnist", ENTRY_URI).to_record()
    for bad in (
        {**good, "datasetUri": 5},
        {**good, "datasetUri": "https://evil.example/x"},
        {k: v for k, v in good.items() if k != "createdAt"},
        {**good, "version": "v" * 51},
        "not an object",
    ):
        with pytest.raises(RecordError):
            LabelRecord.parse(bad, uri="at://did:plc:x/y.z.w/1")
    code = CodeReference("https://github.com/o/r", "a" * 40, "f.py:g")
    lens = LensRecord("l", SCHEMA_URI, SCHEMA_URI, code, code).to_record()
    for bad in (
        {**lens, "getterCode": "exec('boom')"},
        {**lens, "putterCode": {"repository": "r"}},
    ):
        with pytest.raises(RecordError):
            LensRecord.parse(bad, uri="at://did:plc:x/y.z.w/1")


# --- keys ------------------------------------------------------------------------------------------------


def test_tids_are_valid_sortable_and_deterministic(lexicons: LexiconSet) -> None:
    from atdata_core.atmosphere.lexicons import _check_format

    a = deterministic_tid("2025-01-02 03:04:05", DID, "bafy1", "mnist")
    assert a == deterministic_tid("2025-01-02T03:04:05Z", DID, "bafy1", "mnist")
    assert a != deterministic_tid("2025-01-02 03:04:05", DID, "bafy2", "mnist")
    later = deterministic_tid("2025-01-02 03:04:07", DID, "bafy1", "mnist")
    assert len(a) == 13 and later > a
    assert _check_format("tid", a) is None and _check_format("tid", make_tid(0, 0)) is None
    rkey = schema_rkey("AtmoSample", "1.0.0+build.5", "f" * 64)
    assert rkey == "AtmoSample-1.0.0_build.5-ffffffffffffffff"
    assert _check_format("record-key", rkey) is None


def test_iso_datetime_normalizes_sqlite_and_offsets() -> None:
    assert iso_datetime("2025-01-02 03:04:05") == "2025-01-02T03:04:05.000Z"
    assert iso_datetime("2025-01-02T05:04:05.5+02:00") == "2025-01-02T03:04:05.500Z"
