"""The headless CLI: ls / schemas / show / verify / demo / config, JSON output, errors and exit codes."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from atdata_core.index import Index
from atdata_tui import cli

VENV_BIN = Path(sys.executable).parent


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def demo_path(demo_index: Index) -> str:
    return str(demo_index.provider.address)


def test_ls_human_and_json(capsys: pytest.CaptureFixture[str], demo_path: str) -> None:
    code, out, err = run(capsys, "ls", "--index", demo_path)
    assert code == 0, err
    for name in ("demo-captions", "demo-captions-v1", "demo-images", "demo-numbers"):
        assert name in out
    assert "5 entries" in out
    code, out, _ = run(capsys, "--index", demo_path, "ls", "--json", "--limit", "2")
    data = json.loads(out)
    assert code == 0
    assert data["total"] == 5 and data["count"] == 2 and data["truncated"] is True
    assert [e["name"] for e in data["entries"]] == ["demo-captions", "demo-captions-v1"]
    first = data["entries"][0]
    assert first["cid"].startswith("bafyrei") and first["samples"] == 40
    assert first["ref"] == "demo-captions" and first["promoted"] is False


def test_ls_filter_limit_offset(capsys: pytest.CaptureFixture[str], demo_path: str) -> None:
    code, out, _ = run(capsys, "ls", "--index", demo_path, "--filter", "CAPT", "--json")
    data = json.loads(out)
    assert code == 0 and data["total"] == 2 and not data["truncated"]
    code, out, _ = run(capsys, "ls", "--index", demo_path, "--limit", "2", "--offset", "3")
    assert code == 0
    assert "4-5 of 5 entries" in out  # truncation is never silent
    assert "demo-numbers" in out and "demo-captions " not in out


def test_schemas(capsys: pytest.CaptureFixture[str], demo_path: str) -> None:
    code, out, _ = run(capsys, "schemas", "--index", demo_path, "--json")
    data = {s["name"]: s for s in json.loads(out)}
    assert code == 0
    assert data["DemoCaption"]["versions"] == ["1.1.0", "1.0.0"]
    assert data["DemoCaption"]["fields"] == 4
    code, out, _ = run(capsys, "schemas", "--index", demo_path)
    assert code == 0 and "1.1.0, 1.0.0" in out


def test_show_entry_and_schema(capsys: pytest.CaptureFixture[str], demo_path: str) -> None:
    code, out, _ = run(capsys, "show", "demo-numbers", "--index", demo_path)
    assert code == 0
    assert "demo-numbers" in out and "100 samples" in out and "DemoNumbers@1.0.0" in out
    code, out, _ = run(capsys, "show", "demo-numbers", "--index", demo_path, "--json")
    data = json.loads(out)
    assert data["samples"] == 100 and len(data["shard_list"]) == 2
    assert all(len(s["sha256"]) == 64 for s in data["shard_list"])
    code, out, _ = run(
        capsys, "show", "atdata://local/schema/DemoCaption@1.0.0", "--index", demo_path, "--json"
    )
    data = json.loads(out)
    assert code == 0
    assert [f["name"] for f in data["fields"]] == ["text", "lang", "source", "score"]


@pytest.mark.parametrize(
    ("ref", "message"),
    [
        ("no-such-dataset", "no dataset named 'no-such-dataset'"),
        ("bad name!", "invalid dataset name"),
        ("nowhere/x", "no repository named 'nowhere'"),
    ],
)
def test_errors_are_one_line_and_exit_1(
    capsys: pytest.CaptureFixture[str], demo_path: str, ref: str, message: str
) -> None:
    code, out, err = run(capsys, "show", ref, "--index", demo_path)
    assert code == 1
    assert message in err
    assert "Traceback" not in err and out == ""


def test_verify_ok_then_corrupt(capsys: pytest.CaptureFixture[str], demo_index: Index) -> None:
    path = str(demo_index.provider.address)
    code, out, _ = run(capsys, "verify", "demo-signals", "--index", path)
    assert code == 0 and "ok: 2 shards" in out
    entry = demo_index.resolve_entry("demo-signals")
    shard = Path(entry.data_urls[1])
    data = bytearray(shard.read_bytes())
    data[1000] ^= 0xFF
    shard.write_bytes(bytes(data))
    code, out, err = run(capsys, "verify", "demo-signals", "--index", path, "--json")
    report = json.loads(out)
    assert code == 1 and report["ok"] is False
    assert [s["status"] for s in report["shards"]] == ["ok", "mismatch"]
    code, out, err = run(capsys, "verify", "demo-signals", "--index", path)
    assert code == 1 and "1 of 2 shards failed" in err


def test_demo_and_config(capsys: pytest.CaptureFixture[str], isolated_home: Path) -> None:
    code, out, _ = run(capsys, "demo")
    assert code == 0 and out.count("\n") == 5
    code, out, _ = run(capsys, "ls", "--json")  # the default index under ATDATA_TUI_HOME
    assert json.loads(out)["total"] == 5
    assert (isolated_home / "data" / "index.db").exists()
    code, out, _ = run(capsys, "config", "path")
    assert code == 0 and out.strip() == str(isolated_home / "config" / "config.toml")
    code, out, _ = run(capsys, "config", "init")
    assert code == 0 and (isolated_home / "config" / "config.toml").exists()
    code, out, err = run(capsys, "config", "init")
    assert code == 0 and "already exists" in err


def test_named_repository_from_config(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, demo_path: str
) -> None:
    config = tmp_path / "config.toml"
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    config.write_text(
        f'[repos.lab]\npath = "{demo_path}"\nstore = "disk"\nstore_path = "{tmp_path / "lab"}"\n'
        f'[repos.broken]\npath = "{blocker / "index.db"}"\n'
    )
    code, out, err = run(capsys, "--config", str(config), "ls", "lab", "--json")
    assert code == 0, err
    assert json.loads(out)["total"] == 5
    assert "repository 'broken' was not opened" in err  # a broken repo is a warning, not fatal
    code, out, err = run(capsys, "--config", str(config), "show", "lab/demo-images")
    assert code == 0 and "demo-images" in out


def test_broken_config_is_an_error_not_a_traceback(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    config = tmp_path / "config.toml"
    config.write_text("[repos.x]\nunknown_key = 1\n")
    code, _, err = run(capsys, "--config", str(config), "ls")
    assert code == 1 and "unknown keys" in err and "Traceback" not in err


def test_reserved_subcommands_and_the_registry(capsys: pytest.CaptureFixture[str]) -> None:
    for name in cli.RESERVED:
        assert name in cli.registered_commands()
    calls: list[str] = []

    def configure(parser: argparse.ArgumentParser) -> None:
        parser.add_argument("word")

    def run_hello(args: argparse.Namespace, ctx: cli.CliContext) -> int:
        calls.append(args.word)
        return 3

    saved = cli.registered_commands()
    try:
        cli.register_command("hello", configure, run_hello, help="say hello", needs_index=False)
        code, _, _ = run(capsys, "hello", "world")
        assert code == 3 and calls == ["world"]
    finally:
        cli._REGISTRY.clear()
        cli._REGISTRY.update(saved)


def test_installed_console_script(tmp_path: Path) -> None:
    """The real ``atdata-tui`` executable: demo, ls through a pipe, an error exit code."""
    exe = VENV_BIN / "atdata-tui"
    if not exe.exists():
        pytest.skip("atdata-tui is not installed in this environment")
    env = {**os.environ, "ATDATA_TUI_HOME": str(tmp_path / "home")}
    done = subprocess.run([exe, "demo"], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    done = subprocess.run([exe, "ls"], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and "demo-signals" in done.stdout
    done = subprocess.run(
        [exe, "show", "missing"], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 1
    assert done.stderr.strip() == "atdata-tui: error: no dataset named 'missing'"
