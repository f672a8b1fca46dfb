"""No secret in output, logs, exceptions or files: grep everything a user could see for them."""

from __future__ import annotations

import logging
import os
import stat
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from atdata_core.errors import AtdataError
from atdata_core.samples import NDArray, packable

ATDATA_TUI = str(Path(sys.executable).with_name("atdata-tui"))


def _env(home: Path, password: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ATDATA")}
    env.update(ATDATA_TUI_HOME=str(home), ATDATA_APP_PASSWORD=password, NO_COLOR="1")
    return env


def _all_files_text(root: Path) -> str:
    return "".join(p.read_bytes().decode("latin-1") for p in root.rglob("*") if p.is_file())


@pytest.mark.pds
def test_cli_login_never_shows_or_stores_the_password(
    pds_server, pds_account, tmp_path: Path
) -> None:
    _did, handle, password = pds_account
    wrong = "wrong-" + password
    bad = subprocess.run(
        [ATDATA_TUI, "login", handle, "--pds", pds_server.url],
        env=_env(tmp_path, wrong),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert bad.returncode != 0
    assert "app password" in bad.stderr.lower()
    assert wrong not in bad.stdout + bad.stderr

    good = subprocess.run(
        [ATDATA_TUI, "login", handle, "--pds", pds_server.url],
        env=_env(tmp_path, password),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert good.returncode == 0, good.stderr
    assert password not in good.stdout + good.stderr
    sessions = list(tmp_path.rglob("session*.json"))
    assert sessions, "login did not persist a session"
    for session in sessions:
        assert stat.S_IMODE(session.stat().st_mode) == 0o600
    assert password not in _all_files_text(tmp_path)


@pytest.mark.pds
def test_login_logs_and_errors_never_contain_the_password(
    pds_server,
    pds_account,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from atdata_core.atmosphere import AtmosphereClient

    monkeypatch.setenv("ATDATA_TUI_HOME", str(tmp_path))
    _did, handle, password = pds_account
    caplog.set_level(logging.DEBUG)
    client = AtmosphereClient(pds=pds_server.url, plc=pds_server.plc_url)
    with pytest.raises(AtdataError) as info:
        client.login(handle, password + "x")
    assert password not in str(info.value) and password not in repr(info.value)
    client.login(handle, password)
    assert password not in repr(client)
    assert password not in caplog.text


@pytest.mark.s3
def test_s3_errors_never_contain_the_secret_key(s3_server, s3_bucket: str) -> None:
    from atdata_core.stores.s3 import S3DataStore

    @packable
    class Tiny:
        x: NDArray

    secret = "Sup3rSecretKeyThatMustNotLeak0000000000"
    store = S3DataStore(
        bucket=s3_bucket,
        endpoint=s3_server.endpoint_url,
        region=s3_server.region,
        access_key=s3_server.access_key,
        secret_key=secret,
    )
    writer = store.shard_writer("leak-test")
    with pytest.raises(AtdataError) as info:
        writer.write_all([Tiny(x=np.zeros(3))])
        writer.commit()
    text = str(info.value) + repr(info.value)
    assert secret not in text and s3_server.secret_key not in text
    assert secret not in repr(store)


@pytest.mark.pds
async def test_screens_never_show_the_password_or_the_s3_secret_key(
    pds_server, pds_account, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SVG screenshots of every screen a secret passes through: login (typed, refused, accepted),
    the repository list with an S3 repository whose keys sit in the config, and the error window."""
    from textual.widgets import Input

    from atdata_core.config import load_config
    from atdata_tui.app import AtdataApp
    from atdata_tui.screens.login import LoginScreen
    from atdata_tui.workers.index import IndexOptions

    secret_key = "SECRETKEY-never-on-screen-0123456789"
    home = tmp_path / "home"
    (home / "config").mkdir(parents=True)
    (home / "config" / "config.toml").write_text(
        f'[atmosphere]\npds = "{pds_server.url}"\nplc = "{pds_server.plc_url}"\n\n'
        '[repos.lab]\nstore = "s3"\nbucket = "lab-datasets"\nendpoint = "http://127.0.0.1:9"\n'
        f'region = "us-east-1"\naccess_key = "AKIDLAB"\nsecret_key = "{secret_key}"\n'
    )
    monkeypatch.setenv("ATDATA_TUI_HOME", str(home))
    monkeypatch.delenv("ATDATA_TUI_CONFIG", raising=False)
    monkeypatch.delenv("ATDATA_APP_PASSWORD", raising=False)
    _did, handle, password = pds_account
    app = AtdataApp(
        options=IndexOptions(index_path=str(home / "data" / "index.db")), config=load_config()
    )
    shots: list[str] = []

    async def login_with(pilot, typed: str) -> None:
        app.action_login()
        await pilot.pause(0.1)
        screen = app.screen
        assert isinstance(screen, LoginScreen)
        screen.query_one("#login-handle", Input).value = handle
        box = screen.query_one("#login-password", Input)
        box.focus()
        await pilot.press(*typed)
        shots.append(app.export_screenshot())  # typed, not yet sent
        before = len(app.jobs.jobs)
        await pilot.press("enter")
        for _ in range(300):
            await pilot.pause(0.05)
            if len(app.jobs.jobs) > before and not app.jobs.jobs[-1].running:
                break
        await pilot.pause(0.2)
        shots.append(app.export_screenshot())  # refused (error shown) or accepted

    async with app.run_test(size=(120, 36)) as pilot:
        await pilot.pause(0.5)
        shots.append(app.export_screenshot())  # repositories, with the S3 "lab" one
        await login_with(pilot, password + "-wrong")
        if isinstance(app.screen, LoginScreen):
            app.screen.dismiss(None)
            await pilot.pause(0.1)
        await login_with(pilot, password)
        shots.append(app.export_screenshot())
    assert len(shots) == 6
    for shot in shots:
        assert password not in shot and secret_key not in shot
    assert "lab" in shots[0]  # the S3 repository is on the screen that was checked
