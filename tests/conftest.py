"""Top-level fixtures: real servers (started lazily, once per session) and per-test isolation.

Session fixtures (each starts its server the first time a test asks for it):
  redis_server     .url  ("redis://127.0.0.1:P/0"), .url_for_db(n), .stop(), .restart()
  postgres_server  .dsn  ("postgresql://postgres@127.0.0.1:P/postgres"), .dsn_for(db), .stop(), .restart()
  s3_server        .endpoint_url, .access_key, .secret_key, .region, .new_bucket(prefix), .client(),
                   .stop_rgw(), .start_rgw()
  pds_server       .url, .plc_url, .create_account(handle, password) -> (did, handle), .login(),
                   .stop(), .restart()
  appview_server   .url (atdata-app, the dataset AppView, on its own PostgreSQL database, reading
                   DID documents from pds_server's PLC), .ingest(did), .commit(...), .stop(), .start()
Per-test fixtures: redis_url (a flushed logical DB of its own), postgres_dsn (a fresh database),
s3_bucket (a fresh bucket name), pds_account (a fresh account), appview (the AppView, running).

A server that cannot start skips the tests that need it, or fails them when CI=true or
ATDATA_REQUIRE_SERVICES=1. Nothing here imports atdata_core.
"""

from __future__ import annotations

import itertools
import os
import re
import uuid
from collections.abc import Callable, Iterator
from typing import Any, NamedTuple

import pytest

try:  # tests/ as a package, or tests/ on sys.path (pytest's default rootdir-less import)
    from .services import AppViewServer, CephS3Server, PdsServer, PostgresServer, RedisServer
except ImportError:
    from services import AppViewServer, CephS3Server, PdsServer, PostgresServer, RedisServer


# -- generic helpers --------------------------------------------------------------------------
def services_required() -> bool:
    """True when a missing server must fail the run instead of skipping (CI)."""
    ci = os.environ.get("CI", "").strip().lower() in {"1", "true", "yes"}
    return ci or os.environ.get("ATDATA_REQUIRE_SERVICES", "").strip() == "1"


def unique_name(prefix: str = "t", maxlen: int = 40) -> str:
    """A lowercase [a-z0-9_] identifier that is unique for this run (DB names, key prefixes)."""
    clean = re.sub(r"[^a-z0-9]+", "_", prefix.lower()).strip("_") or "t"
    suffix = uuid.uuid4().hex[:8]
    return f"{clean[: maxlen - len(suffix) - 1]}_{suffix}"


_startup_times: dict[str, float] = {}


def _start(name: str, factory: Callable[[], Any]) -> Any:
    try:
        server = factory().start()
    except Exception as e:  # any failure to start is reported the same way
        msg = f"{name} could not be started: {e}"
    else:
        _startup_times[name] = server.startup_seconds
        return server
    if services_required():
        pytest.fail(msg, pytrace=False)
    pytest.skip(msg)


# -- session-scoped servers -------------------------------------------------------------------
@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    server = _start("redis-server", RedisServer)
    yield server
    server.close()


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    server = _start("postgres", PostgresServer)
    yield server
    server.close()


@pytest.fixture(scope="session")
def s3_server() -> Iterator[CephS3Server]:
    server = _start("ceph-rgw (S3)", CephS3Server)
    yield server
    server.close()


@pytest.fixture(scope="session")
def pds_server() -> Iterator[PdsServer]:
    server = _start("ATProto PDS", PdsServer)
    yield server
    server.close()


@pytest.fixture(scope="session")
def appview_server(
    postgres_server: PostgresServer, pds_server: PdsServer
) -> Iterator[AppViewServer]:
    """atdata-app with a database of its own on the session's PostgreSQL."""

    def make() -> AppViewServer:
        import psycopg

        if not postgres_server.running:
            postgres_server.start()
        name = unique_name("atdata_app")
        with psycopg.connect(postgres_server.dsn, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}" TEMPLATE template0')
        return AppViewServer(postgres_server.dsn_for(name), pds_server.plc_url)

    server = _start("atdata-app (AppView)", make)
    yield server
    server.close()


# -- per-test isolation -----------------------------------------------------------------------
_redis_dbs = itertools.count(1)


@pytest.fixture
def redis_url(redis_server: RedisServer) -> str:
    """URL of a logical DB that no other test in this session uses right now, flushed."""
    import redis

    if not redis_server.running:  # a fault test may have left it stopped
        redis_server.start()
    db = 1 + (next(_redis_dbs) - 1) % (redis_server.databases - 1)
    url = redis_server.url_for_db(db)
    with redis.Redis.from_url(url) as r:
        r.flushdb()
    return url


@pytest.fixture
def postgres_dsn(postgres_server: PostgresServer, request) -> Iterator[str]:
    """DSN of a fresh, empty database (dropped after the test)."""
    import psycopg

    if not postgres_server.running:
        postgres_server.start()
    name = unique_name(request.node.name, maxlen=60)
    with psycopg.connect(postgres_server.dsn, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}" TEMPLATE template0')
    yield postgres_server.dsn_for(name)
    if postgres_server.running:
        with psycopg.connect(postgres_server.dsn, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def s3_bucket(s3_server: CephS3Server, request) -> str:
    """Name of a fresh, empty bucket on the real gateway."""
    if s3_server.rgw is None or s3_server.rgw.poll() is not None:
        s3_server.start_rgw()
    return s3_server.new_bucket(request.node.name)


class PdsAccount(NamedTuple):
    did: str
    handle: str
    password: str


@pytest.fixture
def pds_account(pds_server: PdsServer, request) -> PdsAccount:
    """A fresh account on the local PDS."""
    if not pds_server.running:
        pds_server.start()
    password = uuid.uuid4().hex
    did, handle = pds_server.create_account(pds_server.unique_handle(request.node.name), password)
    return PdsAccount(did, handle, password)


@pytest.fixture
def appview(appview_server: AppViewServer, postgres_server: PostgresServer) -> AppViewServer:
    """The AppView, running (a fault test may have stopped it, or its database)."""
    if not postgres_server.running:
        postgres_server.start()
    if not appview_server.running:
        appview_server.start()
    return appview_server


# -- markers and reporting --------------------------------------------------------------------
_FIXTURE_MARKERS = {
    "redis": ("redis_server", "redis_url"),
    "postgres": ("postgres_server", "postgres_dsn"),
    "s3": ("s3_server", "s3_bucket"),
    "pds": ("pds_server", "pds_account"),
    "appview": ("appview_server", "appview"),
}


def pytest_collection_modifyitems(items) -> None:
    """Mark tests by the servers they use, so `-m "not s3"` works without manual marks."""
    for item in items:
        names = set(getattr(item, "fixturenames", ()))
        for marker, fixtures in _FIXTURE_MARKERS.items():
            if names.intersection(fixtures):
                item.add_marker(marker)


def pytest_terminal_summary(terminalreporter) -> None:
    if _startup_times:
        parts = ", ".join(f"{k} {v:.1f}s" for k, v in _startup_times.items())
        terminalreporter.write_line(f"service startup: {parts}")
