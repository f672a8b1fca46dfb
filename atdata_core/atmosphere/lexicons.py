"""Collection names, limits, and a small validator for the ``science.alt.dataset`` lexicons.

The PDS does not know our lexicons (records are written with validation left to the server's
default, which skips unknown collections), so nothing on the server side checks what we write.
``LexiconSet`` checks a record against the lexicon JSON documents themselves, for the subset of
the Lexicon language these documents use: ``record``/``object`` (``required``, ``properties``,
``nullable``), ``string`` (``maxLength`` in UTF-8 bytes, ``minLength``, ``maxGraphemes``,
``const``, ``enum``, ``pattern``, ``format``), ``integer``, ``boolean``, ``bytes``, ``cid-link``,
``array``, ``union``, ``ref``, ``blob``, ``token`` and ``unknown``. The test suite validates every
record we build with it, against copies of the lexicons kept beside the tests.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import re
from collections.abc import Iterable, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

from ..errors import RecordError

# --- collections -----------------------------------------------------------------------------------

NAMESPACE = "science.alt.dataset"
LEGACY_NAMESPACE = "ac.foundation.dataset"

SCHEMA = f"{NAMESPACE}.schema"
ENTRY = f"{NAMESPACE}.entry"
LABEL = f"{NAMESPACE}.label"
LENS = f"{NAMESPACE}.lens"

#: Older records (atdata before the namespace move): read, never written.
LEGACY_SCHEMAS = (f"{LEGACY_NAMESPACE}.sampleSchema", f"{LEGACY_NAMESPACE}.schema")
LEGACY_ENTRY = f"{LEGACY_NAMESPACE}.record"
LEGACY_LABEL = f"{LEGACY_NAMESPACE}.label"
LEGACY_LENS = f"{LEGACY_NAMESPACE}.lens"

SCHEMA_COLLECTIONS = (SCHEMA, *LEGACY_SCHEMAS)
ENTRY_COLLECTIONS = (ENTRY, LEGACY_ENTRY)
LABEL_COLLECTIONS = (LABEL, LEGACY_LABEL)
LENS_COLLECTIONS = (LENS, LEGACY_LENS)

STORAGE_HTTP = f"{NAMESPACE}.storageHttp"
STORAGE_S3 = f"{NAMESPACE}.storageS3"
STORAGE_BLOBS = f"{NAMESPACE}.storageBlobs"
STORAGE_EXTERNAL = f"{NAMESPACE}.storageExternal"

# --- limits (from the lexicons) ----------------------------------------------------------------------

#: ``storageBlobs#blobEntry.blob.maxSize``: the most one shard blob may hold.
MAX_BLOB_SIZE = 52_428_800
TAR_MIME_TYPE = "application/x-tar"

MAX_ENTRY_NAME = 200
MAX_URI = 500
MAX_DESCRIPTION = 5000
MAX_METADATA_BYTES = 100_000
MAX_TAGS = 30
MAX_TAG = 150
MAX_LICENSE = 200
MAX_CHECKSUM_ALGORITHM = 20
MAX_CHECKSUM_DIGEST = 128
MAX_SHARD_URL = 2000
MAX_EXTERNAL_URL = 1000
MAX_S3_BUCKET = 255
MAX_S3_REGION = 50
MAX_S3_KEY = 1024
MAX_LABEL_NAME = 200
MAX_LABEL_VERSION = 50
MAX_LENS_NAME = 100
MAX_LENS_DESCRIPTION = 1000
MAX_LENS_VERSION_RANGE = 100
MAX_CODE_REPOSITORY = 500
MAX_CODE_COMMIT = 40
MAX_CODE_PATH = 500
MAX_CODE_BRANCH = 100
MAX_LANGUAGE = 50


# --- the validator ---------------------------------------------------------------------------------


class LexiconValidationError(RecordError):
    """A record does not match its lexicon; ``path`` says where (``storage.blobs[0].blob``)."""

    def __init__(self, path: str, problem: str) -> None:
        self.path = path
        self.problem = problem
        super().__init__(f"{path or '<record>'}: {problem}")


_DATETIME = re.compile(
    r"^[0-9]{4}-[01][0-9]-[0-3][0-9]T[0-2][0-9]:[0-6][0-9]:[0-6][0-9](\.[0-9]{1,20})?"
    r"(Z|[+-][0-2][0-9]:[0-5][0-9])$"
)
_AT_URI = re.compile(
    r"^at://(did:[a-z]+:[a-zA-Z0-9._:%-]+|[a-zA-Z0-9.-]+)"
    r"(/[a-zA-Z0-9.-]+(/[a-zA-Z0-9._~:@!$&')(*+,;=%-]+)?)?$"
)
_URI = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*:[^\s]+$")
_DID = re.compile(r"^did:[a-z]+:[a-zA-Z0-9._:%-]*[a-zA-Z0-9._-]$")
_HANDLE = re.compile(
    r"^([a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?\.)+[a-zA-Z]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?$"
)
_NSID = re.compile(r"^[a-zA-Z]([a-zA-Z0-9-]*)(\.[a-zA-Z0-9-]+)+$")
_CID = re.compile(r"^[a-zA-Z0-9+=]{8,256}$")
_TID = re.compile(r"^[234567abcdefghij][234567abcdefghijklmnopqrstuvwxyz]{12}$")
_RKEY = re.compile(r"^[A-Za-z0-9._:~-]{1,512}$")
_LANGUAGE = re.compile(r"^[a-zA-Z]{2,3}(-[a-zA-Z0-9]+)*$")


def _check_format(fmt: str, value: str) -> str | None:
    """The problem with ``value`` as a string of lexicon format ``fmt``, or ``None``."""
    if fmt == "datetime":
        if not _DATETIME.match(value):
            return "is not an RFC 3339 datetime with a timezone"
        try:
            datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return "is not a valid datetime"
        return None
    checks = {
        "at-uri": _AT_URI,
        "uri": _URI,
        "did": _DID,
        "handle": _HANDLE,
        "nsid": _NSID,
        "cid": _CID,
        "tid": _TID,
        "record-key": _RKEY,
        "language": _LANGUAGE,
    }
    if fmt == "at-identifier":
        return None if (_DID.match(value) or _HANDLE.match(value)) else "is not a DID or handle"
    pattern = checks.get(fmt)
    if pattern is None:
        return None  # formats the documents do not use are not checked
    if len(value) > 8192 or not pattern.match(value):
        return f"is not a valid {fmt}"
    return None


def _graphemes(text: str) -> int:
    """An upper bound on grapheme clusters good enough for limits: combining marks do not count."""
    import unicodedata

    return sum(1 for ch in text if not unicodedata.combining(ch))


class LexiconSet:
    """Lexicon documents by NSID, and validation of records against them."""

    def __init__(self, documents: Iterable[Mapping[str, Any]]) -> None:
        self.docs: dict[str, Mapping[str, Any]] = {}
        for doc in documents:
            nsid = doc.get("id")
            if doc.get("lexicon") != 1 or not isinstance(nsid, str):
                raise ValueError(f"not a lexicon document: {str(doc)[:80]}")
            self.docs[nsid] = doc

    @classmethod
    def load(cls, root: str | os.PathLike[str]) -> LexiconSet:
        """Every ``*.json`` lexicon under ``root`` (other JSON files, like the NDArray shim, are skipped)."""
        docs = []
        for path in sorted(Path(root).rglob("*.json")):
            doc = json.loads(path.read_text())
            if isinstance(doc, dict) and doc.get("lexicon") == 1:
                docs.append(doc)
        return cls(docs)

    def resolve(self, ref: str, context: str) -> Mapping[str, Any]:
        """The definition a ``ref`` names: ``#def`` (in ``context``), ``nsid`` or ``nsid#def``."""
        nsid, _, name = ref.partition("#")
        nsid = nsid or context
        doc = self.docs.get(nsid)
        if doc is None:
            raise KeyError(f"no lexicon {nsid!r} (needed for ref {ref!r})")
        defs = doc.get("defs", {})
        definition = defs.get(name or "main")
        if definition is None:
            raise KeyError(f"lexicon {nsid!r} has no definition {name or 'main'!r}")
        return definition

    def validate_record(self, nsid: str, value: Any) -> None:
        """Raise ``LexiconValidationError`` unless ``value`` is a valid record of collection ``nsid``."""
        main = self.resolve(nsid, nsid)
        if main.get("type") != "record":
            raise ValueError(f"{nsid} is not a record lexicon")
        if not isinstance(value, Mapping):
            raise LexiconValidationError("", "a record must be an object")
        rtype = value.get("$type")
        if rtype is not None and rtype != nsid:
            raise LexiconValidationError("$type", f"is {rtype!r}, expected {nsid!r}")
        self._validate(main["record"], value, nsid, "")

    def validate(self, ref: str, value: Any) -> None:
        """Validate ``value`` against any definition (``nsid`` or ``nsid#def``)."""
        nsid = ref.partition("#")[0]
        self._validate(self.resolve(ref, nsid), value, nsid, "")

    # -- the walk
    def _validate(self, schema: Mapping[str, Any], value: Any, ctx: str, path: str) -> None:
        kind = schema.get("type")
        fail = LexiconValidationError
        if kind in ("object", "params"):
            if not isinstance(value, Mapping):
                raise fail(path, f"must be an object, got {type(value).__name__}")
            nullable = set(schema.get("nullable", []))
            for key in schema.get("required", []):
                if key not in value or (value[key] is None and key not in nullable):
                    raise fail(_join(path, key), "is required")
            for key, prop in schema.get("properties", {}).items():
                if key not in value:
                    continue
                if value[key] is None:
                    if key in nullable:
                        continue
                    raise fail(_join(path, key), "may not be null")
                self._validate(prop, value[key], ctx, _join(path, key))
            return
        if kind == "ref":
            target = schema["ref"]
            self._validate(self.resolve(target, ctx), value, _ctx_of(target, ctx), path)
            return
        if kind == "union":
            if not isinstance(value, Mapping):
                raise fail(path, "a union member must be an object")
            vtype = value.get("$type")
            if not isinstance(vtype, str):
                raise fail(path, "a union member needs a string $type")
            refs = [_full_ref(r, ctx) for r in schema.get("refs", [])]
            wanted = _full_ref(vtype, ctx)
            if wanted not in refs:
                if schema.get("closed", False):
                    raise fail(path, f"$type {vtype!r} is not one of {refs}")
                return  # an open union accepts types it does not know
            self._validate(self.resolve(wanted, ctx), value, _ctx_of(wanted, ctx), path)
            return
        if kind == "string" or kind == "token":
            if not isinstance(value, str):
                raise fail(path, f"must be a string, got {type(value).__name__}")
            if kind == "token":
                return
            self._check_string(schema, value, path)
            return
        if kind == "integer":
            if not isinstance(value, int) or isinstance(value, bool):
                raise fail(path, f"must be an integer, got {type(value).__name__}")
            if "minimum" in schema and value < schema["minimum"]:
                raise fail(path, f"is {value}, less than the minimum {schema['minimum']}")
            if "maximum" in schema and value > schema["maximum"]:
                raise fail(path, f"is {value}, more than the maximum {schema['maximum']}")
            if "const" in schema and value != schema["const"]:
                raise fail(path, f"must be {schema['const']}")
            if "enum" in schema and value not in schema["enum"]:
                raise fail(path, f"must be one of {schema['enum']}")
            return
        if kind == "boolean":
            if not isinstance(value, bool):
                raise fail(path, f"must be a boolean, got {type(value).__name__}")
            if "const" in schema and value != schema["const"]:
                raise fail(path, f"must be {schema['const']}")
            return
        if kind == "bytes":
            data = _bytes_value(value, path)
            if "maxLength" in schema and len(data) > schema["maxLength"]:
                raise fail(path, f"is {len(data)} bytes, more than {schema['maxLength']}")
            if "minLength" in schema and len(data) < schema["minLength"]:
                raise fail(path, f"is {len(data)} bytes, fewer than {schema['minLength']}")
            return
        if kind == "cid-link":
            if not isinstance(value, Mapping) or not isinstance(value.get("$link"), str):
                raise fail(path, 'must be a CID link {"$link": cid}')
            return
        if kind == "array":
            if not isinstance(value, list):
                raise fail(path, f"must be an array, got {type(value).__name__}")
            if "maxLength" in schema and len(value) > schema["maxLength"]:
                raise fail(path, f"has {len(value)} items, more than {schema['maxLength']}")
            if "minLength" in schema and len(value) < schema["minLength"]:
                raise fail(path, f"has {len(value)} items, fewer than {schema['minLength']}")
            items = schema.get("items")
            if items is not None:
                for i, item in enumerate(value):
                    self._validate(items, item, ctx, f"{path}[{i}]")
            return
        if kind == "blob":
            self._check_blob(schema, value, path)
            return
        if kind == "unknown":
            if not isinstance(value, Mapping):
                raise fail(path, "an unknown-typed value must be an object")
            return
        raise ValueError(f"{path}: lexicon type {kind!r} is not supported by this validator")

    @staticmethod
    def _check_string(schema: Mapping[str, Any], value: str, path: str) -> None:
        fail = LexiconValidationError
        size = len(value.encode("utf-8", "surrogatepass"))
        if "maxLength" in schema and size > schema["maxLength"]:
            raise fail(path, f"is {size} bytes long, more than {schema['maxLength']}")
        if "minLength" in schema and size < schema["minLength"]:
            raise fail(path, f"is {size} bytes long, fewer than {schema['minLength']}")
        if "maxGraphemes" in schema and _graphemes(value) > schema["maxGraphemes"]:
            raise fail(path, f"has more than {schema['maxGraphemes']} graphemes")
        if "const" in schema and value != schema["const"]:
            raise fail(path, f"must be {schema['const']!r}")
        if "enum" in schema and value not in schema["enum"]:
            raise fail(path, f"must be one of {schema['enum']}")
        if "pattern" in schema and not re.search(schema["pattern"], value):
            raise fail(path, f"does not match the pattern {schema['pattern']!r}")
        fmt = schema.get("format")
        if fmt:
            problem = _check_format(fmt, value)
            if problem:
                raise fail(path, f"{value[:80]!r} {problem}")

    @staticmethod
    def _check_blob(schema: Mapping[str, Any], value: Any, path: str) -> None:
        fail = LexiconValidationError
        if not isinstance(value, Mapping) or value.get("$type") != "blob":
            raise fail(path, 'must be a blob {"$type": "blob", "ref", "mimeType", "size"}')
        ref = value.get("ref")
        if not isinstance(ref, Mapping) or not isinstance(ref.get("$link"), str):
            raise fail(_join(path, "ref"), 'must be {"$link": cid}')
        mime = value.get("mimeType")
        if not isinstance(mime, str) or "/" not in mime:
            raise fail(_join(path, "mimeType"), "must be a MIME type")
        size = value.get("size")
        if not isinstance(size, int) or isinstance(size, bool) or size < 0:
            raise fail(_join(path, "size"), "must be a non-negative integer")
        if "maxSize" in schema and size > schema["maxSize"]:
            raise fail(_join(path, "size"), f"is {size}, more than {schema['maxSize']}")
        accept = schema.get("accept")
        if accept and not any(_mime_matches(pattern, mime) for pattern in accept):
            raise fail(_join(path, "mimeType"), f"{mime!r} is not one of {accept}")


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _full_ref(ref: str, ctx: str) -> str:
    """``#def`` → ``ctx#def``; ``nsid#main`` → ``nsid``."""
    if ref.startswith("#"):
        ref = ctx + ref
    return ref[: -len("#main")] if ref.endswith("#main") else ref


def _ctx_of(ref: str, ctx: str) -> str:
    nsid = ref.partition("#")[0]
    return nsid or ctx


def _mime_matches(pattern: str, mime: str) -> bool:
    if pattern == "*/*":
        return True
    if pattern.endswith("/*"):
        return mime.split("/", 1)[0] == pattern[:-2]
    return pattern == mime


def _bytes_value(value: Any, path: str) -> bytes:
    if isinstance(value, (bytes, bytearray)):
        return bytes(value)
    if isinstance(value, Mapping) and set(value) == {"$bytes"} and isinstance(value["$bytes"], str):
        text = value["$bytes"]
        try:
            return base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
        except (binascii.Error, ValueError):
            raise LexiconValidationError(path, "$bytes is not valid base64") from None
    raise LexiconValidationError(path, 'must be bytes ({"$bytes": base64})')
