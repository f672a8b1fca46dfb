"""A hostile AppView: answers XRPC queries with whatever a test scripts, for fault injection.

The real atdata-app (``appview.AppViewServer``) is what the suite searches; it never sends
malformed JSON, lies about URIs, stalls, or floods. This server does exactly that on purpose, so
the client's handling of an AppView that is broken or malicious can be tested: each route is
``(status, body, delay_seconds)`` (or a function of the query that returns one) keyed by the
XRPC method name; anything else is a 404.
"""

from __future__ import annotations

import http.server
import json
import threading
import time
import urllib.parse
from typing import Any

from ._util import HOST

Route = tuple[int, bytes, float]


def _as_route(route: Route | Any) -> Route:
    if isinstance(route, tuple) and len(route) == 3 and isinstance(route[1], bytes):
        return route
    return (200, json.dumps(route).encode(), 0.0)


class HostileAppView:
    """``with HostileAppView({"science.alt.dataset.searchDatasets": (200, b"...", 0)}) as av:``"""

    def __init__(self, routes: dict[str, Route | Any] | None = None) -> None:
        self.routes: dict[str, Any] = {}
        self.requests: list[str] = []
        for nsid, route in (routes or {}).items():
            self.set(nsid, route)
        owner = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                owner.requests.append(self.path)
                path, _, query = self.path.partition("?")
                nsid = path.removeprefix("/xrpc/")
                route = owner.routes.get(
                    nsid, (404, b'{"error":"NotFound","message":"no route"}', 0.0)
                )
                if callable(route):  # answers depending on the query (cursors)
                    route = _as_route(route(urllib.parse.parse_qs(query)))
                status, body, delay = route
                if delay:
                    time.sleep(delay)
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                except OSError:  # the client gave up (timeouts): nothing to do
                    pass

            def log_message(self, *args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer((HOST, 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://{HOST}:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def set(self, nsid: str, route: Route | Any) -> None:
        """A route: ``(status, bytes, delay)``, any JSON value (answered 200 at once), or a
        function of the query parameters (``{name: [values]}``) that returns one of those."""
        self.routes[nsid] = route if callable(route) else _as_route(route)

    def __enter__(self) -> HostileAppView:
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.server.shutdown()
        self.server.server_close()
