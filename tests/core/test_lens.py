"""Lenses: the decorator, putters, the registry, composition, automatic and structural lenses."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

from atdata_core.errors import LensError, MissingFieldError
from atdata_core.lens import (
    CodeRef,
    ComposedLens,
    Lens,
    LensRegistry,
    default_registry,
    find_lens,
    lens,
    structural_mismatch,
)
from atdata_core.samples import DictSample, NDArray, encode_ndarray, packable


@packable
class Full:
    image: NDArray
    label: str
    score: float


@packable
class Labelled:
    label: str


@packable
class Shouted:
    text: str


@packable
class Counted:
    length: int


@packable
class Unrelated:
    weight: float


@packable
class Widened:
    label: str
    score: float
    extra: int | None


@packable
class IntScore:
    label: str
    score: int


@packable
class Blobby:
    blob: bytes


def full(i: int = 1) -> Full:
    sample = Full(np.full((2, 2), i, np.uint8), f"cat{i}", i / 2)
    sample.__key__ = f"key-{i}"
    return sample


# A registry of its own for the module, so tests do not depend on each other's registrations.
REG = LensRegistry()


@lens(registry=REG)
def to_labelled(src: Full) -> Labelled:
    return Labelled(src.label)


@to_labelled.putter
def put_labelled(view: Labelled, source: Full) -> Full:
    return Full(source.image, view.label, source.score)


@lens(registry=REG, name="shout")
def to_shouted(src: Labelled) -> Shouted:
    return Shouted(src.label.upper())


@to_shouted.putter
def put_shouted(view: Shouted, source: Labelled) -> Labelled:
    return Labelled(view.text.lower())


@lens(registry=REG)
def to_counted(src: Shouted) -> Counted:
    return Counted(len(src.text))


def test_decorator_reads_types_from_annotations() -> None:
    assert isinstance(to_labelled, Lens)
    assert (to_labelled.source, to_labelled.view) == (Full, Labelled)
    assert to_labelled.name == "to_labelled" and to_shouted.name == "shout"
    assert REG.get(Full, Labelled) is to_labelled
    assert (Full, Labelled) in REG and len(REG) == 3
    assert to_labelled in list(REG)
    assert "Full ⇄ Labelled" in repr(to_labelled)


def test_get_put_and_keys() -> None:
    src = full(3)
    view = to_labelled(src)
    assert view.label == "cat3" and view.__key__ == "key-3"
    back = to_labelled.put(Labelled("dog"), src)
    assert back.label == "dog" and back.score == src.score and back.__key__ == "key-3"
    assert put_labelled is not to_labelled  # .putter returns the function


def test_put_without_putter() -> None:
    with pytest.raises(LensError, match="no putter"):
        to_counted.put(Counted(1), Shouted("a"))


def test_composition_is_the_shortest_path() -> None:
    chain = REG.find(Full, Counted)
    assert isinstance(chain, ComposedLens)
    assert [step.name for step in chain.steps] == ["to_labelled", "shout", "to_counted"]
    assert chain(full(12)).length == len("CAT12")
    assert not chain.has_putter
    two = REG.find(Full, Shouted)
    assert two(full(1)).text == "CAT1"
    back = two.put(Shouted("BIRD"), full(1))
    assert back.label == "bird" and back.score == 0.5


def test_shorter_registered_path_wins() -> None:
    reg = LensRegistry()
    reg.register(to_labelled)
    reg.register(to_shouted)

    @lens(registry=reg)
    def direct(src: Full) -> Shouted:
        return Shouted("direct")

    assert reg.find(Full, Shouted) is direct


def test_identity() -> None:
    same = REG.find(Full, Full)
    sample = full()
    assert same(sample) is sample and same.put(sample, full(2)) is sample


def test_dict_sample_auto_lens_to_every_packable_type() -> None:
    data = DictSample(image=np.ones((2, 2), np.uint8), label="x", score=1.5)
    data.__key__ = "k"
    auto = find_lens(DictSample, Full, LensRegistry())
    assert auto.kind == "auto"
    typed = auto(data)
    assert isinstance(typed, Full) and typed.label == "x" and typed.__key__ == "k"
    back = auto.put(Full(np.zeros((1,)), "y", 2.0), DictSample(label="old", other=1))
    assert back.label == "y" and back.other == 1
    with pytest.raises(MissingFieldError, match="'image'"):
        auto(DictSample(label="x", score=1.0))


def test_dict_sample_bytes_field_that_looks_like_an_array() -> None:
    blob = encode_ndarray(np.arange(3, dtype=np.uint8))
    data = DictSample.from_data({"blob": blob})
    assert isinstance(data.blob, np.ndarray)  # DictSample decoded it
    assert find_lens(DictSample, Blobby)(data).blob == blob  # the typed view wants bytes


def test_dict_sample_is_read_directly_as_the_view() -> None:
    data = DictSample(image=np.ones((1,)), label="a", score=0.0)
    assert REG.find(DictSample, Shouted).kind == "auto"  # not through Full → Labelled
    assert REG.find(DictSample, Full)(data).label == "a"
    registered = LensRegistry()

    @lens(registry=registered)
    def from_dict(src: DictSample) -> Shouted:
        return Shouted(src.label)

    assert registered.find(DictSample, Shouted) is from_dict
    chain = registered.find(DictSample, Shouted)
    assert chain(data).text == "a"


def test_registered_chain_from_a_packable_through_dict_sample() -> None:
    reg = LensRegistry()

    @lens(registry=reg)
    def shout_dict(src: DictSample) -> Shouted:
        return Shouted(str(src.label).upper())

    chain = reg.find(Full, Shouted)
    assert [step.kind for step in chain.steps] == ["auto", "user"]  # type: ignore[attr-defined]
    assert chain(full(2)).text == "CAT2"


def test_packable_to_dict_sample() -> None:
    to_dict = find_lens(Full, DictSample, LensRegistry())
    view = to_dict(full(2))
    assert isinstance(view, DictSample) and view.label == "cat2"
    back = to_dict.put(DictSample(label="new", junk=1), full(2))
    assert back.label == "new" and back.score == 1.0


def test_structural_fallback() -> None:
    reg = LensRegistry()
    projection = reg.find(Full, Labelled)
    assert projection.kind == "structural"
    assert projection(full(4)).label == "cat4"
    back = projection.put(Labelled("new"), full(4))
    assert back.label == "new" and back.score == 2.0 and back.image.shape == (2, 2)
    widened = reg.find(Full, Widened)  # a new optional field is fine
    assert widened(full(1)).extra is None
    assert reg.find(IntScore, Widened)(IntScore("a", 3)).score == 3.0  # int widens to float


def test_structural_mismatches_explain_themselves() -> None:
    assert structural_mismatch(Full, Labelled) is None
    assert "lacks text" in (structural_mismatch(Full, Shouted) or "")
    assert "types differ for score" in (structural_mismatch(Full, IntScore) or "")
    assert "DictSample" not in (structural_mismatch(Labelled, Unrelated) or "DictSample")


def test_no_lens_is_a_clear_error() -> None:
    with pytest.raises(LensError) as info:
        REG.find(Full, Unrelated)
    message = str(info.value)
    assert "no lens from Full to Unrelated" in message
    assert "def f(src: Full) -> Unrelated" in message
    assert "to_labelled" in message  # what is known from Full
    assert "lacks weight" in message
    with pytest.raises(LensError, match="must be a @packable"):
        REG.find(Full, int)


def test_bad_lens_declarations() -> None:
    reg = LensRegistry()
    with pytest.raises(TypeError, match="annotations"):

        @lens(registry=reg)
        def untyped(src):  # type: ignore[no-untyped-def]
            return src

    with pytest.raises(TypeError, match="exactly one parameter"):

        @lens(registry=reg)
        def two(a: Full, b: Full) -> Labelled:
            return Labelled("x")

    with pytest.raises(TypeError, match="not a @packable"):

        @lens(registry=reg)
        def to_int(src: Full) -> int:
            return 1

    with pytest.raises(TypeError, match="must take \\(view, source\\)"):

        @to_labelled.putter
        def bad_put(view: Labelled) -> Full:  # type: ignore[misc]
            return full()

    with pytest.raises(TypeError, match="annotated"):

        @to_labelled.putter
        def wrong_put(view: Shouted, source: Full) -> Full:
            return full()


def test_lens_failures_become_lens_errors() -> None:
    reg = LensRegistry()

    @lens(registry=reg)
    def broken(src: Labelled) -> Shouted:
        raise KeyError("boom")

    @lens(registry=reg)
    def wrong_type(src: Shouted) -> Counted:
        return Labelled("not a Counted")  # type: ignore[return-value]

    with pytest.raises(LensError, match=r"lens broken \(Labelled → Shouted\) failed: KeyError"):
        broken(Labelled("x"))
    with pytest.raises(LensError, match="returned Labelled, not Counted"):
        wrong_type(Shouted("x"))


def test_lenses_local_to_a_function_resolve_their_annotations() -> None:
    @packable
    class Local:
        label: str

    reg = LensRegistry()

    @lens(registry=reg)
    def to_local(src: Labelled) -> Local:
        return Local(src.label)

    assert to_local.view is Local
    assert reg.find(Labelled, Local)(Labelled("z")).label == "z"


def test_registration_replaces_and_invalidates_the_cache() -> None:
    reg = LensRegistry()
    assert reg.find(Full, Labelled).kind == "structural"

    @lens(registry=reg)
    def explicit(src: Full) -> Labelled:
        return Labelled("explicit")

    assert reg.find(Full, Labelled) is explicit
    reg.unregister(Full, Labelled)
    assert reg.find(Full, Labelled).kind == "structural"


def test_default_registry_is_used_by_default() -> None:
    @lens
    def default_one(src: Unrelated) -> Counted:
        return Counted(int(src.weight))

    try:
        assert find_lens(Unrelated, Counted) is default_one
        assert default_registry.get(Unrelated, Counted) is default_one
    finally:
        default_registry.unregister(Unrelated, Counted)


def test_lenses_pickle() -> None:
    for made in (
        to_labelled,
        REG.find(Full, Counted),
        find_lens(DictSample, Full, LensRegistry()),
        LensRegistry().find(Full, Labelled),
        REG.find(Full, Full),
    ):
        again = pickle.loads(pickle.dumps(made))
        assert again.source is made.source and again.view is made.view
        if made.source is Full:
            assert type(again(full(5))) is made.view
    assert pickle.loads(pickle.dumps(to_labelled)) is to_labelled


def test_code_refs_are_metadata_only() -> None:
    ref = CodeRef("https://github.com/o/r", "abc123", "lenses.py", branch="main")
    assert ref.to_record() == {
        "repository": "https://github.com/o/r",
        "commit": "abc123",
        "path": "lenses.py",
        "branch": "main",
        "language": "python",
    }
    assert CodeRef.from_record(ref.to_record()) == ref

    reg = LensRegistry()

    @lens(registry=reg, code_ref=ref)
    def with_ref(src: Labelled) -> Shouted:
        return Shouted(src.label)

    assert with_ref.code_ref is ref
    for bad in ({"repository": "r", "commit": "c"}, {"repository": 1, "commit": "c", "path": "p"}):
        with pytest.raises(LensError):
            CodeRef.from_record(bad)
    with pytest.raises(LensError):
        CodeRef.from_record("import os")  # type: ignore[arg-type]
