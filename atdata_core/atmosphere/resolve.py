"""Who is ``@alice.example`` and where is her PDS: handle → DID → DID document → PDS URL.

Handles resolve through a configured XRPC service (``com.atproto.identity.resolveHandle`` on a
PDS, which is how it works offline and on private networks) or, with none configured, through DNS
(``_atproto.<handle>`` TXT) and ``https://<handle>/.well-known/atproto-did``. DID documents come
from the configured PLC directory (``did:plc``) or the domain itself (``did:web``). A handle is
accepted only if the DID document claims it back (``alsoKnownAs``), so a PDS cannot pass off
someone else's DID as a handle it does not own. Results are cached for a few minutes.
"""

from __future__ import annotations

import re
import threading
import time
import urllib.parse
from dataclasses import dataclass
from typing import Any

import httpx

from ..errors import AtmosphereError, NotFoundError
from ._http import DEFAULT_TIMEOUT, XrpcCallError, clean, get_json, make_http

DEFAULT_PLC = "https://plc.directory"
CACHE_SECONDS = 300.0
MAX_DID_DOC_BYTES = 1 << 20

_DID_PLC = re.compile(r"did:plc:[a-z2-7]{24}")
_DID_WEB = re.compile(r"did:web:[a-zA-Z0-9.%-]+(:[a-zA-Z0-9._%-]+)*")
_HANDLE = re.compile(
    r"(?=.{1,253}$)([a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?\.)+[a-zA-Z]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?"
)


class HandleNotFoundError(AtmosphereError, NotFoundError):
    """No DID is registered for a handle (or a DID has no document)."""


@dataclass(frozen=True)
class Identity:
    """A resolved account: its DID, its handle (``None`` if unverified) and its PDS base URL."""

    did: str
    handle: str | None
    pds: str

    @property
    def display(self) -> str:
        return f"@{self.handle}" if self.handle else self.did


def normalize_handle(text: str) -> str:
    """``@Alice.Example`` → ``alice.example``; raises ``AtmosphereError`` if it is not a handle."""
    handle = text.strip().removeprefix("@").lower()
    if not _HANDLE.fullmatch(handle):
        raise AtmosphereError(f"{clean(text, 80)!r} is not a handle (like alice.bsky.social)")
    return handle


def is_did(text: str) -> bool:
    return bool(_DID_PLC.fullmatch(text) or _DID_WEB.fullmatch(text))


def normalize_pds_url(url: str) -> str:
    """A PDS base URL without trailing ``/`` or ``/xrpc``; only http(s) with a host."""
    text = url.strip().rstrip("/")
    text = text.removesuffix("/xrpc")
    parts = urllib.parse.urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise AtmosphereError(f"{clean(url, 120)!r} is not an http(s) PDS URL")
    if parts.query or parts.fragment:
        raise AtmosphereError(f"PDS URL {clean(url, 120)!r} may not have a query or fragment")
    return text


def pds_from_did_document(doc: Any, did: str) -> tuple[str, list[str]]:
    """``(pds_url, handles)`` from a DID document, validating the parts we use."""
    if not isinstance(doc, dict):
        raise AtmosphereError(f"the DID document of {did} is not a JSON object")
    if doc.get("id") != did:
        raise AtmosphereError(
            f"the DID document fetched for {did} is about {clean(doc.get('id'), 80)!r}"
        )
    handles = []
    aka = doc.get("alsoKnownAs", [])
    if isinstance(aka, list):
        for item in aka[:20]:
            if isinstance(item, str) and item.startswith("at://"):
                candidate = item[len("at://") :].lower()
                if _HANDLE.fullmatch(candidate):
                    handles.append(candidate)
    services = doc.get("service", [])
    if not isinstance(services, list):
        raise AtmosphereError(f"the DID document of {did} has a malformed 'service' list")
    for service in services[:50]:
        if not isinstance(service, dict):
            continue
        sid = service.get("id")
        if not isinstance(sid, str) or not (sid == "#atproto_pds" or sid == f"{did}#atproto_pds"):
            continue
        if service.get("type") != "AtprotoPersonalDataServer":
            continue
        endpoint = service.get("serviceEndpoint")
        if not isinstance(endpoint, str):
            break
        return normalize_pds_url(endpoint), handles
    raise AtmosphereError(f"the DID document of {did} names no PDS (#atproto_pds service)")


class IdentityResolver:
    """Handle and DID resolution with timeouts, validation and a small TTL cache."""

    def __init__(
        self,
        *,
        plc_url: str | None = None,
        handle_resolver: str | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        http: httpx.Client | None = None,
    ) -> None:
        self.plc_url = (plc_url or DEFAULT_PLC).rstrip("/")
        self.handle_resolver = normalize_pds_url(handle_resolver) if handle_resolver else None
        self.timeout = timeout
        self._http = http or make_http(timeout)
        self._lock = threading.Lock()
        self._handles: dict[str, tuple[float, str]] = {}
        self._docs: dict[str, tuple[float, tuple[str, list[str]]]] = {}
        self._dns_http: Any = None

    def __repr__(self) -> str:
        return f"IdentityResolver(plc={self.plc_url!r}, handle_resolver={self.handle_resolver!r})"

    def close(self) -> None:
        self._http.close()

    def forget(self, key: str | None = None) -> None:
        """Drop cached answers (all, or for one handle or DID)."""
        with self._lock:
            if key is None:
                self._handles.clear()
                self._docs.clear()
            else:
                self._handles.pop(key, None)
                self._docs.pop(key, None)

    def _cached(self, table: dict[str, tuple[float, Any]], key: str) -> Any:
        with self._lock:
            hit = table.get(key)
            if hit is not None and time.monotonic() - hit[0] < CACHE_SECONDS:
                return hit[1]
        return None

    def _store(self, table: dict[str, tuple[float, Any]], key: str, value: Any) -> None:
        with self._lock:
            if len(table) > 1024:
                table.clear()
            table[key] = (time.monotonic(), value)

    # -- handles
    def resolve_handle(self, handle: str) -> str:
        """The DID registered for ``handle``; ``HandleNotFoundError`` if there is none."""
        handle = normalize_handle(handle)
        cached = self._cached(self._handles, handle)
        if cached is not None:
            return str(cached)
        did = (
            self._resolve_handle_xrpc(handle)
            if self.handle_resolver
            else self._resolve_handle_dns_http(handle)
        )
        if did is None:
            where = f" (asked {self.handle_resolver})" if self.handle_resolver else ""
            raise HandleNotFoundError(f"unknown handle @{handle}: no account has it{where}")
        if not is_did(did):
            raise AtmosphereError(f"handle @{handle} resolved to {clean(did, 80)!r}, not a DID")
        self._store(self._handles, handle, did)
        return did

    def _resolve_handle_xrpc(self, handle: str) -> str | None:
        url = f"{self.handle_resolver}/xrpc/com.atproto.identity.resolveHandle"
        try:
            data = get_json(
                self._http, url, {"handle": handle}, what=f"resolving @{handle}", max_bytes=65536
            )
        except XrpcCallError as exc:
            if exc.status == 400 and (exc.error in (None, "HandleNotFound", "InvalidRequest")):
                return None
            raise
        did = data.get("did") if isinstance(data, dict) else None
        return did if isinstance(did, str) else None

    def _resolve_handle_dns_http(self, handle: str) -> str | None:
        from atproto_identity.handle.resolver import HandleResolver

        if self._dns_http is None:
            self._dns_http = HandleResolver(timeout=self.timeout)
        try:
            return self._dns_http.resolve(handle)  # type: ignore[no-any-return]
        except Exception as exc:  # DNS and HTTP failures of a third-party resolver
            raise AtmosphereError(
                f"cannot resolve @{handle} through DNS or https://{handle}: {clean(exc, 120)}"
            ) from None

    # -- DIDs
    def did_document(self, did: str) -> dict[str, Any]:
        """The DID document (``did:plc`` from the PLC directory, ``did:web`` from the domain)."""
        if _DID_PLC.fullmatch(did):
            url = f"{self.plc_url}/{did}"
        elif _DID_WEB.fullmatch(did):
            parts = did[len("did:web:") :].split(":")
            host = urllib.parse.unquote(parts[0])
            path = "/".join(urllib.parse.unquote(p) for p in parts[1:])
            scheme = "http" if host.split(":")[0] in ("localhost", "127.0.0.1") else "https"
            url = f"{scheme}://{host}/{path + '/' if path else '.well-known/'}did.json"
        else:
            raise AtmosphereError(f"{clean(did, 80)!r} is not a did:plc or did:web DID")
        try:
            doc = get_json(self._http, url, what=f"resolving {did}", max_bytes=MAX_DID_DOC_BYTES)
        except XrpcCallError as exc:
            if exc.status in (404, 410):
                raise HandleNotFoundError(
                    f"{did} is not registered ({url} answered {exc.status})"
                ) from None
            raise
        if not isinstance(doc, dict):
            raise AtmosphereError(f"the DID document of {did} is not a JSON object")
        return doc

    def pds_of(self, did: str) -> tuple[str, list[str]]:
        """``(pds_url, handles claimed by the document)`` for a DID (cached)."""
        cached = self._cached(self._docs, did)
        if cached is not None:
            return cached  # type: ignore[no-any-return]
        result = pds_from_did_document(self.did_document(did), did)
        self._store(self._docs, did, result)
        return result

    def identify(self, actor: str) -> Identity:
        """Resolve a handle or DID to an ``Identity``; the handle is checked both ways."""
        text = actor.strip().removeprefix("@")
        if text.startswith("did:"):
            if not is_did(text):
                raise AtmosphereError(f"{clean(actor, 80)!r} is not a valid DID")
            pds, handles = self.pds_of(text)
            return Identity(text, handles[0] if handles else None, pds)
        handle = normalize_handle(text)
        did = self.resolve_handle(handle)
        pds, handles = self.pds_of(did)
        if handle not in handles:
            raise AtmosphereError(
                f"@{handle} resolves to {did}, but that DID's document does not claim the handle "
                f"(it lists {', '.join('@' + h for h in handles) or 'none'}); refusing to trust it"
            )
        return Identity(did, handle, pds)
