"""Schema records ⇄ classes ⇄ JSON Schema ⇄ stub modules, and hostile records that must stay data."""

from __future__ import annotations

import ast
import json
import sys
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pytest

from atdata_core import schema as S
from atdata_core.errors import RefError, SchemaError
from atdata_core.samples import FieldSpec, FieldType, NDArray, PackableSample, field_specs, packable


@packable
class ImageSample:
    """An image with a label.

    Second paragraph.
    """

    image: NDArray[np.float32]
    label: str
    tags: list[str]
    maybe: int | None


@packable
class Everything:
    arr: NDArray
    i8: NDArray[np.int8]
    blob: bytes
    flag: bool
    score: float
    count: int
    meta: dict
    anything: Any
    arrays: list[NDArray[np.uint8]]
    nested: list[list[int]]
    plain_list: list
    opt_arr: NDArray[np.float64] | None


#: The record of FORMATS.md, exactly as atdata stores it.
ATDATA_RECORD = {
    "name": "ImageSample",
    "version": "1.0.0",
    "description": "<class docstring>",
    "createdAt": "2025-11-20T10:00:00.000000+00:00",
    "$ref": "atdata://local/schema/ImageSample@1.0.0",
    "fields": [
        {
            "name": "image",
            "fieldType": {"$type": "local#ndarray", "dtype": "float32"},
            "optional": False,
        },
        {
            "name": "label",
            "fieldType": {"$type": "local#primitive", "primitive": "str"},
            "optional": False,
        },
        {
            "name": "tags",
            "fieldType": {
                "$type": "local#array",
                "items": {"$type": "local#primitive", "primitive": "str"},
            },
            "optional": False,
        },
        {
            "name": "maybe",
            "fieldType": {"$type": "local#primitive", "primitive": "int"},
            "optional": True,
        },
    ],
}


def record_with(fields: list[dict[str, Any]], name: str = "S", version: str = "1.0.0") -> dict:
    return {"name": name, "version": version, "fields": fields}


def prim(p: str) -> dict[str, str]:
    return {"$type": "local#primitive", "primitive": p}


@pytest.fixture(autouse=True)
def _fresh_cache():
    S.clear_type_cache()
    yield
    S.clear_type_cache()


# --- names, versions, refs -------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["A", "ImageSample", "_private", "x1", "été"])
def test_validate_name_accepts_identifiers(name):
    assert S.validate_name(name) == name


@pytest.mark.parametrize(
    "name",
    [
        "",
        "with space",
        "1abc",
        "class",
        "None",
        "__class__",
        "__init__",
        "__mangled",
        "a-b",
        "a.b",
        "x: int\nimport os",
        "x\n",
        "a" * 129,
        "ﬁeld",  # not NFKC-normal: the parser would read it as "field"
        None,
        42,
        ["a"],
    ],
)
def test_validate_name_refuses_hostile_names(name):
    with pytest.raises(SchemaError) as info:
        S.validate_name(name)
    assert "name" in str(info.value)


def test_validate_name_length_limit_is_128():
    assert S.validate_name("a" * 128)


@pytest.mark.parametrize("name", ["self", "fields", "packed", "from_bytes", "as_wds", "_atdata_x"])
def test_reserved_field_names(name):
    S.validate_name(name)  # fine as a class name
    with pytest.raises(SchemaError, match="reserved"):
        S.validate_name(name, field=True)


@pytest.mark.parametrize("v", ["1.0.0", "0.1", "2.0.0-rc.1", "1.0.0+build.5", "latest"])
def test_validate_version_accepts(v):
    assert S.validate_version(v) == v


@pytest.mark.parametrize("v", ["", "1.0.0/../x", "1 0", "1.0.0\n", "-1", 1, None, "1" * 101])
def test_validate_version_refuses(v):
    with pytest.raises(SchemaError):
        S.validate_version(v)


def test_schema_ref_and_parse():
    ref = S.schema_ref("ImageSample", "1.2.3")
    assert ref == "atdata://local/schema/ImageSample@1.2.3"
    assert ref.startswith(S.LOCAL_SCHEMA_PREFIX)
    assert S.parse_schema_ref(ref) == ("ImageSample", "1.2.3")


@pytest.mark.parametrize(
    ("ref", "expected"),
    [
        ("atdata://local/schema/ImageSample@1.0.0", ("ImageSample", "1.0.0")),
        ("atdata://local/schema/ImageSample", ("ImageSample", None)),
        ("local://schemas/my.module.ImageSample@1.0.0", ("ImageSample", "1.0.0")),
        ("local://schemas/ImageSample@2.0.0", ("ImageSample", "2.0.0")),
        ("ImageSample", ("ImageSample", None)),
        ("ImageSample@1.2.3", ("ImageSample", "1.2.3")),
        ("  ImageSample@1.2.3 ", ("ImageSample", "1.2.3")),
    ],
)
def test_parse_schema_ref_forms(ref, expected):
    assert S.parse_schema_ref(ref) == expected


@pytest.mark.parametrize(
    "ref",
    [
        "",
        "Image Sample",
        "Image@",
        "at://did:plc:abc/science.alt.dataset.schema/x",
        "https://example.com/x",
        "@alice/Sample",
        "atdata://local/schema/__class__@1.0.0",
        "atdata://local/schema/class@1.0.0",
        "Name@1.0.0@2",
        "local://schemas/a.b.@1.0",
        "repo/Name",
        None,
    ],
)
def test_parse_schema_ref_refuses(ref):
    with pytest.raises(RefError):
        S.parse_schema_ref(ref)


def test_schema_ref_validates():
    with pytest.raises(SchemaError):
        S.schema_ref("bad name", "1.0.0")
    with pytest.raises(SchemaError):
        S.schema_ref("Good", "1.0.0/x")


# --- versions ----------------------------------------------------------------------------------------


def test_parse_version_orders_semver():
    assert S.parse_version("1.2.3") < S.parse_version("1.2.10")
    assert S.parse_version("1.10.0") > S.parse_version("1.9.9")
    assert S.parse_version("1.0.0-rc.1") < S.parse_version("1.0.0")
    assert S.parse_version("1.0.0-alpha") < S.parse_version("1.0.0-alpha.1")
    assert S.parse_version("1.0.0-alpha.2") < S.parse_version("1.0.0-alpha.10")
    assert S.parse_version("1.0.0-2") < S.parse_version("1.0.0-alpha")  # numeric before text
    assert S.parse_version("latest") < S.parse_version("0.0.1")
    assert S.parse_version("1.2.3")[0] == (1, 2, 3)


def test_sort_versions_never_crashes():
    versions = [
        "1.0.0",
        "1.0.10",
        "1.0.2",
        "2.0.0-beta",
        "2.0.0",
        "latest",
        "",
        "1.x.3",
        "9" * 5000,
        "1.0.0+build",
        "0.9",
    ]
    newest = S.sort_versions(versions)
    assert newest[0] == "2.0.0"  # the absurd 5000-digit "version" sorts as text, not a crash
    assert set(newest) == set(versions)
    assert newest.index("2.0.0") < newest.index("2.0.0-beta") < newest.index("1.0.10")
    assert newest.index("1.0.10") < newest.index("1.0.2") < newest.index("1.0.0")
    assert S.sort_versions(versions, newest_first=False) == newest[::-1]
    assert S.sort_versions([]) == []


@pytest.mark.parametrize(
    ("v", "bumped"),
    [("1.0.0", "1.0.1"), ("1.2.9", "1.2.10"), ("1.2", "1.2.1"), ("3", "3.0.1"),
     ("1.2.3-rc.1", "1.2.3"), ("1.2.3+b7", "1.2.4")],
)  # fmt: skip
def test_bump_patch(v, bumped):
    assert S.bump_patch(v) == bumped
    assert S.parse_version(bumped) > S.parse_version(v)


@pytest.mark.parametrize("v", ["latest", "1.x.0", "1.2.3.4", "", "1.0.0\n"])
def test_bump_patch_refuses_non_numeric(v):
    with pytest.raises(SchemaError):
        S.bump_patch(v)


def test_next_version():
    assert S.next_version([]) == "1.0.0"
    assert S.next_version(["1.0.0", "1.0.9", "1.0.10"]) == "1.0.11"


# --- class → record ----------------------------------------------------------------------------------


def test_schema_record_exact_local_form():
    when = datetime(2025, 11, 20, 10, 0, tzinfo=UTC)
    record = S.schema_record(ImageSample, version="1.0.0", created_at=when)
    assert list(record) == ["name", "version", "description", "createdAt", "$ref", "fields"]
    assert record["name"] == "ImageSample"
    assert record["description"] == "An image with a label.\n\nSecond paragraph."
    assert record["createdAt"] == "2025-11-20T10:00:00+00:00"
    assert record["$ref"] == "atdata://local/schema/ImageSample@1.0.0"
    assert record["fields"] == ATDATA_RECORD["fields"]
    json.dumps(record)  # plain JSON


def test_schema_record_created_at_defaults_to_now_utc():
    record = S.schema_record(ImageSample, version="1.0.0")
    created = datetime.fromisoformat(record["createdAt"])
    assert created.utcoffset().total_seconds() == 0
    assert abs((datetime.now(UTC) - created).total_seconds()) < 60
    naive = S.schema_record(ImageSample, version="1.0.0", created_at=datetime(2024, 1, 1))
    assert naive["createdAt"] == "2024-01-01T00:00:00+00:00"


def test_schema_record_name_and_description_overrides():
    record = S.schema_record(ImageSample, version="2.0.0", name="Renamed", description="Mine")
    assert record["name"] == "Renamed"
    assert record["$ref"].endswith("Renamed@2.0.0")
    assert record["description"] == "Mine"
    with pytest.raises(SchemaError):
        S.schema_record(ImageSample, version="1.0.0", name="not ok")
    with pytest.raises(SchemaError):
        S.schema_record(ImageSample, version="x y")


def test_schema_record_without_docstring_has_no_description():
    @packable
    class Bare:
        x: int

    assert S.schema_record(Bare, version="1.0.0")["description"] is None


def test_schema_record_every_field_type():
    record = S.schema_record(Everything, version="1.0.0")
    types_ = {f["name"]: (f["fieldType"], f["optional"]) for f in record["fields"]}
    # A bare NDArray is recorded as float32 for atdata; a declared dtype is recorded as declared.
    assert types_["arr"] == ({"$type": "local#ndarray", "dtype": "float32"}, False)
    assert types_["i8"] == ({"$type": "local#ndarray", "dtype": "int8"}, False)
    assert types_["blob"] == (prim("bytes"), False)
    assert types_["flag"] == (prim("bool"), False)
    assert types_["score"] == (prim("float"), False)
    assert types_["count"] == (prim("int"), False)
    assert types_["meta"] == ({"$type": "local#map"}, False)
    assert types_["anything"] == ({"$type": "local#any"}, False)
    assert types_["arrays"] == (
        {"$type": "local#array", "items": {"$type": "local#ndarray", "dtype": "uint8"}},
        False,
    )
    assert types_["nested"][0] == {
        "$type": "local#array",
        "items": {"$type": "local#array", "items": prim("int")},
    }
    assert types_["plain_list"] == ({"$type": "local#array"}, False)
    assert types_["opt_arr"] == ({"$type": "local#ndarray", "dtype": "float64"}, True)


def test_schema_record_unsupported_types_raise_type_error():
    from dataclasses import dataclass

    @dataclass
    class Bad:
        x: set[int]

    with pytest.raises(TypeError):
        S.schema_record(Bad, version="1.0.0")
    with pytest.raises(TypeError):
        S.schema_record("not a class", version="1.0.0")  # type: ignore[arg-type]


def test_schema_record_refuses_reserved_field_names():
    from dataclasses import dataclass

    @dataclass
    class Shadow:
        packed: int

    with pytest.raises(SchemaError, match="reserved"):
        S.schema_record(Shadow, version="1.0.0")


# --- record → fields ---------------------------------------------------------------------------------


def test_fields_from_atdata_record_as_is():
    specs = S.fields_from_record(ATDATA_RECORD)
    assert [s.name for s in specs] == ["image", "label", "tags", "maybe"]
    assert specs[0].type == FieldType("ndarray", dtype="float32")
    assert specs[1].type == FieldType("primitive", primitive="str")
    assert specs[2].type == FieldType("array", items=FieldType("primitive", primitive="str"))
    assert specs[3] == FieldSpec("maybe", FieldType("primitive", primitive="int"), True, True)


@pytest.mark.parametrize(
    ("field_type", "expected"),
    [
        (prim("str"), FieldType("primitive", primitive="str")),
        ({"$type": "science.alt.dataset.schemaType#primitive", "primitive": "int"},
         FieldType("primitive", primitive="int")),
        ({"kind": "primitive", "primitive": "bool"}, FieldType("primitive", primitive="bool")),
        ({"$type": "local#ndarray"}, FieldType("ndarray")),
        ({"$type": "local#ndarray", "dtype": None}, FieldType("ndarray")),
        ({"$type": "local#ndarray", "dtype": "<f4", "shape": [None, 3]},
         FieldType("ndarray", dtype="float32")),
        ({"$type": "ndarray", "dtype": "uint8"}, FieldType("ndarray", dtype="uint8")),
        ("ndarray", FieldType("ndarray")),
        ("bytes", FieldType("primitive", primitive="bytes")),
        ({"$type": "local#array"}, FieldType("array")),
        ({"$type": "local#array", "items": "int"},
         FieldType("array", items=FieldType("primitive", primitive="int"))),
        ({"$type": "local#map"}, FieldType("map")),
        ({"$type": "local#dict"}, FieldType("map")),
        ({"$type": "local#any"}, FieldType("any")),
    ],
)  # fmt: skip
def test_field_type_variants_are_read_leniently(field_type, expected):
    assert S.field_type_from_dict(field_type) == expected


@pytest.mark.parametrize(
    "field_type",
    [
        None,
        [],
        "complex",
        {},
        {"$type": ""},
        {"$type": "local#tensor"},
        {"$type": "local#primitive"},
        {"$type": "local#primitive", "primitive": "object"},
        {"$type": "local#primitive", "primitive": ["str"]},
        {"$type": "local#ndarray", "dtype": "object"},
        {"$type": "local#ndarray", "dtype": "O"},
        {"$type": "local#ndarray", "dtype": "f4,i4"},
        {"$type": "local#ndarray", "dtype": "[('a', 'f4')]"},
        {"$type": "local#ndarray", "dtype": "nonsense99"},
        {"$type": "local#ndarray", "dtype": 5},
        {"$type": "local#ref", "ref": "atdata://local/schema/Other@1.0.0"},
        {"$type": "local#sparse"},
        {"$type": "local#array", "items": {"$type": "local#nope"}},
    ],
)
def test_field_type_refuses_unknown_or_hostile(field_type):
    with pytest.raises(SchemaError):
        S.field_type_from_dict(field_type)


def test_field_type_nesting_is_bounded():
    ft: dict[str, Any] = prim("int")
    for _ in range(200):
        ft = {"$type": "local#array", "items": ft}
    with pytest.raises(SchemaError, match="nested"):
        S.field_type_from_dict(ft)


def test_field_type_dict_round_trip():
    for spec in field_specs(Everything):
        assert S.field_type_from_dict(S.field_type_to_dict(spec.type)).kind == spec.type.kind


@pytest.mark.parametrize(
    "record",
    [
        None,
        "record",
        [],
        {"version": "1.0.0", "fields": []},
        {"name": "bad name", "version": "1.0.0", "fields": []},
        {"name": "S", "version": "1.0.0"},
        {"name": "S", "version": "1.0.0", "fields": {"a": "int"}},
        record_with(["a"]),
        record_with([{"fieldType": prim("int")}]),
        record_with([{"name": "a"}]),
        record_with([{"name": "a", "fieldType": prim("int"), "optional": "yes"}]),
        record_with([{"name": "a", "fieldType": prim("int")}, {"name": "a", "fieldType": prim("str")}]),
        record_with([{"name": "__class__", "fieldType": prim("int")}]),
        record_with([{"name": "self", "fieldType": prim("int")}]),
        record_with([{"name": "x: int\nimport os", "fieldType": prim("int")}]),
        record_with([{"name": "with space", "fieldType": prim("int")}]),
        record_with([{"name": "lambda", "fieldType": prim("int")}]),
        record_with([{"name": "a" * 500, "fieldType": prim("int")}]),
        record_with([{"name": 7, "fieldType": prim("int")}]),
        record_with([{"name": f"f{i}", "fieldType": prim("int")} for i in range(1001)]),
    ],
)  # fmt: skip
def test_fields_from_record_refuses_malformed(record):
    with pytest.raises(SchemaError):
        S.fields_from_record(record)


def test_missing_optional_key_means_required():
    specs = S.fields_from_record(record_with([{"name": "a", "fieldType": prim("int")}]))
    assert specs == [FieldSpec("a", FieldType("primitive", primitive="int"), False, False)]


def test_normalize_record():
    messy = {
        "name": "ImageSample",
        "version": "1.0.0",
        "fields": [{"name": "image", "fieldType": {"kind": "ndarray", "dtype": "<f4"}}],
        "unknown": "dropped",
    }
    clean = S.normalize_record(messy)
    assert clean == {
        "name": "ImageSample",
        "version": "1.0.0",
        "description": None,
        "createdAt": None,
        "$ref": "atdata://local/schema/ImageSample@1.0.0",
        "fields": [
            {
                "name": "image",
                "fieldType": {"$type": "local#ndarray", "dtype": "float32"},
                "optional": False,
            }
        ],
    }
    assert S.normalize_record(ATDATA_RECORD)["fields"] == ATDATA_RECORD["fields"]
    with pytest.raises(SchemaError):
        S.normalize_record({**ATDATA_RECORD, "description": ["not", "text"]})
    with pytest.raises(SchemaError):
        S.normalize_record({**ATDATA_RECORD, "version": "1.0 0"})


# --- record → class ------------------------------------------------------------------------------------


def sample_values() -> dict[str, Any]:
    return {
        "image": np.arange(6, dtype=np.float32).reshape(2, 3),
        "label": "cat",
        "tags": ["a", "b"],
        "maybe": None,
    }


def test_class_record_class_packs_the_same_bytes():
    record = S.schema_record(ImageSample, version="1.0.0")
    Rebuilt = S.sample_type_from_record(json.loads(json.dumps(record)))
    assert issubclass(Rebuilt, PackableSample)
    assert Rebuilt.__name__ == "ImageSample"
    assert Rebuilt.__doc__ == "An image with a label.\n\nSecond paragraph."
    original = ImageSample(**sample_values())
    rebuilt = Rebuilt(**sample_values())
    assert rebuilt.packed == original.packed
    back = Rebuilt.from_bytes(original.packed)
    assert np.array_equal(back.image, original.image) and back.label == "cat"
    assert ImageSample.from_bytes(rebuilt.packed) == original
    # And the rebuilt class describes itself with the same record.
    again = S.schema_record(Rebuilt, version="1.0.0", created_at=record["createdAt"])
    assert again == record
    assert Rebuilt._atdata_schema_ref == record["$ref"]
    assert Rebuilt._atdata_content_hash == S.content_hash(record)


def test_every_field_type_round_trips_through_a_record():
    record = S.schema_record(Everything, version="1.0.0")
    Rebuilt = S.sample_type_from_record(record)
    values = {
        "arr": np.ones((2, 2), dtype=np.float32),
        "i8": np.array([1, -2], dtype=np.int8),
        "blob": b"\x00\x01",
        "flag": True,
        "score": 0.5,
        "count": 3,
        "meta": {"k": [1, 2]},
        "anything": "x",
        "arrays": [np.zeros(3, dtype=np.uint8)],
        "nested": [[1], [2, 3]],
        "plain_list": [1, "a"],
        "opt_arr": None,
    }
    assert Rebuilt(**values).packed == Everything(**values).packed
    assert S.schema_record(Rebuilt, version="1.0.0", created_at=record["createdAt"]) == record


def test_atdata_record_builds_a_working_class():
    Cls = S.sample_type_from_record(ATDATA_RECORD)
    sample = Cls(image=np.zeros((2, 2), dtype=np.float32), label="x", tags=[])
    assert sample.maybe is None
    assert Cls.from_bytes(sample.packed) == sample
    assert Cls.__doc__ == "<class docstring>"


def test_optional_before_required_field():
    # atdata could not decode this order; ours defaults the optional field and goes keyword-only.
    record = record_with(
        [
            {"name": "first", "fieldType": prim("int"), "optional": True},
            {"name": "second", "fieldType": prim("str"), "optional": False},
        ]
    )
    Cls = S.sample_type_from_record(record)
    sample = Cls(second="x")
    assert sample.first is None
    assert Cls.from_bytes(sample.packed) == sample
    assert Cls.from_data({"second": "y"}).first is None


def test_same_content_gives_the_same_class():
    a = S.sample_type_from_record(ATDATA_RECORD)
    b = S.sample_type_from_record(json.loads(json.dumps(ATDATA_RECORD)))
    assert a is b
    other_version = S.sample_type_from_record({**ATDATA_RECORD, "version": "1.0.1"})
    assert other_version is not a
    changed = json.loads(json.dumps(ATDATA_RECORD))
    changed["fields"][1]["fieldType"] = prim("bytes")
    assert S.sample_type_from_record(changed) is not a
    S.clear_type_cache()
    assert S.sample_type_from_record(ATDATA_RECORD) is not a


def test_hostile_description_is_inert_docstring():
    evil = 'x"""\nimport os\nos.system("touch /tmp/pwned")\n"""'
    Cls = S.sample_type_from_record({**ATDATA_RECORD, "description": evil})
    assert Cls.__doc__ == evil


@pytest.mark.parametrize("name", ["np", "Any", "NDArray", "packable", "int", "str", "list"])
def test_field_names_that_shadow_builtins_still_work(name):
    record = record_with(
        [
            {"name": name, "fieldType": prim("int"), "optional": True},
            {"name": "arr", "fieldType": {"$type": "local#ndarray", "dtype": "float32"}},
            {"name": "s", "fieldType": prim("str")},
        ]
    )
    Cls = S.sample_type_from_record(record)
    sample = Cls(arr=np.zeros(2, dtype=np.float32), s="x")
    assert Cls.from_bytes(sample.packed) == sample


@pytest.mark.parametrize(
    "name", ["MISSING", "_HAS_DEFAULT_FACTORY", "_type_a", "_dflt_a", "object"]
)
def test_field_names_that_dataclasses_use_internally(name):
    record = record_with(
        [{"name": "a", "fieldType": prim("int")}, {"name": name, "fieldType": prim("str")}]
    )
    Cls = S.sample_type_from_record(record)
    assert Cls.from_bytes(Cls(1, "v").packed) == Cls(1, "v")


def test_atproto_record_builds_a_class_too():
    atproto = S.to_atproto_record(ATDATA_RECORD)
    Cls = S.sample_type_from_record(atproto)
    assert [s.name for s in Cls.fields()] == ["image", "label", "tags", "maybe"]


# --- content hash and diffs ------------------------------------------------------------------------


def test_content_hash_ignores_version_date_description():
    record = S.schema_record(ImageSample, version="1.0.0")
    h = S.content_hash(record)
    assert len(h) == 64
    assert h == S.content_hash(ATDATA_RECORD)
    later = {**record, "version": "1.0.7", "createdAt": "2030-01-01T00:00:00+00:00"}
    assert S.content_hash({**later, "description": "other words"}) == h
    # Spelling variants of the same content hash the same.
    variant = json.loads(json.dumps(ATDATA_RECORD))
    variant["fields"][0]["fieldType"] = {"kind": "ndarray", "dtype": "<f4"}
    del variant["fields"][1]["optional"]
    assert S.content_hash(variant) == h


def test_content_hash_changes_with_content():
    h = S.content_hash(ATDATA_RECORD)
    assert S.content_hash({**ATDATA_RECORD, "name": "Other"}) != h
    for mutate in (
        lambda r: r["fields"][0]["fieldType"].update(dtype="float64"),
        lambda r: r["fields"][3].update(optional=False),
        lambda r: r["fields"][1].update(name="caption"),
        lambda r: r["fields"].pop(),
        lambda r: r["fields"].reverse(),
    ):
        changed = json.loads(json.dumps(ATDATA_RECORD))
        mutate(changed)
        assert S.content_hash(changed) != h


def test_diff_records():
    old = ATDATA_RECORD
    new = json.loads(json.dumps(ATDATA_RECORD))
    new["fields"][0]["fieldType"]["dtype"] = "uint8"  # image: type changed
    new["fields"][3]["optional"] = False  # maybe: now required
    del new["fields"][2]  # tags removed
    new["fields"].append({"name": "score", "fieldType": prim("float"), "optional": True})
    changes = S.diff_records(old, new)
    assert changes == [
        S.FieldChange("image", "type_changed", "ndarray[float32]", "ndarray[uint8]"),
        S.FieldChange("tags", "removed", "list[str]", None),
        S.FieldChange("maybe", "optional_changed", "optional", "required"),
        S.FieldChange("score", "added", None, "float | None"),
    ]
    text = [c.describe() for c in changes]
    assert text[0] == "~ image: ndarray[float32] → ndarray[uint8]"
    assert text[1] == "- tags: list[str]"
    assert text[2] == "~ maybe: optional → required"
    assert text[3] == "+ score: float | None"
    assert S.diff_records(old, old) == []
    bare = json.loads(json.dumps(ATDATA_RECORD))
    del bare["fields"][0]["fieldType"]["dtype"]
    assert S.diff_records(old, bare) == []  # a bare ndarray is float32 to atdata


# --- JSON Schema ---------------------------------------------------------------------------------------


def test_to_json_schema_shape():
    schema = S.to_json_schema(ATDATA_RECORD)
    assert schema == {
        "$type": "science.alt.dataset.schema#jsonSchemaFormat",
        "$schema": "http://json-schema.org/draft-07/schema#",
        "type": "object",
        "properties": {
            "image": {
                "$ref": "https://alt.science/schemas/atdata-ndarray-bytes/1.0.0#/$defs/ndarray",
                "dtype": "float32",
            },
            "label": {"type": "string"},
            "tags": {"type": "array", "items": {"type": "string"}},
            "maybe": {"type": "integer"},
        },
        "required": ["image", "label", "tags"],
        "arrayFormatVersions": {"ndarrayBytes": "1.0.0"},
    }


def test_to_json_schema_without_arrays_has_no_array_format():
    schema = S.to_json_schema(record_with([{"name": "a", "fieldType": prim("bytes")}]))
    assert "arrayFormatVersions" not in schema
    assert schema["properties"]["a"] == {
        "type": "string",
        "format": "byte",
        "contentEncoding": "base64",
    }
    nested = S.to_json_schema(
        record_with(
            [{"name": "a", "fieldType": {"$type": "local#array", "items": {"$type": "ndarray"}}}]
        )
    )
    assert nested["arrayFormatVersions"] == {"ndarrayBytes": "1.0.0"}


def test_json_schema_validates_real_data():
    jsonschema = pytest.importorskip("jsonschema")
    schema = {k: v for k, v in S.to_json_schema(ATDATA_RECORD).items() if k != "$type"}
    schema["properties"]["image"] = {"type": "string"}  # the shim is remote; stand in for it
    jsonschema.validate({"image": "AAAA", "label": "x", "tags": ["a"]}, schema)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"image": "AAAA", "tags": ["a"]}, schema)


def test_record_json_schema_record_round_trip():
    for record in (
        S.schema_record(ImageSample, version="1.0.0"),
        S.schema_record(Everything, version="3.1.4"),
    ):
        schema = json.loads(json.dumps(S.to_json_schema(record)))
        back = S.record_from_json_schema(
            record["name"],
            record["version"],
            schema,
            description=record["description"],
            created_at=record["createdAt"],
        )
        assert back == record


def test_record_from_json_schema_reads_atdata_variants():
    legacy_nested = {
        "$type": "science.alt.dataset.schema#jsonSchemaFormat",
        "schemaBody": {
            "$schema": "http://json-schema.org/draft-07/schema#",
            "type": "object",
            "properties": {
                "image": {"$ref": "https://alt.science/schemas/atdata-ndarray-bytes/1.0.0#/$defs/ndarray"},
                "n": {"type": ["integer", "null"]},
                "free": {},
                "m": {"type": "object", "additionalProperties": True},
                "raw": {"type": "string", "contentEncoding": "base64"},
                "when": {"type": "string", "format": "date-time"},
            },
            "required": ["image", "n", "free"],
        },
        "arrayFormatVersions": {"ndarrayBytes": "1.0.0"},
    }  # fmt: skip
    record = S.record_from_json_schema("Legacy", "1.0.0", legacy_nested)
    specs = {s.name: s for s in S.fields_from_record(record)}
    assert specs["image"].type == FieldType("ndarray", dtype="float32")
    assert specs["n"].optional and specs["n"].type.primitive == "int"  # nullable → optional
    assert specs["free"].type.kind == "any" and not specs["free"].optional
    assert specs["m"].type.kind == "map"
    assert specs["raw"].type.primitive == "bytes"
    assert specs["when"].type.primitive == "str"
    assert record["$ref"] == "atdata://local/schema/Legacy@1.0.0"
    no_required = S.record_from_json_schema(
        "NoReq", "1.0.0", {"type": "object", "properties": {"a": {"type": "number"}}}
    )
    assert no_required["fields"] == [{"name": "a", "fieldType": prim("float"), "optional": True}]


@pytest.mark.parametrize(
    "schema",
    [
        None,
        [],
        {"$type": "com.example#avro", "properties": {}},
        {"type": "array", "properties": {}},
        {"properties": []},
        {"properties": {"a": "string"}},
        {"properties": {"a": {"type": "date"}}},
        {"properties": {"a": {"type": ["integer", "string"]}}},
        {"properties": {"a": {"$ref": "https://evil.example/defs#/x"}}},
        {"properties": {"a": {"$ref": "#/ndarray", "dtype": "object"}}},
        {"properties": {"a": {"type": "array", "items": "int"}}},
        {"properties": {"__class__": {"type": "string"}}},
        {"properties": {"self": {"type": "string"}}},
        {"properties": {"x: int\nimport os": {"type": "string"}}},
        {"properties": {"a": {"type": "string"}}, "required": ["b"]},
        {"properties": {"a": {"type": "string"}}, "required": "a"},
        {"properties": {}, "arrayFormatVersions": ["ndarrayBytes"]},
        {"schemaBody": "nope"},
    ],
)
def test_record_from_json_schema_refuses_hostile(schema):
    with pytest.raises(SchemaError):
        S.record_from_json_schema("S", "1.0.0", schema)


def test_record_from_json_schema_validates_name_and_version():
    with pytest.raises(SchemaError):
        S.record_from_json_schema("my schema", "1.0.0", {"properties": {}})
    with pytest.raises(SchemaError):
        S.record_from_json_schema("S", "../1", {"properties": {}})
    with pytest.raises(SchemaError):
        S.record_from_json_schema("S", "1.0.0", {"properties": {}}, description=5)  # type: ignore[arg-type]


def test_atproto_record_round_trip_both_namespaces():
    record = S.schema_record(ImageSample, version="1.0.0")
    atproto = S.to_atproto_record(record, metadata={"license": "MIT"})
    assert atproto["$type"] == "science.alt.dataset.schema"
    assert atproto["schemaType"] == "jsonSchema"
    assert atproto["schema"] == S.to_json_schema(record)
    assert atproto["createdAt"] == record["createdAt"]
    assert atproto["description"] == record["description"]
    assert atproto["metadata"] == {"license": "MIT"}
    assert S.record_from_atproto(atproto) == record
    legacy = {**atproto, "$type": "ac.foundation.dataset.sampleSchema"}
    assert S.record_from_atproto(legacy) == record
    assert S.normalize_record(atproto) == record
    assert S.content_hash(atproto) == S.content_hash(record)


def test_atproto_record_limits():
    long_doc = S.to_atproto_record({**ATDATA_RECORD, "description": "d" * 6000})
    assert len(long_doc["description"]) == 5000 and long_doc["description"].endswith("…")
    with pytest.raises(SchemaError):
        S.to_atproto_record({**ATDATA_RECORD, "name": "N" * 101})


@pytest.mark.parametrize(
    "change",
    [
        {"$type": "science.alt.dataset.entry"},
        {"schemaType": "avro"},
        {"atdataSchemaVersion": 2},
        {"schema": "text"},
        {"name": "Not Valid"},
        {"description": {"x": 1}},
    ],
)
def test_record_from_atproto_refuses(change):
    atproto = S.to_atproto_record(ATDATA_RECORD)
    with pytest.raises(SchemaError):
        S.record_from_atproto({**atproto, **change})


# --- stubs ---------------------------------------------------------------------------------------------


def test_stub_module_name():
    assert S.stub_module_name("ImageSample", "1.0.0") == "ImageSample_1_0_0"
    assert S.stub_module_name("S", "2.0.0-rc.1+b") == "S_2_0_0_rc_1_b"
    assert S.stub_module_name("S", "1.0.0").isidentifier()
    with pytest.raises(SchemaError):
        S.stub_module_name("bad name", "1.0.0")
    with pytest.raises(SchemaError):
        S.stub_module_name("S", "../../x")


def test_generate_stub_source():
    source = S.generate_stub(S.schema_record(Everything, version="1.0.0"))
    tree = ast.parse(source)  # valid Python
    cls = next(n for n in tree.body if isinstance(n, ast.ClassDef))
    assert cls.name == "Everything"
    annotations = {
        n.target.id: ast.unparse(n.annotation) for n in cls.body if isinstance(n, ast.AnnAssign)
    }
    assert annotations == {
        "arr": "NDArray[np.float32]",
        "i8": "NDArray[np.int8]",
        "blob": "bytes",
        "flag": "bool",
        "score": "float",
        "count": "int",
        "meta": "dict",
        "anything": "Any",
        "arrays": "list[NDArray[np.uint8]]",
        "nested": "list[list[int]]",
        "plain_list": "list",
        "opt_arr": "NDArray[np.float64] | None",
    }
    assert "def __init__(" in source and "opt_arr: NDArray[np.float64] | None = None" in source


def hostile_record() -> dict[str, Any]:
    return {
        "name": "Evil",
        "version": "1.0.0",
        "description": 'a """ b\n"""\nimport os\nos.system("echo pwned")\n\'\'\' \\',
        "fields": [
            {"name": "x", "fieldType": prim("int"), "optional": False},
        ],
    }


def test_generate_stub_keeps_hostile_text_inert():
    record = hostile_record()
    source = S.generate_stub(record)
    tree = ast.parse(source)
    cls = next(n for n in tree.body if isinstance(n, ast.ClassDef))
    assert ast.get_docstring(cls, clean=False) == record["description"]
    # Only the statements we write: imports, dunder constants, the class; no calls anywhere but
    # the decorator.
    kinds = {type(n).__name__ for n in tree.body}
    assert kinds <= {"Expr", "ImportFrom", "Import", "Assign", "ClassDef"}
    calls = [n for n in ast.walk(tree) if isinstance(n, ast.Call)]
    assert calls == []
    assert not any(isinstance(n, ast.Import) and n.names[0].name == "os" for n in ast.walk(tree))


@pytest.mark.parametrize(
    "record",
    [
        record_with([{"name": "x: int\nimport os", "fieldType": prim("int")}]),
        record_with([{"name": "__class__", "fieldType": prim("int")}]),
        record_with([{"name": "self", "fieldType": prim("int")}]),
        record_with([{"name": "a", "fieldType": prim("int")}], name="Evil:\n  import os\nclass X"),
        record_with([{"name": "a", "fieldType": prim("int")}], version="1.0.0'\nimport os\n'"),
        record_with([{"name": "a", "fieldType": {"$type": "local#primitive", "primitive": "os"}}]),
        record_with([{"name": "a", "fieldType": prim("int")}], name="np"),
    ],
)
def test_generate_stub_refuses_hostile_records(record):
    with pytest.raises(SchemaError):
        S.generate_stub(record)


def test_stub_writer_write_import_load_clear(tmp_path):
    writer = S.StubWriter(tmp_path / "stubs")
    record = S.schema_record(ImageSample, version="1.0.0")
    path = writer.write(record)
    assert path == tmp_path / "stubs" / "local" / "ImageSample_1_0_0.py"
    assert (path.parent / "__init__.py").exists()
    assert path.read_text() == S.generate_stub(record)
    assert writer.import_path(record) == "local.ImageSample_1_0_0"
    mtime = path.stat().st_mtime_ns
    writer.write(record)  # unchanged content: not rewritten
    assert path.stat().st_mtime_ns == mtime

    Loaded = writer.load(record)
    assert Loaded.__name__ == "ImageSample"
    assert issubclass(Loaded, PackableSample)
    assert field_specs(Loaded) == field_specs(S.sample_type_from_record(record))
    assert Loaded.__doc__ == record["description"]
    assert Loaded(**sample_values()).packed == ImageSample(**sample_values()).packed
    assert writer.load(record) is Loaded
    assert sys.modules[Loaded.__module__].__file__ == str(path)

    other = writer.write(S.schema_record(Everything, version="2.0.0"))
    assert other.name == "Everything_2_0_0.py"
    user_file = path.parent / "mine.py"
    user_file.write_text("x = 1\n")
    assert writer.clear() == 2
    assert not path.exists() and not other.exists()
    assert user_file.exists()  # not ours: left alone
    assert (path.parent / "__init__.py").exists()  # still needed by the user's module
    user_file.unlink()
    assert writer.clear() == 0
    assert not path.parent.exists()
    assert S.StubWriter(tmp_path / "never").clear() == 0


def test_stub_writer_is_importable_as_a_package(tmp_path, monkeypatch):
    writer = S.StubWriter(tmp_path)
    record = S.schema_record(ImageSample, version="1.0.0")
    writer.write(record)
    monkeypatch.syspath_prepend(str(tmp_path))
    for mod in [m for m in sys.modules if m == "local" or m.startswith("local.")]:
        monkeypatch.delitem(sys.modules, mod)
    import importlib

    module = importlib.import_module(writer.import_path(record))
    try:
        assert module.ImageSample(**sample_values()).packed == ImageSample(**sample_values()).packed
        assert module.__schema_ref__ == record["$ref"]
    finally:
        for mod in [m for m in sys.modules if m == "local" or m.startswith("local.")]:
            del sys.modules[mod]


def test_stub_writer_loads_hostile_description_as_data(tmp_path):
    writer = S.StubWriter(tmp_path)
    record = hostile_record()
    Loaded = writer.load(record)
    assert Loaded.__doc__ == record["description"]
    assert Loaded(x=1).x == 1


def test_stub_writer_ignores_tampered_files(tmp_path):
    writer = S.StubWriter(tmp_path)
    record = S.schema_record(ImageSample, version="1.0.0")
    path = writer.write(record)
    path.write_text("raise SystemExit('tampered stub was executed')\n")
    Loaded = writer.load(record)  # rewritten from the record, then imported from our text
    assert Loaded.__name__ == "ImageSample"
    assert path.read_text() == S.generate_stub(record)


def test_stub_writer_changed_content_same_version(tmp_path):
    writer = S.StubWriter(tmp_path)
    a = record_with([{"name": "a", "fieldType": prim("int")}])
    b = record_with([{"name": "b", "fieldType": prim("int")}])  # same size, same second
    ClsA = writer.load(a)
    ClsB = writer.load(b)
    assert [f.name for f in ClsA.fields()] == ["a"]
    assert [f.name for f in ClsB.fields()] == ["b"]


def test_stub_optional_before_required_and_shadowing_names(tmp_path):
    record = record_with(
        [
            {"name": "np", "fieldType": prim("int"), "optional": True},
            {"name": "str", "fieldType": prim("bytes"), "optional": True},
            {"name": "arr", "fieldType": {"$type": "local#ndarray", "dtype": "float32"}},
            {"name": "label", "fieldType": prim("str")},
        ],
        name="Shadowy",
    )
    Loaded = S.StubWriter(tmp_path).load(record)
    sample = Loaded(arr=np.zeros(2, dtype=np.float32), label="x")
    assert sample.np is None and sample.str is None
    assert Loaded.from_bytes(sample.packed) == sample
    assert field_specs(Loaded) == field_specs(S.sample_type_from_record(record))
    assert "self, *," in S.generate_stub(record).replace("\n", " ").replace("  ", "")


def test_stub_and_class_for_unannotatable_dtypes(tmp_path):
    record = record_with(
        [
            {"name": "bare", "fieldType": {"$type": "local#ndarray"}},
            {"name": "when", "fieldType": {"$type": "local#ndarray", "dtype": "datetime64[ns]"}},
            {"name": "anything", "fieldType": {"$type": "local#any"}, "optional": True},
        ],
        name="Odd",
    )
    source = S.generate_stub(record)
    assert "bare: NDArray\n" in source and "when: NDArray\n" in source
    assert "anything: Any | None" in source
    Loaded = S.StubWriter(tmp_path).load(record)
    Dynamic = S.sample_type_from_record(record)
    assert field_specs(Loaded) == field_specs(Dynamic)
    values = {"bare": np.arange(3, dtype=np.int16), "when": np.array([1], dtype="datetime64[ns]")}
    assert Loaded(**values).packed == Dynamic(**values).packed
    back = Dynamic.from_bytes(Loaded(**values).packed)
    assert back.bare.dtype == np.int16  # the bytes' own header wins over any schema hint


@pytest.mark.parametrize(
    ("raw", "message"),
    [("{not json", "is not valid JSON"), ("[1, 2]", "is not a JSON object")],
)
def test_a_damaged_stored_record_names_the_schema(raw: str, message: str) -> None:
    from atdata_core.errors import SchemaError
    from atdata_core.schema import stored_record

    with pytest.raises(SchemaError, match=f"schema Thing@1.0.0 {message}"):
        stored_record(raw, "Thing", "1.0.0")
    assert stored_record('{"name": "Thing"}', "Thing", "1.0.0") == {"name": "Thing"}
