"""``NetworkPager``: the entry list's row offsets over the AppView's cursors (a scripted AppView
serves the pages, so overlapping pages, cursor loops and the result cap can be arranged)."""

from __future__ import annotations

from typing import Any

from atdata_core.atmosphere import AppViewClient
from atdata_core.atmosphere.resolve import IdentityResolver
from atdata_tui.workers import network
from atdata_tui.workers.network import NetworkPager
from tests.services.hostile_appview import HostileAppView

DID = "did:plc:" + "a" * 24
B32 = "abcdefghijklmnopqrstuvwxyz234567"


def rkey(i: int) -> str:
    return "3k" + "".join(B32[(i >> (5 * k)) & 31] for k in range(10)) + "2"


def entry(i: int) -> dict[str, Any]:
    return {
        "uri": f"at://{DID}/science.alt.dataset.entry/{rkey(i)}",
        "did": DID,
        "name": f"ds-{i:04d}",
        "schemaRef": f"at://{DID}/science.alt.dataset.schema/S-1.0.0",
        "storage": {
            "$type": "science.alt.dataset.storageHttp",
            "shards": [{"url": f"https://data.example/{i}.tar"}],
        },
        "createdAt": "2024-01-01T00:00:00.000Z",
    }


def pages(total: int, *, overlap: int = 0, loop_at: int | None = None):
    """searchDatasets pages of 100 (``overlap``: each page repeats the previous page's last rows;
    ``loop_at``: that page hands back the first cursor again)."""

    def answer(query: dict[str, list[str]]) -> Any:
        start = int(query.get("cursor", ["0"])[0])
        first = max(start - overlap, 0)
        items = [entry(i) for i in range(first, min(start + 100, total))]
        end = start + 100
        cursor = None if end >= total else str(end)
        if loop_at is not None and start == loop_at:
            cursor = "100"
        return {"entries": items, "cursor": cursor}

    return answer


def pager_for(server: HostileAppView) -> NetworkPager:
    resolver = IdentityResolver(plc_url=server.url, handle_resolver=server.url, timeout=5)
    return NetworkPager(AppViewClient(server.url, resolver=resolver))


def test_offsets_walk_the_cursors_and_the_total_appears_at_the_end() -> None:
    with HostileAppView({"science.alt.dataset.searchDatasets": pages(250)}) as server:
        pager = pager_for(server)
        first = pager.fetch(0, 200, "words")
        assert [e.name for e in first.items][:2] == ["ds-0000", "ds-0001"]
        assert len(first.items) == 200 and first.total is None  # a cursor is still pending
        second = pager.fetch(200, 200, "words")
        assert [e.name for e in second.items] == [f"ds-{i:04d}" for i in range(200, 250)]
        assert second.total == 250
        again = pager.fetch(100, 10, "words")  # earlier rows come from memory
        assert again.items[0].name == "ds-0100"
        assert sum("searchDatasets" in r for r in server.requests) == 3


def test_overlapping_pages_are_deduplicated() -> None:
    with HostileAppView({"science.alt.dataset.searchDatasets": pages(230, overlap=7)}) as server:
        page = pager_for(server).fetch(0, 400, "words")
    names = [e.name for e in page.items]
    assert names == [f"ds-{i:04d}" for i in range(230)] and page.total == 230


def test_a_cursor_loop_ends_the_listing() -> None:
    routes = {"science.alt.dataset.searchDatasets": pages(10_000, loop_at=200)}
    with HostileAppView(routes) as server:
        page = pager_for(server).fetch(0, 1000, "words")
    assert page.total == 300 and len(page.items) == 300


def test_results_are_capped(monkeypatch: Any) -> None:
    monkeypatch.setattr(network, "MAX_RESULTS", 250)
    with HostileAppView({"science.alt.dataset.searchDatasets": pages(10_000)}) as server:
        pager = pager_for(server)
        page = pager.fetch(0, 1000, "words")
    assert pager.truncated and page.total == 250 and len(page.items) == 250


def test_a_new_query_starts_over_and_an_empty_one_lists_recent_entries() -> None:
    with HostileAppView(
        {
            "science.alt.dataset.searchDatasets": pages(3),
            "science.alt.dataset.listEntries": pages(5),
        }
    ) as server:
        pager = pager_for(server)
        assert pager.fetch(0, 200, "a").total == 3
        assert pager.fetch(0, 200, "").total == 5
        assert pager.fetch(0, 200, "  a  ").total == 3
        pager.forget()
        assert pager.fetch(0, 200, "a").total == 3
        assert sum("searchDatasets" in r for r in server.requests) == 3
