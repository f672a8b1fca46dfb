"""Run the real atdata-app AppView offline, fed from the local PDS (runs under Python 3.12).

    python bridge.py --port P --database-url DSN --plc-url URL

atdata-app normally learns about records from a relay: its Jetstream consumer (live) and its
backfill runner (``listReposByCollection`` on the relay, then ``listRecords`` on each PDS). There
is no relay here, so this script changes exactly three things and nothing else:

1. DID documents resolve through the local PLC (``atdata_app._id_resolver``, the singleton every
   atdata-app module gets from ``get_resolver()``), instead of https://plc.directory.
2. The two relay tasks of the app's lifespan (``jetstream_consumer``, ``backfill_runner``) are
   replaced by tasks that do nothing: they would only retry an unreachable relay forever.
3. Two extra routes feed records in through atdata-app's own ingestion code:
   - ``POST /_bridge/backfill {"did": ...}`` calls ``ingestion.backfill._backfill_repo`` for every
     collection atdata-app indexes (it resolves the DID's PDS, pages through ``listRecords`` and
     upserts each record with atdata-app's own ``UPSERT_FNS``), then answers the row counts;
   - ``POST /_bridge/commit {jetstream event}`` calls ``ingestion.processor.process_commit``, the
     function the Jetstream consumer calls for every event (creates, updates, deletes).
Everything else (the XRPC queries, the database schema and its migrations, the upserts) is
atdata-app's code, unchanged. It binds 127.0.0.1 only.
"""

import argparse
import asyncio
import logging
from typing import Any


async def _idle(app: Any) -> None:
    """Stands in for the relay tasks: waits until the app shuts down."""
    await asyncio.Event().wait()


def build_app(database_url: str, plc_url: str, port: int) -> Any:
    # (no ``from __future__ import annotations`` in this file: FastAPI reads the annotations of
    # the nested route functions below at runtime to recognise ``request: Request``)
    import atdata_app
    import atdata_app.main as main
    import httpx
    from atdata_app import database as db
    from atdata_app.config import AppConfig
    from atdata_app.ingestion import backfill, processor
    from atproto_identity.resolver import AsyncIdResolver
    from fastapi import Request

    atdata_app._id_resolver = AsyncIdResolver(plc_url=plc_url, timeout=10)
    main.jetstream_consumer = _idle
    main.backfill_runner = _idle
    config = AppConfig(
        hostname="127.0.0.1",
        port=port,
        dev_mode=True,
        database_url=database_url,
        jetstream_url="ws://127.0.0.1:9/unused",
        relay_host="http://127.0.0.1:9",
    )
    app = main.create_app(config)

    async def backfill_did(request: Request) -> dict[str, Any]:
        body = await request.json()
        did = str(body["did"])
        pool = request.app.state.db_pool
        sem = asyncio.Semaphore(4)
        async with httpx.AsyncClient(timeout=30.0) as http:
            for collection in backfill.BACKFILL_COLLECTIONS:
                await backfill._backfill_repo(http, pool, sem, did, collection)
        counts = {}
        async with pool.acquire() as conn:
            for collection, table in db.COLLECTION_TABLE_MAP.items():
                counts[collection] = await conn.fetchval(
                    f"SELECT COUNT(*) FROM {table} WHERE did = $1",  # table names are fixed
                    did,
                )
        return {"did": did, "counts": counts}

    async def commit(request: Request) -> dict[str, Any]:
        event = await request.json()
        await processor.process_commit(
            request.app.state.db_pool, event, getattr(request.app.state, "change_stream", None)
        )
        return {"ok": True}

    app.add_api_route("/_bridge/backfill", backfill_did, methods=["POST"])
    app.add_api_route("/_bridge/commit", commit, methods=["POST"])
    return app


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--database-url", required=True)
    ap.add_argument("--plc-url", required=True)
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s %(message)s")
    import uvicorn

    app = build_app(args.database_url, args.plc_url, args.port)
    uvicorn.run(app, host="127.0.0.1", port=args.port, log_level="warning", access_log=False)


if __name__ == "__main__":
    main()
