"""Shared fixtures and helpers of the atmosphere tests (the other ``test_atmosphere_*`` import them).

Everything runs against the real local PDS + PLC of the ``pds_server`` fixture: no mocks. Each
test gets fresh accounts (unique ``.test`` handles) and its own session file under ``tmp_path``.
"""

from __future__ import annotations

import json
import pathlib
import uuid
from typing import Any

import numpy as np
import pytest

from atdata_core.atmosphere import AtmosphereBackend, AtmosphereClient, LexiconSet
from atdata_core.atmosphere.client import RecordView
from atdata_core.atmosphere.lexicons import (
    ENTRY,
    LABEL,
    LENS,
    SCHEMA,
)
from atdata_core.index import Index
from atdata_core.samples import NDArray, packable

#: What ``from .test_atmosphere_helpers import *`` brings in: the fixtures (helpers are imported by name).
__all__ = ["anon_index", "atmo_client", "atmo_index", "lexicons"]

LEXICON_DIR = pathlib.Path(__file__).resolve().parents[1] / "lexicons"
OUR_COLLECTIONS = (SCHEMA, ENTRY, LABEL, LENS)


@packable
class AtmoSample:
    """A sample with every kind of field the wire format carries."""

    text: str
    n: int
    score: float
    flag: bool
    raw: bytes
    arr: NDArray
    tags: list[str]
    maybe: int | None = None


def make_samples(count: int, *, width: int = 4) -> list[AtmoSample]:
    return [
        AtmoSample(
            text=f"sample {i} ✓",
            n=i,
            score=i / 7,
            flag=i % 2 == 0,
            raw=bytes([i % 256]) * (i % 5),
            arr=np.arange(i, i + width * 3, dtype=np.float32).reshape(width, 3),
            tags=[f"t{i % 3}", "x"],
            maybe=None if i % 3 else i,
        )
        for i in range(count)
    ]


def same_sample(a: Any, b: Any) -> bool:
    """Field-by-field equality (arrays compared by value, dtype and shape)."""
    for name in ("text", "n", "score", "flag", "raw", "tags", "maybe"):
        if getattr(a, name) != getattr(b, name):
            return False
    x, y = np.asarray(a.arr), np.asarray(b.arr)
    return x.dtype == y.dtype and x.shape == y.shape and bool(np.array_equal(x, y))


def make_client(pds_server: Any, tmp_path: pathlib.Path, **kwargs: Any) -> AtmosphereClient:
    """A client for the local PDS whose session file lives under ``tmp_path``."""
    kwargs.setdefault("session_file", tmp_path / f"cfg-{uuid.uuid4().hex[:6]}" / "session.json")
    kwargs.setdefault("plc", pds_server.plc_url)
    kwargs.setdefault("handle_resolver", pds_server.url)
    kwargs.setdefault("timeout", 20.0)
    return AtmosphereClient(**kwargs)


def new_account(pds_server: Any, prefix: str = "user") -> tuple[str, str, str]:
    """A fresh account: ``(did, handle, password)``."""
    if not pds_server.running:
        pds_server.start()
    password = uuid.uuid4().hex
    did, handle = pds_server.create_account(pds_server.unique_handle(prefix), password)
    return did, handle, password


@pytest.fixture(scope="session")
def lexicons() -> LexiconSet:
    return LexiconSet.load(LEXICON_DIR)


@pytest.fixture
def atmo_client(pds_server: Any, pds_account: Any, tmp_path: pathlib.Path) -> AtmosphereClient:
    """Logged in as the test's fresh account."""
    client = make_client(pds_server, tmp_path)
    client.login(pds_account.handle, pds_account.password)
    yield client
    client.close()


@pytest.fixture
def atmo_index(tmp_path: pathlib.Path, atmo_client: AtmosphereClient) -> Index:
    """A local SQLite index whose atmosphere backend is the logged-in client."""
    index = Index(path=tmp_path / "index" / "index.db", atmosphere=AtmosphereBackend(atmo_client))
    yield index
    index.close()


@pytest.fixture
def anon_index(tmp_path: pathlib.Path, pds_server: Any) -> Index:
    """A local index whose atmosphere backend is anonymous (reads only)."""
    client = make_client(pds_server, tmp_path, session_file=None)
    index = Index(path=tmp_path / "anon" / "index.db", atmosphere=AtmosphereBackend(client))
    yield index
    index.close()
    client.close()


def raw_sdk(pds_server: Any, handle: str, password: str) -> Any:
    """A plain ``atproto.Client`` for writing records we do not build (malformed ones)."""
    return pds_server.login(handle, password)


def put_raw(sdk: Any, collection: str, record: Any, rkey: str | None = None) -> str:
    """Create a record byte for byte as given (no model conversion); its at:// URI."""
    body: dict[str, Any] = {"repo": _did_of(sdk), "collection": collection, "record": record}
    if rkey is not None:
        body["rkey"] = rkey
    response = sdk.invoke_procedure(
        "com.atproto.repo.createRecord",
        content=json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
    )
    return str(response.content["uri"])


def apply_creates(sdk: Any, collection: str, records: list[dict[str, Any]]) -> None:
    """Create many records in batches of 100 (``applyWrites``)."""
    did = _did_of(sdk)
    for start in range(0, len(records), 100):
        writes = [
            {"$type": "com.atproto.repo.applyWrites#create", "collection": collection, "value": r}
            for r in records[start : start + 100]
        ]
        sdk.invoke_procedure(
            "com.atproto.repo.applyWrites",
            content=json.dumps({"repo": did, "writes": writes}).encode(),
            headers={"Content-Type": "application/json"},
        )


def _did_of(sdk: Any) -> str:
    from atproto_client.client.session import Session

    return Session.decode(sdk.export_session_string()).did


def all_records(client: AtmosphereClient, did: str, collection: str) -> list[RecordView]:
    return list(client.iter_records(did, collection))


def record_counts(client: AtmosphereClient, did: str) -> dict[str, int]:
    return {c: len(all_records(client, did, c)) for c in OUR_COLLECTIONS}


# --- the helpers themselves -------------------------------------------------------------------------


def test_make_samples_are_distinct_and_compare_by_value() -> None:
    a, b = make_samples(2)
    assert same_sample(a, a) and not same_sample(a, b)
    assert a.arr.dtype == np.float32 and a.arr.shape == (4, 3)


def test_lexicon_copies_match_the_shared_spec(lexicons: LexiconSet) -> None:
    """The test lexicons are the published documents, and all the ones we write are there."""
    for nsid in ("science.alt.dataset.entry", "science.alt.dataset.schema", LABEL, LENS):
        assert lexicons.resolve(nsid, nsid)["type"] == "record"
    shared = pathlib.Path("/work/shared/lexicons")
    if shared.is_dir():
        for path in shared.rglob("*.json"):
            mine = LEXICON_DIR / path.relative_to(shared)
            assert json.loads(mine.read_text()) == json.loads(path.read_text()), path.name
