"""The real dataset AppView, atdata-app, on a free 127.0.0.1 port, with its own PostgreSQL database.

atdata-app (FastAPI + asyncpg) needs Python ≥3.12: it runs from a cached environment built from
``atdata_app/requirements.txt`` (``python312.ensure_venv``; ./scripts/test builds it first). The
process is ``atdata_app/bridge.py``, which starts atdata-app's own app with DID resolution pointed
at the local PLC and the relay tasks off, and adds the two routes ``ingest()`` and ``commit()``
use to feed it the local PDS's records through atdata-app's own backfill and processor functions
(see that file and docs/services.md). Stopped by its own PID.
"""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

from ._util import (
    HOST,
    ManagedService,
    ServiceError,
    free_port,
    log_tail,
    register,
    spawn,
    stop_process,
    wait_until,
)

APP_DIR = Path(__file__).resolve().parent / "atdata_app"
REQUIREMENTS = APP_DIR / "requirements.txt"
BRIDGE = APP_DIR / "bridge.py"
VENV_NAME = "atdata-app"


def appview_python() -> Path:
    """atdata-app's interpreter: ``ATDATA_APPVIEW_PYTHON``, else the cached environment (built if
    missing: ~30 s the first time, from the uv cache)."""
    given = os.environ.get("ATDATA_APPVIEW_PYTHON")
    if given:
        if not Path(given).exists():
            raise ServiceError(f"ATDATA_APPVIEW_PYTHON={given} does not exist")
        return Path(given)
    from .python312 import ensure_venv  # (not at import: `python -m tests.services.python312`)

    return ensure_venv(REQUIREMENTS, VENV_NAME)


class AppViewServer(ManagedService):
    """atdata-app serving ``url``; ``ingest(did)`` indexes an account's records from its PDS."""

    def __init__(
        self,
        database_url: str,
        plc_url: str,
        *,
        port: int | None = None,
        python: Path | str | None = None,
    ) -> None:
        self.database_url = database_url
        self.plc_url = plc_url
        self.port = port or free_port()
        self.python = Path(python) if python else None
        self.workdir = Path(tempfile.mkdtemp(prefix="atdata-appview-"))
        self.log = self.workdir / "appview.log"
        self.proc: subprocess.Popen | None = None
        self.startup_seconds: float | None = None

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def start(self) -> AppViewServer:
        if self.running:
            return self
        t0 = time.monotonic()
        if self.python is None:
            self.python = appview_python()
        cmd = [
            str(self.python),
            str(BRIDGE),
            "--port",
            str(self.port),
            "--database-url",
            self.database_url,
            "--plc-url",
            self.plc_url,
        ]
        env = dict(os.environ, PYTHONDONTWRITEBYTECODE="1")
        for key in ("VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME"):
            env.pop(key, None)  # the 3.11 test environment's, not atdata-app's
        self.proc = spawn(cmd, log=self.log, env=env, cwd=self.workdir)
        register(self)

        def healthy() -> bool:
            with urllib.request.urlopen(f"{self.url}/health", timeout=2) as r:
                return r.status == 200

        try:
            wait_until(healthy, what="atdata-app", timeout=90, proc=self.proc, log=self.log)
        except ServiceError:
            self.stop()
            raise
        self.startup_seconds = time.monotonic() - t0
        return self

    def stop(self) -> None:
        """SIGTERM to its PID. The database keeps what was indexed (``start()`` again reuses it)."""
        stop_process(self.proc, timeout=15)
        self.proc = None

    def restart(self) -> AppViewServer:
        self.stop()
        return self.start()

    def log_tail(self, lines: int = 30) -> str:
        return log_tail(self.log, lines)

    def __repr__(self) -> str:
        return f"AppViewServer(url={self.url!r}, running={self.running})"

    # -- feeding it records ------------------------------------------------------------------------
    def _post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        request = urllib.request.Request(
            f"{self.url}{path}",
            data=json.dumps(body).encode(),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        try:
            with urllib.request.urlopen(request, timeout=60) as r:
                return json.loads(r.read())  # type: ignore[no-any-return]
        except OSError as exc:
            raise ServiceError(f"atdata-app {path} failed: {exc}\n{self.log_tail()}") from exc

    def ingest(self, did: str) -> dict[str, int]:
        """Index every ``science.alt.dataset.*`` record of ``did`` (atdata-app's backfill of that
        repository); returns the number of rows atdata-app now holds per collection for it."""
        return self._post("/_bridge/backfill", {"did": did})["counts"]  # type: ignore[no-any-return]

    def commit(
        self,
        did: str,
        collection: str,
        rkey: str,
        *,
        operation: str = "create",
        record: dict[str, Any] | None = None,
        cid: str | None = None,
    ) -> None:
        """One Jetstream commit event through atdata-app's processor (create, update or delete)."""
        commit: dict[str, Any] = {
            "rev": "bridge",
            "operation": operation,
            "collection": collection,
            "rkey": rkey,
        }
        if record is not None:
            commit["record"] = record
        if cid is not None:
            commit["cid"] = cid
        event = {"did": did, "time_us": int(time.time() * 1e6), "kind": "commit", "commit": commit}
        self._post("/_bridge/commit", event)

    def env(self) -> dict[str, str]:
        return {"ATDATA_APPVIEW_URL": self.url}
