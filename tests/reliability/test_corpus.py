"""Every file of the bad-input corpus (tests/corpus/) yields a clear error, never a crash.

"Clear" means an ``AtdataError`` subclass whose message names the problem; "never a crash"
means no other exception type escapes; memory stays bounded (tracemalloc peak) and nothing is
written outside the temporary directory. Bounded hypothesis fuzzing covers the same three
parsers with inputs nobody thought of.
"""

from __future__ import annotations

import contextlib
import json
import tracemalloc
import warnings
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from atdata_core.atmosphere.records import EntryRecord
from atdata_core.dataset import Dataset, SkippedSampleWarning
from atdata_core.errors import AtdataError, RecordError, SchemaError
from atdata_core.refs import parse_ref
from atdata_core.samples import DictSample, NDArray, decode_sample, packable
from atdata_core.schema import fields_from_record, generate_stub, sample_type_from_record
from atdata_core.shards import iter_raw_samples

CORPUS = Path(__file__).parent.parent / "corpus"
TARS = sorted(CORPUS.glob("*.tar"))
SCHEMAS = sorted(CORPUS.glob("schema-*.json"))
RECORDS = sorted(CORPUS.glob("entry-*.json"))
MAX_PEAK = 64 << 20


@packable
class ArraySample:
    a: NDArray


def _typed(path: Path) -> type | None:
    """NDArray headers are only checked where the schema says the field is an array."""
    return ArraySample if path.name.startswith("ndarray-") else None


def test_corpus_is_present() -> None:
    assert len(TARS) >= 15 and len(SCHEMAS) >= 5 and len(RECORDS) >= 5


@pytest.mark.parametrize("path", TARS, ids=lambda p: p.name)
def test_hostile_shard_gives_a_clear_error_with_bounded_memory(
    path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # anything written relative to cwd would show up here
    tracemalloc.start()
    try:
        with pytest.raises(AtdataError) as info:
            list(Dataset(str(path), _typed(path)))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    message = str(info.value)
    assert path.name in message or "sample" in message or "shard" in message, message
    assert peak < MAX_PEAK, f"{path.name}: peak {peak / 1e6:.1f} MB"
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("path", TARS, ids=lambda p: p.name)
def test_skip_mode_warns_and_never_raises(path: Path) -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        samples = list(Dataset(str(path), _typed(path), on_error="skip"))
    ours = [w for w in caught if issubclass(w.category, SkippedSampleWarning)]
    assert ours, f"{path.name}: bad data skipped silently"
    if path.name == "bad-sample-in-the-middle.tar":
        assert [s.n for s in samples] == [0, 2]


def test_path_traversal_names_never_become_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(AtdataError, match="unsafe member name"):
        list(iter_raw_samples((CORPUS / "path-traversal.tar").read_bytes()))
    assert not (tmp_path.parent.parent / "x.msgpack").exists()


@pytest.mark.parametrize("path", SCHEMAS, ids=lambda p: p.name)
def test_hostile_schema_records_are_refused(path: Path, tmp_path: Path) -> None:
    record = json.loads(path.read_text())
    marker = tmp_path / "executed"
    for parse in (fields_from_record, sample_type_from_record, generate_stub):
        with pytest.raises(SchemaError):
            parse(record)
    assert not marker.exists()


@pytest.mark.parametrize("path", RECORDS, ids=lambda p: p.name)
def test_hostile_entry_records_are_refused(path: Path) -> None:
    record = json.loads(path.read_text())
    with pytest.raises(RecordError):
        EntryRecord.parse(
            record,
            uri="at://did:plc:abcdefghijklmnopqrstuvwx/science.alt.dataset.entry/x",
            did="did:plc:abcdefghijklmnopqrstuvwx",
            pds="http://127.0.0.1:9",
        )


def test_hostile_refs_are_refused_clearly() -> None:
    for text in json.loads((CORPUS / "refs.json").read_text()):
        with pytest.raises(AtdataError) as info:
            parse_ref(text)
        assert str(info.value)


FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@FUZZ
@given(st.binary(max_size=4096))
def test_fuzz_sample_decoder(data: bytes) -> None:
    with contextlib.suppress(AtdataError):
        decode_sample(DictSample, data, shard="fuzz", key="k")


@FUZZ
@given(st.binary(max_size=4096), st.integers(0, 2048), st.binary(max_size=64))
def test_fuzz_tar_reader(prefix: bytes, cut: int, noise: bytes) -> None:
    good = (CORPUS / "bad-sample-in-the-middle.tar").read_bytes()
    mutated = (
        good[:cut] + noise + good[cut + len(noise) :] if prefix == b"" else prefix + good[cut:]
    )
    try:
        for raw in iter_raw_samples(mutated, shard="fuzz"):
            assert raw.key is not None
    except AtdataError:
        pass


@FUZZ
@given(st.text(max_size=300))
def test_fuzz_ref_parser(text: str) -> None:
    try:
        ref = parse_ref(text)
    except AtdataError:
        return
    assert str(ref)


def test_brace_bomb_url_is_refused_before_expanding() -> None:
    tracemalloc.start()
    try:
        with pytest.raises(AtdataError, match="expands to more than"):
            Dataset("https://x.example/data-{0..999999999}.tar")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < MAX_PEAK


def test_map_with_a_map_as_key_is_a_clear_error() -> None:
    """Found by the fuzzer: msgpack raised a bare TypeError for an unhashable key."""
    with pytest.raises(AtdataError, match="not valid msgpack"):
        decode_sample(DictSample, bytes.fromhex("818181a16101" + "02"), shard="s", key="k")
