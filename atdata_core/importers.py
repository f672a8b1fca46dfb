"""Import samples from everyday sources: JSON Lines, CSV, a folder of images, existing tar shards.

Every source is read in two steps so a person (or a script) can check what will be written:

1. ``open_source(path)`` reads a bounded prefix and infers an **editable** schema
   (``ImportSchema``: a list of ``ImportField(name, type, optional)``). Fields can be renamed,
   dropped, retyped or made optional before anything is written.
2. ``source.samples()`` streams typed samples of the class built from that schema
   (``schema.sample_type()``, through ``schema.sample_type_from_record``), converting each value
   to the field's (possibly edited) type. ``import_into(index, source, name=...)`` feeds them to
   ``Index.write``, all or nothing, with progress and cancellation.

Bad input raises ``ImportSourceError`` naming the file and line (or image file), unless the caller
asks ``on_error="skip"``: then bad rows are skipped and counted (``source.skipped``) with the
first few reasons kept (``source.problems``), never silently.

Images: decoded by Pillow into an ``HxWx3`` ``uint8`` NDArray (``image_mode="array"``, the
default, what training code consumes directly and what the previewer draws), or kept as the
original encoded PNG/JPEG bytes (``image_mode="encoded"``: smaller, lossless copy of the files).
Pillow is optional: it is imported only when images are decoded or checked, with a clear error.
"""

from __future__ import annotations

import csv
import io
import itertools
import json
import keyword
import math
import os
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from . import schema as schema_mod
from .errors import AtdataError, CancelledError, SampleError
from .samples import FieldType, PackableSample, decode_ndarray, looks_like_ndarray, unpack_map

if TYPE_CHECKING:
    from .index.entries import IndexEntry
    from .index.index import CancelFn, Index, ProgressFn

SourceKind = Literal["jsonl", "csv", "images", "tar"]
OnError = Literal["raise", "skip"]
ImageMode = Literal["array", "encoded"]

SOURCE_KINDS: tuple[SourceKind, ...] = ("jsonl", "csv", "images", "tar")
#: How many rows (or samples) the schema is inferred from: bounded, so opening a 10 GB CSV is fast.
DEFAULT_PREFIX_ROWS = 1000
#: How many skip reasons are kept (the count is always exact).
MAX_PROBLEMS = 20
IMAGE_EXTENSIONS = frozenset({".png", ".jpg", ".jpeg", ".gif", ".bmp", ".webp", ".tif", ".tiff"})
#: Tar members with these extensions are text: they become ``str`` fields, others ``bytes``.
TEXT_EXTENSIONS = frozenset({"txt", "text", "cls", "cls2", "caption", "json", "jsonl", "csv"})
#: The type names the editors offer (``parse_type`` also reads ``list[int]``, ``ndarray[uint8]``).
TYPE_CHOICES = ("str", "int", "float", "bool", "bytes", "list", "dict", "ndarray", "any")

_TRUE = frozenset({"true", "yes", "y", "t", "1"})
_FALSE = frozenset({"false", "no", "n", "f", "0"})
_BOOL_WORDS = frozenset({"true", "false"})
_INT_RE = re.compile(r"[+-]?\d+")


class ImportSourceError(AtdataError):
    """A source cannot be imported as it is; the message names the file, the line and the fix."""


# --- the editable schema ---------------------------------------------------------------------------


def parse_type(text: str) -> FieldType:
    """``"int"``, ``"list[str]"``, ``"ndarray[uint8]"``, ``"dict"`` → a ``FieldType``.

    The inverse of ``FieldType.describe`` for the types an import can produce.
    """
    text = text.strip().lower()
    if text in ("str", "int", "float", "bool", "bytes"):
        return FieldType("primitive", primitive=text)
    if text in ("dict", "map"):
        return FieldType("map")
    if text == "any":
        return FieldType("any")
    if text in ("list", "array"):
        return FieldType("array")
    if text.startswith("list[") and text.endswith("]"):
        inner = text[5:-1]
        return FieldType("array", items=None if inner == "any" else parse_type(inner))
    if text == "ndarray":
        return FieldType("ndarray")
    if text.startswith("ndarray[") and text.endswith("]"):
        dtype = text[8:-1]
        try:
            return FieldType("ndarray", dtype=np.dtype(dtype).name)
        except TypeError:
            raise ImportSourceError(f"unknown array dtype {dtype!r} (uint8, float32, …)") from None
    raise ImportSourceError(
        f"unknown field type {text!r}; use one of {', '.join(TYPE_CHOICES)} "
        "(or list[T], ndarray[dtype])"
    )


@dataclass
class ImportField:
    """One field of an import: its name in the new schema, its type, and where values come from.

    ``source`` is the column, key or part the values are read from; it stays fixed while ``name``,
    ``type`` and ``optional`` are edited. ``inferred`` remembers what the data looked like, so a
    converter can be chosen for the edited type.
    """

    name: str
    type: FieldType
    optional: bool = False
    source: str = ""
    inferred: FieldType | None = None

    def describe(self) -> str:
        return self.type.describe() + (" | None" if self.optional else "")


@dataclass
class ImportSchema:
    """The schema inferred from a source, editable before writing (rename, drop, retype)."""

    name: str
    fields: list[ImportField]
    #: True once anything changed: a tar copy then re-encodes samples instead of copying bytes.
    edited: bool = False
    #: True once a person chose the name; until then ``import_into`` names it after the dataset.
    named: bool = False

    def field(self, name: str) -> ImportField:
        for f in self.fields:
            if f.name == name:
                return f
        raise ImportSourceError(
            f"no field named {name!r} (fields: {', '.join(f.name for f in self.fields)})"
        )

    def rename(self, old: str, new: str) -> None:
        """Rename a field; the new name must be a valid, unused field name."""
        f = self.field(old)
        if new == old:
            return
        try:
            schema_mod.validate_name(new, field=True)
        except AtdataError as exc:
            raise ImportSourceError(str(exc)) from None
        if any(g.name == new for g in self.fields):
            raise ImportSourceError(f"a field named {new!r} already exists")
        f.name = new
        self.edited = True

    def drop(self, name: str) -> None:
        """Leave a field out of the new dataset."""
        f = self.field(name)
        if len(self.fields) == 1:
            raise ImportSourceError("cannot drop the last field: a sample needs at least one")
        self.fields.remove(f)
        self.edited = True

    def set_type(self, name: str, ftype: FieldType | str) -> None:
        """Change a field's type; values are converted while writing (bad ones are reported)."""
        f = self.field(name)
        new = parse_type(ftype) if isinstance(ftype, str) else ftype
        if new != f.type:
            f.type = new
            self.edited = True

    def set_optional(self, name: str, optional: bool = True) -> None:
        f = self.field(name)
        if f.optional != optional:
            f.optional = optional
            self.edited = True

    def set_name(self, name: str) -> None:
        """Name the sample type (the schema record's name)."""
        try:
            schema_mod.validate_name(name)
        except AtdataError as exc:
            raise ImportSourceError(str(exc)) from None
        self.name = name
        self.named = True

    def record(self, version: str = "1.0.0") -> dict[str, Any]:
        """The local schema record (FORMATS.md) these fields describe."""
        return {
            "name": self.name,
            "version": version,
            "description": None,
            "fields": [
                {
                    "name": f.name,
                    "fieldType": schema_mod.field_type_to_dict(f.type),
                    "optional": f.optional,
                }
                for f in self.fields
            ],
        }

    def sample_type(self) -> type[PackableSample]:
        """The ``@packable`` class for these fields (built from data, never from source text)."""
        try:
            return schema_mod.sample_type_from_record(self.record())
        except AtdataError as exc:
            raise ImportSourceError(f"the edited schema is not valid: {exc}") from None

    def copy(self) -> ImportSchema:
        return ImportSchema(self.name, [replace(f) for f in self.fields], self.edited, self.named)


def type_name_for(text: str) -> str:
    """A schema (class) name for a dataset or file name: ``my-photos`` → ``MyPhotosSample``."""
    parts = [p for p in re.split(r"[^0-9A-Za-z]+", text) if p]
    base = "".join(p[:1].upper() + p[1:] for p in parts) or "Imported"
    if not base[0].isalpha():
        base = "D" + base
    return base[:100] + "Sample"


def field_name_for(text: str, taken: set[str]) -> str:
    """A safe, unique field name for a column or key (``"sepal length"`` → ``sepal_length``)."""
    name = re.sub(r"\W+", "_", str(text).strip()).strip("_") or "field"
    if name[0].isdigit():
        name = "f_" + name
    while name.startswith("__"):
        name = name[1:]
    if keyword.iskeyword(name) or name in schema_mod.RESERVED_FIELD_NAMES:
        name += "_"
    if name.startswith("_atdata"):
        name = "f" + name
    name = name[:120]
    base, n = name, 2
    while name in taken:
        name = f"{base}_{n}"
        n += 1
    taken.add(name)
    return name


# --- type inference --------------------------------------------------------------------------------

_PRIM_RANK = {"bool": 0, "int": 1, "float": 2}


def _value_type(value: Any) -> FieldType:
    if isinstance(value, np.ndarray):
        return FieldType("ndarray", dtype=value.dtype.name)
    if isinstance(value, bool):
        return FieldType("primitive", primitive="bool")
    if isinstance(value, (int, np.integer)):
        return FieldType("primitive", primitive="int")
    if isinstance(value, (float, np.floating)):
        return FieldType("primitive", primitive="float")
    if isinstance(value, str):
        return FieldType("primitive", primitive="str")
    if isinstance(value, (bytes, bytearray, memoryview)):
        return FieldType("primitive", primitive="bytes")
    if isinstance(value, (list, tuple)):
        items: FieldType | None = None
        for item in value:
            if item is not None:
                items = _merge(items, _value_type(item))
        return FieldType("array", items=items)
    if isinstance(value, dict):
        return FieldType("map")
    return FieldType("any")


def _merge(a: FieldType | None, b: FieldType | None) -> FieldType | None:
    """The narrowest type both values fit: int+float → float, list items merged, else ``any``."""
    if a is None:
        return b
    if b is None or a == b:
        return a
    if a.kind == b.kind == "primitive" and {a.primitive, b.primitive} == {"int", "float"}:
        return FieldType("primitive", primitive="float")
    if a.kind == b.kind == "array":
        return FieldType("array", items=_merge(a.items, b.items))
    if a.kind == b.kind == "ndarray":
        return FieldType("ndarray", dtype=a.dtype if a.dtype == b.dtype else None)
    return FieldType("any")


class _Inferrer:
    """Accumulates the types seen per key over the prefix, then yields ``ImportField``s."""

    def __init__(self) -> None:
        self.types: dict[str, FieldType | None] = {}
        self.optional: set[str] = set()
        self.rows = 0

    def add(self, row: dict[str, Any]) -> None:
        for key in self.types.keys() - row.keys():
            self.optional.add(key)
        for key, value in row.items():
            if key not in self.types:
                self.types[key] = None
                if self.rows:
                    self.optional.add(key)  # absent from earlier rows
            if value is None:
                self.optional.add(key)
            else:
                self.types[key] = _merge(self.types[key], _value_type(value))
        self.rows += 1

    def fields(self) -> list[ImportField]:
        taken: set[str] = set()
        out = []
        for key, ftype in self.types.items():
            t = ftype or FieldType("any")
            out.append(
                ImportField(
                    field_name_for(key, taken), t, key in self.optional or ftype is None, key, t
                )
            )
        return out


def _csv_cell_type(cell: str) -> str:
    if cell.lower() in _BOOL_WORDS:
        return "bool"
    if _INT_RE.fullmatch(cell):
        return "int"
    try:
        float(cell)
    except ValueError:
        return "str"
    return "float"


# --- value conversion ------------------------------------------------------------------------------

Converter = Callable[[Any], Any]


def _to_str(v: Any) -> str:
    if isinstance(v, str):
        return v
    if isinstance(v, (bytes, bytearray, memoryview)):
        return bytes(v).decode("utf-8")
    if isinstance(v, np.ndarray):
        raise ValueError("an array cannot become a string")
    return json.dumps(v, ensure_ascii=False)


def _to_int(v: Any) -> int:
    if isinstance(v, bool):
        return int(v)
    if isinstance(v, (int, np.integer)):
        return int(v)
    if isinstance(v, (float, np.floating)):
        if not math.isfinite(v) or not float(v).is_integer():
            raise ValueError(f"{v!r} is not a whole number")
        return int(v)
    if isinstance(v, str):
        return int(v.strip())
    raise ValueError(f"a {type(v).__name__} is not an int")


def _to_float(v: Any) -> float:
    if isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool):
        return float(v)
    if isinstance(v, str):
        return float(v.strip())
    raise ValueError(f"a {type(v).__name__} is not a float")


def _to_bool(v: Any) -> bool:
    if isinstance(v, bool):
        return v
    if isinstance(v, (int, np.integer)) and v in (0, 1):
        return bool(v)
    if isinstance(v, str):
        word = v.strip().lower()
        if word in _TRUE:
            return True
        if word in _FALSE:
            return False
    raise ValueError(f"{v!r:.40} is not true/false")


def _to_bytes(v: Any) -> bytes:
    if isinstance(v, (bytes, bytearray, memoryview)):
        return bytes(v)
    if isinstance(v, str):
        return v.encode("utf-8")
    if isinstance(v, np.ndarray):
        return v.tobytes()
    raise ValueError(f"a {type(v).__name__} is not bytes")


def _to_list(v: Any) -> list[Any]:
    if isinstance(v, list):
        return v
    if isinstance(v, tuple):
        return list(v)
    if isinstance(v, np.ndarray):
        return v.tolist()
    if isinstance(v, str):
        parsed = json.loads(v)
        if isinstance(parsed, list):
            return parsed
    raise ValueError(f"{v!r:.40} is not a list")


def _to_dict(v: Any) -> dict[str, Any]:
    if isinstance(v, dict):
        return v
    if isinstance(v, str):
        parsed = json.loads(v)
        if isinstance(parsed, dict):
            return parsed
    raise ValueError(f"{v!r:.40} is not a map")


def _ndarray_converter(dtype: str | None) -> Converter:
    def convert(v: Any) -> np.ndarray:
        if isinstance(v, (bytes, bytearray, memoryview)) and looks_like_ndarray(bytes(v)):
            v = decode_ndarray(bytes(v))
        if isinstance(v, str):
            v = json.loads(v)
        arr = np.asarray(v, dtype=dtype) if dtype else np.asarray(v)
        if arr.dtype.hasobject:
            raise ValueError("ragged or mixed values cannot form an array")
        return arr

    return convert


def converter_for(ftype: FieldType) -> Converter | None:
    """How to turn a source value into a value of ``ftype`` (``None``: keep it as it is)."""
    if ftype.kind == "primitive":
        return {
            "str": _to_str,
            "int": _to_int,
            "float": _to_float,
            "bool": _to_bool,
            "bytes": _to_bytes,
        }[ftype.primitive or "str"]
    if ftype.kind == "array":
        if ftype.items is None or ftype.items.kind == "any":
            return _to_list
        item = converter_for(ftype.items)
        if item is None:
            return _to_list
        return lambda v: [None if x is None else item(x) for x in _to_list(v)]
    if ftype.kind == "map":
        return _to_dict
    if ftype.kind == "ndarray":
        return _ndarray_converter(ftype.dtype)
    return None


@dataclass
class _Plan:
    """The compiled per-field work of one pass: (target name, source key, converter, optional)."""

    cls: type[PackableSample]
    columns: list[tuple[str, str, Converter | None, bool, str]]


def _compile(schema: ImportSchema) -> _Plan:
    cls = schema.sample_type()
    return _Plan(
        cls,
        [
            (f.name, f.source, converter_for(f.type), f.optional, f.type.describe())
            for f in schema.fields
        ],
    )


# --- sources ---------------------------------------------------------------------------------------


@dataclass
class ImportSource:
    """A source opened for import: its kind, its inferred (editable) schema, and a sample stream.

    ``total`` is the number of samples when it is cheap to know (images; JSONL/CSV count lines
    on first use of ``count()``); ``None`` means unknown (tar URLs), so no ETA is shown.
    """

    kind: SourceKind
    path: str
    schema: ImportSchema
    on_error: OnError = "raise"
    image_mode: ImageMode = "array"
    total: int | None = None
    skipped: int = 0
    problems: list[str] = field(default_factory=list)
    _files: list[tuple[str, str | None]] = field(default_factory=list, repr=False)
    _csv_header: list[str] = field(default_factory=list, repr=False)
    _csv_dialect: Any = field(default=None, repr=False)
    _tar_msgpack_only: bool = field(default=True, repr=False)
    _urls: list[str] | None = field(default=None, repr=False)

    # -- counting
    def count(self) -> int | None:
        """The number of samples, if it can be known without parsing (lines, files)."""
        if self.total is None and self.kind in ("jsonl", "csv"):
            self.total = _count_data_lines(self.path, header=self.kind == "csv")
        return self.total

    def describe(self) -> str:
        """One line for logs and the CLI: what is being imported from where."""
        what = {"jsonl": "JSON Lines", "csv": "CSV", "images": "images", "tar": "tar shards"}
        n = f", {self.total} samples" if self.total is not None else ""
        return f"{what[self.kind]} from {self.path}{n}"

    # -- failures
    def _bad(self, where: str, problem: str) -> None:
        """Raise, or count and remember the problem when skipping."""
        message = f"{where}: {problem}"
        if self.on_error == "raise":
            raise ImportSourceError(message)
        self.skipped += 1
        if len(self.problems) < MAX_PROBLEMS:
            self.problems.append(message)

    def _build(self, plan: _Plan, row: dict[str, Any], where: str) -> PackableSample | None:
        kwargs: dict[str, Any] = {}
        for name, source, convert, optional, type_text in plan.columns:
            value = row.get(source)
            if value is None or (self.kind == "csv" and value == ""):
                if not optional:
                    what = "missing" if source not in row else "empty"
                    self._bad(
                        where,
                        f"field {name!r} is {what}; mark it optional or skip bad rows",
                    )
                    return None
                kwargs[name] = None
                continue
            if convert is not None:
                try:
                    value = convert(value)
                except (ValueError, TypeError, UnicodeDecodeError, OverflowError) as exc:
                    self._bad(
                        where,
                        f"field {name!r}: {str(value)[:40]!r} is not a {type_text} ({exc}); "
                        "change the field's type or skip bad rows",
                    )
                    return None
            kwargs[name] = value
        return plan.cls(**kwargs)

    # -- streaming
    def samples(
        self,
        schema: ImportSchema | None = None,
        *,
        cancel: Callable[[], bool] | None = None,
    ) -> Iterator[Any]:
        """Samples of ``schema`` (default: this source's, as edited), converted and checked.

        Yields typed samples; an unedited tar copy yields ``(key, msgpack bytes)`` pairs instead,
        so the shards are copied byte for byte with their keys. ``cancel()`` is checked between
        samples (every image, every few hundred rows) and raises ``CancelledError``, so a slow
        source (large images) stops promptly.
        """
        schema = schema or self.schema
        self.skipped = 0
        self.problems = []
        if self.kind == "jsonl":
            stream: Iterator[Any] = self._jsonl(_compile(schema))
        elif self.kind == "csv":
            stream = self._csv(_compile(schema))
        elif self.kind == "images":
            stream = self._images(_compile(schema))
        elif not schema.edited and self._tar_msgpack_only:
            stream = self._tar_passthrough()
        else:
            stream = self._tar(_compile(schema))
        if cancel is None:
            return stream
        return _cancellable(stream, cancel, every=1 if self.kind == "images" else 256)

    def _jsonl(self, plan: _Plan) -> Iterator[PackableSample]:
        with _open_text(self.path) as f:
            for lineno, line in enumerate(f, 1):
                if not line.strip():
                    continue
                where = f"{self.path}, line {lineno}"
                row = _json_row(line, where, self)
                if row is None:
                    continue
                sample = self._build(plan, row, where)
                if sample is not None:
                    yield sample

    def _csv(self, plan: _Plan) -> Iterator[PackableSample]:
        width = len(self._csv_header)
        with _open_text(self.path, newline="") as f:
            reader = csv.reader(f, self._csv_dialect)
            try:
                next(reader)  # the header
                for cells in reader:
                    if not cells:
                        continue
                    where = f"{self.path}, line {reader.line_num}"
                    if len(cells) != width:
                        self._bad(where, f"{len(cells)} cells where the header has {width}")
                        continue
                    sample = self._build(
                        plan, dict(zip(self._csv_header, cells, strict=True)), where
                    )
                    if sample is not None:
                        yield sample
            except csv.Error as exc:
                raise ImportSourceError(f"{self.path}, line {reader.line_num}: {exc}") from None

    def _images(self, plan: _Plan) -> Iterator[PackableSample]:
        for rel, label in self._files:
            full = os.path.join(self.path, rel)
            try:
                data = _read_image(full, self.image_mode)
            except ImportSourceError as exc:
                if self.on_error == "raise" or "Pillow" in str(exc):
                    raise
                self._bad(full, str(exc).removeprefix(f"{full}: "))
                continue
            sample = self._build(plan, {"image": data, "label": label, "path": rel}, full)
            if sample is not None:
                yield sample

    def _tar_raw(self) -> Iterator[Any]:
        from .dataset import Dataset

        ds: Any = Dataset(self._urls or self.path, on_error=self.on_error)
        try:
            yield from ds.raw()
        except AtdataError as exc:
            raise ImportSourceError(f"{self.path}: {exc}") from None

    def _tar_passthrough(self) -> Iterator[tuple[str, bytes]]:
        for raw in self._tar_raw():
            data = raw.parts.get("msgpack")
            if data is None or len(raw.parts) != 1:
                self._bad(f"{raw.shard}, sample {raw.key}", "is not a single msgpack member")
                continue
            yield raw.key, bytes(data)

    def _tar(self, plan: _Plan) -> Iterator[PackableSample]:
        for raw in self._tar_raw():
            where = f"{raw.shard}, sample {raw.key}"
            try:
                row = _raw_to_row(raw)
            except SampleError as exc:
                self._bad(where, exc.problem)
                continue
            sample = self._build(plan, row, where)
            if sample is not None:
                sample.__key__ = raw.key
                yield sample


def _cancellable(stream: Iterator[Any], cancel: Callable[[], bool], every: int) -> Iterator[Any]:
    for i, item in enumerate(stream):
        if i % every == 0 and cancel():
            raise CancelledError("the import was cancelled; nothing was kept")
        yield item


def _open_text(path: str, newline: str | None = None) -> Any:
    try:
        return open(path, encoding="utf-8-sig", errors="strict", newline=newline)
    except OSError as exc:
        raise ImportSourceError(f"cannot open {path}: {exc.strerror or exc}") from None


def _json_row(line: str, where: str, source: ImportSource | None) -> dict[str, Any] | None:
    try:
        row = json.loads(line)
    except ValueError as exc:
        problem = (
            f"malformed JSON ({getattr(exc, 'msg', exc)} at column {getattr(exc, 'colno', '?')})"
        )
        if source is None:
            raise ImportSourceError(f"{where}: {problem}") from None
        source._bad(where, problem)
        return None
    if not isinstance(row, dict):
        problem = f"expected a JSON object per line, got {type(row).__name__}"
        if source is None:
            raise ImportSourceError(f"{where}: {problem}")
        source._bad(where, problem)
        return None
    return row


def _count_data_lines(path: str, *, header: bool) -> int:
    """Lines in a file (minus a header), counted in 1 MB blocks: an estimate for the ETA."""
    n = 0
    last = b"\n"
    try:
        with open(path, "rb") as f:
            while block := f.read(1 << 20):
                n += block.count(b"\n")
                last = block[-1:]
    except OSError as exc:
        raise ImportSourceError(f"cannot read {path}: {exc.strerror or exc}") from None
    if last != b"\n":
        n += 1
    return max(0, n - (1 if header else 0))


def _raw_to_row(raw: Any) -> dict[str, Any]:
    """A stored sample's fields: the msgpack map, or one field per member of a plain WebDataset."""
    if "msgpack" in raw.parts and len(raw.parts) == 1:
        data = unpack_map(raw.parts["msgpack"])
        return {
            k: decode_ndarray(v) if isinstance(v, bytes) and looks_like_ndarray(v) else v
            for k, v in data.items()
        }
    row: dict[str, Any] = {}
    for ext, data in raw.parts.items():
        if ext == "msgpack":
            row.update(unpack_map(data))
        elif ext.lower() in TEXT_EXTENSIONS:
            try:
                row[ext] = bytes(data).decode("utf-8")
            except UnicodeDecodeError:
                row[ext] = bytes(data)
        else:
            row[ext] = bytes(data)
    return row


# --- images ----------------------------------------------------------------------------------------


def _pillow() -> Any:
    try:
        from PIL import Image
    except ImportError:
        raise ImportSourceError(
            "importing images needs Pillow, which is not installed: pip install pillow"
        ) from None
    return Image


def _read_image(path: str, mode: ImageMode) -> Any:
    """An image file as an HxWx3 uint8 array, or its bytes (checked to decode) in encoded mode."""
    Image = _pillow()
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as exc:
        raise ImportSourceError(f"{path}: cannot read ({exc.strerror or exc})") from None
    try:
        with Image.open(io.BytesIO(data)) as img:
            if mode == "encoded":
                img.verify()
                return data
            return np.asarray(img.convert("RGB"), dtype=np.uint8)
    except (OSError, ValueError, SyntaxError) as exc:  # Pillow raises all three on bad files
        raise ImportSourceError(f"{path}: not a readable image ({exc})") from None


def _scan_images(root: str) -> tuple[list[tuple[str, str | None]], bool]:
    """(relative path, label) of every image under ``root``; the label is the first subfolder."""
    files: list[tuple[str, str | None]] = []
    unlabeled = False
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for name in sorted(filenames):
            if name.startswith(".") or Path(name).suffix.lower() not in IMAGE_EXTENSIONS:
                continue
            rel = os.path.relpath(os.path.join(dirpath, name), root)
            parts = Path(rel).parts
            label = parts[0] if len(parts) > 1 else None
            unlabeled |= label is None
            files.append((rel, label))
    return files, unlabeled


# --- opening ---------------------------------------------------------------------------------------


def detect_kind(path: str) -> SourceKind:
    """Guess the kind of a source from its path: a directory of images, ``.tar``, ``.csv``, JSONL."""
    lower = path.lower()
    if "://" in path or lower.endswith((".tar", ".tar}")) or re.search(r"\.tar(\b|$)", lower):
        return "tar"
    if os.path.isdir(path):
        return "images"
    if lower.endswith((".csv", ".tsv")):
        return "csv"
    if lower.endswith((".jsonl", ".ndjson", ".json", ".jsonlines")):
        return "jsonl"
    raise ImportSourceError(
        f"cannot tell what kind of source {path} is; choose one of {', '.join(SOURCE_KINDS)}"
    )


def open_source(
    path: str | os.PathLike[str] | list[str],
    kind: SourceKind | None = None,
    *,
    name: str | None = None,
    prefix_rows: int = DEFAULT_PREFIX_ROWS,
    on_error: OnError = "raise",
    image_mode: ImageMode = "array",
) -> ImportSource:
    """Open a source and infer its schema from the first ``prefix_rows`` rows (or samples).

    ``path`` is a file, a folder, or tar URL(s): one (brace notation allowed) or a list.
    ``name`` names the sample type (default: from the file name). Raises ``ImportSourceError``
    when the source is missing, empty or malformed in its prefix.
    """
    if isinstance(path, (list, tuple)):
        if not path:
            raise ImportSourceError("no tar URLs given")
        urls = [os.fspath(u) for u in path]
        source = _open_tar(urls[0], type_name_for(name or "imported"), prefix_rows, on_error, urls)
        source.path = urls[0] if len(urls) == 1 else f"{urls[0]} (+{len(urls) - 1} more)"
        return source
    path = os.fspath(path)
    kind = kind or detect_kind(path)
    if kind not in SOURCE_KINDS:
        raise ImportSourceError(
            f"unknown source kind {kind!r}; use one of {', '.join(SOURCE_KINDS)}"
        )
    if image_mode not in ("array", "encoded"):
        raise ImportSourceError(f"image_mode must be 'array' or 'encoded', not {image_mode!r}")
    if kind != "tar" and not os.path.exists(path):
        raise ImportSourceError(f"{path} does not exist")
    type_name = type_name_for(name or Path(path.rstrip("/")).stem.split(".")[0] or "imported")
    if kind == "jsonl":
        return _open_jsonl(path, type_name, prefix_rows, on_error)
    if kind == "csv":
        return _open_csv(path, type_name, prefix_rows, on_error)
    if kind == "images":
        return _open_images(path, type_name, on_error, image_mode)
    return _open_tar(path, type_name, prefix_rows, on_error)


def _open_jsonl(path: str, type_name: str, prefix_rows: int, on_error: OnError) -> ImportSource:
    if os.path.isdir(path):
        raise ImportSourceError(f"{path} is a directory, not a JSON Lines file")
    source = ImportSource("jsonl", path, ImportSchema(type_name, []), on_error)
    inferrer = _Inferrer()
    with _open_text(path) as f:
        try:
            for lineno, line in enumerate(f, 1):
                if not line.strip():
                    continue
                row = _json_row(line, f"{path}, line {lineno}", source)
                if row is not None:
                    inferrer.add(row)
                if inferrer.rows >= prefix_rows:
                    break
        except UnicodeDecodeError as exc:
            raise ImportSourceError(f"{path}: not UTF-8 text ({exc.reason})") from None
    if not inferrer.types:
        raise ImportSourceError(f"{path} holds no JSON objects to import")
    source.schema.fields = inferrer.fields()
    source.skipped = 0
    source.problems = []
    return source


def _open_csv(path: str, type_name: str, prefix_rows: int, on_error: OnError) -> ImportSource:
    if os.path.isdir(path):
        raise ImportSourceError(f"{path} is a directory, not a CSV file")
    with _open_text(path, newline="") as f:
        try:
            head = f.read(64 << 10)
        except UnicodeDecodeError as exc:
            raise ImportSourceError(f"{path}: not UTF-8 text ({exc.reason})") from None
        if not head.strip():
            raise ImportSourceError(f"{path} is empty")
        try:
            dialect: Any = csv.Sniffer().sniff(head, delimiters=",\t;|")
        except csv.Error:
            dialect = csv.excel_tab if path.lower().endswith(".tsv") else csv.excel
        f.seek(0)
        reader = csv.reader(f, dialect)
        header = next(reader)
        if len(set(header)) != len(header):
            dupes = sorted({h for h in header if header.count(h) > 1})
            raise ImportSourceError(f"{path}, line 1: duplicate column names {dupes}")
        width = len(header)
        kinds: list[set[str]] = [set() for _ in header]
        empty = [False] * width
        rows = 0
        source = ImportSource("csv", path, ImportSchema(type_name, []), on_error)
        try:
            for cells in reader:
                if not cells:
                    continue
                if len(cells) != width:
                    source._bad(
                        f"{path}, line {reader.line_num}",
                        f"{len(cells)} cells where the header has {width}",
                    )
                    continue
                for i, cell in enumerate(cells):
                    if cell == "":
                        empty[i] = True
                    else:
                        kinds[i].add(_csv_cell_type(cell))
                rows += 1
                if rows >= prefix_rows:
                    break
        except csv.Error as exc:
            raise ImportSourceError(f"{path}, line {reader.line_num}: {exc}") from None
    taken: set[str] = set()
    fields = []
    for i, column in enumerate(header):
        seen = kinds[i]
        if not seen:
            prim = "str"
        elif seen <= {"bool"}:
            prim = "bool"
        elif seen <= {"int"}:
            prim = "int"
        elif seen <= {"int", "float"}:
            prim = "float"
        else:
            prim = "str"
        t = FieldType("primitive", primitive=prim)
        fields.append(
            ImportField(field_name_for(column, taken), t, empty[i] or not seen, column, t)
        )
    source.schema.fields = fields
    source._csv_header = header
    source._csv_dialect = dialect
    source.skipped = 0
    source.problems = []
    return source


def _open_images(path: str, type_name: str, on_error: OnError, mode: ImageMode) -> ImportSource:
    if not os.path.isdir(path):
        raise ImportSourceError(f"{path} is not a folder of images")
    _pillow()  # fail now, with the fix, rather than on the first sample
    files, unlabeled = _scan_images(path)
    if not files:
        raise ImportSourceError(
            f"{path} holds no images ({', '.join(sorted(IMAGE_EXTENSIONS))}); "
            "put them in one subfolder per label"
        )
    image_type = (
        FieldType("ndarray", dtype="uint8")
        if mode == "array"
        else FieldType("primitive", primitive="bytes")
    )
    label = FieldType("primitive", primitive="str")
    fields = [
        ImportField("image", image_type, False, "image", image_type),
        ImportField("label", label, unlabeled, "label", label),
        ImportField("path", label, False, "path", label),
    ]
    source = ImportSource(
        "images", path, ImportSchema(type_name, fields), on_error, mode, total=len(files)
    )
    source._files = files
    return source


def _open_tar(
    path: str,
    type_name: str,
    prefix_rows: int,
    on_error: OnError,
    urls: list[str] | None = None,
) -> ImportSource:
    source = ImportSource("tar", path, ImportSchema(type_name, []), on_error, _urls=urls)
    inferrer = _Inferrer()
    msgpack_only = True
    for raw in itertools.islice(source._tar_raw(), prefix_rows):
        msgpack_only &= set(raw.parts) == {"msgpack"}
        try:
            inferrer.add(_raw_to_row(raw))
        except SampleError as exc:
            source._bad(f"{raw.shard}, sample {raw.key}", exc.problem)
    if not inferrer.types:
        raise ImportSourceError(f"{path} holds no samples to copy")
    source.schema.fields = inferrer.fields()
    # Renamed fields (unsafe keys) need re-encoding: the byte copy would keep the old names.
    renamed = any(f.name != f.source for f in source.schema.fields)
    source._tar_msgpack_only = msgpack_only and not renamed
    source.skipped = 0
    source.problems = []
    return source


# --- writing ---------------------------------------------------------------------------------------


def parse_size(text: str | int | None) -> int | None:
    """``"64MB"``, ``"1.5G"``, ``"4096"`` → bytes (``None``/empty stays ``None``)."""
    if text is None or isinstance(text, int):
        return text
    text = text.strip().upper().removesuffix("B").removesuffix("I")
    if not text:
        return None
    scale = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}.get(text[-1], 1)
    number = text[:-1] if scale > 1 else text
    try:
        value = float(number)
    except ValueError:
        raise ImportSourceError(f"{text!r} is not a size (e.g. 4096, 64M, 1G)") from None
    if value <= 0:
        raise ImportSourceError("a size must be positive")
    return int(value * scale)


def import_into(
    index: Index,
    source: ImportSource,
    *,
    name: str,
    repo: str | None = None,
    description: str | None = None,
    tags: list[str] | None = None,
    license: str | None = None,
    maxcount: int | None = 10000,
    maxsize: int | None = None,
    overwrite: bool = False,
    progress: ProgressFn | None = None,
    cancel: CancelFn | None = None,
) -> IndexEntry:
    """Write ``source`` into ``index`` as a new dataset (``Index.write``: all or nothing).

    The schema (as edited) is published first, so an unedited tar copy can pass its samples
    through as bytes with their keys. ``repo`` names a repository (``None``/``"local"``: local).
    """
    from .refs import LOCAL_REPO, parse_ref, validate_dataset_name

    parsed = parse_ref(name)
    if parsed.kind not in ("local", "repo"):
        raise ImportSourceError(f"import into a local or named repository, not {name!r}")
    validate_dataset_name(parsed.name or "")
    target = repo or parsed.repo
    full_name = parsed.name if target == LOCAL_REPO else f"{target}/{parsed.name}"
    if not source.schema.named:
        source.schema.name = type_name_for(parsed.name or name)
    cls = source.schema.sample_type()
    schema_ref = index.publish_schema(cls)
    metadata: dict[str, Any] = {"source": {"kind": source.kind, "path": source.path}}
    entry = index.write(
        source.samples(cancel=cancel),
        name=full_name or name,
        schema_ref=schema_ref,
        description=description,
        tags=tags,
        license=license,
        maxcount=maxcount,
        maxsize=maxsize,
        metadata=metadata,
        overwrite=overwrite,
        progress=progress,
        cancel=cancel,
    )
    if source.skipped:
        index.update_metadata(entry, {"import_skipped": source.skipped})
    return entry


__all__ = [
    "SOURCE_KINDS",
    "TYPE_CHOICES",
    "ImportField",
    "ImportSchema",
    "ImportSource",
    "ImportSourceError",
    "converter_for",
    "detect_kind",
    "import_into",
    "open_source",
    "parse_size",
    "parse_type",
]
