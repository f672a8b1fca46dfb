"""Small process helpers shared by the real-server handles (no pytest dependence)."""

from __future__ import annotations

import atexit
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import threading
import time
import weakref
from collections.abc import Callable, Sequence
from pathlib import Path

HOST = "127.0.0.1"


class ServiceError(RuntimeError):
    """A server could not be started (the message says why and shows its log tail)."""


def cache_root() -> Path:
    """Where ./scripts/test caches heavy installs (PDS node_modules, Python 3.12 environments)."""
    return Path(os.environ.get("ATDATA_TEST_CACHE") or Path.home() / ".cache" / "atdata-tui-test")


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nobody listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def log_tail(path: Path | str | None, lines: int = 30) -> str:
    if path is None:
        return ""
    try:
        text = Path(path).read_text(errors="replace")
    except OSError:
        return f"(no log at {path})"
    tail = text.splitlines()[-lines:]
    return "\n".join(tail) if tail else f"(log {path} is empty)"


def need_binary(name: str, extra_dirs: Sequence[str] = ()) -> str:
    """Absolute path of an executable, or a ServiceError naming the apt package to install."""
    found = shutil.which(name)
    if found:
        return found
    for d in extra_dirs:
        for cand in sorted(Path("/").glob(d.lstrip("/")), reverse=True):
            exe = cand / name
            if exe.is_file() and os.access(exe, os.X_OK):
                return str(exe)
    raise ServiceError(f"`{name}` is not installed (run ./scripts/test once, it installs it)")


def run(cmd: Sequence[str], *, what: str, timeout: float = 60, **kw) -> str:
    """Run a setup command; raise ServiceError with its output when it fails."""
    try:
        cp = subprocess.run(
            list(cmd), capture_output=True, text=True, timeout=timeout, check=False, **kw
        )
    except subprocess.TimeoutExpired as e:
        raise ServiceError(f"{what}: `{' '.join(cmd)}` timed out after {timeout}s") from e
    except OSError as e:
        raise ServiceError(f"{what}: cannot run `{cmd[0]}`: {e}") from e
    if cp.returncode != 0:
        out = (cp.stdout + cp.stderr).strip().splitlines()[-20:]
        raise ServiceError(f"{what}: `{' '.join(cmd)}` exited {cp.returncode}:\n" + "\n".join(out))
    return cp.stdout


def spawn(
    cmd: Sequence[str],
    *,
    log: Path,
    env: dict[str, str] | None = None,
    cwd: Path | str | None = None,
    die_with_parent: bool = True,
    stdout_pipe: bool = False,
) -> subprocess.Popen:
    """Start a server in the foreground under Popen, output appended to `log`.

    With die_with_parent (and when called from the main thread), the server gets SIGTERM if
    this Python process dies without cleaning up (`setpriv --pdeathsig`, which execs, so the
    Popen PID is the server's own PID).
    """
    argv = list(cmd)
    if (
        die_with_parent
        and threading.current_thread() is threading.main_thread()
        and shutil.which("setpriv")
    ):
        argv = ["setpriv", "--pdeathsig", "TERM", "--", *argv]
    logf = open(log, "ab")  # handed to the child, closed below
    try:
        return subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE if stdout_pipe else logf,
            stderr=logf,
            env=env,
            cwd=cwd,
        )
    except OSError as e:
        raise ServiceError(f"cannot start `{argv[0]}`: {e}") from e
    finally:
        logf.close()


def wait_until(
    check: Callable[[], bool],
    *,
    what: str,
    timeout: float,
    proc: subprocess.Popen | None = None,
    log: Path | None = None,
    interval: float = 0.05,
) -> float:
    """Poll `check` until true; returns seconds waited. Fails early if `proc` exits."""
    t0 = time.monotonic()
    while True:
        try:
            if check():
                return time.monotonic() - t0
        except Exception:  # readiness probes fail in many ways while a server starts
            pass
        if proc is not None and proc.poll() is not None:
            raise ServiceError(
                f"{what} exited with code {proc.returncode} while starting; log tail:\n"
                + log_tail(log)
            )
        if time.monotonic() - t0 > timeout:
            raise ServiceError(
                f"{what} not ready after {timeout:.0f}s; log tail:\n" + log_tail(log)
            )
        time.sleep(interval)
        interval = min(interval * 1.5, 0.5)


def stop_process(
    proc: subprocess.Popen | None, sig: int = signal.SIGTERM, timeout: float = 15
) -> None:
    """Stop one process by its own PID: `sig`, wait, then SIGKILL if it lingers."""
    if proc is None or proc.poll() is not None:
        return
    try:
        proc.send_signal(sig)
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=10)
    except ProcessLookupError:
        pass
    if proc.stdout is not None:
        proc.stdout.close()


# Every started handle is closed at interpreter exit, whatever happened to the test session.
_live: weakref.WeakSet = weakref.WeakSet()


def register(handle) -> None:
    _live.add(handle)


def unregister(handle) -> None:
    _live.discard(handle)


class ManagedService:
    """What every test server shares: ``close()`` for good (processes, registry, temp dir), and
    use as a context manager. Subclasses provide ``start()``, ``stop()`` and ``workdir``."""

    workdir: Path

    def start(self):  # pragma: no cover - every subclass defines it
        raise NotImplementedError

    def stop(self) -> None:  # pragma: no cover
        raise NotImplementedError

    def close(self) -> None:
        self.stop()
        unregister(self)
        shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc) -> None:
        self.close()


@atexit.register
def _close_all() -> None:
    for handle in list(_live):
        with contextlib.suppress(Exception):  # best effort at exit
            handle.close()
