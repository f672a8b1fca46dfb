"""A real redis-server on a free 127.0.0.1 port, in a temp dir, stopped by its own PID."""

from __future__ import annotations

import socket
import subprocess
import tempfile
import time
from pathlib import Path

from ._util import (
    HOST,
    ManagedService,
    ServiceError,
    free_port,
    need_binary,
    register,
    spawn,
    stop_process,
    wait_until,
)


def _ping(port: int) -> bool:
    with socket.create_connection((HOST, port), timeout=0.5) as s:
        s.sendall(b"PING\r\n")
        return s.recv(64).startswith(b"+PONG")


class RedisServer(ManagedService):
    """`redis-server` in the foreground: no persistence, `databases` logical DBs.

    >>> with RedisServer() as r:
    ...     r.url  # 'redis://127.0.0.1:PORT/0'
    """

    def __init__(self, port: int | None = None, databases: int = 256) -> None:
        self.host = HOST
        self.port = port or free_port()
        self.databases = databases
        self.workdir = Path(tempfile.mkdtemp(prefix="atdata-redis-"))
        self.log = self.workdir / "redis.log"
        self.proc: subprocess.Popen | None = None
        self.startup_seconds: float | None = None

    @property
    def url(self) -> str:
        return self.url_for_db(0)

    def url_for_db(self, db: int) -> str:
        return f"redis://{self.host}:{self.port}/{db}"

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def start(self) -> RedisServer:
        if self.running:
            return self
        exe = need_binary("redis-server")
        t0 = time.monotonic()
        self.proc = spawn(
            [
                exe,
                "--port",
                str(self.port),
                "--bind",
                HOST,
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.workdir),
                "--databases",
                str(self.databases),
                "--daemonize",
                "no",
                "--protected-mode",
                "yes",
            ],
            log=self.log,
        )
        register(self)
        try:
            wait_until(
                lambda: _ping(self.port),
                what="redis-server",
                timeout=20,
                proc=self.proc,
                log=self.log,
            )
        except ServiceError:
            self.stop()
            raise
        self.startup_seconds = time.monotonic() - t0
        return self

    def stop(self) -> None:
        """Stop the server (SIGTERM to its PID). Data is lost: there is no persistence."""
        stop_process(self.proc)
        self.proc = None

    def restart(self) -> RedisServer:
        """Stop and start again on the same port (for fault tests)."""
        self.stop()
        return self.start()

    def __repr__(self) -> str:
        return f"RedisServer(url={self.url!r}, running={self.running})"
