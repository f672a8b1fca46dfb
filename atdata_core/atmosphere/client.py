"""``AtmosphereClient``: log in to any PDS, keep the session, write records and blobs, read anyone's.

Why this wraps the ``atproto`` SDK rather than exposing it:

- **Sessions** are saved to ``config.session_path()`` (file 0600, directory 0700) and refreshed
  tokens are saved again through the SDK's ``on_session_change`` hook, so a token refreshed in
  one run is the one the next run resumes. The app password is passed to the PDS once and never
  stored, logged, or put into an exception message or ``repr``.
- **Expired tokens**: the SDK refreshes proactively from the token's ``exp``; a PDS that still
  answers ``ExpiredToken``/``InvalidToken`` gets one refresh and one retry here.
- **Errors** become ``LoginError`` / ``NotLoggedInError`` / ``AtmosphereError`` (``XrpcCallError``
  keeps the XRPC error name) that name the server, never a raw SDK or httpx exception.
- **Anonymous reads** (anybody's records and blobs) are plain XRPC GETs to the owning PDS, found
  through the DID document; they need no login and read at most a bounded number of bytes.

Every request has a timeout. Nothing here does network I/O at construction.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import stat
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from .. import config as config_mod
from ..errors import AtmosphereError, CancelledError, LoginError, NotLoggedInError
from ._http import (
    DEFAULT_TIMEOUT,
    XrpcCallError,
    clean,
    describe_transport_error,
    get_json,
    make_http,
    timeout_of,
)
from .lexicons import TAR_MIME_TYPE
from .resolve import (
    HandleNotFoundError,
    Identity,
    IdentityResolver,
    is_did,
    normalize_handle,
    normalize_pds_url,
)

SESSION_FORMAT = "atdata-tui/atproto-session"
SESSION_VERSION = 1
#: Blob uploads can take a while on a slow link: this is the timeout per read/write, not in total.
UPLOAD_TIMEOUT = 120.0
#: The most records ``iter_records`` reads from one collection before it stops (a safety net).
MAX_LISTED_RECORDS = 1_000_000
_TOKEN_ERRORS = frozenset({"ExpiredToken", "InvalidToken"})
_UNSET: Any = object()


@dataclass(frozen=True)
class SessionInfo:
    """Who is logged in, where (no tokens: safe to show and to log)."""

    did: str
    handle: str
    pds: str


@dataclass(frozen=True)
class RecordView:
    """A record as read from a repository: its ``at://`` URI, its CID and its JSON value."""

    uri: str
    cid: str
    value: dict[str, Any]

    @property
    def rkey(self) -> str:
        return self.uri.rsplit("/", 1)[-1]

    @property
    def collection(self) -> str:
        return self.uri.split("/")[3]

    @property
    def did(self) -> str:
        return self.uri.split("/")[2]


@dataclass(frozen=True)
class RecordRef:
    """What a write answers: the record's URI and CID."""

    uri: str
    cid: str


def at_uri(did: str, collection: str, rkey: str) -> str:
    return f"at://{did}/{collection}/{rkey}"


def split_at_uri(uri: str) -> tuple[str, str, str]:
    """``at://did/collection/rkey`` → its three parts (``AtmosphereError`` if malformed)."""
    if not isinstance(uri, str) or not uri.startswith("at://"):
        raise AtmosphereError(f"{clean(uri, 120)!r} is not an at:// URI")
    parts = uri[len("at://") :].split("/")
    if len(parts) != 3 or not all(parts):
        raise AtmosphereError(f"{clean(uri, 120)!r} is not an at://<did>/<collection>/<rkey> URI")
    return parts[0], parts[1], parts[2]


def blob_url(pds: str, did: str, cid: str) -> str:
    """The public, streamable URL of a blob (``com.atproto.sync.getBlob``)."""
    query = urllib.parse.urlencode({"did": did, "cid": cid})
    return f"{pds}/xrpc/com.atproto.sync.getBlob?{query}"


def parse_blob_url(url: str) -> tuple[str, str, str] | None:
    """``(pds, did, cid)`` of a ``getBlob`` URL, or ``None`` for any other URL."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.path.endswith(
        "/xrpc/com.atproto.sync.getBlob"
    ):
        return None
    query = urllib.parse.parse_qs(parts.query)
    did = query.get("did", [None])[0]
    cid = query.get("cid", [None])[0]
    if not did or not cid:
        return None
    base = f"{parts.scheme}://{parts.netloc}{parts.path[: -len('/xrpc/com.atproto.sync.getBlob')]}"
    return base, did, cid


# --- the session file ------------------------------------------------------------------------------


def _ensure_private_dir(path: Path) -> None:
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    with contextlib.suppress(OSError):
        mode = stat.S_IMODE(path.stat().st_mode)
        if mode & 0o077:
            path.chmod(mode & 0o700 | 0o700)


def write_session_file(path: Path, payload: dict[str, Any]) -> None:
    """Write the session JSON atomically, created 0600 from the start (never world-readable)."""
    _ensure_private_dir(path.parent)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(payload, f)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def read_session_file(path: Path) -> dict[str, Any] | None:
    """The saved session, or ``None`` if there is none; a damaged file raises ``NotLoggedInError``."""
    try:
        st = path.stat()
    except FileNotFoundError:
        return None
    if hasattr(os, "getuid") and st.st_uid != os.getuid():
        raise NotLoggedInError(f"the session file {path} belongs to another user; log in again")
    if stat.S_IMODE(st.st_mode) & 0o077:
        with contextlib.suppress(OSError):
            path.chmod(0o600)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        raise NotLoggedInError(f"the session file {path} is unreadable; log in again") from None
    if (
        not isinstance(data, dict)
        or data.get("format") != SESSION_FORMAT
        or not isinstance(data.get("session"), str)
        or not isinstance(data.get("pds"), str)
    ):
        raise NotLoggedInError(f"the session file {path} is not a saved session; log in again")
    return data


# --- uploads ---------------------------------------------------------------------------------------


class _UploadReader(io.RawIOBase):
    """A file reader for uploads: counts bytes for progress and stops when cancelled.

    It is seekable (so httpx sends a ``Content-Length``) but hides ``fileno`` so httpx measures it
    through ``seek``/``tell`` and reads it with ``read``.
    """

    def __init__(
        self,
        f: BinaryIO,
        progress: Callable[[int], None] | None,
        cancel: Callable[[], bool] | None,
    ) -> None:
        super().__init__()
        self._f = f
        self._progress = progress
        self._cancel = cancel

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def seek(self, offset: int, whence: int = 0) -> int:
        return self._f.seek(offset, whence)

    def tell(self) -> int:
        return self._f.tell()

    def read(self, size: int = -1) -> bytes:
        if self._cancel is not None and self._cancel():
            raise CancelledError("upload cancelled")
        data = self._f.read(size)
        if data and self._progress is not None:
            self._progress(len(data))
        return data

    def readinto(self, buffer: Any) -> int:
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)


# --- the client ------------------------------------------------------------------------------------


class AtmosphereClient:
    """A session with one PDS (or none: anonymous reads only), with timeouts everywhere.

    ``pds`` is where ``login`` goes when not told otherwise (and, unless ``handle_resolver`` is
    given, the service asked to resolve handles); without it the PDS comes from the account's DID
    document. ``plc`` is the PLC directory for ``did:plc`` documents. ``session_file`` is where
    the session is kept (``None``: keep it in memory only).
    """

    def __init__(
        self,
        *,
        pds: str | None = None,
        plc: str | None = None,
        handle_resolver: str | None = None,
        session_file: str | os.PathLike[str] | None = _UNSET,
        timeout: float = DEFAULT_TIMEOUT,
        resolver: IdentityResolver | None = None,
    ) -> None:
        self.default_pds = normalize_pds_url(pds) if pds else None
        self.timeout = timeout
        self.session_file: Path | None = (
            config_mod.session_path()
            if session_file is _UNSET
            else (Path(session_file) if session_file is not None else None)
        )
        self._http = make_http(timeout)
        self.resolver = resolver or IdentityResolver(
            plc_url=plc,
            handle_resolver=handle_resolver or self.default_pds,
            timeout=timeout,
            http=self._http,
        )
        self._lock = threading.RLock()
        self._sdk: Any = None
        self._info: SessionInfo | None = None
        self._resume_tried = False
        self._save = True

    @classmethod
    def from_config(cls, cfg: config_mod.Config | None = None, **kwargs: Any) -> AtmosphereClient:
        """A client for the ``[atmosphere]`` section of the config (no network, no session read)."""
        cfg = cfg if cfg is not None else config_mod.load_config()
        atmo = cfg.atmosphere
        if atmo.timeout is not None:
            kwargs.setdefault("timeout", atmo.timeout)
        return cls(pds=atmo.pds, plc=atmo.plc, **kwargs)

    def __repr__(self) -> str:
        who = (
            f"{self._info.handle} ({self._info.did}) at {self._info.pds}"
            if self._info
            else "anonymous"
        )
        return f"AtmosphereClient({who})"

    def close(self) -> None:
        with self._lock:
            if self._sdk is not None:
                with contextlib.suppress(Exception):
                    self._sdk.request.close()
        self._http.close()

    # --- session state ----------------------------------------------------------------------------
    @property
    def session(self) -> SessionInfo | None:
        """The current session, resumed from the session file on first use (no network)."""
        with self._lock:
            if self._info is None and not self._resume_tried and self.session_file is not None:
                self._resume_tried = True
                with contextlib.suppress(NotLoggedInError):
                    self.resume()
            return self._info

    @property
    def logged_in(self) -> bool:
        return self.session is not None

    @property
    def did(self) -> str | None:
        info = self.session
        return info.did if info else None

    @property
    def handle(self) -> str | None:
        info = self.session
        return info.handle if info else None

    @property
    def pds(self) -> str | None:
        info = self.session
        return info.pds if info else self.default_pds

    def require_login(self) -> SessionInfo:
        """The session, or ``NotLoggedInError`` saying how to log in."""
        info = self.session
        if info is None:
            raise NotLoggedInError(
                "not logged in to the AT Protocol network: log in with your handle and an app "
                "password first (atdata-tui login)"
            )
        return info

    def _new_sdk(self, pds: str) -> Any:
        from atproto import Client
        from atproto_client.request import Request

        sdk = Client(base_url=pds, request=Request(timeout=timeout_of(self.timeout)))
        sdk.on_session_change(self._on_session_change)
        return sdk

    def _on_session_change(self, event: Any, session: Any) -> None:
        """The SDK created or refreshed tokens: remember who we are and save the new tokens."""
        from atproto_client.client.session import SessionEvent

        pds = normalize_pds_url(session.pds_endpoint or self.pds or "")
        self._info = SessionInfo(session.did, session.handle, pds)
        if event in (SessionEvent.CREATE, SessionEvent.REFRESH) and self._save:
            self._persist(session.encode())

    def _persist(self, session_string: str) -> None:
        if self.session_file is None or self._info is None:
            return
        payload = {
            "format": SESSION_FORMAT,
            "version": SESSION_VERSION,
            "did": self._info.did,
            "handle": self._info.handle,
            "pds": self._info.pds,
            "session": session_string,
            "saved_at": int(time.time()),
        }
        try:
            write_session_file(self.session_file, payload)
        except OSError as exc:
            raise AtmosphereError(
                f"logged in, but cannot save the session to {self.session_file}: {exc.strerror}"
            ) from None

    # --- login / resume / logout -------------------------------------------------------------------
    def login(
        self, identifier: str, password: str, *, pds: str | None = None, save: bool = True
    ) -> SessionInfo:
        """Log in with a handle (or DID, or e-mail with ``pds``) and an app password.

        The PDS is ``pds``, else the client's default, else the one in the account's DID document.
        ``save`` keeps the session in the session file. The password is used for this one request.
        """
        if not isinstance(identifier, str) or not identifier.strip():
            raise LoginError("give a handle (like alice.bsky.social) or a DID to log in")
        if not isinstance(password, str) or not password:
            raise LoginError("give an app password to log in")
        ident = identifier.strip().removeprefix("@")
        if not is_did(ident) and "@" not in ident:
            try:
                ident = normalize_handle(ident)
            except AtmosphereError as exc:
                raise LoginError(str(exc)) from None
        target = normalize_pds_url(pds) if pds else self.default_pds
        if target is None:
            if "@" in ident:
                raise LoginError("logging in with an e-mail address needs the PDS URL")
            target = self._pds_for_login(ident)
        sdk = self._new_sdk(target)
        with self._lock:
            self._save = save
            try:
                sdk.login(ident, password, fetch_bsky_profile=False)
            except AtmosphereError:
                raise  # saving the new session failed: that message is already clear
            except Exception as exc:
                raise self._login_error(exc, ident, target) from None
            old = self._sdk
            self._sdk = sdk
            self._resume_tried = True
        if old is not None:
            with contextlib.suppress(Exception):
                old.request.close()
        assert self._info is not None
        return self._info

    def _pds_for_login(self, ident: str) -> str:
        try:
            return self.resolver.identify(ident).pds
        except HandleNotFoundError as exc:
            raise LoginError(f"unknown handle @{ident}: {exc}") from None
        except AtmosphereError as exc:
            raise LoginError(f"cannot find the PDS of {ident}: {exc}") from None

    @staticmethod
    def _login_error(exc: Exception, ident: str, pds: str) -> LoginError:
        from atproto_client.exceptions import (
            InvokeTimeoutError,
            NetworkError,
            RequestErrorBase,
            UnauthorizedError,
        )

        status, error, message = _error_parts(exc)
        if isinstance(exc, UnauthorizedError) or error == "AuthenticationRequired":
            return LoginError(
                f"wrong handle or app password for {ident} at {pds} "
                "(use an app password from your account settings, not a typo'd one)"
            )
        if isinstance(exc, InvokeTimeoutError):
            return LoginError(f"cannot reach the PDS at {pds}: it did not answer in time")
        if isinstance(exc, NetworkError) and status is None:
            cause = exc.__cause__ or exc.__context__
            detail = describe_transport_error(cause) if cause else "network error"
            return LoginError(f"cannot reach the PDS at {pds}: {detail}")
        if isinstance(exc, RequestErrorBase) and status is not None:
            detail = ": ".join(clean(x, 200) for x in (error, message) if x) or "no details"
            if error == "AccountTakedown":
                return LoginError(f"the account {ident} at {pds} has been taken down")
            return LoginError(f"login to {pds} failed ({status} {detail})")
        return LoginError(f"login to {pds} failed: {type(exc).__name__}")

    def resume(self, session_string: str | None = None, *, save: bool | None = None) -> SessionInfo:
        """Resume a saved session (from ``session_string`` or the session file). No network.

        An expired access token is refreshed on first use. Refreshed tokens are saved to the
        session file when ``save`` (default: only when the session came from that file).
        """
        from atproto_client.client.session import Session

        if session_string is None:
            if self.session_file is None:
                raise NotLoggedInError("no session string given and no session file configured")
            data = read_session_file(self.session_file)
            if data is None:
                raise NotLoggedInError(
                    "not logged in to the AT Protocol network (no saved session): log in first "
                    "(atdata-tui login)"
                )
            session_string = data["session"]
            pds_hint = data["pds"]
        else:
            pds_hint = None
        try:
            decoded = Session.decode(session_string)
        except Exception:
            raise NotLoggedInError("the saved session is damaged; log in again") from None
        if not is_did(decoded.did) or not decoded.access_jwt or not decoded.refresh_jwt:
            raise NotLoggedInError("the saved session is damaged; log in again")
        pds = normalize_pds_url(decoded.pds_endpoint or pds_hint or self.default_pds or "")
        sdk = self._new_sdk(pds)
        try:
            sdk.login(session_string=session_string, fetch_bsky_profile=False)
        except Exception:
            raise NotLoggedInError("the saved session cannot be used; log in again") from None
        with self._lock:
            self._sdk = sdk
            self._info = SessionInfo(decoded.did, decoded.handle, pds)
            self._resume_tried = True
            self._save = (pds_hint is not None) if save is None else save
            if save and pds_hint is None:
                self._persist(session_string)
        return self._info

    def export_session(self) -> str:
        """The session string (tokens: treat it like a password; ``resume`` takes it back)."""
        self.require_login()
        with self._lock:
            return str(self._sdk.export_session_string())

    def logout(self) -> None:
        """Revoke the session on the PDS (best effort) and delete the session file."""
        with self._lock:
            sdk, self._sdk, self._info = self._sdk, None, None
            self._resume_tried = True
        if sdk is not None:
            with contextlib.suppress(Exception):
                from atproto_client.client.session import Session

                refresh = Session.decode(sdk.export_session_string()).refresh_jwt
                sdk.invoke_procedure(
                    "com.atproto.server.deleteSession",
                    headers={"Authorization": f"Bearer {refresh}"},
                    ignore_session_check=True,
                )
            with contextlib.suppress(Exception):
                sdk.request.close()
        if self.session_file is not None:
            with contextlib.suppress(FileNotFoundError):
                self.session_file.unlink()

    # --- authenticated calls ------------------------------------------------------------------------
    def _refresh(self) -> None:
        from atproto_client.exceptions import AtProtocolError

        with self._lock:
            sdk = self._sdk
            info = self._info
            if sdk is None or info is None:
                raise NotLoggedInError("not logged in: log in first (atdata-tui login)")
            try:
                sdk._refresh_and_set_session()
            except AtProtocolError as exc:
                status, _error, _message = _error_parts(exc)
                if status is None:
                    raise AtmosphereError(
                        f"cannot refresh the session: {info.pds} is unreachable"
                    ) from None
                raise NotLoggedInError(
                    f"the session of @{info.handle} at {info.pds} has expired or was revoked: "
                    "log in again"
                ) from None

    def _call(self, what: str, fn: Callable[[Any], Any]) -> Any:
        """Run ``fn(sdk)`` with the session, refreshing once on token errors; map SDK errors."""
        from atproto_client.exceptions import AtProtocolError, LoginRequiredError

        info = self.require_login()
        for attempt in range(2):
            with self._lock:
                sdk = self._sdk
            try:
                return fn(sdk)
            except LoginRequiredError:
                if attempt:
                    raise NotLoggedInError(
                        "the session could not be refreshed: log in again"
                    ) from None
                self._refresh()
            except AtProtocolError as exc:
                status, error, message = _error_parts(exc)
                if attempt == 0 and error in _TOKEN_ERRORS:
                    self._refresh()
                    continue
                if status is None:
                    cause = exc.__cause__ or exc.__context__
                    detail = describe_transport_error(cause) if cause else type(exc).__name__
                    raise AtmosphereError(f"{what}: cannot reach {info.pds}: {detail}") from None
                raise XrpcCallError(f"{info.pds} ({what})", status, error, message) from None
        raise AssertionError("unreachable")

    def procedure(
        self, nsid: str, body: dict[str, Any], *, what: str | None = None
    ) -> dict[str, Any]:
        """POST an XRPC procedure with a JSON body as the logged-in user; the JSON answer."""
        content = json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode("utf-8")

        def call(sdk: Any) -> Any:
            return sdk.invoke_procedure(
                nsid, content=content, headers={"Content-Type": "application/json"}
            )

        response = self._call(what or nsid, call)
        return response.content if isinstance(response.content, dict) else {}

    def whoami(self) -> SessionInfo:
        """Ask the PDS who this session belongs to (checks the session is alive; refreshes it)."""
        info = self.require_login()
        response = self._call(
            "checking the session", lambda sdk: sdk.invoke_query("com.atproto.server.getSession")
        )
        content = response.content if isinstance(response.content, dict) else {}
        did, handle = content.get("did"), content.get("handle")
        if did != info.did or not isinstance(handle, str):
            raise AtmosphereError(f"{info.pds} answered getSession for {clean(did, 80)!r}")
        return SessionInfo(did, handle, info.pds)

    def create_record(
        self, collection: str, record: dict[str, Any], *, rkey: str | None = None
    ) -> RecordRef:
        """Create a record in the logged-in user's repository (``rkey`` or a server TID)."""
        info = self.require_login()
        body: dict[str, Any] = {"repo": info.did, "collection": collection, "record": record}
        if rkey is not None:
            body["rkey"] = rkey
        out = self.procedure("com.atproto.repo.createRecord", body, what=f"creating a {collection}")
        return _record_ref(out)

    def put_record(self, collection: str, rkey: str, record: dict[str, Any]) -> RecordRef:
        """Create or replace the record at ``rkey`` (idempotent: the same value gives the same CID)."""
        info = self.require_login()
        body = {"repo": info.did, "collection": collection, "rkey": rkey, "record": record}
        out = self.procedure(
            "com.atproto.repo.putRecord", body, what=f"writing {collection}/{rkey}"
        )
        return _record_ref(out)

    def delete_record(self, collection: str, rkey: str) -> None:
        info = self.require_login()
        body = {"repo": info.did, "collection": collection, "rkey": rkey}
        self.procedure("com.atproto.repo.deleteRecord", body, what=f"deleting {collection}/{rkey}")

    def upload_blob(
        self,
        source: str | os.PathLike[str] | bytes | BinaryIO,
        *,
        mime_type: str = TAR_MIME_TYPE,
        progress: Callable[[int], None] | None = None,
        cancel: Callable[[], bool] | None = None,
    ) -> dict[str, Any]:
        """Upload a file (a path or an open binary file, streamed) or bytes as a blob.

        Returns the blob reference for a record. The PDS keeps a blob only if a record references
        it soon after, so reference it right away. ``progress(n)`` is called with each chunk's
        size; ``cancel()`` returning true stops it. An open file is read from its start.
        """

        def call(sdk: Any) -> Any:
            if isinstance(source, (bytes, bytearray)):
                if progress is not None:
                    progress(len(source))
                return sdk.invoke_procedure(
                    "com.atproto.repo.uploadBlob",
                    content=bytes(source),
                    headers={"Content-Type": mime_type},
                )
            if hasattr(source, "read"):
                source.seek(0)  # type: ignore[union-attr]
                return sdk.invoke_procedure(
                    "com.atproto.repo.uploadBlob",
                    content=_UploadReader(source, progress, cancel),
                    headers={"Content-Type": mime_type},
                )
            with open(source, "rb") as f:  # type: ignore[arg-type]
                return sdk.invoke_procedure(
                    "com.atproto.repo.uploadBlob",
                    content=_UploadReader(f, progress, cancel),
                    headers={"Content-Type": mime_type},
                )

        response = self._call("uploading a blob", call)
        content = response.content if isinstance(response.content, dict) else {}
        blob = content.get("blob")
        if (
            not isinstance(blob, dict)
            or not isinstance(blob.get("ref"), dict)
            or not isinstance(blob["ref"].get("$link"), str)
        ):
            raise AtmosphereError("the PDS answered an upload without a blob reference")
        return {
            "$type": "blob",
            "ref": {"$link": blob["ref"]["$link"]},
            "mimeType": blob.get("mimeType", mime_type),
            "size": int(blob.get("size", 0)),
        }

    # --- anonymous reads (any repository) -----------------------------------------------------------
    def identify(self, actor: str) -> Identity:
        """Resolve a handle or DID (``@`` optional) to DID, verified handle and PDS."""
        return self.resolver.identify(actor)

    def pds_for(self, did: str) -> str:
        """Where ``did``'s repository lives (our own PDS for our DID, else its DID document)."""
        info = self._info
        if info is not None and info.did == did:
            return info.pds
        return self.resolver.pds_of(did)[0]

    def get_record(
        self, did: str, collection: str, rkey: str, *, pds: str | None = None
    ) -> RecordView | None:
        """One record (``None`` if it does not exist). No login needed."""
        base = pds or self.pds_for(did)
        params = {"repo": did, "collection": collection, "rkey": rkey}
        try:
            data = get_json(
                self._http,
                f"{base}/xrpc/com.atproto.repo.getRecord",
                params,
                what=f"reading {at_uri(did, collection, rkey)}",
            )
        except XrpcCallError as exc:
            if exc.status in (400, 404) and exc.error in ("RecordNotFound", "NotFound", None):
                return None
            raise
        view = _record_view(data, did, collection)
        if view is None or view.rkey != rkey:
            raise AtmosphereError(
                f"{base} answered a malformed record for {at_uri(did, collection, rkey)}"
            )
        return view

    def get_record_uri(self, uri: str) -> RecordView | None:
        did, collection, rkey = split_at_uri(uri)
        if not did.startswith("did:"):
            did = self.identify(did).did
        return self.get_record(did, collection, rkey)

    def list_records(
        self,
        did: str,
        collection: str,
        *,
        cursor: str | None = None,
        limit: int = 100,
        pds: str | None = None,
    ) -> tuple[list[RecordView], str | None]:
        """One page of a collection (newest first) and the cursor for the next, if any."""
        base = pds or self.pds_for(did)
        params: dict[str, Any] = {
            "repo": did,
            "collection": collection,
            "limit": max(1, min(limit, 100)),
        }
        if cursor:
            params["cursor"] = cursor
        try:
            data = get_json(
                self._http,
                f"{base}/xrpc/com.atproto.repo.listRecords",
                params,
                what=f"listing {collection} of {did}",
            )
        except XrpcCallError as exc:
            if exc.status == 400 and exc.error in ("RepoNotFound", "InvalidRequest"):
                raise HandleNotFoundError(f"{did} has no repository at {base}") from None
            raise
        if not isinstance(data, dict) or not isinstance(data.get("records", []), list):
            raise AtmosphereError(f"{base} answered a malformed record listing for {did}")
        records = []
        for item in data.get("records", []):
            view = _record_view(item, did, collection)
            if view is not None:
                records.append(view)
        next_cursor = data.get("cursor")
        if not isinstance(next_cursor, str) or not next_cursor or len(next_cursor) > 512:
            next_cursor = None
        return records, next_cursor

    def iter_records(
        self,
        did: str,
        collection: str,
        *,
        pds: str | None = None,
        max_records: int = MAX_LISTED_RECORDS,
    ) -> Iterator[RecordView]:
        """Every record of a collection, page by page (100 at a time, following the cursor)."""
        base = pds or self.pds_for(did)
        cursor: str | None = None
        seen_cursors: set[str] = set()
        count = 0
        while True:
            page, cursor = self.list_records(did, collection, cursor=cursor, pds=base)
            for view in page:
                yield view
                count += 1
                if count >= max_records:
                    return
            if not page or cursor is None or cursor in seen_cursors:
                return
            seen_cursors.add(cursor)

    def blob_url(self, did: str, cid: str, *, pds: str | None = None) -> str:
        return blob_url(pds or self.pds_for(did), did, cid)


def _error_parts(exc: BaseException) -> tuple[int | None, str | None, str | None]:
    """``(status, xrpc error, message)`` of an SDK exception (status ``None``: no answer)."""
    response = getattr(exc, "response", None)
    if response is None:
        return None, None, None
    status = getattr(response, "status_code", None)
    content = getattr(response, "content", None)
    error = getattr(content, "error", None)
    message = getattr(content, "message", None)
    if isinstance(content, dict):
        error, message = content.get("error"), content.get("message")
    return (
        status,
        clean(error, 80) if isinstance(error, str) else None,
        clean(message, 300) if isinstance(message, str) else None,
    )


def _record_ref(out: dict[str, Any]) -> RecordRef:
    uri, cid = out.get("uri"), out.get("cid")
    if not isinstance(uri, str) or not isinstance(cid, str):
        raise AtmosphereError("the PDS answered a write without the record's URI and CID")
    return RecordRef(uri, cid)


def _record_view(data: Any, did: str, collection: str) -> RecordView | None:
    """A record from a listing, if it is well-formed and really in ``did``'s ``collection``."""
    if not isinstance(data, dict):
        return None
    uri, cid, value = data.get("uri"), data.get("cid"), data.get("value")
    if not isinstance(uri, str) or not isinstance(cid, str) or not isinstance(value, dict):
        return None
    prefix = f"at://{did}/{collection}/"
    if not uri.startswith(prefix) or "/" in uri[len(prefix) :] or len(uri) > 1024:
        return None
    return RecordView(uri, cid, value)
