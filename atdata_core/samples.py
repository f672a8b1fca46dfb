"""Typed samples: ``@packable`` dataclasses and ``DictSample``, encoded as msgpack maps.

The wire format is the one of the public ``atdata`` library (see FORMATS.md): one msgpack map per
sample, every field present, NDArray fields as a small binary header followed by raw C-order bytes.
Codecs are compiled once per class into a list of (name, encoder, decoder) so packing and unpacking
cost one dict build and one msgpack call per sample.
"""

from __future__ import annotations

import dataclasses
import functools
import io
import keyword
import struct
import threading
import time
import types
import typing
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Literal, Protocol, TypeVar, runtime_checkable

import msgpack
import numpy as np
import numpy.typing as npt

from .errors import (
    FieldTypeError,
    MissingFieldError,
    NDArrayError,
    NotMsgpackError,
    SampleError,
)

#: The annotation for array fields: ``NDArray`` or ``NDArray[np.float32]``.
NDArray = npt.NDArray

PRIMITIVES: dict[type, str] = {str: "str", int: "int", float: "float", bool: "bool", bytes: "bytes"}
PRIMITIVE_TYPES: dict[str, type] = {v: k for k, v in PRIMITIVES.items()}

#: Limits that keep a hostile NDArray header from asking for absurd allocations.
MAX_NDIM = 32
_NPY_MAGIC = b"\x93NUMPY"


# --- field types ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class FieldType:
    """The type of one sample field, as both the codecs and schema records see it.

    ``kind`` is ``primitive`` (with ``primitive`` in str/int/float/bool/bytes), ``ndarray`` (with an
    optional numpy ``dtype`` name), ``array`` (a list, with ``items``), ``map`` (a dict of anything)
    or ``any`` (no constraint).
    """

    kind: Literal["primitive", "ndarray", "array", "map", "any"]
    primitive: str | None = None
    dtype: str | None = None
    items: FieldType | None = None

    def describe(self) -> str:
        """A short human form: ``str``, ``ndarray[float32]``, ``list[int]``, ``dict``."""
        if self.kind == "primitive":
            return self.primitive or "?"
        if self.kind == "ndarray":
            return f"ndarray[{self.dtype}]" if self.dtype else "ndarray"
        if self.kind == "array":
            return f"list[{self.items.describe() if self.items else 'any'}]"
        if self.kind == "map":
            return "dict"
        return "any"

    def python_type(self) -> Any:
        """The Python annotation this field type corresponds to."""
        if self.kind == "primitive":
            return PRIMITIVE_TYPES[self.primitive or "str"]
        if self.kind == "ndarray":
            return NDArray
        if self.kind == "array":
            return list[self.items.python_type()] if self.items else list  # type: ignore[misc]
        if self.kind == "map":
            return dict
        return Any


@dataclass(frozen=True)
class FieldSpec:
    """A named field of a sample type."""

    name: str
    type: FieldType
    optional: bool = False
    has_default: bool = False

    def describe(self) -> str:
        return self.type.describe() + (" | None" if self.optional else "")


def field_type_of(annotation: Any, *, where: str = "field") -> tuple[FieldType, bool]:
    """Map a Python annotation to a ``FieldType`` and whether it is optional.

    Raises ``TypeError`` for anything the wire format cannot carry (naming the field), so a bad
    sample class fails when it is declared or published, not when the first sample is written.
    """
    optional = False
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        if len(args) != len(typing.get_args(annotation)) - 1 or len(args) != 1:
            raise TypeError(
                f"{where}: unions other than Optional[T] are not supported: {annotation}"
            )
        optional = True
        annotation = args[0]
        origin = typing.get_origin(annotation)
    if annotation is Any:
        return FieldType("any"), optional
    if annotation in PRIMITIVES:
        return FieldType("primitive", primitive=PRIMITIVES[annotation]), optional
    if annotation is np.ndarray or origin is np.ndarray:
        return FieldType("ndarray", dtype=_dtype_from_annotation(annotation)), optional
    if annotation is list or origin is list:
        args = typing.get_args(annotation)
        items = field_type_of(args[0], where=where)[0] if args else None
        return FieldType("array", items=items), optional
    if annotation is dict or origin is dict:
        return FieldType("map"), optional
    raise TypeError(
        f"{where}: unsupported field type {annotation!r}; use str, int, float, bool, bytes, "
        "NDArray, list[T], dict or Optional[T]"
    )


def _dtype_from_annotation(annotation: Any) -> str | None:
    """``NDArray[np.float32]`` → ``"float32"``; a bare ``NDArray`` → ``None`` (any dtype)."""
    args = typing.get_args(annotation)
    if len(args) != 2:
        return None
    dtype_args = typing.get_args(args[1])
    if not dtype_args or not isinstance(dtype_args[0], type):
        return None
    try:
        dt = np.dtype(dtype_args[0])
    except TypeError:
        return None
    if dt.kind == "O":
        raise TypeError("object-dtype arrays cannot be stored (they would need pickle)")
    return dt.name


def field_specs(cls: type) -> list[FieldSpec]:
    """The fields of a packable class, in declaration order."""
    cached = cls.__dict__.get("_atdata_fields")
    if cached is not None:
        return cached
    hints = typing.get_type_hints(cls)
    specs = []
    for f in dataclasses.fields(cls):
        ftype, optional = field_type_of(hints[f.name], where=f"{cls.__name__}.{f.name}")
        has_default = (
            f.default is not dataclasses.MISSING or f.default_factory is not dataclasses.MISSING
        )
        specs.append(FieldSpec(f.name, ftype, optional, has_default))
    return specs


# --- NDArray codec -------------------------------------------------------------------------------


def _ndarray_header(dtype: np.dtype[Any], shape: tuple[int, ...]) -> bytes:
    if dtype.kind == "O" or dtype.hasobject:
        raise NDArrayError("object-dtype arrays cannot be stored (they would need pickle)")
    if dtype.names is not None:
        raise NDArrayError(
            f"structured dtype {dtype} cannot be stored: the layout keeps only "
            f"{dtype.str!r} and its field names would be lost; store each field as an NDArray"
        )
    dtype_str = dtype.str.encode("ascii")
    header = bytes((len(dtype_str),)) + dtype_str + bytes((len(shape),))
    return header + struct.pack(f"<{len(shape)}q", *shape)


#: Headers by (dtype, shape): a dataset's arrays mostly share a few, and building one costs more
#: than copying a 12 KB body. Bounded; cleared when full.
_HEADERS: dict[tuple[np.dtype[Any], tuple[int, ...]], bytes] = {}
_MAX_HEADERS = 4096


def encode_ndarray(array: np.ndarray) -> bytes:
    """Encode an array in atdata's layout: dtype string, rank, int64 shape, raw C-order bytes."""
    key = (array.dtype, array.shape)
    header = _HEADERS.get(key)
    if header is None:
        header = _ndarray_header(*key)
        if len(_HEADERS) >= _MAX_HEADERS:
            _HEADERS.clear()
        _HEADERS[key] = header
    if not array.flags.c_contiguous:
        array = np.ascontiguousarray(array)
    try:  # one copy, straight from the array's memory (tobytes() and a concatenation are two)
        return b"".join((header, array.data))
    except (TypeError, ValueError, BufferError):  # dtypes without a buffer export (datetime64…)
        return header + array.tobytes()


_SHAPES = [struct.Struct(f"<{ndim}q") for ndim in range(MAX_NDIM + 1)]
_DTYPE_CACHE: dict[bytes, np.dtype[Any]] = {}


def _dtype_of(raw: bytes) -> np.dtype[Any]:
    """The numpy dtype of a header's dtype string, cached (parsing it costs more than the rest)."""
    dtype = _DTYPE_CACHE.get(raw)
    if dtype is None:
        try:
            dtype = np.dtype(raw.decode("ascii"))
        except (UnicodeDecodeError, TypeError, ValueError):
            raise NDArrayError(f"NDArray header has an unknown dtype {raw!r}") from None
        if dtype.hasobject:
            raise NDArrayError("object-dtype arrays are refused (they would need pickle)")
        if len(_DTYPE_CACHE) < 1024:  # bounded: headers are untrusted
            _DTYPE_CACHE[raw] = dtype
    return dtype


def decode_ndarray(data: bytes | bytearray | memoryview) -> np.ndarray:
    """Decode an NDArray blob (atdata layout, or a ``.npy`` file). Zero-copy for the atdata layout.

    Every header value is checked against the blob's length before any allocation, so a hostile
    header cannot make us allocate more than the blob itself.
    """
    if data[:6] == _NPY_MAGIC:
        try:
            return np.load(io.BytesIO(bytes(data)), allow_pickle=False)
        except Exception as exc:
            raise NDArrayError(f"bad .npy array: {exc}") from None
    n = len(data)
    if n < 2:
        raise NDArrayError(f"NDArray blob of {n} bytes is too short for a header")
    dlen = data[0]
    if n < 2 + dlen:
        raise NDArrayError("NDArray header is truncated (dtype string)")
    dtype = _dtype_of(bytes(data[1 : 1 + dlen]))
    ndim = data[1 + dlen]
    if ndim > MAX_NDIM:
        raise NDArrayError(f"NDArray header declares {ndim} dimensions (at most {MAX_NDIM})")
    offset = 2 + dlen + 8 * ndim
    if n < offset:
        raise NDArrayError("NDArray header is truncated (shape)")
    shape = _SHAPES[ndim].unpack_from(data, 2 + dlen)
    count = 1
    for dim in shape:
        if dim < 0:
            raise NDArrayError(f"NDArray header has a negative dimension in shape {shape}")
        count *= dim
    expected = count * dtype.itemsize
    if expected != n - offset:
        raise NDArrayError(
            f"NDArray of shape {shape} and dtype {dtype.str} needs {expected} bytes, "
            f"the blob holds {n - offset}"
        )
    return np.ndarray(shape, dtype, buffer=data, offset=offset)


def looks_like_ndarray(data: bytes) -> bool:
    """True when ``data`` is exactly a valid NDArray blob (used for schema-free samples)."""
    if len(data) < 2 or (data[:6] != _NPY_MAGIC and not 0 < data[0] <= 16):
        return False
    try:
        decode_ndarray(data)
    except NDArrayError:
        return False
    return True


# --- msgpack -------------------------------------------------------------------------------------


def unpack_map(data: bytes | memoryview) -> dict[str, Any]:
    """Unpack one sample's msgpack map, with errors that say what was wrong."""
    try:
        value = msgpack.unpackb(data, raw=False, strict_map_key=False)
    except msgpack.ExtraData:
        raise NotMsgpackError("member holds more than one msgpack value") from None
    except (ValueError, TypeError, msgpack.UnpackException, RecursionError) as exc:
        raise NotMsgpackError(f"not valid msgpack ({type(exc).__name__}: {exc})") from None
    if not isinstance(value, dict):
        raise NotMsgpackError(f"msgpack value is a {type(value).__name__}, not a map")
    return value


_unpackb = msgpack.unpackb


def pack_map(data: Mapping[str, Any]) -> bytes:
    return msgpack.packb(data, use_bin_type=True)


# --- per-field codecs ----------------------------------------------------------------------------

Encoder = Callable[[Any], Any]
Decoder = Callable[[Any], Any]


def _encoder_for(ftype: FieldType) -> Encoder | None:
    if ftype.kind == "ndarray":
        return lambda v: v if v is None or isinstance(v, bytes) else encode_ndarray(np.asarray(v))
    if ftype.kind == "array" and ftype.items is not None and ftype.items.kind == "ndarray":
        return lambda v: None if v is None else [encode_ndarray(np.asarray(x)) for x in v]
    if ftype.kind in ("array", "map", "any"):
        return _encode_any
    return None


def _encode_any(value: Any) -> Any:
    """Encode nested containers that may hold arrays (dict and list fields)."""
    if isinstance(value, np.ndarray):
        return encode_ndarray(value)
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, dict):
        return {k: _encode_any(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_encode_any(v) for v in value]
    return value


def _decoder_for(ftype: FieldType, name: str) -> Decoder | None:
    if ftype.kind == "ndarray":

        def decode(v: Any) -> Any:
            if v is None or isinstance(v, np.ndarray):
                return v
            if not isinstance(v, (bytes, bytearray, memoryview)):
                raise FieldTypeError(
                    f"field {name!r} should be an NDArray blob, got {type(v).__name__}"
                )
            return decode_ndarray(v)

        return decode
    if ftype.kind == "array" and ftype.items is not None and ftype.items.kind == "ndarray":
        return lambda v: _decode_array_list(v, name)
    if ftype.kind == "primitive":
        expected: tuple[type, ...] = {
            "str": (str,),
            "int": (int,),
            "float": (float, int),
            "bool": (bool,),
            "bytes": (bytes,),
        }[ftype.primitive or "str"]
        want = ftype.primitive

        def check(v: Any) -> Any:
            if v is not None and not isinstance(v, expected):
                raise FieldTypeError(f"field {name!r} should be {want}, got {type(v).__name__}")
            return float(v) if want == "float" and isinstance(v, int) else v

        return check
    if ftype.kind == "array":
        return lambda v: _check_list(v, name)
    if ftype.kind == "map":
        return lambda v: _check_map(v, name)
    return None


def _decode_array_list(v: Any, name: str) -> Any:
    """A ``list[NDArray]`` field: blobs are decoded, arrays (from a lens or a copy) kept as they are."""
    if v is None:
        return None
    if not isinstance(v, list):
        raise FieldTypeError(f"field {name!r} should be a list of NDArrays, got {type(v).__name__}")
    out = []
    for x in v:
        if isinstance(x, np.ndarray):
            out.append(x)
        elif isinstance(x, (bytes, bytearray, memoryview)):
            out.append(decode_ndarray(x))
        else:
            raise FieldTypeError(
                f"field {name!r} should hold NDArray blobs, got a {type(x).__name__} item"
            )
    return out


def _check_list(v: Any, name: str) -> Any:
    if v is not None and not isinstance(v, list):
        raise FieldTypeError(f"field {name!r} should be a list, got {type(v).__name__}")
    return v


def _check_map(v: Any, name: str) -> Any:
    if v is not None and not isinstance(v, dict):
        raise FieldTypeError(f"field {name!r} should be a map, got {type(v).__name__}")
    return v


@dataclass(frozen=True)
class _Codec:
    """Compiled encoders/decoders of one sample class."""

    cls: type
    fields: list[FieldSpec]
    encoders: list[tuple[str, Encoder | None]]
    decoders: list[tuple[str, Decoder | None, bool]]  # name, decoder, required
    #: The general decode path: name, exact type (primitives: values of exactly this type need
    #: no check), decoder, required, nullable.
    plan: list[tuple[str, type | None, Decoder | None, bool, bool]]
    #: The decode hot path, generated for the class (``_generate_fast_decoders``): the sample
    #: built from a map that holds exactly the declared fields with exactly the stored types
    #: (what our writer and atdata's produce), or ``None`` for anything else, which then takes
    #: the general path. ``None`` when the class cannot take it (``Any`` fields).
    from_map: Callable[[dict[str, Any]], Any] | None = None
    #: msgpack bytes → sample in one call (the fast path inlined, the general path behind it).
    from_bytes: Callable[[Any], Any] | None = None


_STORED_TYPES: dict[str, type] = {"ndarray": bytes, "array": list, "map": dict}

_FAST_DECODER_TEMPLATE = """
def from_map(d):
    if len(d) != {count}:
        return None
    try:
{loads}
    except KeyError:
        return None
    if not ({checks}):
        return None
{posts}
    return cls({args})

def from_bytes(data):
    try:
        d = unpackb(data, raw=False, strict_map_key=False)
    except Exception:
        d = unpack_map(data)  # raises the precise NotMsgpackError
    if type(d) is not dict:
        d = unpack_map(data)
    if len(d) == {count}:
        try:
{loads2}
        except KeyError:
            return general(d)
        if {checks}:
{posts2}
            return cls({args})
    return general(d)
"""


def _generate_fast_decoders(cls: type, specs: list[FieldSpec]) -> tuple[Any, Any]:
    """``(from_map, from_bytes)`` written out for ``cls``, or ``(None, None)``.

    Generated like dataclasses' own ``__init__``: per sample this costs a few dict lookups and
    ``type() is`` tests inline (0.25 µs for three fields) where a generic loop over the fields
    costs 0.55 µs, and the read loop of small samples is ~2.7 µs in all. Field names only ever
    appear as ``repr`` literals and keyword names that are checked identifiers, so no schema
    text can become code.
    """
    if not specs or any(s.type.kind == "any" for s in specs):
        return None, None
    positional = not any(f.kw_only for f in dataclasses.fields(cls))
    if not positional and not all(
        s.name.isidentifier() and not keyword.iskeyword(s.name) for s in specs
    ):
        return None, None
    namespace: dict[str, Any] = {
        "cls": cls,
        "unpackb": _unpackb,
        "unpack_map": unpack_map,
        "general": cls._from_data_checked,
    }
    loads, checks, posts = [], [], []
    for i, spec in enumerate(specs):
        kind = spec.type.kind
        stored = (
            PRIMITIVE_TYPES[spec.type.primitive or "str"]
            if kind == "primitive"
            else _STORED_TYPES[kind]
        )
        namespace[f"t{i}"] = stored
        loads.append(f"v{i} = d[{spec.name!r}]")
        checks.append(f"type(v{i}) is t{i}")
        if kind == "ndarray":
            namespace[f"p{i}"] = decode_ndarray
            posts.append(f"v{i} = p{i}(v{i})")
        elif kind == "array" and spec.type.items is not None and spec.type.items.kind == "ndarray":
            namespace[f"p{i}"] = functools.partial(_decode_array_list, name=spec.name)
            posts.append(f"v{i} = p{i}(v{i})")
    if positional:
        args = ", ".join(f"v{i}" for i in range(len(specs)))
    else:
        args = ", ".join(f"{s.name}=v{i}" for i, s in enumerate(specs))

    def block(lines: list[str], indent: int) -> str:
        return "\n".join(" " * indent + line for line in lines) or " " * indent + "pass"

    source = _FAST_DECODER_TEMPLATE.format(
        count=len(specs),
        loads=block(loads, 8),
        loads2=block(loads, 12),
        checks=" and ".join(checks),
        posts=block(posts, 4),
        posts2=block(posts, 12),
        args=args,
    )
    exec(compile(source, f"<atdata decoder of {cls.__qualname__}>", "exec"), namespace)
    return namespace["from_map"], namespace["from_bytes"]


def _compile_codec(cls: type) -> _Codec:
    specs = field_specs(cls)
    defaults = {
        f.name: f.default for f in dataclasses.fields(cls) if f.default is not dataclasses.MISSING
    }
    decoders = [
        (s.name, _decoder_for(s.type, s.name), not (s.optional or s.has_default)) for s in specs
    ]
    plan = []
    for spec, (name, decoder, required) in zip(specs, decoders, strict=True):
        exact = (
            PRIMITIVE_TYPES[spec.type.primitive or "str"] if spec.type.kind == "primitive" else None
        )
        # nil is a value only for optional fields (and `x: T = None`, which Python allows)
        nullable = (
            spec.optional
            or spec.type.kind == "any"
            or (name in defaults and defaults[name] is None)
        )
        plan.append((name, exact, decoder, required, nullable))
    from_map, from_bytes = _generate_fast_decoders(cls, specs)
    return _Codec(
        cls=cls,
        fields=specs,
        encoders=[(s.name, _encoder_for(s.type)) for s in specs],
        decoders=decoders,
        plan=plan,
        from_map=from_map,
        from_bytes=from_bytes,
    )


_UUID_EPOCH = 0x01B21DD213814000  # 100 ns ticks from 1582-10-15 to 1970-01-01
_key_lock = threading.Lock()
_last_key_time = 0


def new_key() -> str:
    """A sample key in atdata's form: a UUID1 with zero node and clock sequence.

    Formatted directly: ``str(uuid.uuid1(0, 0))`` costs ≈9 µs, as much as packing and writing a
    small sample. Same fields and the same rule as ``uuid1`` for ticks that repeat (the next
    key takes the next tick), so keys from one process never collide and sort by time.
    """
    global _last_key_time
    now = time.time_ns() // 100 + _UUID_EPOCH
    with _key_lock:
        if now <= _last_key_time:
            now = _last_key_time + 1
        _last_key_time = now
    return (
        f"{now & 0xFFFFFFFF:08x}-{(now >> 32) & 0xFFFF:04x}-"
        f"{(now >> 48) & 0x0FFF | 0x1000:04x}-8000-000000000000"
    )


# --- the Packable protocol and base classes --------------------------------------------------------

S = TypeVar("S", bound="PackableSample")


@runtime_checkable
class Packable(Protocol):
    """What every sample type offers (typed samples and ``DictSample`` alike)."""

    @classmethod
    def from_data(cls, data: Mapping[str, Any]) -> Any: ...

    @classmethod
    def from_bytes(cls, data: bytes) -> Any: ...

    @property
    def packed(self) -> bytes: ...

    @property
    def as_wds(self) -> dict[str, Any]: ...


class PackableSample:
    """Base of typed samples. Use ``@packable`` on a plain class rather than subclassing by hand."""

    _atdata_codec: ClassVar[_Codec]
    _atdata_fields: ClassVar[list[FieldSpec]]
    #: The sample's key in its shard, set when read from one (``None`` for new samples).
    __key__: str | None = None

    @classmethod
    def fields(cls) -> list[FieldSpec]:
        return cls._atdata_fields

    @classmethod
    def from_data(cls: type[S], data: Mapping[str, Any]) -> S:
        """Build a sample from an unpacked msgpack map, decoding NDArray blobs."""
        codec = cls._atdata_codec
        if codec.from_map is not None and codec.cls is cls and type(data) is dict:
            sample = codec.from_map(data)
            if sample is not None:
                return sample
        return cls._from_data_checked(data)

    @classmethod
    def _from_data_checked(cls: type[S], data: Mapping[str, Any]) -> S:
        """The general path: every field checked, converted where allowed, named in errors."""
        kwargs: dict[str, Any] = {}
        for name, exact, decoder, required, nullable in cls._atdata_codec.plan:
            if name in data:
                value = data[name]
                if value is None:
                    if not nullable:
                        raise FieldTypeError(
                            f"field {name!r} of {cls.__name__} is nil but not optional"
                        )
                elif decoder is not None and type(value) is not exact:
                    value = decoder(value)
                kwargs[name] = value
            elif required:
                raise MissingFieldError(f"required field {name!r} of {cls.__name__} is missing")
        try:
            return cls(**kwargs)
        except TypeError as exc:  # a required field stored as nil, and the like
            raise FieldTypeError(f"cannot build {cls.__name__}: {exc}") from None

    @classmethod
    def from_bytes(cls: type[S], data: bytes) -> S:
        codec = cls._atdata_codec
        if codec.from_bytes is not None and codec.cls is cls:
            return codec.from_bytes(data)
        try:
            value = _unpackb(data, raw=False, strict_map_key=False)
        except Exception:
            value = unpack_map(data)
        if type(value) is not dict:
            value = unpack_map(data)
        return cls.from_data(value)

    @classmethod
    def bytes_decoder(cls: type[S]) -> Callable[[Any], S]:
        """The fastest ``bytes → sample`` function for this class (what readers loop over)."""
        codec = cls._atdata_codec
        if codec.from_bytes is not None and codec.cls is cls:
            return codec.from_bytes  # type: ignore[no-any-return]
        return cls.from_bytes

    def to_data(self) -> dict[str, Any]:
        """The msgpack-ready map of this sample (arrays encoded)."""
        out = {}
        for name, encoder in self._atdata_codec.encoders:
            value = getattr(self, name)
            out[name] = encoder(value) if encoder is not None and value is not None else value
        return out

    @property
    def packed(self) -> bytes:
        return pack_map(self.to_data())

    @property
    def as_wds(self) -> dict[str, Any]:
        """The WebDataset form: ``{"__key__": ..., "msgpack": bytes}``."""
        return {"__key__": self.__key__ or new_key(), "msgpack": self.packed}


def _eq_with_arrays(a: Any, b: Any) -> bool:
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return (
            isinstance(a, np.ndarray)
            and isinstance(b, np.ndarray)
            and a.dtype == b.dtype
            and a.shape == b.shape
            and bool(np.array_equal(a, b, equal_nan=a.dtype.kind in "fc"))
        )
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(_eq_with_arrays(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_eq_with_arrays(a[k], b[k]) for k in a)
    return bool(a == b)


def _sample_eq(self: Any, other: Any) -> bool:
    if type(self) is not type(other):
        return NotImplemented
    return all(
        _eq_with_arrays(getattr(self, f.name), getattr(other, f.name)) for f in self.fields()
    )


def packable(cls: type | None = None, /) -> Any:
    """Make ``cls`` a dataclass sample type with msgpack packing (atdata's ``@packable``).

    Fields may be str, int, float, bool, bytes, NDArray (optionally with a dtype), list[T], dict
    and Optional of any of these; anything else raises ``TypeError`` here, at declaration. Optional
    fields without a default get ``None`` as default, so they may come before required fields.
    """

    def wrap(cls: type) -> type:
        annotations = cls.__dict__.get("__annotations__", {})
        hints = typing.get_type_hints(cls)
        # An optional field with no default defaults to None. Python dataclasses refuse a
        # required field after a defaulted one, so order them by giving kw_only to the rest.
        needs_kw_only = False
        seen_default = False
        for name in annotations:
            if typing.get_origin(hints[name]) is ClassVar:
                continue
            _, optional = field_type_of(hints[name], where=f"{cls.__name__}.{name}")
            has_default = name in cls.__dict__
            if optional and not has_default:
                setattr(cls, name, None)
                has_default = True
            if has_default:
                seen_default = True
            elif seen_default:
                needs_kw_only = True
        bases = cls.__bases__ if PackableSample in cls.__mro__ else (*cls.__bases__, PackableSample)
        if bases == (object, PackableSample):
            bases = (PackableSample,)
        namespace = {k: v for k, v in cls.__dict__.items() if k not in ("__dict__", "__weakref__")}
        new_cls = type(cls.__name__, bases, namespace)
        new_cls.__qualname__ = cls.__qualname__
        new_cls.__module__ = cls.__module__
        new_cls = dataclass(eq=False, kw_only=needs_kw_only)(new_cls)
        new_cls.__eq__ = _sample_eq  # type: ignore[method-assign]
        new_cls.__hash__ = None  # type: ignore[assignment]
        new_cls._atdata_fields = field_specs(new_cls)
        new_cls._atdata_codec = _compile_codec(new_cls)
        return new_cls

    return wrap if cls is None else wrap(cls)


# --- schema-free samples ---------------------------------------------------------------------------


class DictSample:
    """A schema-free sample: any msgpack map, with attribute and item access.

    Binary values that are exactly valid NDArray blobs are decoded to arrays; everything else is
    kept as stored.
    """

    __slots__ = ("__key__", "_data")

    def __init__(self, data: Mapping[str, Any] | None = None, /, **fields: Any) -> None:
        self._data: dict[str, Any] = {**(data or {}), **fields}
        self.__key__: str | None = None

    @classmethod
    def from_data(cls, data: Mapping[str, Any]) -> DictSample:
        return cls(
            {
                k: decode_ndarray(v) if isinstance(v, bytes) and looks_like_ndarray(v) else v
                for k, v in data.items()
            }
        )

    @classmethod
    def from_bytes(cls, data: bytes) -> DictSample:
        return cls.from_data(unpack_map(data))

    @property
    def packed(self) -> bytes:
        return pack_map(_encode_any(self._data))

    @property
    def as_wds(self) -> dict[str, Any]:
        return {"__key__": self.__key__ or new_key(), "msgpack": self.packed}

    def keys(self) -> list[str]:
        return list(self._data.keys())

    def items(self) -> Iterator[tuple[str, Any]]:
        return iter(self._data.items())

    def to_dict(self) -> dict[str, Any]:
        return dict(self._data)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        try:
            return self._data[name]
        except KeyError:
            raise AttributeError(f"sample has no field {name!r} (fields: {self.keys()})") from None

    def __getitem__(self, name: str) -> Any:
        return self._data[name]

    def __contains__(self, name: object) -> bool:
        return name in self._data

    def __len__(self) -> int:
        return len(self._data)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, DictSample) and _eq_with_arrays(self._data, other._data)

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"DictSample({self._data!r})"


SampleType = type[PackableSample] | type[DictSample]


def decode_sample(
    sample_type: Any, data: bytes, *, shard: str | None = None, key: str | None = None
) -> Any:
    """Decode one stored sample, attaching its shard and key to both the sample and any error."""
    try:
        sample = sample_type.from_bytes(data)
    except SampleError as exc:
        raise exc.located(shard=shard, key=key) from None
    sample.__key__ = key
    return sample


def is_packable_type(obj: Any) -> bool:
    return isinstance(obj, type) and (issubclass(obj, PackableSample) or obj is DictSample)
