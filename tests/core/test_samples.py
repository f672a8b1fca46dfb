"""Sample types and field codecs: round trips for every field type, the wire format, bad input."""

from __future__ import annotations

import io
import math
import struct
from typing import Any

import msgpack
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from atdata_core.errors import (
    FieldTypeError,
    MissingFieldError,
    NDArrayError,
    NotMsgpackError,
    SampleError,
)
from atdata_core.samples import (
    DictSample,
    NDArray,
    decode_ndarray,
    decode_sample,
    encode_ndarray,
    field_specs,
    new_key,
    packable,
    unpack_map,
)

# --- sample types used below ---------------------------------------------------------------------


@packable
class Everything:
    text: str
    count: int
    ratio: float
    flag: bool
    blob: bytes
    array: NDArray
    f32: NDArray[np.float32]
    ints: list[int]
    names: list[str]
    arrays: list[NDArray]
    meta: dict
    maybe: int | None
    maybe_array: NDArray | None


@packable
class OptionalFirst:
    """An optional field without a default before a required one (atdata cannot decode this)."""

    note: str | None
    value: int


def _everything(**overrides: Any) -> Everything:
    values: dict[str, Any] = dict(
        text="héllo",
        count=-3,
        ratio=0.25,
        flag=True,
        blob=b"\x00\xff",
        array=np.arange(6, dtype=np.int16).reshape(2, 3),
        f32=np.ones((2, 2), np.float32),
        ints=[1, 2, 3],
        names=["a", "b"],
        arrays=[np.zeros(3), np.eye(2, dtype=np.uint8)],
        meta={"k": [1, {"x": None}], "s": "v"},
        maybe=None,
        maybe_array=None,
    )
    values.update(overrides)
    return Everything(**values)


# --- the FORMATS.md test vector ------------------------------------------------------------------

VECTOR = bytes.fromhex(
    "03 3c6634 02 0200000000000000 0200000000000000 0000803f 00000040 00004040 00008040".replace(
        " ", ""
    )
)


def test_ndarray_test_vector_encodes_exactly() -> None:
    assert encode_ndarray(np.array([[1, 2], [3, 4]], dtype=np.float32)) == VECTOR


def test_ndarray_test_vector_decodes() -> None:
    array = decode_ndarray(VECTOR)
    assert array.dtype == np.float32
    assert array.shape == (2, 2)
    assert array.tolist() == [[1.0, 2.0], [3.0, 4.0]]


def test_real_dtype_is_recorded_not_the_schema_one() -> None:
    """A bare NDArray field keeps the data's dtype; the bytes' header wins over annotations."""

    @packable
    class Loose:
        x: NDArray[np.float32]

    stored = Loose(np.arange(3, dtype=np.int64)).packed
    assert Loose.from_bytes(stored).x.dtype == np.int64


# --- round trips -----------------------------------------------------------------------------------


def test_every_field_type_round_trips() -> None:
    sample = _everything(maybe=7, maybe_array=np.array(3.5))
    again = Everything.from_bytes(sample.packed)
    assert again == sample
    assert again.maybe_array.shape == ()
    assert isinstance(again.ratio, float)


def test_stored_map_has_every_field_and_nil_for_unset_optionals() -> None:
    stored = msgpack.unpackb(_everything().packed, raw=False)
    assert list(stored) == [f.name for f in field_specs(Everything)]
    assert stored["maybe"] is None
    assert isinstance(stored["array"], bytes)
    assert stored["array"][:1] == b"\x03"  # len("<i2")


def test_optional_before_required_decodes() -> None:
    again = OptionalFirst.from_bytes(OptionalFirst(value=3).packed)
    assert again.note is None and again.value == 3


def test_int_stored_in_float_field_becomes_float() -> None:
    @packable
    class F:
        x: float

    assert F.from_bytes(msgpack.packb({"x": 3})).x == 3.0
    assert isinstance(F.from_bytes(msgpack.packb({"x": 3})).x, float)


def test_non_contiguous_arrays_are_stored_in_c_order() -> None:
    base = np.arange(24, dtype=np.int32).reshape(4, 6)
    for view in (base.T, base[::2, 1::2], base[:, ::-1]):
        assert np.array_equal(decode_ndarray(encode_ndarray(view)), view)


def test_as_wds_and_keys() -> None:
    sample = _everything()
    wds = sample.as_wds
    assert set(wds) == {"__key__", "msgpack"}
    assert len(wds["__key__"]) == 36 and wds["__key__"][14] == "1"  # a UUID1
    assert new_key() != new_key()


_DTYPES = [
    "bool",
    "i1",
    "i2",
    "i4",
    "i8",
    "u1",
    "u2",
    "u4",
    "u8",
    "f2",
    "f4",
    "f8",
    "c8",
    "c16",
    ">i4",
    ">f8",
    "<U3",
    "|S4",
    "M8[ns]",
    "m8[s]",
]


@st.composite
def arrays(draw: st.DrawFn) -> np.ndarray:
    dtype = np.dtype(draw(st.sampled_from(_DTYPES)))
    shape = draw(hnp.array_shapes(min_dims=0, max_dims=4, min_side=0, max_side=5))
    return draw(hnp.arrays(dtype, shape))


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(arrays())
def test_ndarray_codec_round_trips_any_dtype_and_shape(array: np.ndarray) -> None:
    blob = encode_ndarray(array)
    again = decode_ndarray(blob)
    assert again.dtype == array.dtype
    assert again.shape == array.shape
    assert again.tobytes() == np.ascontiguousarray(array).tobytes()


@given(arrays())
def test_npy_files_are_accepted_as_bins(array: np.ndarray) -> None:
    buf = io.BytesIO()
    np.save(buf, array, allow_pickle=False)
    again = decode_ndarray(buf.getvalue())
    assert again.dtype == array.dtype and again.shape == array.shape
    assert again.tobytes() == np.ascontiguousarray(array).tobytes()


def test_npy_bin_inside_a_sample() -> None:
    buf = io.BytesIO()
    np.save(buf, np.arange(4, dtype=np.uint16))
    stored = msgpack.packb({"x": buf.getvalue()}, use_bin_type=True)

    @packable
    class N:
        x: NDArray

    assert N.from_bytes(stored).x.tolist() == [0, 1, 2, 3]
    assert DictSample.from_bytes(stored).x.tolist() == [0, 1, 2, 3]


def _bits(x: float) -> bytes:
    return struct.pack("<d", x)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | st.text() | st.binary(),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=5), children, max_size=4)
    ),
    max_leaves=12,
)


@settings(max_examples=200)
@given(
    text=st.text(),
    count=st.integers(-(2**63), 2**64 - 1),
    ratio=st.floats(allow_nan=True, allow_infinity=True),
    flag=st.booleans(),
    blob=st.binary(),
    ints=st.lists(st.integers(-(2**63), 2**63 - 1), max_size=8),
    names=st.lists(st.text(), max_size=5),
    meta=st.dictionaries(st.text(max_size=8), json_values, max_size=5),
    maybe=st.none() | st.integers(-100, 100),
)
def test_primitive_and_container_fields_round_trip(
    text: str,
    count: int,
    ratio: float,
    flag: bool,
    blob: bytes,
    ints: list[int],
    names: list[str],
    meta: dict[str, Any],
    maybe: int | None,
) -> None:
    sample = _everything(
        text=text,
        count=count,
        ratio=ratio,
        flag=flag,
        blob=blob,
        ints=ints,
        names=names,
        meta=meta,
        maybe=maybe,
    )
    again = Everything.from_bytes(sample.packed)
    assert (again.text, again.count, again.flag, again.blob) == (text, count, flag, blob)
    assert _bits(again.ratio) == _bits(ratio) or (math.isnan(ratio) and math.isnan(again.ratio))
    assert again.ints == ints and again.names == names and again.maybe == maybe
    assert again.meta == meta


@given(st.dictionaries(st.text(max_size=8), json_values, max_size=6))
def test_dict_sample_round_trips_any_map(data: dict[str, Any]) -> None:
    stored = msgpack.packb(data, use_bin_type=True)
    sample = DictSample.from_bytes(stored)
    for key, value in data.items():
        got = sample[key]
        if isinstance(got, np.ndarray):  # a bin that happens to be a valid NDArray blob
            assert encode_ndarray(got) == value or value[:6] == b"\x93NUMPY"
        else:
            assert got == value


def test_dict_sample_access_and_arrays() -> None:
    sample = DictSample.from_bytes(_everything().packed)
    assert sample.text == "héllo" and sample["count"] == -3
    assert isinstance(sample.array, np.ndarray) and sample.array.shape == (2, 3)
    assert "meta" in sample and len(sample) == 13
    with pytest.raises(AttributeError, match="no field 'nope'"):
        _ = sample.nope
    again = DictSample.from_bytes(sample.packed)
    assert again == sample


def test_decode_sample_sets_the_key() -> None:
    sample = decode_sample(Everything, _everything().packed, shard="s.tar", key="k1")
    assert sample.__key__ == "k1"


# --- declaration errors ----------------------------------------------------------------------------


@pytest.mark.parametrize("annotation", [set, tuple, int | str, complex, object])
def test_unsupported_field_types_fail_at_declaration(annotation: Any) -> None:
    bad = type("Bad", (), {"__annotations__": {"x": annotation}, "__module__": __name__})
    with pytest.raises(TypeError, match=r"Bad\.x"):
        packable(bad)


def test_object_dtype_annotation_fails_at_declaration() -> None:
    with pytest.raises(TypeError, match="object-dtype"):

        @packable
        class Bad:
            x: NDArray[np.object_]


# --- bad input -------------------------------------------------------------------------------------


def _blob(dtype: bytes, shape: list[int], payload: bytes) -> bytes:
    return (
        bytes([len(dtype)])
        + dtype
        + bytes([len(shape)])
        + struct.pack(f"<{len(shape)}q", *shape)
        + payload
    )


BAD_BLOBS = {
    "unknown dtype": (_blob(b"zz9", [2], b"\0" * 8), "unknown dtype"),
    "non-ascii dtype": (_blob(b"\xff\xfe", [1], b"\0"), "unknown dtype"),
    "object dtype": (_blob(b"|O", [1], b"\0" * 8), "object"),
    "negative dim": (_blob(b"<f4", [-1, 4], b""), "negative"),
    "absurd shape": (_blob(b"<f8", [1 << 40, 1 << 40], b"\0" * 16), "needs"),
    "too short": (_blob(b"<f4", [4], b"\0" * 15), "needs 16 bytes"),
    "too long": (_blob(b"<f4", [4], b"\0" * 17), "needs 16 bytes"),
    "rank 200": (bytes([3]) + b"<f4" + bytes([200]) + b"\0" * 64, "dimensions"),
    "truncated shape": (bytes([3]) + b"<f4" + bytes([2]) + b"\0" * 9, "truncated"),
    "one byte": (b"\x03", "too short"),
    "bad npy": (b"\x93NUMPY\x01\x00garbage", ".npy"),
    "pickled npy": (b"", "pickle"),  # filled in below
}


def _pickled_npy() -> bytes:
    buf = io.BytesIO()
    np.save(buf, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    return buf.getvalue()


BAD_BLOBS["pickled npy"] = (_pickled_npy(), ".npy")


@pytest.mark.parametrize("case", sorted(BAD_BLOBS))
def test_bad_ndarray_blobs_raise_ndarray_error(case: str) -> None:
    blob, message = BAD_BLOBS[case]
    with pytest.raises(NDArrayError, match=message):
        decode_ndarray(blob)


@pytest.mark.parametrize("case", sorted(BAD_BLOBS))
def test_bad_ndarray_in_a_sample_names_shard_and_key(case: str) -> None:
    @packable
    class One:
        x: NDArray

    stored = msgpack.packb({"x": BAD_BLOBS[case][0]}, use_bin_type=True)
    with pytest.raises(NDArrayError) as info:
        decode_sample(One, stored, shard="data-000003.tar", key="k-42")
    assert "data-000003.tar" in str(info.value) and "k-42" in str(info.value)
    assert info.value.shard == "data-000003.tar" and info.value.key == "k-42"


def test_object_arrays_are_refused_on_encode() -> None:
    with pytest.raises(NDArrayError, match="object"):
        encode_ndarray(np.array([{"a": 1}], dtype=object))


def test_structured_arrays_are_refused_on_encode() -> None:
    with pytest.raises(NDArrayError, match="structured"):
        encode_ndarray(np.zeros(2, dtype=[("a", "<i4"), ("b", "<f8")]))


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        (b"\xc1", "not valid msgpack"),
        (b"", "not valid msgpack"),
        (msgpack.packb([1, 2]), "not a map"),
        (msgpack.packb({"a": 1}) + b"\x01", "more than one"),
        (b"GIF89a not msgpack at all", "msgpack"),
    ],
)
def test_not_msgpack(payload: bytes, message: str) -> None:
    with pytest.raises(NotMsgpackError, match=message):
        unpack_map(payload)
    with pytest.raises(NotMsgpackError) as info:
        decode_sample(Everything, payload, shard="s.tar", key="k")
    assert "s.tar" in str(info.value) and "sample k" in str(info.value)


def test_missing_required_field() -> None:
    stored = msgpack.packb({"note": "x"})
    with pytest.raises(MissingFieldError, match="'value'") as info:
        decode_sample(OptionalFirst, stored, shard="a.tar", key="k7")
    assert "a.tar" in str(info.value) and "k7" in str(info.value)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"note": None, "value": "three"}, "should be int"),
        ({"note": 5, "value": 3}, "should be str"),
        ({"note": None, "value": None}, "nil but not optional"),
    ],
)
def test_wrong_field_types(data: dict[str, Any], message: str) -> None:
    with pytest.raises(FieldTypeError, match=message) as info:
        decode_sample(OptionalFirst, msgpack.packb(data), shard="a.tar", key="k8")
    assert isinstance(info.value, SampleError) and "k8" in str(info.value)


def test_ndarray_field_holding_a_string() -> None:
    @packable
    class One:
        x: NDArray

    with pytest.raises(FieldTypeError, match="NDArray blob"):
        One.from_bytes(msgpack.packb({"x": "not bytes"}))


def test_list_of_arrays_accepts_arrays_and_refuses_junk() -> None:
    @packable
    class Many:
        xs: list[NDArray]

    arrays_in = [np.arange(3), np.ones((2, 2))]
    assert Many.from_data({"xs": arrays_in}).xs[1].shape == (2, 2)
    with pytest.raises(FieldTypeError):
        Many.from_data({"xs": [1, 2]})
    with pytest.raises(FieldTypeError):
        Many.from_data({"xs": "no"})


# --- the generated fast decoder agrees with the general path ---------------------------------------


@packable
class KwOnly:
    """``kw_only`` (an optional field before a required one) makes the fast path call by name."""

    maybe: str | None
    image: NDArray
    stack: list[NDArray]
    n: int


_FAST_CASES: list[tuple[type, dict[str, Any]]] = [
    (OptionalFirst, {"note": "a", "value": 1}),
    (OptionalFirst, {"note": None, "value": 1}),  # nil: general path
    (OptionalFirst, {"value": 1}),  # fewer fields: general path
    (OptionalFirst, {"note": "a", "value": True}),  # bool for int: general path, kept
    (OptionalFirst, {"note": "a", "value": 1, "extra": 2}),  # extra field: ignored
    (KwOnly, {"maybe": "m", "image": encode_ndarray(np.arange(6)), "stack": [], "n": 2}),
    (
        KwOnly,
        {
            "maybe": "m",
            "image": encode_ndarray(np.ones((2, 2), np.float32)),
            "stack": [encode_ndarray(np.zeros(3, np.uint8)), encode_ndarray(np.arange(2))],
            "n": 3,
        },
    ),
]


@pytest.mark.parametrize(("cls", "data"), _FAST_CASES)
def test_generated_decoder_agrees_with_the_general_path(cls: Any, data: dict[str, Any]) -> None:
    packed = msgpack.packb(data, use_bin_type=True)
    general = cls._from_data_checked(dict(data))
    assert cls.from_data(dict(data)) == general
    assert cls.from_bytes(packed) == general
    assert cls.bytes_decoder()(packed) == general
    assert type(cls.bytes_decoder()(packed)) is cls


@pytest.mark.parametrize(
    ("data", "error"),
    [
        ({"note": "a", "value": "one"}, FieldTypeError),  # wrong type: the general path names it
        ({"note": "a"}, MissingFieldError),
        ({"note": "a", "other": 1}, MissingFieldError),  # right count, wrong name
    ],
)
def test_generated_decoder_leaves_errors_to_the_general_path(
    data: dict[str, Any], error: type[Exception]
) -> None:
    with pytest.raises(error):
        OptionalFirst.bytes_decoder()(msgpack.packb(data))


def test_a_plain_subclass_decodes_to_itself_not_its_parent() -> None:
    class Child(OptionalFirst):
        pass

    sample = Child.from_bytes(OptionalFirst(note="x", value=1).packed)
    assert type(sample) is Child and sample.value == 1
    assert type(Child.bytes_decoder()(OptionalFirst(note="x", value=1).packed)) is Child


def test_generated_decoder_treats_unknown_keys_as_data() -> None:
    hostile = "x = __import__('os').system('exit 3')  #"
    cls = packable(type("Hostile", (), {"__annotations__": {"ok": int}}))
    data = {"ok": 1, hostile: 2}  # an unknown (hostile) key is data only
    assert cls.from_bytes(msgpack.packb(data)).ok == 1
