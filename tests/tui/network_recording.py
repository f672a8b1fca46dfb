"""Deterministic AppView answers for the network screenshots only (the tests use the real service).

``recorded_index()`` is an ``Index`` whose atmosphere backend has a ``RecordedAppView``: the real
``AppViewClient`` (every answer goes through its validation and conversion) whose transport,
``query``, answers from the records below instead of HTTP, and whose identity lookups answer from
fixed DID documents. Nothing listens on a port, so nothing on screen changes between runs.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

from atdata_core.atmosphere import AppViewClient, AtmosphereBackend, AtmosphereClient
from atdata_core.atmosphere._http import XrpcCallError
from atdata_core.atmosphere.client import RecordView
from atdata_core.atmosphere.lexicons import ENTRY, LABEL, LENS, SCHEMA
from atdata_core.atmosphere.records import schema_to_record
from atdata_core.atmosphere.resolve import IdentityResolver
from atdata_core.index import Index
from atdata_core.samples import NDArray, packable
from atdata_core.schema import schema_record

URL = "https://datasets.example"
CREATED = "2025-03-14T09:26:53.000Z"


def _did(word: str) -> str:
    return "did:plc:" + (word + "abcdefghijklmnopqrstuvwxyz")[:24]


AUTHORS = {  # did -> (handle, pds); None: the DID document names no handle that checks out
    _did("oceanlab"): ("oceanlab.bsky.social", "https://pds.oceanlab.example"),
    _did("marineml"): ("marine-ml.example", "https://pds.marine-ml.example"),
    _did("kelpdev"): ("kelp.dev", "https://pds.kelp.dev"),
    _did("anon"): (None, "https://pds.anon.example"),
}
OCEAN, MARINE, KELP, ANON = list(AUTHORS)


@packable
class OceanReading:
    """One CTD cast reading: time, depth, temperature, salinity and the raw profile."""

    time: str
    station: str
    depth_m: float
    temperature_c: float
    salinity: float
    profile: NDArray


@packable
class ReefImage:
    """An RGB photo of a reef transect with its species labels."""

    image: NDArray
    site: str
    labels: list[str]


@packable
class SonarPing:
    """One sonar ping: the echo envelope and its heading."""

    echo: NDArray
    heading_deg: float


@packable
class PlanktonCount:
    """Plankton counted in one net tow."""

    tow_id: str
    counts: dict
    volume_l: float


def _schema(did: str, cls: type, version: str, rkey: str) -> dict[str, Any]:
    local = schema_record(cls, version=version, created_at=CREATED)
    value = schema_to_record(local)
    value.update(uri=f"at://{did}/{SCHEMA}/{rkey}", cid="bafyreig" + "s" * 52, did=did)
    value.pop("$type", None)
    value.pop("metadata", None)  # atdata-app does not return a schema's metadata
    return value


SCHEMAS = {
    s["uri"]: s
    for s in (
        _schema(OCEAN, OceanReading, "2.1.0", "OceanReading-2.1.0-a1b2c3d4e5f60718"),
        _schema(OCEAN, OceanReading, "2.0.0", "OceanReading-2.0.0-0f1e2d3c4b5a6978"),
        _schema(MARINE, ReefImage, "1.0.0", "ReefImage-1.0.0-5a5a5a5a5a5a5a5a"),
        _schema(KELP, SonarPing, "0.3.1", "SonarPing-0.3.1-7c7c7c7c7c7c7c7c"),
        _schema(ANON, PlanktonCount, "1.2.0", "PlanktonCount-1.2.0-3e3e3e3e3e3e3e3e"),
    )
}
OCEAN_V2, OCEAN_V2_0, REEF, SONAR, PLANKTON = list(SCHEMAS)


def _entry(
    did: str,
    rkey: str,
    name: str,
    schema: str,
    *,
    samples: int,
    size: int,
    shards: int,
    license: str,
    description: str,
    created: str,
    tags: list[str],
) -> dict[str, Any]:
    host = name.replace("_", "-")
    return {
        "uri": f"at://{did}/{ENTRY}/{rkey}",
        "cid": "bafyreie"
        + "".join(c if c in "abcdefghijklmnopqrstuvwxyz234567" else "q" for c in rkey).ljust(
            52, "q"
        ),
        "did": did,
        "name": name,
        "schemaRef": schema,
        "storage": {
            "$type": "science.alt.dataset.storageHttp",
            "shards": [
                {
                    "url": f"https://data.example/{host}/data-{i:06d}.tar",
                    "checksum": {"algorithm": "none", "digest": ""},
                }
                for i in range(min(shards, 4))
            ],
        },
        "size": {"samples": samples, "bytes": size, "shards": shards},
        "license": license,
        "description": description,
        "tags": tags,
        "createdAt": created,
    }


ENTRIES = [
    _entry(OCEAN, "3lbkqocean2a2", "ocean-temperature", OCEAN_V2, samples=1_204_880,
           size=4_512_993_280, shards=460, license="CC-BY-4.0", created="2025-03-14T09:26:53.000Z",
           description="CTD casts from 42 ocean stations, 2019-2024, quality controlled.",
           tags=["ocean", "climate", "ctd"]),
    _entry(OCEAN, "3kzzqocean2a0", "ocean-temperature", OCEAN_V2_0, samples=911_402,
           size=3_398_221_824, shards=348, license="CC-BY-4.0", created="2024-11-02T17:03:11.000Z",
           description="CTD casts from 37 ocean stations, 2019-2023.", tags=["ocean", "ctd"]),
    _entry(MARINE, "3lbcoralreef2", "coral-reef-images", REEF, samples=58_112,
           size=13_421_772_800, shards=512, license="CC-BY-NC-4.0",
           created="2025-02-20T12:00:00.000Z",
           description="Annotated reef transect photos from the ocean floor of three atolls.",
           tags=["ocean", "images", "reef"]),
    _entry(KELP, "3lbsonarping2", "ocean-waves-sonar", SONAR, samples=310_552,
           size=933_232_640, shards=36, license="MIT", created="2025-01-07T08:15:00.000Z",
           description="Side-scan sonar pings over kelp forests in the open ocean.",
           tags=["ocean", "sonar"]),
    _entry(ANON, "3lbplankton22", "plankton-counts", PLANKTON, samples=9_214,
           size=1_153_433, shards=1, license="CC0-1.0", created="2024-09-30T22:41:09.000Z",
           description="Net tow plankton counts, North Atlantic ocean transects.",
           tags=["ocean", "biology"]),
]  # fmt: skip

LABELS = [  # the labels on oceanlab's PDS: two versions of ocean-temperature
    (f"at://{OCEAN}/{LABEL}/3lbklabel2a22", "ocean-temperature", "2.1", ENTRIES[0]["uri"],
     "2025-03-14T09:30:00.000Z"),
    (f"at://{OCEAN}/{LABEL}/3kzzlabel2a00", "ocean-temperature", "2.0", ENTRIES[1]["uri"],
     "2024-11-02T17:05:00.000Z"),
]  # fmt: skip


def _code(path: str) -> dict[str, str]:
    return {
        "repository": "https://github.com/oceanlab/atdata-lenses",
        "commit": "9f3c1e27b64d0a58c2e1f7b3d9a4c6e8f0b2d4a6",
        "path": path,
        "language": "python",
    }


LENSES = [
    {
        "uri": f"at://{OCEAN}/{LENS}/3lbklens2aa22",
        "cid": "bafyreil" + "l" * 52,
        "did": OCEAN,
        "name": "celsius-to-kelvin",
        "sourceSchema": OCEAN_V2,
        "targetSchema": f"at://{OCEAN}/{SCHEMA}/OceanReadingK-1.0.0-1111111111111111",
        "getterCode": _code("lenses/kelvin.py"),
        "putterCode": _code("lenses/kelvin.py"),
        "description": "Temperatures in kelvin, for the physics models.",
        "language": "python",
        "createdAt": CREATED,
    },
    {
        "uri": f"at://{KELP}/{LENS}/3lbklens2ab22",
        "cid": "bafyreil" + "m" * 52,
        "did": KELP,
        "name": "upgrade-from-2.0",
        "sourceSchema": OCEAN_V2_0,
        "targetSchema": OCEAN_V2,
        "getterCode": _code("lenses/upgrade_2_0.py"),
        "putterCode": _code("lenses/downgrade_2_1.py"),
        "createdAt": CREATED,
    },
]


class RecordedResolver(IdentityResolver):
    """DID documents and handles from ``AUTHORS`` (no network)."""

    def pds_of(self, did: str) -> tuple[str, list[str]]:
        handle, pds = AUTHORS[did]
        return pds, [handle] if handle else []

    def resolve_handle(self, handle: str) -> str:
        for did, (h, _) in AUTHORS.items():
            if h == handle:
                return did
        raise KeyError(handle)


class RecordedRecords:
    """An author's label records, as their PDS would list them."""

    def iter_records(self, did: str, collection: str, **_: Any) -> list[RecordView]:
        if collection != LABEL:
            return []
        return [
            RecordView(uri, "bafyreia" + "b" * 52, {
                "$type": LABEL, "name": name, "version": version, "datasetUri": target,
                "createdAt": created,
            })
            for uri, name, version, target, created in LABELS
            if uri.startswith(f"at://{did}/")
        ]  # fmt: skip


class RecordedAppView(AppViewClient):
    """The real client; ``query`` answers from the records above."""

    def query(self, nsid: str, params: Any = None, *, what: str) -> dict[str, Any]:
        params = dict(params or {})
        method = nsid.rsplit(".", 1)[-1]
        if method == "describeService":
            return {
                "did": "did:web:datasets.example",
                "recordCount": {
                    "science.alt.dataset.entry": 18_342,
                    "science.alt.dataset.schema": 2_108,
                },
            }
        if method == "searchDatasets":
            words = str(params.get("q", "")).lower().split()
            hits = [
                e
                for e in ENTRIES
                if all(w in f"{e['name']} {e['description']} {e['tags']}".lower() for w in words)
            ]
            return {"entries": copy.deepcopy(hits)}
        if method == "listEntries":
            return {"entries": copy.deepcopy(ENTRIES)}
        if method == "getEntries":
            wanted = params.get("uris") or []
            return {"entries": [copy.deepcopy(e) for e in ENTRIES if e["uri"] in wanted]}
        if method == "getEntry":
            return {"entry": next(copy.deepcopy(e) for e in ENTRIES if e["uri"] == params["uri"])}
        if method == "getSchema":
            if params["uri"] not in SCHEMAS:  # what atdata-app answers for a schema it lacks
                raise XrpcCallError(f"{URL}/xrpc/{nsid}", 404, None, "Schema not found")
            return copy.deepcopy(SCHEMAS[params["uri"]])
        if method == "listSchemas":
            did = params.get("repo")
            return {"schemas": [copy.deepcopy(s) for s in SCHEMAS.values() if s["did"] == did]}
        if method == "searchLenses":
            uri = params.get("sourceSchema")
            found = [lens for lens in LENSES if uri in (lens["sourceSchema"], lens["targetSchema"])]
            return {"lenses": copy.deepcopy(found)}
        raise AssertionError(f"no recording for {nsid}")


def recorded_index(path: Path) -> Index:
    """A local index at ``path`` whose atmosphere backend searches the recorded AppView."""
    resolver = RecordedResolver()
    client = AtmosphereClient(session_file=None, resolver=resolver)
    appview = RecordedAppView(URL, resolver=resolver, records=RecordedRecords())
    return Index(path=path, atmosphere=AtmosphereBackend(client, appview=appview))
