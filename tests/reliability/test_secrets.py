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
