"""A real PostgreSQL server on a free 127.0.0.1 port, in a temp dir, stopped by its own PID.

As root, initdb refuses to run, so the cluster belongs to the `postgres` user (INFRA.md recipe):
`install -d -o postgres`, `runuser -u postgres -- initdb`, and `setpriv --reuid=postgres -- postgres`
(setpriv execs, so the PID we hold is the postmaster's). Otherwise everything runs as the current user.
"""

from __future__ import annotations

import os
import pwd
import shutil
import signal
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
    run,
    spawn,
    stop_process,
    wait_until,
)

PG_DIRS = ("/usr/lib/postgresql/*/bin", "/usr/local/pgsql/bin")


class PostgresServer(ManagedService):
    """`postgres` in the foreground with fsync off; trust auth for user `postgres`."""

    def __init__(self, port: int | None = None) -> None:
        self.host = HOST
        self.port = port or free_port()
        self.workdir = Path(tempfile.mkdtemp(prefix="atdata-pg-"))
        self.datadir = self.workdir / "data"
        self.log = self.workdir / "postgres.log"
        self.proc: subprocess.Popen | None = None
        self.startup_seconds: float | None = None
        self._initialized = False
        self._as_root = os.geteuid() == 0

    @property
    def dsn(self) -> str:
        return self.dsn_for("postgres")

    def dsn_for(self, dbname: str) -> str:
        return f"postgresql://postgres@{self.host}:{self.port}/{dbname}"

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def _initdb(self) -> None:
        initdb = need_binary("initdb", PG_DIRS)
        cmd = [
            initdb,
            "-D",
            str(self.datadir),
            "-U",
            "postgres",
            "-A",
            "trust",
            "-E",
            "UTF8",
            "--locale=C.UTF-8",
            "--no-sync",
            "--no-instructions",
        ]
        if self._as_root:
            try:
                pwd.getpwnam("postgres")
            except KeyError as e:
                raise ServiceError(
                    "running as root but there is no `postgres` user "
                    "(apt-get install postgresql creates it)"
                ) from e
            # every parent of the data dir must be traversable by `postgres`
            os.chmod(self.workdir, 0o755)
            run(
                [
                    "install",
                    "-d",
                    "-o",
                    "postgres",
                    "-g",
                    "postgres",
                    "-m",
                    "700",
                    str(self.datadir),
                ],
                what="postgres data dir",
            )
            cmd = ["runuser", "-u", "postgres", "--", *cmd]
        else:
            self.datadir.mkdir(mode=0o700)
        run(cmd, what="initdb", timeout=120)
        self._initialized = True

    def start(self) -> PostgresServer:
        if self.running:
            return self
        t0 = time.monotonic()
        if not self._initialized:
            self._initdb()
        postgres = need_binary("postgres", PG_DIRS)
        cmd = [
            postgres,
            "-D",
            str(self.datadir),
            "-p",
            str(self.port),
            "-k",
            str(self.datadir),
            "-c",
            f"listen_addresses={HOST}",
            "-c",
            "fsync=off",
            "-c",
            "synchronous_commit=off",
            "-c",
            "full_page_writes=off",
            "-c",
            "max_connections=200",
            "-c",
            "shared_buffers=64MB",
        ]
        if self._as_root:
            # pdeathsig does not survive the uid change: the atexit hook stops it instead
            cmd = ["setpriv", "--reuid=postgres", "--regid=postgres", "--init-groups", "--", *cmd]
        self.proc = spawn(cmd, log=self.log, die_with_parent=not self._as_root)
        register(self)
        try:
            wait_until(self._ready, what="postgres", timeout=60, proc=self.proc, log=self.log)
        except ServiceError:
            self.stop()
            raise
        self.startup_seconds = time.monotonic() - t0
        return self

    def _ready(self) -> bool:
        pg_isready = shutil.which("pg_isready")
        if pg_isready:
            return (
                run(
                    [pg_isready, "-q", "-h", HOST, "-p", str(self.port), "-U", "postgres"],
                    what="pg_isready",
                    timeout=5,
                )
                is not None
            )
        import psycopg  # fallback when the client tools are not installed

        with psycopg.connect(self.dsn, connect_timeout=2):
            return True

    def stop(self) -> None:
        """Fast shutdown (SIGINT to the postmaster's PID). The data dir is kept for restart()."""
        stop_process(self.proc, signal.SIGINT, timeout=30)
        self.proc = None

    def restart(self) -> PostgresServer:
        """Stop and start again on the same port and data dir (data survives)."""
        self.stop()
        return self.start()

    def __repr__(self) -> str:
        return f"PostgresServer(dsn={self.dsn!r}, running={self.running})"
