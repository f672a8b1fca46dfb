"""Run the test servers by hand: `python -m tests.services [redis] [postgres] [s3] [pds] [appview]`.

Starts the named services (all by default), prints shell `export` lines that point at them,
and keeps them up until Ctrl-C; then stops each one by its PID and removes its temp dir.
`appview` (atdata-app) also starts the PostgreSQL and the PDS it needs.
"""

from __future__ import annotations

import argparse
import shlex
import signal
import sys
import time

from . import AppViewServer, CephS3Server, PdsServer, PostgresServer, RedisServer, ServiceError

FACTORIES = {
    "redis": (RedisServer, lambda s: {"ATDATA_REDIS_URL": s.url}),
    "postgres": (PostgresServer, lambda s: {"ATDATA_POSTGRES_DSN": s.dsn}),
    "s3": (CephS3Server, lambda s: s.env()),
    "pds": (PdsServer, lambda s: s.env()),
}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m tests.services", description=__doc__)
    ap.add_argument(
        "services", nargs="*", help=f"any of {', '.join(FACTORIES)}, appview (default: all)"
    )
    args = ap.parse_args(argv)
    names = args.services or [*FACTORIES, "appview"]
    if "appview" in names:  # it needs both: start them first
        names = [n for n in ("postgres", "pds") if n not in names] + names
        names = [n for n in names if n != "appview"] + ["appview"]
    unknown = [n for n in names if n not in FACTORIES and n != "appview"]
    if unknown:
        ap.error(f"unknown service(s): {', '.join(unknown)}")
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    started = []
    try:
        by_name = {}
        for name in names:
            if name == "appview":
                srv, env = _start_appview(by_name["postgres"], by_name["pds"]), AppViewServer.env
            else:
                cls, env = FACTORIES[name]
                srv = cls().start()
            by_name[name] = srv
            started.append(srv)
            print(f"# {name}: {srv!r} (ready in {srv.startup_seconds:.1f}s)", file=sys.stderr)
            for k, v in env(srv).items():
                print(f"export {k}={shlex.quote(v)}")
        sys.stdout.flush()
        print("# Ctrl-C stops them", file=sys.stderr)
        while True:
            time.sleep(3600)
    except ServiceError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        pass
    finally:
        for srv in reversed(started):
            srv.close()
    return 0


def _start_appview(postgres: PostgresServer, pds: PdsServer) -> AppViewServer:
    import psycopg

    with psycopg.connect(postgres.dsn, autocommit=True) as conn:
        conn.execute('CREATE DATABASE "atdata_app"')
    return AppViewServer(postgres.dsn_for("atdata_app"), pds.plc_url).start()


if __name__ == "__main__":
    sys.exit(main())
