"""Shared set-up of the network tests (CLI and TUI): datasets published by our promotion to the
real local PDS, indexed by the real atdata-app, and an app home whose config points at both."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from atdata_core.atmosphere import AtmosphereBackend, AtmosphereClient
from atdata_core.index import Index
from atdata_core.samples import NDArray, packable


@packable
class Reading:
    """A sensor reading: text, a number and a small array."""

    text: str
    n: int
    values: NDArray


def readings(count: int) -> list[Reading]:
    return [
        Reading(f"reading {i}", i, np.linspace(0, i, 6, dtype=np.float32)) for i in range(count)
    ]


class Published(NamedTuple):
    home: Path
    key: str
    did: str
    handle: str
    uris: dict[str, str]  # local name -> at:// URI of the entry record
    config: Path


def search_word() -> str:
    """A word only this test searches for (letters only: the full-text parser keeps it whole)."""
    return "q" + "".join(chr(ord("a") + int(c, 16) % 26) for c in uuid.uuid4().hex[:9])


def write_config(home: Path, pds_server: Any, appview_url: str | None, **extra: Any) -> Path:
    path = home / "config" / "config.toml"
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = [
        "[atmosphere]",
        f'pds = "{pds_server.url}"',
        f'plc = "{pds_server.plc_url}"',
    ]
    if appview_url:
        lines.append(f'appview = "{appview_url}"')
    lines += [f"{k} = {v}" for k, v in extra.items()]  # numbers (timeout)
    path.write_text("\n".join(lines) + "\n")
    return path


def publish_datasets(
    tmp_path: Path,
    pds_server: Any,
    pds_account: Any,
    appview: Any,
    home: Path,
    *,
    names: tuple[str, ...] = ("sensor-readings", "sensor-calibration"),
    versions: bool = False,
) -> Published:
    """Promote ``names`` (12 samples each, 3 shards) from a scratch index to ``pds_account`` and
    let atdata-app index them. With ``versions``, the first name is published twice under one
    label (versions 1 and 2)."""
    key = search_word()
    client = AtmosphereClient(
        pds=pds_server.url,
        plc=pds_server.plc_url,
        session_file=tmp_path / "publisher" / "session.json",
        timeout=20.0,
    )
    client.login(pds_account.handle, pds_account.password)
    index = Index(path=tmp_path / "publisher" / "index.db", atmosphere=AtmosphereBackend(client))
    uris: dict[str, str] = {}
    try:
        plan_args: list[tuple[str, str, str | None]] = [(n, n, None) for n in names]
        if versions:
            plan_args = [(names[0], names[0], "1"), (f"{names[0]}-v2", names[0], "2")] + [
                (n, n, None) for n in names[1:]
            ]
        for i, (local, label, version) in enumerate(plan_args):
            entry = index.write(
                readings(12 + i),
                name=local,
                maxcount=5,
                description=f"{key} dataset {local}",
                tags=["sensors"],
            )
            plan = index.atmosphere.plan_promotion(
                index, entry, name=label, version=version, license="CC-BY-4.0"
            )
            uris[local] = index.atmosphere.execute_plan(plan)
    finally:
        index.close()
        client.close()
    appview.ingest(pds_account.did)
    config = write_config(home, pds_server, appview.url, timeout=10)
    return Published(home, key, pds_account.did, pds_account.handle, uris, config)
