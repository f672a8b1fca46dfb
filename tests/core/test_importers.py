"""Importers: JSON Lines, CSV, image folders and tar URLs → inferred, editable schema → samples.

Everything is written through the real ``Index.write`` into a SQLite index in ``tmp_path`` and
read back with ``Dataset``; bad input must fail naming the file and line, or be skipped and counted.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

from atdata_core.dataset import Dataset
from atdata_core.errors import CancelledError
from atdata_core.importers import (
    ImportSourceError,
    detect_kind,
    import_into,
    open_source,
    parse_size,
    parse_type,
    type_name_for,
)
from atdata_core.index import Index
from atdata_core.samples import FieldType

PIL = pytest.importorskip("PIL.Image")


@pytest.fixture
def index(tmp_path: Path) -> Index:
    idx = Index(path=tmp_path / "index" / "index.db", stub_dir=tmp_path / "stubs")
    yield idx
    idx.close()


def read_back(index: Index, name: str) -> list:
    return list(index.get_dataset(name))


def write_jsonl(path: Path, rows: list) -> Path:
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows))
    return path


# --- JSON Lines -------------------------------------------------------------------------------------


def test_jsonl_infers_types_optional_and_lists(tmp_path: Path) -> None:
    path = write_jsonl(
        tmp_path / "a.jsonl",
        [
            {"text": "a", "n": 1, "score": 1, "tags": ["x"], "ok": True, "meta": {"k": 1}},
            "",
            {"text": "b", "n": 2, "score": 2.5, "tags": [], "ok": False, "extra": None},
        ],
    )
    src = open_source(path)
    assert src.kind == "jsonl"
    types = {f.name: (f.describe(), f.optional) for f in src.schema.fields}
    assert types == {
        "text": ("str", False),
        "n": ("int", False),
        "score": ("float", False),  # int + float → float
        "tags": ("list[str]", False),
        "ok": ("bool", False),
        "meta": ("dict | None", True),  # absent from a later row
        "extra": ("any | None", True),  # only ever null
    }
    samples = list(src.samples())
    assert [s.text for s in samples] == ["a", "b"]
    assert samples[0].score == 1.0 and isinstance(samples[0].score, float)
    assert samples[1].meta is None


def test_jsonl_malformed_line_names_file_and_line(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "bad.jsonl", [{"a": 1}, {"a": 2}, "{not json", {"a": 4}])
    with pytest.raises(ImportSourceError, match=r"bad\.jsonl, line 3: malformed JSON"):
        open_source(path)
    src = open_source(path, on_error="skip")
    assert [s.a for s in src.samples()] == [1, 2, 4]
    assert src.skipped == 1 and "line 3" in src.problems[0]


def test_jsonl_value_that_does_not_fit_after_the_prefix(tmp_path: Path) -> None:
    rows = [{"n": i} for i in range(5)] + [{"n": "five"}]
    path = write_jsonl(tmp_path / "drift.jsonl", rows)
    src = open_source(path, prefix_rows=3)
    assert src.schema.field("n").describe() == "int"
    with pytest.raises(ImportSourceError, match=r"drift\.jsonl, line 6: field 'n'.*change the"):
        list(src.samples())
    src.on_error = "skip"
    assert len(list(src.samples())) == 5 and src.skipped == 1


def test_jsonl_not_an_object_and_missing_required_field(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "arr.jsonl", [[1, 2]])
    with pytest.raises(ImportSourceError, match="line 1: expected a JSON object"):
        open_source(path)
    path = write_jsonl(tmp_path / "missing.jsonl", [{"a": 1, "b": 2}, {"a": 3, "b": 4}, {"a": 5}])
    src = open_source(path, prefix_rows=2)
    with pytest.raises(ImportSourceError, match="line 3: field 'b' is missing; mark it optional"):
        list(src.samples())
    src.schema.set_optional("b")
    assert [s.b for s in src.samples()] == [2, 4, None]


# --- CSV ---------------------------------------------------------------------------------------------


def test_csv_types_from_a_bounded_prefix(tmp_path: Path) -> None:
    path = tmp_path / "iris.csv"
    path.write_text(
        "sepal length,species,flag,count,maybe,for\n"
        "5.1,setosa,true,3,,x\n"
        "4.9,versicolor,False,4,2.5,y\n"
        "6,virginica,TRUE,-7,1,z\n"
    )
    src = open_source(path)
    fields = {f.name: (f.describe(), f.source) for f in src.schema.fields}
    assert fields == {
        "sepal_length": ("float", "sepal length"),
        "species": ("str", "species"),
        "flag": ("bool", "flag"),
        "count": ("int", "count"),
        "maybe": ("float | None", "maybe"),  # empty cell → optional
        "for_": ("str", "for"),  # a keyword is renamed
    }
    rows = list(src.samples())
    assert rows[0].maybe is None and rows[1].maybe == 2.5
    assert [r.flag for r in rows] == [True, False, True]
    assert rows[2].count == -7 and rows[2].sepal_length == 6.0
    assert src.count() == 3


def test_csv_ragged_row_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "ragged.csv"
    path.write_text("a,b\n1,2\n3\n4,5\n")
    with pytest.raises(
        ImportSourceError, match=r"ragged\.csv, line 3: 1 cells where the header has 2"
    ):
        open_source(path)
    src = open_source(path, on_error="skip")
    assert [(r.a, r.b) for r in src.samples()] == [(1, 2), (4, 5)]
    assert src.skipped == 1


def test_csv_bad_value_after_prefix_and_retype(tmp_path: Path) -> None:
    path = tmp_path / "late.csv"
    path.write_text("x\n" + "".join(f"{i}\n" for i in range(10)) + "oops\n")
    src = open_source(path, prefix_rows=5)
    with pytest.raises(
        ImportSourceError, match=r"late\.csv, line 12: field 'x': 'oops' is not a int"
    ):
        list(src.samples())
    src.schema.set_type("x", "str")
    assert [r.x for r in src.samples()][-2:] == ["9", "oops"]


def test_csv_duplicate_header_and_empty_file(tmp_path: Path) -> None:
    (tmp_path / "dup.csv").write_text("a,a\n1,2\n")
    with pytest.raises(ImportSourceError, match="line 1: duplicate column names"):
        open_source(tmp_path / "dup.csv")
    (tmp_path / "empty.csv").write_text("")
    with pytest.raises(ImportSourceError, match="is empty"):
        open_source(tmp_path / "empty.csv")


# --- schema edits ------------------------------------------------------------------------------------


def test_schema_edits_rename_drop_retype_before_writing(tmp_path: Path, index: Index) -> None:
    path = write_jsonl(
        tmp_path / "e.jsonl", [{"a": 1, "b": "x", "c": 2}, {"a": 2, "b": "y", "c": 3}]
    )
    src = open_source(path)
    src.schema.rename("a", "alpha")
    src.schema.drop("b")
    src.schema.set_type("c", "float")
    src.schema.set_type("alpha", "str")
    with pytest.raises(ImportSourceError, match="already exists"):
        src.schema.rename("alpha", "c")
    with pytest.raises(ImportSourceError, match="not a Python identifier"):
        src.schema.rename("alpha", "not ok")
    with pytest.raises(ImportSourceError, match="reserved"):
        src.schema.rename("alpha", "packed")
    cls = src.schema.sample_type()
    assert [f.name for f in cls.fields()] == ["alpha", "c"]
    entry = import_into(index, src, name="edited")
    back = read_back(index, "edited")
    assert [(s.alpha, s.c) for s in back] == [("1", 2.0), ("2", 3.0)]
    assert index.get_schema(entry.schema_ref)["name"] == "EditedSample"
    src.schema.drop("c")
    with pytest.raises(ImportSourceError, match="last field"):
        src.schema.drop("alpha")


def test_parse_type_and_helpers() -> None:
    assert parse_type("list[int]") == FieldType(
        "array", items=FieldType("primitive", primitive="int")
    )
    assert parse_type("ndarray[uint8]") == FieldType("ndarray", dtype="uint8")
    assert parse_type(" Dict ") == FieldType("map")
    with pytest.raises(ImportSourceError, match="unknown field type"):
        parse_type("complex")
    assert type_name_for("my-photos.v2") == "MyPhotosV2Sample"
    assert type_name_for("2024 data") == "D2024DataSample"
    assert parse_size("64M") == 64 << 20 and parse_size("1.5GB") == int(1.5 * (1 << 30))
    assert parse_size("") is None and parse_size("4096") == 4096
    with pytest.raises(ImportSourceError):
        parse_size("lots")
    assert detect_kind("x.csv") == "csv" and detect_kind("x.jsonl") == "jsonl"
    assert detect_kind("data-{000000..000003}.tar") == "tar"
    assert detect_kind("https://host/a.tar") == "tar"


# --- images ------------------------------------------------------------------------------------------


def make_images(root: Path) -> None:
    from PIL import Image

    for label, color in (("cat", (255, 0, 0)), ("dog", (0, 0, 255))):
        (root / label).mkdir(parents=True)
        for i in range(2):
            Image.new("RGB", (4 + i, 3), color).save(root / label / f"{i}.png")
    Image.new("L", (2, 2), 128).save(root / "dog" / "gray.jpg")


def test_image_folder_as_arrays_with_labels(tmp_path: Path, index: Index) -> None:
    make_images(tmp_path / "imgs")
    (tmp_path / "imgs" / "notes.txt").write_text("not an image, ignored")
    src = open_source(tmp_path / "imgs")
    assert src.kind == "images" and src.total == 5
    assert [(f.name, f.describe()) for f in src.schema.fields] == [
        ("image", "ndarray[uint8]"),
        ("label", "str"),
        ("path", "str"),
    ]
    import_into(index, src, name="pets")
    back = read_back(index, "pets")
    assert [s.label for s in back] == ["cat", "cat", "dog", "dog", "dog"]
    first = back[0]
    assert first.image.shape == (3, 4, 3) and first.image.dtype == np.uint8
    assert tuple(first.image[0, 0]) == (255, 0, 0)
    gray = next(s for s in back if s.path.endswith("gray.jpg"))
    assert gray.image.shape == (2, 2, 3)  # grayscale converted to RGB


def test_image_folder_encoded_and_unreadable(tmp_path: Path, index: Index) -> None:
    make_images(tmp_path / "imgs")
    (tmp_path / "imgs" / "cat" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\nnot really")
    src = open_source(tmp_path / "imgs", image_mode="encoded")
    assert src.schema.field("image").describe() == "bytes"
    with pytest.raises(ImportSourceError, match=r"broken\.png: not a readable image"):
        list(src.samples())
    src = open_source(tmp_path / "imgs", image_mode="encoded", on_error="skip")
    import_into(index, src, name="encoded")
    back = read_back(index, "encoded")
    assert len(back) == 5 and src.skipped == 1
    assert back[0].image.startswith(b"\x89PNG")
    unlabeled = tmp_path / "flat"
    unlabeled.mkdir()
    from PIL import Image

    Image.new("RGB", (1, 1)).save(unlabeled / "a.png")
    flat = open_source(unlabeled)
    assert flat.schema.field("label").optional
    assert next(iter(flat.samples())).label is None


def test_images_without_pillow_give_a_clear_error(tmp_path: Path, monkeypatch) -> None:
    import builtins

    make_images(tmp_path / "imgs")
    real_import = builtins.__import__

    def no_pil(name, *args, **kwargs):
        if name == "PIL" or name.startswith("PIL."):
            raise ImportError("No module named 'PIL'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_pil)
    with pytest.raises(ImportSourceError, match=r"needs Pillow.*pip install pillow"):
        open_source(tmp_path / "imgs")


# --- tar ---------------------------------------------------------------------------------------------


def test_tar_copy_keeps_keys_and_bytes(tmp_path: Path, index: Index) -> None:
    path = write_jsonl(tmp_path / "src.jsonl", [{"t": f"s{i}", "v": [i, i + 1]} for i in range(7)])
    original = import_into(index, open_source(path), name="orig", maxcount=3)
    assert len(original.data_urls) == 3
    urls = original.data_urls
    brace = urls[0].replace("data-000000.tar", "data-{000000..000002}.tar")
    src = open_source(brace)
    assert src.kind == "tar"
    assert {f.name: f.describe() for f in src.schema.fields} == {"t": "str", "v": "list[int]"}
    copy = import_into(index, src, name="copy")
    keys = [r.key for r in Dataset(urls).raw()]
    assert [r.key for r in Dataset(copy.data_urls).raw()] == keys
    raw_a = [bytes(r.parts["msgpack"]) for r in Dataset(urls).raw()]
    raw_b = [bytes(r.parts["msgpack"]) for r in Dataset(copy.data_urls).raw()]
    assert raw_a == raw_b  # unedited: copied byte for byte
    # An edited schema re-encodes, still keeping keys.
    src = open_source(urls)
    src.schema.rename("t", "text")
    renamed = import_into(index, src, name="renamed")
    back = list(Dataset(renamed.data_urls, index.decode_schema(renamed.schema_ref)))
    assert [s.__key__ for s in back] == keys
    assert [s.text for s in back] == [f"s{i}" for i in range(7)]


def test_tar_missing_url_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ImportSourceError, match=r"nope\.tar"):
        open_source(str(tmp_path / "nope.tar"))


# --- writing -----------------------------------------------------------------------------------------


def test_cancelled_import_leaves_nothing(tmp_path: Path, index: Index) -> None:
    path = write_jsonl(tmp_path / "many.jsonl", [{"i": i} for i in range(5000)])
    src = open_source(path)
    calls = {"n": 0}

    def cancel() -> bool:
        calls["n"] += 1
        return calls["n"] > 3

    with pytest.raises(CancelledError):
        import_into(index, src, name="cancelled", maxcount=500, cancel=cancel)
    assert index.count_entries() == 0
    root = index.data_store.root
    leftovers = [f for _d, _s, files in os.walk(root) for f in files]
    assert leftovers == []


def test_progress_reports_and_metadata(tmp_path: Path, index: Index) -> None:
    path = write_jsonl(tmp_path / "p.jsonl", [{"i": i} for i in range(3000)] + ["{broken"])
    src = open_source(path, on_error="skip")
    reports = []
    entry = import_into(index, src, name="p", progress=reports.append, description="three k")
    assert reports and reports[-1].done and reports[-1].samples == 3000
    assert entry.metadata["import_skipped"] == 1
    assert entry.metadata["source"]["kind"] == "jsonl"
    assert index.resolve_entry("p").description == "three k"


def test_cancel_is_checked_between_images(tmp_path: Path, index: Index) -> None:
    """Slow sources stop at the next sample, not after Index.write's next 256."""
    from PIL import Image

    root = tmp_path / "many"
    (root / "a").mkdir(parents=True)
    for i in range(40):
        Image.new("RGB", (3, 3), (i, i, i)).save(root / "a" / f"{i:02d}.png")
    src = open_source(root)
    produced = []
    calls = {"n": 0}

    def cancel() -> bool:
        calls["n"] += 1
        return calls["n"] > 5

    with pytest.raises(CancelledError):
        for sample in src.samples(cancel=cancel):
            produced.append(sample)
    assert len(produced) == 5
    with pytest.raises(CancelledError):
        import_into(index, open_source(root), name="stopped", cancel=lambda: True)
    assert index.count_entries() == 0
    assert [f for _d, _s, files in os.walk(index.data_store.root) for f in files] == []
