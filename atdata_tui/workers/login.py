"""Logging in to the AT Protocol network: plain functions over ``atdata_core.atmosphere``.

The TUI runs these in thread workers (the login modal, the resume at start-up, log out); the CLI
calls them directly. Nothing here imports Textual. The app password goes to the PDS in one request
and is never stored, logged or kept in an error message; the session (tokens only) lives in the
0600 session file that ``AtmosphereClient`` manages.

One ``AtmosphereBackend`` per app: the index's (``index.atmosphere``). Before the index is open (the
resume at start-up runs at once), a backend is made here and handed to the index when it opens,
so the login, the entry lists and promotion all share one client and one session.
"""

from __future__ import annotations

import threading
import weakref
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from atdata_core.atmosphere import AtmosphereBackend, AtmosphereClient, Identity, SessionInfo

_backends: weakref.WeakKeyDictionary[Any, Any] = weakref.WeakKeyDictionary()
_lock = threading.Lock()


def backend_for(app: Any) -> AtmosphereBackend:
    """The app's one atmosphere backend (no network I/O; the session file is read on first use)."""
    from atdata_core.errors import AtmosphereError

    with _lock:
        shared = _backends.get(app)
        index = getattr(app, "index", None)
        if index is not None:
            current = index.atmosphere
            if shared is not None and current is not shared:
                index.atmosphere = shared  # adopt the one made before the index opened
                return shared
            if current is None:
                raise AtmosphereError("the AT Protocol support (atdata_core.atmosphere) is missing")
            _backends[app] = current
            return current  # type: ignore[no-any-return]
        if shared is None:
            from atdata_core.atmosphere import default_backend

            shared = default_backend(getattr(app, "config", None))
            _backends[app] = shared
        return shared  # type: ignore[no-any-return]


def client_for(app: Any) -> AtmosphereClient:
    return backend_for(app).client


def current_session(client: AtmosphereClient) -> SessionInfo | None:
    """The saved session, resumed without network I/O (``None`` when logged out)."""
    return client.session


def resolve_pds(client: AtmosphereClient, actor: str) -> Identity:
    """Handle or DID → DID, verified handle and PDS (from the DID document)."""
    return client.identify(actor)


def pds_from_did_document(client: AtmosphereClient, actor: str) -> str | None:
    """The PDS named by ``actor``'s DID document, so login goes where the account lives.

    An unknown handle is a ``LoginError`` saying so (a PDS would only answer "wrong password");
    when resolution itself fails (DNS, PLC down) ``None`` lets the client use its default.
    """
    from atdata_core.atmosphere import HandleNotFoundError
    from atdata_core.errors import AtmosphereError, LoginError

    try:
        return client.identify(actor).pds
    except HandleNotFoundError as exc:
        raise LoginError(str(exc)) from None
    except AtmosphereError:
        return None


def login(
    client: AtmosphereClient, identifier: str, password: str, *, pds: str | None = None
) -> SessionInfo:
    """Log in and save the session (0600); raises ``LoginError`` saying why it failed."""
    return client.login(identifier, password, pds=pds or None, save=True)


def logout(client: AtmosphereClient) -> None:
    """Revoke the session (best effort) and delete the session file."""
    client.logout()


def display_handle(info: SessionInfo | None) -> str | None:
    """``alice.test`` (what the status bar shows after ``@``), or ``None`` when logged out."""
    if info is None:
        return None
    return info.handle or info.did
