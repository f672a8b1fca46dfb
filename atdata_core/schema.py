"""Schema records ⇄ Python sample types, with no I/O: the index stores records, this module
transforms and validates them.

Three forms of the same thing live here (FORMATS.md): the *local record* atdata keeps in its index
(``{"name", "version", "fields": [...]}``), the *JSON Schema* body of an ATProto
``science.alt.dataset.schema`` record, and a *Python class* (dynamic, or a generated stub module for
IDEs). A schema is untrusted input: every name is validated as a plain identifier, every string that
reaches generated source goes through ``repr()``, and no text from a record is ever ``exec``'d.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import importlib.machinery
import importlib.util
import inspect
import json
import keyword
import os
import re
import sys
import tempfile
import threading
import types
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from .errors import RefError, SchemaError
from .samples import (
    PRIMITIVE_TYPES,
    FieldSpec,
    FieldType,
    PackableSample,
    field_specs,
    packable,
)

__all__ = [
    "ATPROTO_SCHEMA_COLLECTION",
    "JSON_SCHEMA_DRAFT_07",
    "JSON_SCHEMA_FORMAT_TYPE",
    "LEGACY_ATPROTO_SCHEMA_COLLECTION",
    "LEGACY_SCHEMA_PREFIX",
    "LOCAL_SCHEMA_PREFIX",
    "MAX_NAME_LENGTH",
    "NDARRAY_SHIM_REF",
    "FieldChange",
    "StubWriter",
    "bump_patch",
    "clear_type_cache",
    "content_hash",
    "diff_records",
    "field_type_from_dict",
    "field_type_to_dict",
    "fields_from_record",
    "generate_stub",
    "next_version",
    "normalize_record",
    "parse_schema_ref",
    "parse_version",
    "record_from_atproto",
    "record_from_json_schema",
    "sample_type_from_record",
    "schema_record",
    "schema_ref",
    "sort_versions",
    "stub_module_name",
    "to_atproto_record",
    "to_json_schema",
    "validate_name",
    "validate_version",
]

LOCAL_SCHEMA_PREFIX = "atdata://local/schema/"
LEGACY_SCHEMA_PREFIX = "local://schemas/"

ATPROTO_SCHEMA_COLLECTION = "science.alt.dataset.schema"
LEGACY_ATPROTO_SCHEMA_COLLECTION = "ac.foundation.dataset.sampleSchema"
JSON_SCHEMA_FORMAT_TYPE = "science.alt.dataset.schema#jsonSchemaFormat"
JSON_SCHEMA_DRAFT_07 = "http://json-schema.org/draft-07/schema#"
NDARRAY_SHIM_REF = "https://alt.science/schemas/atdata-ndarray-bytes/1.0.0#/$defs/ndarray"
NDARRAY_FORMAT_VERSION = "1.0.0"

MAX_NAME_LENGTH = 128
MAX_VERSION_LENGTH = 100  # the lexicon's maxLength for `version`
MAX_FIELDS = 1000
MAX_TYPE_DEPTH = 16  # list[list[...]] nesting; a hostile record must not blow the stack
ATPROTO_MAX_NAME = 100
ATPROTO_MAX_DESCRIPTION = 5000

#: Field names that would shadow what ``PackableSample`` needs (``packed`` is a read-only
#: property, ``fields`` a classmethod the codec calls) or break generated ``__init__`` stubs.
RESERVED_FIELD_NAMES = frozenset(
    {"self", "fields", "from_data", "from_bytes", "to_data", "packed", "as_wds"}
)
#: Names the generated stub module itself binds; a class of that name would shadow them.
_STUB_MODULE_NAMES = frozenset({"np", "NDArray", "Any", "TYPE_CHECKING", "packable"})

_VERSION_RE = re.compile(r"[0-9A-Za-z][0-9A-Za-z.+\-]*")
_DTYPE_RE = re.compile(r"[<>|=]?[A-Za-z][A-Za-z0-9_]*(\[[A-Za-z0-9]+\])?")
_ALLOWED_DTYPE_KINDS = frozenset("biufcmMSU")


# --- names, versions, refs -------------------------------------------------------------------------


def validate_name(name: object, *, field: bool = False) -> str:
    """Return ``name`` if it is safe as a Python class (or, with ``field``, attribute) name.

    Schema records come from other people's indexes and the network, and names end up as class
    attributes and in generated source, so only plain identifiers pass: no keywords, no leading
    ``__`` (dunder and name-mangled), NFKC-normal (so source and runtime agree), at most 128
    characters. Field names also may not shadow ``PackableSample`` members or be ``self``.
    """
    what = "field name" if field else "schema name"
    if not isinstance(name, str):
        raise SchemaError(f"{what} must be a string, got {type(name).__name__}: {name!r:.80}")
    if not name:
        raise SchemaError(f"{what} is empty")
    if len(name) > MAX_NAME_LENGTH:
        raise SchemaError(f"{what} {name[:40]!r}… is {len(name)} characters (at most 128)")
    if not name.isidentifier() or unicodedata.normalize("NFKC", name) != name:
        raise SchemaError(f"{what} {name!r} is not a Python identifier (letters, digits, _)")
    if keyword.iskeyword(name):
        raise SchemaError(f"{what} {name!r} is a Python keyword")
    if name.startswith("__"):
        raise SchemaError(f"{what} {name!r} may not start with '__' (dunder names are reserved)")
    if field and (name in RESERVED_FIELD_NAMES or name.startswith("_atdata")):
        raise SchemaError(f"{what} {name!r} is reserved by sample classes; rename the field")
    return name


def validate_version(version: object) -> str:
    """Return ``version`` if it is a sane version string (``1.0.0``, ``2.1.0-rc.1``).

    Versions end up in refs and module names, so only ``[0-9A-Za-z.+-]`` is allowed.
    """
    if not isinstance(version, str):
        raise SchemaError(f"schema version must be a string, got {type(version).__name__}")
    if len(version) > MAX_VERSION_LENGTH or not _VERSION_RE.fullmatch(version):
        raise SchemaError(
            f"schema version {version[:40]!r} is not a version like 1.0.0 "
            "(letters, digits, '.', '+' and '-' only)"
        )
    return version


def schema_ref(name: str, version: str) -> str:
    """``atdata://local/schema/{name}@{version}``, the ref an entry stores for its schema."""
    return f"{LOCAL_SCHEMA_PREFIX}{validate_name(name)}@{validate_version(version)}"


def stored_record(raw: str | bytes, name: str, version: str) -> dict[str, Any]:
    """A schema record as a provider stores it (JSON), parsed; ``SchemaError`` if it is not an
    object, naming the schema, so a damaged row gives a message rather than a crash."""
    try:
        record = json.loads(raw)
    except ValueError as exc:
        raise SchemaError(f"schema {name}@{version} is not valid JSON: {exc}") from None
    if not isinstance(record, dict):
        raise SchemaError(f"schema {name}@{version} is not a JSON object")
    return record


def parse_schema_ref(ref: object) -> tuple[str, str | None]:
    """Split a schema ref into ``(name, version or None)``.

    Accepts ``atdata://local/schema/Name@1.0.0``, atdata's legacy
    ``local://schemas/module.Class@1.0.0`` (the name is the last dotted part) and bare ``Name`` or
    ``Name@1.0.0`` as a user types it. A missing version means "the latest".
    """
    if not isinstance(ref, str):
        raise RefError(f"a schema ref must be a string, got {type(ref).__name__}")
    text = ref.strip()
    legacy = False
    if text.startswith(LOCAL_SCHEMA_PREFIX):
        text = text[len(LOCAL_SCHEMA_PREFIX) :]
    elif text.startswith(LEGACY_SCHEMA_PREFIX):
        text = text[len(LEGACY_SCHEMA_PREFIX) :]
        legacy = True
    elif "://" in text or text.startswith(("at:", "@")) or "/" in text:
        raise RefError(
            f"{ref!r} is not a local schema ref; use {LOCAL_SCHEMA_PREFIX}Name@1.0.0 or Name@1.0.0"
        )
    name, sep, version = text.partition("@")
    if legacy and "." in name:
        name = name.rsplit(".", 1)[1]
    try:
        validate_name(name)
        if sep:
            validate_version(version)
    except SchemaError as exc:
        raise RefError(f"bad schema ref {ref!r}: {exc}") from None
    return name, (version if sep else None)


# --- versions ----------------------------------------------------------------------------------------

_Part = tuple[int, int, str]  # (0, number, "") for numeric parts, (1, 0, text) otherwise


def _version_part(text: str) -> _Part:
    # Python refuses int() of >4300 digits; such a "number" sorts as text instead of crashing.
    if text.isdigit() and text.isascii() and len(text) <= 100:
        return (0, int(text), "")
    return (1, 0, text)


def parse_version(version: object) -> tuple[Any, ...]:
    """A sort key for a version string that follows semver precedence and never raises.

    ``parse_version(a) < parse_version(b)`` means ``a`` is older. The key is
    ``(release, is_release, prerelease_parts, text)``: the leading numeric ``major.minor.patch``
    (padded to three), then releases after their pre-releases (``1.0.0-rc.1 < 1.0.0``),
    pre-release identifiers numeric-before-text, and the raw text as a final tie-breaker. Anything
    that is not a version (``latest``, ``""``) sorts before ``0.0.0`` instead of crashing.
    """
    text = version if isinstance(version, str) else str(version)
    core, _, _build = text.partition("+")
    core, dash, pre = core.partition("-")
    release: list[int] = []
    rest: list[str] = []
    for part in core.split("."):
        if not rest and part.isdigit() and part.isascii() and len(part) <= 100:
            release.append(int(part))
        else:
            rest.append(part)
    if dash:
        rest.extend(pre.split("."))
    rest = [p for p in rest if p]
    release_key = tuple(release + [0] * (3 - len(release)))
    is_release = 0 if rest else 1
    return (release_key, is_release, tuple(_version_part(p) for p in rest), text)


def sort_versions(versions: Iterable[str], *, newest_first: bool = True) -> list[str]:
    """Versions in semver order (newest first by default); garbage sorts oldest, never raises."""
    return sorted(versions, key=parse_version, reverse=newest_first)


def bump_patch(version: str) -> str:
    """The next patch version: ``1.2.3`` → ``1.2.4``; ``1.2`` → ``1.2.1``; a pre-release
    ``1.2.3-rc.1`` → ``1.2.3`` (the release that follows it, as semver orders them)."""
    validate_version(version)
    core = version.partition("+")[0]
    core, dash, _ = core.partition("-")
    parts = core.split(".")
    if not all(p.isdigit() and p.isascii() and len(p) <= 100 for p in parts) or len(parts) > 3:
        raise SchemaError(f"cannot bump version {version!r}: it is not major.minor.patch")
    numbers = [int(p) for p in parts] + [0] * (3 - len(parts))
    if not dash:
        numbers[2] += 1
    return ".".join(str(n) for n in numbers)


def next_version(existing: Iterable[str]) -> str:
    """The version a new publish gets: ``1.0.0`` first, else the patch after the newest."""
    versions = sort_versions(existing)
    return bump_patch(versions[0]) if versions else "1.0.0"


# --- field types ⇄ dicts -------------------------------------------------------------------------------


def _normalize_dtype(dtype: object, where: str) -> str | None:
    """Validate a dtype hint and return numpy's name for it (``<f4`` → ``float32``)."""
    if dtype is None:
        return None
    if not isinstance(dtype, str) or len(dtype) > 32 or not _DTYPE_RE.fullmatch(dtype):
        raise SchemaError(f"{where}: bad ndarray dtype {dtype!r:.60}")
    try:
        dt = np.dtype(dtype)
    except (TypeError, ValueError):
        raise SchemaError(f"{where}: unknown ndarray dtype {dtype!r}") from None
    if dt.hasobject or dt.kind not in _ALLOWED_DTYPE_KINDS:
        raise SchemaError(f"{where}: ndarray dtype {dtype!r} is not supported (object/void)")
    try:
        same = np.dtype(dt.name) == dt.newbyteorder("=")
    except (TypeError, ValueError):
        same = False
    return dt.name if same else dtype


_KIND_ALIASES = {"dict": "map", "object": "map", "list": "array"}
_UNSUPPORTED_KINDS = {
    "ref": "references to other schemas",
    "sparse": "sparse matrices",
    "structured": "structured arrays",
    "arrow_tensor": "Arrow tensors",
    "safetensors": "safetensors",
    "dataframe": "data frames",
}


def field_type_from_dict(data: object, *, where: str = "field", _depth: int = 0) -> FieldType:
    """Read a ``fieldType`` the way atdata writes it (and a few older spellings), validated.

    Accepted: ``{"$type": "local#primitive", "primitive": "str"}`` (any ``…#kind`` prefix, or a bare
    kind), ``{"kind": "ndarray"}``, ``local#ndarray`` with or without ``dtype``, ``local#array`` with
    or without ``items``, ``local#map`` and ``local#any``, and the bare strings ``"str"``,
    ``"ndarray"``… Extra keys (atdata's ``shape``, ``dimensionNames``) are ignored.
    """
    if _depth > MAX_TYPE_DEPTH:
        raise SchemaError(f"{where}: field type is nested more than {MAX_TYPE_DEPTH} levels deep")
    if isinstance(data, str):
        data = (
            {"$type": "local#primitive", "primitive": data}
            if data in PRIMITIVE_TYPES
            else {"$type": data}
        )
    if not isinstance(data, Mapping):
        raise SchemaError(f"{where}: fieldType must be an object, got {type(data).__name__}")
    type_str = data.get("$type", data.get("kind"))
    if not isinstance(type_str, str) or not type_str:
        raise SchemaError(f"{where}: fieldType has no '$type'")
    kind = type_str.rsplit("#", 1)[-1]
    kind = _KIND_ALIASES.get(kind, kind)
    if kind == "primitive":
        primitive = data.get("primitive")
        if not isinstance(primitive, str) or primitive not in PRIMITIVE_TYPES:
            raise SchemaError(
                f"{where}: unknown primitive {primitive!r:.40} (str, int, float, bool or bytes)"
            )
        return FieldType("primitive", primitive=primitive)
    if kind == "ndarray":
        return FieldType("ndarray", dtype=_normalize_dtype(data.get("dtype"), where))
    if kind == "array":
        items = data.get("items")
        if items is None:
            return FieldType("array")
        return FieldType(
            "array", items=field_type_from_dict(items, where=f"{where}[]", _depth=_depth + 1)
        )
    if kind in ("map", "any"):
        return FieldType(kind)  # type: ignore[arg-type]
    if kind in _UNSUPPORTED_KINDS:
        raise SchemaError(
            f"{where}: fields of {_UNSUPPORTED_KINDS[kind]} ({type_str!r}) are not supported; "
            "read this dataset without a schema (as DictSample)"
        )
    raise SchemaError(f"{where}: unknown field type {type_str!r:.80}")


def field_type_to_dict(ftype: FieldType) -> dict[str, Any]:
    """The local-record form of a field type (``local#…``). A bare NDArray is written as
    ``float32`` because atdata does so (readers must trust the bytes' header, not this)."""
    if ftype.kind == "primitive":
        return {"$type": "local#primitive", "primitive": ftype.primitive}
    if ftype.kind == "ndarray":
        return {"$type": "local#ndarray", "dtype": ftype.dtype or "float32"}
    if ftype.kind == "array":
        if ftype.items is None:
            return {"$type": "local#array"}
        return {"$type": "local#array", "items": field_type_to_dict(ftype.items)}
    return {"$type": f"local#{ftype.kind}"}


def _field_to_dict(spec: FieldSpec) -> dict[str, Any]:
    return {
        "name": spec.name,
        "fieldType": field_type_to_dict(spec.type),
        "optional": spec.optional,
    }


# --- records ---------------------------------------------------------------------------------------------


def _iso_utc(created_at: datetime | str | None) -> str:
    if created_at is None:
        return datetime.now(UTC).isoformat()
    if isinstance(created_at, str):
        try:
            datetime.fromisoformat(created_at.replace("Z", "+00:00"))
        except ValueError:
            raise SchemaError(f"createdAt {created_at!r:.60} is not an ISO 8601 date") from None
        return created_at
    if created_at.tzinfo is None:
        created_at = created_at.replace(tzinfo=UTC)
    return created_at.astimezone(UTC).isoformat()


def _class_description(sample_type: type) -> str | None:
    """The class docstring, cleaned; ``None`` when it has none (or only dataclass's own)."""
    doc = sample_type.__dict__.get("__doc__")
    if not isinstance(doc, str) or not doc.strip():
        return None
    if dataclasses.is_dataclass(sample_type):
        try:  # dataclass() invents "Name(a: int, ...)" for undocumented classes
            invented = sample_type.__name__ + str(inspect.signature(sample_type)).replace(
                " -> None", ""
            )
        except (TypeError, ValueError):
            invented = None
        if doc == invented:
            return None
    return inspect.cleandoc(doc)


def schema_record(
    sample_type: type,
    *,
    version: str,
    name: str | None = None,
    description: str | None = None,
    created_at: datetime | str | None = None,
) -> dict[str, Any]:
    """The local schema record (FORMATS.md) of a sample class.

    ``description`` defaults to the class docstring. Unsupported field types raise ``TypeError``
    (from ``samples.field_type_of``); names that are not safe identifiers raise ``SchemaError``.
    """
    if not isinstance(sample_type, type):
        raise TypeError(f"expected a sample class, got {type(sample_type).__name__}")
    record_name = validate_name(name if name is not None else sample_type.__name__)
    validate_version(version)
    specs = field_specs(sample_type)
    for spec in specs:
        validate_name(spec.name, field=True)
    if description is None:
        description = _class_description(sample_type)
    return {
        "name": record_name,
        "version": version,
        "description": description,
        "createdAt": _iso_utc(created_at),
        "$ref": schema_ref(record_name, version),
        "fields": [_field_to_dict(s) for s in specs],
    }


def _is_atproto_form(record: Mapping[str, Any]) -> bool:
    return "fields" not in record and isinstance(record.get("schema"), Mapping)


def _local_form(record: object) -> Mapping[str, Any]:
    if not isinstance(record, Mapping):
        raise SchemaError(f"a schema record must be an object, got {type(record).__name__}")
    if _is_atproto_form(record):
        return record_from_atproto(record)
    return record


def fields_from_record(record: Mapping[str, Any]) -> list[FieldSpec]:
    """The validated fields of a record (local form, or an ATProto JSON-schema record).

    Anything malformed or hostile (non-object, missing keys, unknown ``$type``, bad or duplicate
    names, absurd sizes) raises ``SchemaError`` naming the problem.
    """
    record = _local_form(record)
    name = record.get("name")
    validate_name(name)
    fields = record.get("fields")
    if not isinstance(fields, list):
        raise SchemaError(f"schema {name}: 'fields' must be a list, got {type(fields).__name__}")
    if len(fields) > MAX_FIELDS:
        raise SchemaError(f"schema {name}: {len(fields)} fields (at most {MAX_FIELDS})")
    specs: list[FieldSpec] = []
    seen: set[str] = set()
    for i, field in enumerate(fields):
        if not isinstance(field, Mapping):
            raise SchemaError(f"schema {name}: field #{i} must be an object")
        fname = field.get("name")
        try:
            validate_name(fname, field=True)
        except SchemaError as exc:
            raise SchemaError(f"schema {name}: field #{i}: {exc}") from None
        assert isinstance(fname, str)
        if fname in seen:
            raise SchemaError(f"schema {name}: field {fname!r} is declared twice")
        seen.add(fname)
        if "fieldType" not in field:
            raise SchemaError(f"schema {name}: field {fname!r} has no 'fieldType'")
        ftype = field_type_from_dict(field["fieldType"], where=f"schema {name}: field {fname!r}")
        optional = field.get("optional", False)
        if not isinstance(optional, bool):
            raise SchemaError(f"schema {name}: field {fname!r}: 'optional' must be true or false")
        specs.append(FieldSpec(fname, ftype, optional, has_default=optional))
    return specs


def _description_of(record: Mapping[str, Any]) -> str | None:
    description = record.get("description")
    if description is not None and not isinstance(description, str):
        raise SchemaError(
            f"schema {record.get('name')}: 'description' must be a string, "
            f"got {type(description).__name__}"
        )
    return description or None


def normalize_record(record: Mapping[str, Any]) -> dict[str, Any]:
    """A validated, canonical local record from any accepted form (atdata's local JSON, older
    field-type spellings, or an ATProto schema record). ``$ref`` is recomputed; unknown keys drop."""
    record = _local_form(record)
    specs = fields_from_record(record)
    name = validate_name(record.get("name"))
    version = validate_version(record.get("version"))
    created = record.get("createdAt")
    return {
        "name": name,
        "version": version,
        "description": _description_of(record),
        "createdAt": _iso_utc(created) if isinstance(created, str) and created else None,
        "$ref": schema_ref(name, version),
        "fields": [_field_to_dict(s) for s in specs],
    }


def content_hash(record: Mapping[str, Any]) -> str:
    """SHA-256 (hex) of the record's name and fields only, so publishing identical content again
    can reuse the existing version instead of bumping it (version, date, description excluded).

    Computed on the canonical form, so ``<f4`` vs ``float32`` or a missing ``optional`` key do not
    change it."""
    record = _local_form(record)
    specs = fields_from_record(record)
    canonical = {"name": record["name"], "fields": [_field_to_dict(s) for s in specs]}
    data = json.dumps(canonical, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(data.encode("utf-8", "surrogatepass")).hexdigest()


# --- dynamic classes --------------------------------------------------------------------------------------


def _scalar_type(dtype: str | None) -> type | None:
    """The numpy scalar type whose ``NDArray[...]`` annotation means exactly ``dtype``."""
    if dtype is None:
        return None
    try:
        scalar = np.dtype(dtype).type
        exact = np.dtype(scalar).name == dtype and getattr(np, scalar.__name__, None) is scalar
    except (TypeError, ValueError):
        return None
    return scalar if exact else None


def _annotation_for(ftype: FieldType) -> Any:
    if ftype.kind == "ndarray":
        scalar = _scalar_type(ftype.dtype)
        return npt.NDArray if scalar is None else npt.NDArray[scalar]  # type: ignore[valid-type]
    if ftype.kind == "array":
        return list if ftype.items is None else list[_annotation_for(ftype.items)]  # type: ignore[misc]
    return ftype.python_type()


_type_cache: dict[tuple[Any, ...], type[PackableSample]] = {}
_type_cache_lock = threading.Lock()
_TYPE_CACHE_MAX = 512


def clear_type_cache() -> None:
    """Forget the classes built by ``sample_type_from_record`` (tests, or after a schema edit)."""
    with _type_cache_lock:
        _type_cache.clear()


def sample_type_from_record(record: Mapping[str, Any]) -> type[PackableSample]:
    """A working ``@packable`` class for a record, built from data (never from source text).

    Optional fields default to ``None`` even when a required field follows (atdata could not
    decode that). The same content (name, version, fields) gives the same class every time.
    The class carries ``_atdata_schema_ref``, ``_atdata_schema_version`` and
    ``_atdata_content_hash``.
    """
    record = _local_form(record)
    specs = fields_from_record(record)
    name = validate_name(record.get("name"))
    version = validate_version(record.get("version"))
    description = _description_of(record)
    digest = content_hash(record)
    key = (name, version, digest, tuple(specs))
    with _type_cache_lock:
        cached = _type_cache.get(key)
        if cached is not None:
            return cached
        annotations: dict[str, Any] = {}
        for spec in specs:
            ann = _annotation_for(spec.type)
            annotations[spec.name] = ann | None if spec.optional else ann

        def body(ns: dict[str, Any]) -> None:
            ns["__annotations__"] = annotations
            ns["__doc__"] = description
            ns["__module__"] = __name__
            ns["__qualname__"] = name

        try:
            cls: type[PackableSample] = packable(types.new_class(name, (), {}, body))
        except (TypeError, ValueError) as exc:  # should not happen for validated records
            raise SchemaError(f"schema {name}@{version} cannot be built: {exc}") from None
        cls._atdata_schema_ref = schema_ref(name, version)  # type: ignore[attr-defined]
        cls._atdata_schema_version = version  # type: ignore[attr-defined]
        cls._atdata_content_hash = digest  # type: ignore[attr-defined]
        _type_cache[key] = cls
        while len(_type_cache) > _TYPE_CACHE_MAX:
            del _type_cache[next(iter(_type_cache))]
        return cls


# --- diffs ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FieldChange:
    """One difference between two versions of a schema, for the UI and publish prompts."""

    name: str
    kind: Literal["added", "removed", "type_changed", "optional_changed"]
    old: str | None
    new: str | None

    def describe(self) -> str:
        """One line for a diff view: ``+ name: type``, ``- name: type``, ``~ name: old → new``."""
        if self.kind == "added":
            return f"+ {self.name}: {self.new}"
        if self.kind == "removed":
            return f"- {self.name}: {self.old}"
        return f"~ {self.name}: {self.old} → {self.new}"  # type or optionality changed


def diff_records(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[FieldChange]:
    """Field changes from ``old`` to ``new``: removed/changed in old order, then added in new order.

    ``optional_changed`` reports ``"required"``/``"optional"``; a field whose type and optionality
    both changed gives two entries. Reordering alone is not reported (it does not change the bytes).
    """
    old_specs = {s.name: s for s in fields_from_record(old)}
    new_specs = {s.name: s for s in fields_from_record(new)}
    changes: list[FieldChange] = []
    for name, o in old_specs.items():
        n = new_specs.get(name)
        if n is None:
            changes.append(FieldChange(name, "removed", o.describe(), None))
            continue
        if field_type_to_dict(o.type) != field_type_to_dict(n.type):
            changes.append(FieldChange(name, "type_changed", o.type.describe(), n.type.describe()))
        if o.optional != n.optional:
            changes.append(
                FieldChange(
                    name,
                    "optional_changed",
                    "optional" if o.optional else "required",
                    "optional" if n.optional else "required",
                )
            )
    for name, n in new_specs.items():
        if name not in old_specs:
            changes.append(FieldChange(name, "added", None, n.describe()))
    return changes


# --- JSON Schema (ATProto records) ----------------------------------------------------------------------


def _json_schema_property(ftype: FieldType) -> dict[str, Any]:
    if ftype.kind == "primitive":
        return {
            "str": {"type": "string"},
            "int": {"type": "integer"},
            "float": {"type": "number"},
            "bool": {"type": "boolean"},
            "bytes": {"type": "string", "format": "byte", "contentEncoding": "base64"},
        }[ftype.primitive or "str"]
    if ftype.kind == "ndarray":
        # `dtype` beside `$ref` is ignored by JSON Schema validators; atdata reads it as its
        # ndarray dtype annotation, so the hint survives a round trip through atdata.
        return {"$ref": NDARRAY_SHIM_REF, "dtype": ftype.dtype or "float32"}
    if ftype.kind == "array":
        if ftype.items is None:
            return {"type": "array"}
        return {"type": "array", "items": _json_schema_property(ftype.items)}
    if ftype.kind == "map":
        return {"type": "object"}
    return {}


def _has_ndarray(ftype: FieldType) -> bool:
    return ftype.kind == "ndarray" or (ftype.items is not None and _has_ndarray(ftype.items))


def to_json_schema(record: Mapping[str, Any]) -> dict[str, Any]:
    """The ``schema`` object of a ``science.alt.dataset.schema`` record (``jsonSchemaFormat``).

    Properties sit at the top level of the object, as atdata writes them; optional fields are
    left out of ``required`` (their type stays plain). ``arrayFormatVersions`` is added, beside
    ``properties``, when any field holds an NDArray.
    """
    specs = fields_from_record(record)
    schema: dict[str, Any] = {
        "$type": JSON_SCHEMA_FORMAT_TYPE,
        "$schema": JSON_SCHEMA_DRAFT_07,
        "type": "object",
        "properties": {s.name: _json_schema_property(s.type) for s in specs},
        "required": [s.name for s in specs if not s.optional],
    }
    if any(_has_ndarray(s.type) for s in specs):
        schema["arrayFormatVersions"] = {"ndarrayBytes": NDARRAY_FORMAT_VERSION}
    return schema


def _field_type_from_property(prop: object, where: str, depth: int = 0) -> tuple[FieldType, bool]:
    """A JSON Schema property → (field type, whether it allows null)."""
    if depth > MAX_TYPE_DEPTH:
        raise SchemaError(f"{where}: property is nested more than {MAX_TYPE_DEPTH} levels deep")
    if not isinstance(prop, Mapping):
        raise SchemaError(f"{where}: property must be an object, got {type(prop).__name__}")
    ref = prop.get("$ref")
    if ref is not None:
        if isinstance(ref, str) and "ndarray" in ref.lower():
            dtype = prop.get("dtype", prop.get("x-dtype"))
            return FieldType("ndarray", dtype=_normalize_dtype(dtype, where)), False
        raise SchemaError(f"{where}: unsupported $ref {ref!r:.120} (only the NDArray shim)")
    jtype = prop.get("type")
    nullable = False
    if isinstance(jtype, list):
        kinds = [t for t in jtype if t != "null"]
        nullable = len(kinds) != len(jtype)
        if len(kinds) != 1:
            raise SchemaError(f"{where}: union types {jtype!r:.80} are not supported")
        jtype = kinds[0]
    if jtype is None:
        return FieldType("any"), nullable
    if jtype == "string":
        if prop.get("format") == "byte" or prop.get("contentEncoding") == "base64":
            return FieldType("primitive", primitive="bytes"), nullable
        return FieldType("primitive", primitive="str"), nullable
    simple = {"integer": "int", "number": "float", "boolean": "bool"}
    if isinstance(jtype, str) and jtype in simple:
        return FieldType("primitive", primitive=simple[jtype]), nullable
    if jtype == "array":
        items = prop.get("items")
        if items is None:
            return FieldType("array"), nullable
        return FieldType(
            "array", items=_field_type_from_property(items, f"{where}[]", depth + 1)[0]
        ), nullable
    if jtype == "object":
        return FieldType("map"), nullable
    raise SchemaError(f"{where}: unsupported JSON Schema type {jtype!r:.60}")


def record_from_json_schema(
    name: str,
    version: str,
    schema: Mapping[str, Any],
    *,
    description: str | None = None,
    created_at: datetime | str | None = None,
) -> dict[str, Any]:
    """The local record for a ``jsonSchemaFormat`` object (the reverse of ``to_json_schema``).

    Also reads atdata's older nested form (``schema.schemaBody.properties``). Hostile or
    malformed input (non-objects, unknown types, bad names, ``required`` naming no property)
    raises ``SchemaError``.
    """
    validate_name(name)
    validate_version(version)
    if not isinstance(schema, Mapping):
        raise SchemaError(f"schema {name}: JSON schema must be an object")
    stype = schema.get("$type")
    if stype is not None and (
        not isinstance(stype, str) or not stype.endswith("#jsonSchemaFormat")
    ):
        raise SchemaError(f"schema {name}: unsupported schema format {stype!r:.80}")
    body = schema.get("schemaBody", schema)
    if not isinstance(body, Mapping):
        raise SchemaError(f"schema {name}: 'schemaBody' must be an object")
    if body.get("type", "object") != "object":
        raise SchemaError(f"schema {name}: a sample schema must have type 'object'")
    properties = body.get("properties", {})
    if not isinstance(properties, Mapping):
        raise SchemaError(f"schema {name}: 'properties' must be an object")
    if len(properties) > MAX_FIELDS:
        raise SchemaError(f"schema {name}: {len(properties)} properties (at most {MAX_FIELDS})")
    required = body.get("required", [])
    if not isinstance(required, list) or not all(isinstance(r, str) for r in required):
        raise SchemaError(f"schema {name}: 'required' must be a list of names")
    missing = [r for r in required if r not in properties]
    if missing:
        raise SchemaError(f"schema {name}: 'required' names unknown properties {missing!r:.120}")
    for key in ("arrayFormatVersions",):
        value = schema.get(key, body.get(key))
        if value is not None and not isinstance(value, Mapping):
            raise SchemaError(f"schema {name}: {key!r} must be an object")
    fields = []
    for fname, prop in properties.items():
        try:
            validate_name(fname, field=True)
        except SchemaError as exc:
            raise SchemaError(f"schema {name}: {exc}") from None
        ftype, nullable = _field_type_from_property(prop, f"schema {name}: field {fname!r}")
        fields.append(
            {
                "name": fname,
                "fieldType": field_type_to_dict(ftype),
                "optional": nullable or fname not in required,
            }
        )
    if description is not None and not isinstance(description, str):
        raise SchemaError(f"schema {name}: description must be a string")
    return {
        "name": name,
        "version": version,
        "description": description or None,
        "createdAt": _iso_utc(created_at),
        "$ref": schema_ref(name, version),
        "fields": fields,
    }


def to_atproto_record(
    record: Mapping[str, Any], *, metadata: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """A full ``science.alt.dataset.schema`` record (for ``createRecord``) from a local record.

    The lexicon caps ``name`` at 100 characters (longer names raise ``SchemaError``) and
    ``description`` at 5000 (a longer one is cut, ending in ``…``).
    """
    specs_record = normalize_record(record)
    name = specs_record["name"]
    if len(name) > ATPROTO_MAX_NAME:
        raise SchemaError(f"schema name {name[:40]!r}… is longer than the lexicon's 100 characters")
    out: dict[str, Any] = {
        "$type": ATPROTO_SCHEMA_COLLECTION,
        "name": name,
        "version": specs_record["version"],
        "schemaType": "jsonSchema",
        "schema": to_json_schema(specs_record),
        "createdAt": specs_record["createdAt"] or _iso_utc(None),
        "atdataSchemaVersion": 1,
    }
    description = specs_record["description"]
    if description:
        if len(description) > ATPROTO_MAX_DESCRIPTION:
            description = description[: ATPROTO_MAX_DESCRIPTION - 1] + "…"
        out["description"] = description
    if metadata:
        out["metadata"] = dict(metadata)
    return out


def record_from_atproto(record: Mapping[str, Any]) -> dict[str, Any]:
    """The local record for an ATProto schema record of either namespace
    (``science.alt.dataset.schema`` or the older ``ac.foundation.dataset.sampleSchema``)."""
    if not isinstance(record, Mapping):
        raise SchemaError(f"a schema record must be an object, got {type(record).__name__}")
    rtype = record.get("$type")
    if rtype is not None and rtype not in (
        ATPROTO_SCHEMA_COLLECTION,
        LEGACY_ATPROTO_SCHEMA_COLLECTION,
    ):
        raise SchemaError(f"record of type {rtype!r:.80} is not a schema record")
    schema_type = record.get("schemaType", "jsonSchema")
    if schema_type != "jsonSchema":
        raise SchemaError(f"schema type {schema_type!r:.60} is not supported (only jsonSchema)")
    version = record.get("atdataSchemaVersion", record.get("$atdataSchemaVersion", 1))
    if not isinstance(version, int) or version > 1:
        raise SchemaError(
            f"schema record format version {version!r:.20} is newer than this program reads"
        )
    schema = record.get("schema")
    if not isinstance(schema, Mapping):
        raise SchemaError("schema record has no 'schema' object")
    created = record.get("createdAt")
    return record_from_json_schema(
        record.get("name"),  # type: ignore[arg-type]  # validated inside
        record.get("version"),  # type: ignore[arg-type]
        schema,
        description=_description_of(record),
        created_at=created if isinstance(created, str) and created else None,
    )


# --- typed stub modules ------------------------------------------------------------------------------------

_STUB_MARKER = "# Generated by atdata-tui from a schema record."


def stub_module_name(name: str, version: str) -> str:
    """``Name_1_0_0``: the module holding the stub of ``Name@1.0.0`` (``.+-`` become ``_``)."""
    validate_name(name)
    validate_version(version)
    return f"{name}_{re.sub(r'[^0-9A-Za-z]', '_', version)}"


def _annotation_text(ftype: FieldType) -> str:
    if ftype.kind == "primitive":
        return ftype.primitive or "str"
    if ftype.kind == "ndarray":
        scalar = _scalar_type(ftype.dtype)
        return "NDArray" if scalar is None else f"NDArray[np.{scalar.__name__}]"
    if ftype.kind == "array":
        return "list" if ftype.items is None else f"list[{_annotation_text(ftype.items)}]"
    if ftype.kind == "map":
        return "dict"
    return "Any"


def generate_stub(record: Mapping[str, Any]) -> str:
    """Python source of a module defining the record's ``@packable`` class, for IDEs and type
    checkers (and importable: ``StubWriter.load``).

    Only validated identifiers and annotations we spell ourselves reach the source; every string
    from the record (name/version text, description) is written with ``repr()``, so nothing in a
    record can become code.
    """
    record = _local_form(record)
    specs = fields_from_record(record)
    name = validate_name(record.get("name"))
    version = validate_version(record.get("version"))
    if name in _STUB_MODULE_NAMES:
        raise SchemaError(f"schema name {name!r} clashes with a name the stub module imports")
    description = _description_of(record)
    ref = schema_ref(name, version)
    module_doc = f"Typed sample class for schema {name}@{version} (generated; do not edit)."
    lines = [
        _STUB_MARKER,
        repr(module_doc),
        "",
        "from typing import TYPE_CHECKING, Any",
        "",
        "import numpy as np",
        "from numpy.typing import NDArray",
        "",
        "from atdata_core.samples import packable",
        "",
        f"__schema_ref__ = {ref!r}",
        f"__content_hash__ = {content_hash(record)!r}",
        f"__all__ = [{name!r}]",
        "",
        "",
        "@packable",
        f"class {name}:",
    ]
    if description:
        lines += [f"    {description!r}", ""]
    annotations = [
        f"{s.name}: {_annotation_text(s.type)}{' | None' if s.optional else ''}" for s in specs
    ]
    # Optional fields get their None default from @packable; writing `= None` here would bind
    # the name in the class body and could shadow an annotation (a field named `np` or `str`).
    lines += [f"    {a}" for a in annotations]
    if specs:
        kw_only = False
        seen_default = False
        for s in specs:
            if s.optional:
                seen_default = True
            elif seen_default:
                kw_only = True
        params = [
            f"{s.name}: {_annotation_text(s.type)} | None = None"
            if s.optional
            else f"{s.name}: {_annotation_text(s.type)}"
            for s in specs
        ]
        params = ["self", *(["*"] if kw_only else []), *params]
        lines += ["", "    if TYPE_CHECKING:", "", "        def __init__("]
        lines += [f"            {p}," for p in params]
        lines += ["        ) -> None: ..."]
    else:
        lines.append("    pass")
    return "\n".join(lines) + "\n"


class _GeneratedSourceLoader(importlib.machinery.SourceFileLoader):
    """Imports a stub from the source text we generated (not whatever is on disk now), with no
    bytecode cache: a rewritten stub of the same size and second must not load stale code."""

    def __init__(self, fullname: str, path: str, source: str) -> None:
        super().__init__(fullname, path)
        self._source = source

    def get_data(self, path: str) -> bytes:
        if path == self.path:
            return self._source.encode("utf-8")
        return super().get_data(path)

    def get_code(self, fullname: str) -> types.CodeType:
        return compile(self._source, self.path, "exec", dont_inherit=True)


class StubWriter:
    """Writes stub modules under ``<stub_dir>/local/`` (a package) and loads classes from them.

    Add ``stub_dir`` to the IDE's extra paths, then ``from local.Name_1_0_0 import Name``.
    """

    def __init__(self, stub_dir: str | os.PathLike[str]) -> None:
        self.stub_dir = Path(stub_dir)
        self.package_dir = self.stub_dir / "local"
        self._loaded: dict[tuple[str, str], type[PackableSample]] = {}
        self._lock = threading.Lock()

    def path(self, record: Mapping[str, Any]) -> Path:
        record = _local_form(record)
        module = stub_module_name(record.get("name"), record.get("version"))  # type: ignore[arg-type]
        return self.package_dir / f"{module}.py"

    def import_path(self, record: Mapping[str, Any]) -> str:
        """The dotted import path of the record's stub module: ``local.Name_1_0_0``."""
        return f"local.{self.path(record).stem}"

    def write(self, record: Mapping[str, Any]) -> Path:
        """Write (atomically, only if changed) the stub module of ``record``; return its path."""
        return self._write(self.path(record), generate_stub(record))

    def _write(self, path: Path, source: str) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        init = path.parent / "__init__.py"
        if not init.exists():
            self._atomic_write(init, f'{_STUB_MARKER}\n"""Generated atdata-tui sample stubs."""\n')
        try:
            if path.read_text(encoding="utf-8") == source:
                return path
        except (OSError, UnicodeDecodeError):
            pass
        self._atomic_write(path, source)
        return path

    @staticmethod
    def _atomic_write(path: Path, text: str) -> None:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".py.tmp")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                fh.write(text)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def load(self, record: Mapping[str, Any]) -> type[PackableSample]:
        """Write the stub if needed and import its class (the same class for the same content).

        The module is executed from the text we just generated and validated, never from what a
        file happens to contain; its fields are checked against the record after import.
        """
        source = generate_stub(record)
        path = self.path(record)
        digest = hashlib.sha256(source.encode("utf-8")).hexdigest()
        with self._lock:
            key = (str(path), digest)
            cached = self._loaded.get(key)
            if cached is not None:
                return cached
            self._write(path, source)
            module_name = f"_atdata_stub_{digest[:16]}_{path.stem}"
            loader = _GeneratedSourceLoader(module_name, str(path), source)
            spec = importlib.util.spec_from_file_location(module_name, path, loader=loader)
            if spec is None:  # pragma: no cover - spec_from_file_location with a loader
                raise SchemaError(f"cannot import stub {path}")
            module = importlib.util.module_from_spec(spec)
            sys.modules[module_name] = module
            try:
                loader.exec_module(module)
            except BaseException:
                sys.modules.pop(module_name, None)
                raise
            name = _local_form(record)["name"]
            cls = getattr(module, name)
            expected = field_specs(sample_type_from_record(record))
            if field_specs(cls) != expected:  # pragma: no cover - generator bug guard
                raise SchemaError(f"stub {path} does not match its schema record")
            self._loaded[key] = cls
            return cls

    @staticmethod
    def _is_ours(path: Path) -> bool:
        try:
            with path.open(encoding="utf-8") as fh:
                return fh.readline().rstrip("\n") == _STUB_MARKER
        except (OSError, UnicodeDecodeError):
            return False

    def clear(self) -> int:
        """Delete the stub files this writer generated (only files carrying our marker, so a
        mis-set ``stub_dir`` never loses user files); return how many were removed."""
        removed = 0
        with self._lock:
            self._loaded.clear()
            if not self.package_dir.is_dir():
                return 0
            cache = self.package_dir / "__pycache__"
            init = self.package_dir / "__init__.py"
            for path in sorted(self.package_dir.glob("*.py")):
                if path != init and self._is_ours(path):
                    path.unlink(missing_ok=True)
                    removed += 1
                    for pyc in cache.glob(f"{path.stem}.*.pyc") if cache.is_dir() else ():
                        pyc.unlink(missing_ok=True)
            if self._is_ours(init) and not any(p != init for p in self.package_dir.glob("*.py")):
                init.unlink(missing_ok=True)
                for pyc in cache.glob("__init__.*.pyc") if cache.is_dir() else ():
                    pyc.unlink(missing_ok=True)
            for leftover in (cache, self.package_dir):
                with contextlib.suppress(OSError):
                    leftover.rmdir()
        return removed
