"""Network search through the real dataset AppView (atdata-app), fed from the real local PDS.

Every dataset here is published by our own promotion to the local PDS, then indexed by atdata-app
through its own backfill code (``appview.ingest(did)``), then found, opened and read back through
``AppViewClient``. Queries use a word unique to the test, so tests sharing the AppView's database
never see each other's datasets.
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from atdata_core.atmosphere import (
    AppViewClient,
    AppViewError,
    AtmosphereBackend,
    AtmosphereClient,
    DatasetNotFoundError,
)
from atdata_core.atmosphere.lexicons import ENTRY
from atdata_core.atmosphere.records import CodeReference, LensRecord
from atdata_core.atmosphere.resolve import IdentityResolver
from atdata_core.dataset import Dataset
from atdata_core.index import Index
from atdata_core.samples import NDArray, packable

from .test_atmosphere_helpers import *  # noqa: F403  (fixtures)
from .test_atmosphere_helpers import make_client, make_samples, same_sample


def word() -> str:
    """A search word no other test uses (letters only: the AppView's full-text parser keeps it)."""
    return "w" + "".join(chr(ord("a") + int(c, 16) % 26) for c in uuid.uuid4().hex[:10])


def network_client(appview: Any, pds_server: Any, tmp_path: Path, **kwargs: Any) -> AppViewClient:
    records = make_client(pds_server, tmp_path, session_file=None)
    return AppViewClient(appview.url, resolver=records.resolver, records=records, **kwargs)


@pytest.fixture
def network(appview: Any, pds_server: Any, tmp_path: Path) -> AppViewClient:
    client = network_client(appview, pds_server, tmp_path)
    yield client
    client.close()


def publish(
    index: Index,
    client: AtmosphereClient,
    local_name: str,
    *,
    samples: list[Any] | None = None,
    label: str | None = None,
    version: str | None = None,
    description: str = "",
    license: str | None = "CC-BY-4.0",
    tags: list[str] | None = None,
) -> str:
    """Write ``samples`` locally, promote them (our promotion, blobs on the PDS); the entry URI."""
    samples = samples if samples is not None else make_samples(12)
    entry = index.write(
        samples, name=local_name, maxcount=5, description=description, tags=tags or ["demo"]
    )
    backend = index.atmosphere
    plan = backend.plan_promotion(
        index, entry, name=label or local_name, version=version, license=license
    )
    return backend.execute_plan(plan)


# --- search, open, load ------------------------------------------------------------------------------


def test_promoted_dataset_is_found_opened_and_loaded_through_the_appview(
    atmo_index: Index, atmo_client: AtmosphereClient, appview: Any, network: AppViewClient
) -> None:
    key = word()
    info = atmo_client.require_login()
    samples = make_samples(12)
    uri = publish(
        atmo_index, atmo_client, "digits", samples=samples, description=f"handwritten {key} digits"
    )
    counts = appview.ingest(info.did)
    assert counts[ENTRY] == 1 and counts["science.alt.dataset.label"] == 1

    page = network.search(key)
    assert page.skipped == [] and page.cursor is None
    [entry] = page.items
    assert entry.at_uri == uri and entry.name == "digits" and entry.repo == "_atmosphere"
    atproto = entry.metadata["atproto"]
    assert atproto["handle"] == info.handle and atproto["did"] == info.did
    assert atproto["appview"] == appview.url and atproto["pds"] == info.pds
    assert atproto["schema"] == "AtmoSample@1.0.0"
    assert entry.license == "CC-BY-4.0" and entry.samples == 12 and entry.shards == 3
    assert entry.description == f"handwritten {key} digits"
    assert all(u.startswith(f"{info.pds}/xrpc/com.atproto.sync.getBlob?") for u in entry.data_urls)

    # opened like any entry: schema decoded, every sample read back from the PDS blobs
    reader = Index(
        path=Path(atmo_index.provider.address).parent / "reader.db",
        atmosphere=AtmosphereBackend(atmo_client),
    )
    sample_type = reader.decode_schema(entry.schema_ref)
    got = list(Dataset(list(entry.data_urls), sample_type))
    assert len(got) == 12 and all(same_sample(a, b) for a, b in zip(samples, got, strict=True))
    assert reader.verify(entry).ok
    reader.close()

    # the same entry by URI, alone and in a batch
    assert network.get_entry(uri).to_dict() == entry.to_dict()
    found, problems = network.get_entries([uri, uri.replace(uri[-4:], "aaaa")])
    assert list(found) == [uri] and problems == []
    with pytest.raises(DatasetNotFoundError, match="has no entry"):
        network.get_entry(f"at://{info.did}/{ENTRY}/3kaaaaaaaaaa2")


def test_search_pages_follow_the_cursor_and_lists_filter_by_author(
    atmo_index: Index, atmo_client: AtmosphereClient, appview: Any, network: AppViewClient
) -> None:
    key = word()
    info = atmo_client.require_login()
    uris = {
        publish(atmo_index, atmo_client, f"part-{i}", samples=make_samples(2), description=key)
        for i in range(5)
    }
    appview.ingest(info.did)
    seen: list[str] = []
    cursor = None
    for _ in range(10):
        page = network.search(key, limit=2, cursor=cursor)
        seen += [e.at_uri for e in page.items]
        cursor = page.cursor
        if cursor is None:
            break
    assert set(seen) == uris
    mine = network.list_entries(author=f"@{info.handle}", limit=100)
    assert {e.at_uri for e in mine.items} == uris
    assert network.search(key, author=info.did).items
    with pytest.raises(AppViewError, match="give some words"):
        network.search("   ")


def test_describe_counts_what_the_appview_holds(network: AppViewClient, appview: Any) -> None:
    info = network.describe()
    assert info.url == appview.url and info.did and info.did.startswith("did:web:")
    assert info.entries is not None and info.entries >= 0


# --- schemas, labels, lenses, versions ----------------------------------------------------------------


def test_schema_and_its_versions_come_from_the_appview(
    atmo_index: Index, atmo_client: AtmosphereClient, appview: Any, network: AppViewClient
) -> None:
    key = word()
    info = atmo_client.require_login()
    publish(atmo_index, atmo_client, "v1", description=key)

    @packable
    class AtmoSample2:
        """The same schema name, one more field: a new version."""

        text: str
        n: int
        extra: NDArray

    AtmoSample2.__name__ = AtmoSample2.__qualname__ = "AtmoSample"
    more = [AtmoSample2(text=f"t{i}", n=i, extra=np.zeros(2, np.float32)) for i in range(3)]
    publish(atmo_index, atmo_client, "v2", samples=more, description=key)
    appview.ingest(info.did)
    entries = {e.name: e for e in network.search(key).items}
    old, new = entries["v1"], entries["v2"]
    schema = network.get_schema(new.schema_ref)
    assert (schema["name"], schema["version"]) == ("AtmoSample", "1.0.1")
    assert [f["name"] for f in schema["fields"]] == ["text", "n", "extra"]
    versions, cut = network.schema_versions(new.schema_ref)
    assert [s["version"] for s in versions] == ["1.0.1", "1.0.0"] and not cut
    assert versions[1]["$ref"] == old.schema_ref
    assert old.metadata["atproto"]["schema"] == "AtmoSample@1.0.0"


def test_labels_resolve_through_the_appview_and_list_every_version(
    atmo_index: Index, atmo_client: AtmosphereClient, appview: Any, network: AppViewClient
) -> None:
    key = word()
    info = atmo_client.require_login()
    first = publish(atmo_index, atmo_client, "mnist-a", label="mnist", version="1", description=key)
    second = publish(
        atmo_index, atmo_client, "mnist-b", label="mnist", version="2", description=key
    )
    appview.ingest(info.did)

    assert network.resolve_label(f"@{info.handle}", "mnist", "1")[0] == first
    assert network.resolve_label(info.did, "mnist")[0] == second  # the newest label
    with pytest.raises(DatasetNotFoundError):
        network.resolve_label(info.did, "no-such-dataset")

    versions = network.versions(network.get_entry(first))
    assert versions.label == "mnist"
    assert [(v.version, v.dataset_uri) for v in versions.versions] == [("2", second), ("1", first)]
    assert all(v.entry is not None and v.error is None for v in versions.versions)

    # an index whose atmosphere backend has the AppView resolves @handle/name with it
    backend = AtmosphereBackend(atmo_client, appview=network)
    index = Index(path=Path(atmo_index.provider.address).parent / "labels.db", atmosphere=backend)
    assert index.resolve_entry(f"@{info.handle}/mnist@1").at_uri == first
    index.close()


def test_lenses_from_and_to_a_schema(
    atmo_index: Index, atmo_client: AtmosphereClient, appview: Any, network: AppViewClient
) -> None:
    key = word()
    info = atmo_client.require_login()
    publish(atmo_index, atmo_client, "lensed", description=key)
    appview.ingest(info.did)
    [entry] = network.search(key).items
    code = CodeReference("https://github.com/example/lenses", "a" * 40, "lenses/flip.py")
    lens = LensRecord("flip", entry.schema_ref, entry.schema_ref, code, code, description="noop")
    uri = atmo_index.atmosphere.publish_lens(lens)
    appview.ingest(info.did)
    lenses, skipped = network.lenses_for(entry.schema_ref)
    assert skipped == [] and [found.uri for found in lenses] == [uri]
    assert lenses[0].lens.getter_code == code and lenses[0].did == info.did


# --- failure modes ---------------------------------------------------------------------------------------


def test_an_appview_that_is_down_is_a_clear_error(tmp_path: Path, pds_server: Any) -> None:
    from tests.services import free_port

    client = AppViewClient(f"http://127.0.0.1:{free_port()}", timeout=2)
    with pytest.raises(AppViewError, match=r"cannot reach http://127.0.0.1:\d+: connection failed"):
        client.search("anything")
    with pytest.raises(AppViewError, match=r"\[atmosphere\] appview"):
        client.describe()


def test_backend_falls_back_to_the_pds_when_the_appview_is_down(
    atmo_index: Index, atmo_client: AtmosphereClient, pds_server: Any, tmp_path: Path
) -> None:
    from tests.services import free_port

    info = atmo_client.require_login()
    uri = publish(atmo_index, atmo_client, "fallback")
    down = AppViewClient(
        f"http://127.0.0.1:{free_port()}", resolver=atmo_client.resolver, records=atmo_client
    )
    backend = AtmosphereBackend(atmo_client, appview=down)
    index = Index(path=tmp_path / "fb" / "i.db", atmosphere=backend)
    assert index.resolve_entry(f"@{info.handle}/fallback").at_uri == uri
    index.close()


@pytest.mark.parametrize(
    "url",
    ["ftp://x", "file:///etc/passwd", "https://h/?q=1", "https://u:p@h", "not a url", ""],
)
def test_appview_urls_are_validated(url: str) -> None:
    with pytest.raises(AppViewError, match=r"AppView URL|not an AppView URL"):
        AppViewClient(url)


def test_appview_url_forms() -> None:
    assert AppViewClient("https://example.org/").url == "https://example.org"
    assert AppViewClient("https://example.org/xrpc").url == "https://example.org"
    assert AppViewClient("did:web:example.org").url == "https://example.org"


def test_identity_resolver_is_shared_with_the_records_client(
    network: AppViewClient, pds_server: Any
) -> None:
    assert isinstance(network.resolver, IdentityResolver)
    assert network.resolver is network.records.resolver
