"""Plain HTTP(S) GETs of JSON from servers we do not control (PDSes, the PLC, did:web hosts).

Everything here is bounded: a timeout on every request and a cap on the bytes read, so a slow or
hostile server can neither hang the caller nor make it allocate without limit. Errors become
``AtmosphereError``s that name the URL; XRPC error bodies (``{"error", "message"}``) are kept as
fields on ``XrpcCallError`` so callers can tell "not found" from "unreachable".
"""

from __future__ import annotations

import json
from typing import Any

import httpx

from ..errors import AtmosphereError

#: Seconds to wait for a connection, and for each read, unless the caller says otherwise.
DEFAULT_TIMEOUT = 15.0
#: The most a JSON answer may be (a page of 100 records is normally a few hundred kilobytes).
MAX_JSON_BYTES = 32 << 20
USER_AGENT = "atdata-tui (atmosphere)"


class XrpcCallError(AtmosphereError):
    """A server answered with an error status (``status``, XRPC ``error`` name and ``message``)."""

    def __init__(self, url: str, status: int, error: str | None, message: str | None) -> None:
        self.url = url
        self.status = status
        self.error = error
        self.message = message
        detail = ": ".join(x for x in (error, message) if x) or "no details"
        super().__init__(f"{url} answered {status} ({clean(detail, 300)})")


class ResponseTooLargeError(AtmosphereError):
    """A JSON answer was larger than we are willing to read."""


def clean(text: object, limit: int = 200) -> str:
    """Text from the network, safe to show: control characters replaced, length capped."""
    s = "".join(ch if ch.isprintable() else "?" for ch in str(text)[: limit + 1])
    return s if len(s) <= limit else s[:limit] + "…"


def timeout_of(seconds: float) -> httpx.Timeout:
    return httpx.Timeout(seconds, connect=min(seconds, 10.0))


def make_http(timeout: float = DEFAULT_TIMEOUT) -> httpx.Client:
    """An HTTP client for anonymous reads: bounded timeouts, at most 3 redirects."""
    return httpx.Client(
        timeout=timeout_of(timeout),
        follow_redirects=True,
        max_redirects=3,
        headers={"User-Agent": USER_AGENT},
    )


def describe_transport_error(exc: BaseException) -> str:
    if isinstance(exc, httpx.TimeoutException):
        return "timed out"
    if isinstance(exc, httpx.ConnectError):
        return f"connection failed ({clean(exc, 120) or type(exc).__name__})"
    return clean(exc, 160) or type(exc).__name__


def get_json(
    http: httpx.Client,
    url: str,
    params: dict[str, Any] | None = None,
    *,
    what: str,
    max_bytes: int = MAX_JSON_BYTES,
) -> Any:
    """GET ``url`` and parse JSON; ``what`` names the request in errors ("listing records")."""
    try:
        with http.stream("GET", url, params=params) as response:
            declared = response.headers.get("content-length")
            if declared and declared.isdigit() and int(declared) > max_bytes:
                raise ResponseTooLargeError(
                    f"{what}: {url} sent {int(declared)} bytes, more than the {max_bytes} allowed"
                )
            chunks: list[bytes] = []
            size = 0
            for chunk in response.iter_bytes():
                size += len(chunk)
                if size > max_bytes:
                    raise ResponseTooLargeError(
                        f"{what}: {url} sent more than the {max_bytes} bytes allowed"
                    )
                chunks.append(chunk)
            status = response.status_code
            final_url = str(response.url)
    except httpx.HTTPError as exc:
        raise AtmosphereError(
            f"{what}: cannot reach {_origin(url)}: {describe_transport_error(exc)}"
        ) from None
    body = b"".join(chunks)
    if status >= 400:
        error, message = _xrpc_error(body)
        raise XrpcCallError(_without_query(final_url), status, error, message)
    try:
        return json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise AtmosphereError(f"{what}: {_without_query(final_url)} did not answer JSON") from None


def _xrpc_error(body: bytes) -> tuple[str | None, str | None]:
    try:
        data = json.loads(body[:65536])
    except (ValueError, UnicodeDecodeError):
        return None, clean(body[:200].decode("utf-8", "replace")) or None
    if not isinstance(data, dict):
        return None, None
    error = data.get("error")
    message = data.get("message")
    return (
        clean(error, 80) if isinstance(error, str) else None,
        clean(message, 300) if isinstance(message, str) else None,
    )


def _origin(url: str) -> str:
    parts = httpx.URL(url)
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{parts.host}{port}"


def _without_query(url: str) -> str:
    return url.split("?", 1)[0]
