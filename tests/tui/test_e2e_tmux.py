"""End to end: the installed ``atdata-tui`` in a real terminal (tmux, 80x24), then over a real SSH.

This is what a user on a remote GPU box sees: the console script started by a shell in a pseudo
terminal, driven by key presses, read back with ``capture-pane``. The SSH variant runs an ``sshd``
of its own on 127.0.0.1 (own host key, key auth, a free port) and starts the app with ``ssh -t``
inside tmux. Both skip when tmux/sshd are missing, and fail instead when ``CI=true``.
"""

from __future__ import annotations

import os
import shlex
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

VENV_BIN = Path(sys.executable).parent
APP = VENV_BIN / "atdata-tui"


def _missing(what: str) -> None:
    if os.environ.get("CI", "").strip().lower() in {"1", "true", "yes"}:
        pytest.fail(f"{what} is required in CI", pytrace=False)
    pytest.skip(f"{what} is not available")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Tmux:
    """One tmux server on its own socket; ``kill-server`` at the end."""

    def __init__(self, socket_path: Path) -> None:
        self.socket = socket_path

    def __call__(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["tmux", "-S", str(self.socket), "-f", "/dev/null", *args],
            capture_output=True,
            text=True,
            check=check,
            timeout=30,
        )

    def start(self, command: str, width: int = 80, height: int = 24) -> None:
        self("new-session", "-d", "-s", "t", "-x", str(width), "-y", str(height), command)

    def keys(self, *keys: str) -> None:
        for key in keys:
            self("send-keys", "-t", "t", key)
            time.sleep(0.15)

    def screen(self) -> str:
        done = self("capture-pane", "-p", "-t", "t", check=False)
        return done.stdout

    def alive(self) -> bool:
        return self("has-session", "-t", "t", check=False).returncode == 0

    def wait(self, predicate: Callable[[str], bool], what: str, timeout: float = 30.0) -> str:
        deadline = time.monotonic() + timeout
        text = ""
        while time.monotonic() < deadline:
            text = self.screen()
            if predicate(text):
                return text
            time.sleep(0.1)
        raise AssertionError(f"timed out waiting for {what}; the pane shows:\n{text}")

    def kill(self) -> None:
        self("kill-server", check=False)
        self.socket.unlink(missing_ok=True)


@pytest.fixture
def tmux(tmp_path: Path) -> Iterator[Tmux]:
    if shutil.which("tmux") is None:
        _missing("tmux")
    if not APP.exists():
        _missing(f"the installed console script {APP}")
    server = Tmux(tmp_path / "tmux.sock")
    yield server
    server.kill()


@pytest.fixture
def demo_home(tmp_path: Path) -> Path:
    """An ``ATDATA_TUI_HOME`` with the demo datasets, made by the real CLI."""
    home = tmp_path / "home"
    env = {**os.environ, "ATDATA_TUI_HOME": str(home)}
    done = subprocess.run([str(APP), "demo"], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return home


def browse_repos_entries_detail(tmux: Tmux) -> None:
    """The walk both tests take: repositories → entries → detail → back → quit."""
    text = tmux.wait(lambda t: "repositories" in t and "sqlite" in t, "the first screen")
    tmux.wait(lambda t: " 5 " in t, "the entry count of the local repository")
    tmux.keys("Enter")
    text = tmux.wait(lambda t: "5 entries" in t and "demo-signals" in t, "the entries screen")
    assert "local \N{SINGLE RIGHT-POINTING ANGLE QUOTATION MARK} entries" in text
    lines = text.splitlines()
    assert len(lines) <= 24 and all(len(line) <= 80 for line in lines)
    tmux.keys("j", "Enter")
    text = tmux.wait(lambda t: "Shards (2)" in t, "the entry detail")
    assert "demo-captions-v1" in text and "CID" in text and "bafyrei" in text
    assert "24 samples" in text
    tmux.keys("Escape")
    tmux.wait(lambda t: "5 entries" in t and "Shards (2)" not in t, "back on the entries")
    tmux.keys("Escape")
    tmux.wait(lambda t: "Repository" in t and "Backend" in t, "back on the repositories")
    tmux.keys("q")


def test_tui_in_tmux_80x24(tmux: Tmux, demo_home: Path) -> None:
    command = f"env ATDATA_TUI_HOME={shlex.quote(str(demo_home))} {shlex.quote(str(APP))}"
    tmux.start(command, 80, 24)
    browse_repos_entries_detail(tmux)
    deadline = time.monotonic() + 10
    while tmux.alive() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not tmux.alive(), "q did not quit the app"


@pytest.fixture
def sshd(tmp_path: Path) -> Iterator[tuple[int, Path]]:
    """An sshd on 127.0.0.1:<free port> with its own host key, accepting one client key."""
    sshd_bin = shutil.which("sshd") or "/usr/sbin/sshd"
    if not Path(sshd_bin).exists() or shutil.which("ssh") is None:
        _missing("sshd/ssh")
    d = tmp_path / "sshd"
    d.mkdir()
    for name in ("host_key", "client_key"):
        subprocess.run(
            ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(d / name)],
            check=True,
            timeout=30,
        )
    (d / "authorized_keys").write_text((d / "client_key.pub").read_text())
    os.chmod(d / "authorized_keys", 0o600)
    Path("/run/sshd").mkdir(parents=True, exist_ok=True)  # privilege separation dir
    port = _free_port()
    config = d / "sshd_config"
    config.write_text(
        f"Port {port}\nListenAddress 127.0.0.1\nHostKey {d / 'host_key'}\n"
        f"PidFile {d / 'sshd.pid'}\nAuthorizedKeysFile {d / 'authorized_keys'}\n"
        "PasswordAuthentication no\nKbdInteractiveAuthentication no\nUsePAM no\n"
        "StrictModes no\nPermitRootLogin prohibit-password\nAcceptEnv LANG LC_*\n"
    )
    proc = subprocess.Popen(
        [sshd_bin, "-D", "-e", "-f", str(config)],
        stdout=subprocess.DEVNULL,
        stderr=open(d / "sshd.log", "wb"),
    )
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                _missing(f"sshd (it exited: {(d / 'sshd.log').read_text()[-500:]})")
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    break
            time.sleep(0.05)
        yield port, d / "client_key"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def test_tui_over_ssh_80x24(tmux: Tmux, demo_home: Path, sshd: tuple[int, Path]) -> None:
    port, key = sshd
    user = (
        os.environ.get("USER")
        or subprocess.run(["id", "-un"], capture_output=True, text=True, check=True).stdout.strip()
    )
    remote = f"env ATDATA_TUI_HOME={shlex.quote(str(demo_home))} {shlex.quote(str(APP))}"
    command = shlex.join(
        [
            "ssh",
            "-t",
            "-i",
            str(key),
            "-p",
            str(port),
            "-o",
            "StrictHostKeyChecking=no",
            "-o",
            "UserKnownHostsFile=/dev/null",
            "-o",
            "BatchMode=yes",
            "-o",
            "LogLevel=ERROR",
            f"{user}@127.0.0.1",
            remote,
        ]
    )
    tmux.start(command, 80, 24)
    browse_repos_entries_detail(tmux)
    deadline = time.monotonic() + 15
    while tmux.alive() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not tmux.alive(), "q did not end the ssh session"
