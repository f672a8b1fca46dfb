"""An AppView that is broken or malicious: bad records are left out (and counted), bad answers,
stalls and floods are clear ``AppViewError``s. The server is ``HostileAppView`` (scripted answers:
the real atdata-app never sends these), identities resolve against it too (every DID is unknown).
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from atdata_core.atmosphere import AppViewClient, AppViewError, blob_url
from atdata_core.atmosphere import appview as appview_mod
from atdata_core.atmosphere.resolve import IdentityResolver
from atdata_core.errors import RecordError
from tests.services.hostile_appview import HostileAppView

DID = "did:plc:" + "a" * 24
OTHER = "did:plc:" + "b" * 24
SEARCH = "science.alt.dataset.searchDatasets"


def entry_value(rkey: str = "3kabcdefghij2", **changes: Any) -> dict[str, Any]:
    value: dict[str, Any] = {
        "uri": f"at://{DID}/science.alt.dataset.entry/{rkey}",
        "cid": "bafyrei" + "a" * 52,
        "did": DID,
        "name": f"ok-{rkey}",
        "schemaRef": f"at://{DID}/science.alt.dataset.schema/S-1.0.0",
        "storage": {
            "$type": "science.alt.dataset.storageHttp",
            "shards": [
                {
                    "url": "https://data.example/a.tar",
                    "checksum": {"algorithm": "sha256", "digest": "ab" * 32},
                }
            ],
        },
        "createdAt": "2024-01-01T00:00:00.000Z",
        "license": "MIT",
    }
    value.update(changes)
    return value


def client_for(server: HostileAppView, **kwargs: Any) -> AppViewClient:
    resolver = IdentityResolver(plc_url=server.url, handle_resolver=server.url, timeout=5)
    return AppViewClient(server.url, resolver=resolver, **kwargs)


def test_hostile_records_are_left_out_and_counted_the_rest_listed() -> None:
    bad_storage = entry_value(
        "3kaaaaaaaaaa2",
        storage={
            "$type": "science.alt.dataset.storageHttp",
            "shards": [{"url": "file:///etc/passwd"}],
        },
    )
    bad_name = entry_value("3kaaaaaaaaab2", name="evil\x1b]52;c;cm0gLXJmIH4K\x07")
    not_an_entry = entry_value(
        "3kaaaaaaaaac2", uri=f"at://{DID}/science.alt.dataset.schema/3kaaaaaaaaac2"
    )
    lies_about_author = entry_value("3kaaaaaaaaad2", did=OTHER)
    brace_bomb = entry_value(
        "3kaaaaaaaaae2",
        storage={
            "$type": "science.alt.dataset.storageExternal",
            "urls": ["https://x/{0..9999999}.tar"],
        },
    )
    local_uri = entry_value("3kaaaaaaaaaf2", uri="at://alice.example/science.alt.dataset.entry/x")
    bidi = entry_value("3kaaaaaaaaag2", description="safe \u202etxt.exe")
    good = entry_value()
    answer = {
        "entries": [
            bad_storage,
            good,
            "not an object",
            bad_name,
            not_an_entry,
            lies_about_author,
            brace_bomb,
            local_uri,
            dict(good),  # the same entry twice
            bidi,
        ],
        "cursor": "next\x1b[2J",
    }
    with HostileAppView({SEARCH: answer}) as server:
        page = client_for(server).search("anything")
    assert [e.name for e in page.items] == ["ok-3kabcdefghij2", "ok-3kaaaaaaaaag2"]
    assert page.items[0].license == "MIT" and page.items[0].metadata["atproto"]["handle"] is None
    assert page.items[1].description == "safe \u202etxt.exe"  # kept as stored; shown escaped
    assert page.cursor is None  # a cursor with control characters is not followed
    text = "\n".join(page.skipped)
    assert len(page.skipped) == 7
    for needle in (
        "file:// is not allowed",
        "contains control characters",
        "not an entry",
        "is not the URI's author",
        "more than 100000 shards",
        "is not an at://<did>/<collection>/<rkey> URI",
        "must be an object",
    ):
        assert needle in text, needle
    assert "\x1b" not in text


@pytest.mark.parametrize(
    ("route", "message"),
    [
        ((200, b"<html>not json</html>", 0.0), "did not answer JSON"),
        ((200, b"[1, 2, 3]", 0.0), "did not answer a JSON object"),
        ({"entries": {"a": 1}}, "'entries' as dict, not a list"),
        ({"entries": [{}] * 500}, "answered 500 items"),
        ((500, b'{"error":"InternalServerError","message":"boom \x1b[31m"}', 0.0), "answered 500"),
        ((502, b"bad gateway", 0.0), "answered 502"),
    ],
)
def test_malformed_answers_are_clear_errors(route: Any, message: str) -> None:
    with (
        HostileAppView({SEARCH: route}) as server,
        pytest.raises(AppViewError, match=message) as info,
    ):
        client_for(server).search("anything")
    assert "\x1b" not in str(info.value) and server.url in str(info.value)


def test_a_stalled_appview_times_out() -> None:
    stalled = HostileAppView({SEARCH: (200, b'{"entries": []}', 3.0)})
    with stalled as server, pytest.raises(AppViewError, match="timed out"):
        client_for(server, timeout=0.5).search("anything")


def test_an_answer_larger_than_the_cap_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(appview_mod, "MAX_ANSWER_BYTES", 10_000)
    body = json.dumps({"entries": [], "pad": "x" * 50_000}).encode()
    flood = HostileAppView({SEARCH: (200, body, 0.0)})
    with flood as server, pytest.raises(AppViewError, match="more than the 10000"):
        client_for(server).search("anything")


def test_get_entry_must_answer_the_entry_asked_for() -> None:
    asked = f"at://{DID}/science.alt.dataset.entry/3kabcdefghij2"
    other = entry_value("3kzzzzzzzzzz2")
    wrong = HostileAppView({"science.alt.dataset.getEntry": {"entry": other}})
    with wrong as server, pytest.raises(AppViewError, match="it answered"):
        client_for(server).get_entry(asked)
    empty = HostileAppView({"science.alt.dataset.getEntry": {"entry": None}})
    with empty as server, pytest.raises(RecordError, match="must be an object"):
        client_for(server).get_entry(asked)


def _blob_entry() -> dict[str, Any]:
    cid = "bafkrei" + "c" * 52
    blob = {"$type": "blob", "ref": {"$link": cid}, "mimeType": "application/x-tar", "size": 10}
    return entry_value(
        storage={"$type": "science.alt.dataset.storageBlobs", "blobs": [{"blob": blob}]}
    )


def test_blob_urls_from_resolve_blobs_must_name_the_records_blobs() -> None:
    """The author's DID document is unreadable, so the AppView is asked where the blobs are; it
    may only point at getBlob URLs for this DID and these blobs."""
    value = _blob_entry()
    cid = value["storage"]["blobs"][0]["blob"]["ref"]["$link"]
    uri = value["uri"]
    liar = f"https://evil.example/xrpc/com.atproto.sync.getBlob?did={OTHER}&cid={cid}"
    honest = f"https://pds.example/xrpc/com.atproto.sync.getBlob?did={DID}&cid={cid}"
    with HostileAppView(
        {
            SEARCH: {"entries": [value]},
            "science.alt.dataset.resolveBlobs": {"blobs": [{"uri": uri, "cid": cid, "url": liar}]},
        }
    ) as server:
        page = client_for(server).search("x")
        assert page.items == [] and "not a getBlob URL for a blob of this record" in page.skipped[0]
        server.set(
            "science.alt.dataset.resolveBlobs", {"blobs": [{"uri": uri, "cid": cid, "url": honest}]}
        )
        [entry] = client_for(server).search("x").items
    assert entry.data_urls == [blob_url("https://pds.example", DID, cid)]
    assert entry.metadata["atproto"]["pds"] == "https://pds.example"


def test_label_answers_must_match_the_question() -> None:
    label = {
        "uri": f"at://{DID}/science.alt.dataset.label/3kaaaaaaaaaa2",
        "name": "other-name",
        "datasetUri": f"at://{DID}/science.alt.dataset.entry/3kabcdefghij2",
        "createdAt": "2024-01-01T00:00:00.000Z",
    }
    answer = {"uri": label["datasetUri"], "cid": "bafyrei" + "a" * 52, "label": label}
    with HostileAppView({"science.alt.dataset.resolveLabel": answer}) as server:
        with pytest.raises(AppViewError, match="it answered the label 'other-name'"):
            client_for(server).resolve_label(DID, "mnist")
        label["name"] = "mnist"
        label["uri"] = f"at://{OTHER}/science.alt.dataset.label/3kaaaaaaaaaa2"
        server.set("science.alt.dataset.resolveLabel", answer)
        with pytest.raises(AppViewError, match="inconsistent"):
            client_for(server).resolve_label(DID, "mnist")


# --- the setting -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ('"https://datasets.example/"', "https://datasets.example"),
        ('"http://127.0.0.1:8000"', "http://127.0.0.1:8000"),
        ('"did:web:datasets.example"', "https://datasets.example"),
    ],
)
def test_config_appview_is_read_and_normalized(tmp_path: Any, value: str, expected: str) -> None:
    from atdata_core.config import load_config

    path = tmp_path / "config.toml"
    path.write_text(f"[atmosphere]\nappview = {value}\ntimeout = 4\n")
    cfg = load_config(path)
    assert cfg.atmosphere.appview == expected and cfg.atmosphere.timeout == 4.0


@pytest.mark.parametrize(
    "line",
    [
        'appview = "ftp://x"',
        'appview = "datasets.example"',
        'appview = "https://u:secret@h"',
        'appview = "https://h/?x=1"',
        "appview = 3",
        "timeout = 0",
        'timeout = "fast"',
        "timeout = 100000",
    ],
)
def test_config_rejects_bad_appview_settings(tmp_path: Any, line: str) -> None:
    from atdata_core.config import ConfigError, load_config

    path = tmp_path / "config.toml"
    path.write_text(f"[atmosphere]\n{line}\n")
    with pytest.raises(ConfigError, match=r"atmosphere\.(appview|timeout)") as info:
        load_config(path)
    assert "secret" not in str(info.value)
