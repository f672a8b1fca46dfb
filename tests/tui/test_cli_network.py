"""``atdata-tui search`` and ``ls network`` / ``show`` of what they find, against the real atdata-app
(fed from the real local PDS by our promotion); failure modes against a down or hostile AppView."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from atdata_tui import cli
from tests.services import free_port
from tests.services.hostile_appview import HostileAppView

from .network_setup import Published, publish_datasets, write_config


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def published(
    tmp_path: Path, pds_server: Any, pds_account: Any, appview: Any, isolated_home: Path
) -> Published:
    return publish_datasets(tmp_path, pds_server, pds_account, appview, isolated_home)


def test_search_finds_published_datasets(
    capsys: pytest.CaptureFixture[str], published: Published, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "160")
    code, out, err = run(capsys, "search", published.key)
    assert code == 0, err
    for name, uri in published.uris.items():
        assert name in out and uri in out
    assert f"@{published.handle}" in out and "Reading@1.0.0" in out and "CC-BY-4.0" in out
    assert "2 datasets matching" in out

    code, out, err = run(capsys, "search", published.key, "--json", "--limit", "1")
    data = json.loads(out)
    assert code == 0 and data["count"] == 1 and data["truncated"] is True
    [entry] = data["entries"]
    assert entry["ref"] in published.uris.values() and entry["handle"] == published.handle
    assert entry["license"] == "CC-BY-4.0" and entry["schema"] == "Reading@1.0.0"
    assert entry["did"] == published.did and entry["samples"] in (12, 13)
    code, out, _ = run(capsys, "search", published.key, "--json", "--offset", "1")
    assert json.loads(out)["count"] == 1

    code, out, _ = run(capsys, "search", published.key, "--author", f"@{published.handle}")
    assert code == 0 and "2 datasets" in out
    code, out, _ = run(capsys, "search", "zzznomatchzzz", published.key)
    assert code == 0 and "no datasets matching" in out


def test_ls_network_and_show_take_search_results(
    capsys: pytest.CaptureFixture[str], published: Published, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "200")
    code, out, err = run(capsys, "ls", "network", "--filter", published.key, "--json")
    assert code == 0, err
    refs = {e["name"]: e["ref"] for e in json.loads(out)["entries"]}
    assert refs == published.uris
    code, out, _ = run(capsys, "ls", "network", "--limit", "100")
    assert code == 0 and all(uri in out for uri in published.uris.values())

    uri = published.uris["sensor-readings"]
    code, out, err = run(capsys, "show", uri, "--json")
    data = json.loads(out)
    assert code == 0, err
    assert data["name"] == "sensor-readings" and data["samples"] == 12
    assert len(data["shard_list"]) == 3 and all(s["sha256"] for s in data["shard_list"])
    code, out, _ = run(capsys, "show", uri)
    assert code == 0 and "sensor-readings" in out and uri in out
    code, out, err = run(capsys, "verify", uri)
    assert code == 0, err
    code, out, err = run(capsys, "preview", uri, "--json")
    assert code == 0, err
    assert "reading 0" in out


def test_appview_flag_overrides_the_config(
    capsys: pytest.CaptureFixture[str], published: Published, pds_server: Any, appview: Any
) -> None:
    write_config(published.home, pds_server, f"http://127.0.0.1:{free_port()}")
    code, _, err = run(capsys, "search", published.key)
    assert code == 1 and "cannot reach" in err and "connection failed" in err
    code, out, err = run(capsys, "--appview", appview.url, "search", published.key)
    assert code == 0 and "2 datasets" in out, err
    code, out, _ = run(capsys, "search", published.key, "--appview", appview.url)
    assert code == 0 and "2 datasets" in out


def test_show_falls_back_to_the_appview_copy_when_the_pds_is_down(
    capsys: pytest.CaptureFixture[str], published: Published, pds_server: Any
) -> None:
    uri = published.uris["sensor-calibration"]
    pds_server.stop()
    try:
        code, out, err = run(capsys, "show", uri, "--json")
    finally:
        pds_server.restart()
    assert code == 0, err
    assert json.loads(out)["name"] == "sensor-calibration"
    assert "warning" in err and "showing the copy indexed by" in err


# --- failure modes ------------------------------------------------------------------------------------


def test_search_without_an_appview_says_how_to_set_one(
    capsys: pytest.CaptureFixture[str], isolated_home: Path
) -> None:
    code, _, err = run(capsys, "search", "anything")
    assert code == 1
    assert "no AppView is configured" in err and "--appview" in err and "[atmosphere]" in err


def test_search_with_a_down_or_slow_appview_exits_non_zero(
    capsys: pytest.CaptureFixture[str], isolated_home: Path, pds_server: Any
) -> None:
    down = f"http://127.0.0.1:{free_port()}"
    code, out, err = run(capsys, "--appview", down, "search", "anything")
    assert code == 1 and out == "" and "cannot reach" in err
    route = (200, b'{"entries": []}', 5.0)
    with HostileAppView({"science.alt.dataset.searchDatasets": route}) as slow:
        write_config(isolated_home, pds_server, slow.url, timeout=0.5)
        code, out, err = run(capsys, "search", "anything")
    assert code == 1 and "timed out" in err


def test_search_with_a_bad_appview_url(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "--appview", "ftp://nope", "search", "x")
    assert code == 1 and "not an AppView URL" in err


def test_hostile_results_are_sanitized_and_bad_ones_reported(
    capsys: pytest.CaptureFixture[str], isolated_home: Path, pds_server: Any
) -> None:
    did = "did:plc:" + "a" * 24

    def entry(rkey: str, **changes: Any) -> dict[str, Any]:
        value: dict[str, Any] = {
            "uri": f"at://{did}/science.alt.dataset.entry/{rkey}",
            "did": did,
            "name": "ok",
            "schemaRef": f"at://{did}/science.alt.dataset.schema/S-1.0.0",
            "storage": {
                "$type": "science.alt.dataset.storageHttp",
                "shards": [{"url": "https://data.example/a.tar"}],
            },
            "createdAt": "2024-01-01T00:00:00.000Z",
        }
        value.update(changes)
        return value

    answer = {
        "entries": [
            entry("3kaaaaaaaaaa2", description="bidi \u202egnp.exe", license="MIT\u200b"),
            entry("3kaaaaaaaaab2", name="evil\x1b]52;c;aGk=\x07"),
        ]
    }
    with HostileAppView({"science.alt.dataset.searchDatasets": answer}) as hostile:
        write_config(isolated_home, pds_server, hostile.url)
        code, out, err = run(capsys, "search", "x")
        assert code == 0
        assert "\x1b" not in out + err and "\u202e" not in out and "\u200b" not in out
        assert "MIT\\u200b" in out
        assert "left out a record" in err and "control characters" in err
        code, out, err = run(capsys, "search", "x", "--json")
    data = json.loads(out)
    assert data["entries"][0]["description"] == "bidi \u202egnp.exe"  # exact text, escaped
    assert "\u202e" not in out and "\\u202e" in out
    assert len(data["skipped"]) == 1
