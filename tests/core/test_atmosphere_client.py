"""The client against the real local PDS: login, sessions on disk, refresh, logout, errors."""

from __future__ import annotations

import base64
import http.server
import json
import os
import socket
import stat
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from atdata_core.atmosphere import (
    AtmosphereClient,
    HandleNotFoundError,
    LoginError,
    NotLoggedInError,
    default_backend,
)
from atdata_core.atmosphere.lexicons import LABEL
from atdata_core.atmosphere.records import LabelRecord
from atdata_core.config import AtmosphereConfig, Config
from atdata_core.errors import AtmosphereError

from .test_atmosphere_helpers import *  # noqa: F403  (fixtures)
from .test_atmosphere_helpers import make_client, new_account


def _session_of(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text())


def _tokens(session_string: str) -> tuple[str, str]:
    parts = session_string.split(":::")
    return parts[2], parts[3]


def _with_access_token(path: Path, mutate: Any) -> str:
    """Rewrite the saved access JWT (keeping the file 0600); returns the new token."""
    data = _session_of(path)
    parts = data["session"].split(":::")
    parts[2] = mutate(parts[2])
    data["session"] = ":::".join(parts)
    fd = os.open(path, os.O_WRONLY | os.O_TRUNC)
    with os.fdopen(fd, "w") as f:
        json.dump(data, f)
    return parts[2]


def _aged(jwt: str) -> str:
    """The same token with ``exp`` in the past (its signature no longer matches: never sent)."""
    header, payload, sig = jwt.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims["exp"] = int(time.time()) - 3600
    body = base64.urlsafe_b64encode(json.dumps(claims).encode()).decode().rstrip("=")
    return f"{header}.{body}.{sig}"


def _bad_signature(jwt: str) -> str:
    header, payload, sig = jwt.split(".")
    return f"{header}.{payload}.{'A' * len(sig)}"


# --- login ------------------------------------------------------------------------------------------


def test_login_by_handle_finds_the_pds_through_the_did_document(
    pds_server: Any, pds_account: Any, tmp_path: Path
) -> None:
    client = make_client(pds_server, tmp_path)
    assert client.pds is None and not client.logged_in  # nothing configured, nothing saved
    info = client.login(f"@{pds_account.handle.upper()}", pds_account.password)
    assert info.did == pds_account.did and info.handle == pds_account.handle
    assert info.pds == pds_server.url.rstrip("/")  # from the PLC's DID document
    assert client.whoami() == info
    assert pds_account.password not in repr(client)


def test_login_by_did_with_an_explicit_pds(
    pds_server: Any, pds_account: Any, tmp_path: Path
) -> None:
    client = AtmosphereClient(session_file=None, plc="http://127.0.0.1:9")  # PLC unused
    info = client.login(pds_account.did, pds_account.password, pds=pds_server.url + "/xrpc")
    assert info.did == pds_account.did and info.pds == pds_server.url.rstrip("/")


def test_wrong_password_says_so_without_the_password(
    pds_server: Any, pds_account: Any, tmp_path: Path
) -> None:
    client = make_client(pds_server, tmp_path)
    wrong = "not-the-password-" + pds_account.password[:6]
    with pytest.raises(LoginError) as info:
        client.login(pds_account.handle, wrong)
    text = str(info.value) + repr(info.value) + str(info.value.__cause__)
    assert "wrong handle or app password" in text
    assert wrong not in text and pds_account.password not in text
    assert not client.logged_in and not client.session_file.exists()


def test_unknown_handle_is_a_clear_error(pds_server: Any, tmp_path: Path) -> None:
    client = make_client(pds_server, tmp_path)
    with pytest.raises(LoginError, match=r"unknown handle @nobody-here-at-all\.test"):
        client.login("nobody-here-at-all.test", "whatever")
    with pytest.raises(HandleNotFoundError, match=r"nobody-here-at-all\.test"):
        client.identify("nobody-here-at-all.test")
    with pytest.raises(LoginError, match="not a handle"):
        client.login("not a handle!", "whatever")


def test_unreachable_pds_names_the_url(tmp_path: Path) -> None:
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    client = AtmosphereClient(session_file=None, timeout=3)
    started = time.monotonic()
    with pytest.raises(LoginError, match=f"cannot reach the PDS at http://127.0.0.1:{port}"):
        client.login("alice.test", "pw", pds=f"http://127.0.0.1:{port}")
    assert time.monotonic() - started < 5


def test_a_pds_that_never_answers_times_out(tmp_path: Path) -> None:
    """A server that accepts the connection and then says nothing must not hang us."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    port = server.getsockname()[1]
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(server.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        client = AtmosphereClient(session_file=None, timeout=1.5)
        started = time.monotonic()
        with pytest.raises(LoginError, match=f"127.0.0.1:{port}"):
            client.login("alice.test", "pw", pds=f"http://127.0.0.1:{port}")
        assert time.monotonic() - started < 6
        reader = AtmosphereClient(session_file=None, timeout=1.5)
        with pytest.raises(AtmosphereError, match=r"cannot reach|timed out"):
            reader.list_records(
                "did:plc:abcdefghijklmnopqrstuvwx", LABEL, pds=f"http://127.0.0.1:{port}"
            )
    finally:
        stop.set()
        thread.join()
        for conn in held:
            conn.close()
        server.close()


# --- sessions on disk ----------------------------------------------------------------------------------


def test_session_file_is_private_and_holds_no_password(
    pds_server: Any, pds_account: Any, tmp_path: Path
) -> None:
    path = tmp_path / "fresh-config-dir" / "session.json"
    client = make_client(pds_server, tmp_path, session_file=path)
    client.login(pds_account.handle, pds_account.password)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    text = path.read_text()
    assert pds_account.password not in text
    data = json.loads(text)
    assert data["did"] == pds_account.did and data["pds"] == pds_server.url.rstrip("/")
    assert "password" not in text.lower()

    # a new process resumes from the file, without the password and without network I/O first
    again = make_client(pds_server, tmp_path, session_file=path)
    assert again.logged_in and again.did == pds_account.did
    assert again.whoami().handle == pds_account.handle


def test_resume_from_a_session_string(pds_server: Any, pds_account: Any, tmp_path: Path) -> None:
    first = make_client(pds_server, tmp_path, session_file=None)
    first.login(pds_account.handle, pds_account.password)
    session_string = first.export_session()
    second = AtmosphereClient(session_file=None)
    info = second.resume(session_string)
    assert info.did == pds_account.did and info.pds == pds_server.url.rstrip("/")
    ref = second.create_record(LABEL, LabelRecord("hello", f"at://{info.did}/x.y.z/1").to_record())
    assert second.get_record_uri(ref.uri).value["name"] == "hello"
    with pytest.raises(NotLoggedInError, match="damaged"):
        AtmosphereClient(session_file=None).resume("garbage")


def test_expired_access_token_is_refreshed_and_the_new_session_saved(
    pds_server: Any, pds_account: Any, tmp_path: Path
) -> None:
    path = tmp_path / "cfg" / "session.json"
    make_client(pds_server, tmp_path, session_file=path).login(
        pds_account.handle, pds_account.password
    )
    _old_access, old_refresh = _tokens(_session_of(path)["session"])
    aged = _with_access_token(path, _aged)

    client = make_client(pds_server, tmp_path, session_file=path)
    assert client.whoami().did == pds_account.did  # refreshed before the call
    new_access, new_refresh = _tokens(_session_of(path)["session"])
    # the aged token was replaced and the refresh token rotated (an access token minted in the
    # same second as the original has the same claims, so it may equal ``old_access``)
    assert new_access != aged and new_refresh != old_refresh
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    # and the refreshed session is what the next run resumes
    assert make_client(pds_server, tmp_path, session_file=path).whoami().did == pds_account.did


def test_a_rejected_access_token_is_refreshed_once_and_the_call_retried(
    pds_server: Any, pds_account: Any, tmp_path: Path
) -> None:
    """A token the SDK thinks is fine but the PDS refuses (InvalidToken): refresh, retry, save."""
    path = tmp_path / "cfg" / "session.json"
    make_client(pds_server, tmp_path, session_file=path).login(
        pds_account.handle, pds_account.password
    )
    broken = _with_access_token(path, _bad_signature)
    client = make_client(pds_server, tmp_path, session_file=path)
    ref = client.create_record(
        LABEL, LabelRecord("x", f"at://{pds_account.did}/a.b.c/1").to_record()
    )
    assert ref.uri.startswith(f"at://{pds_account.did}/{LABEL}/")
    assert _tokens(_session_of(path)["session"])[0] != broken


def test_revoked_session_asks_to_log_in_again(
    pds_server: Any, pds_account: Any, tmp_path: Path
) -> None:
    path = tmp_path / "cfg" / "session.json"
    first = make_client(pds_server, tmp_path, session_file=path)
    first.login(pds_account.handle, pds_account.password)
    saved = path.read_text()
    first.logout()
    assert not path.exists() and not first.logged_in
    with pytest.raises(NotLoggedInError):
        first.whoami()
    # the old tokens were revoked on the PDS: resuming them and refreshing fails clearly
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(saved)
    _with_access_token(path, _aged)
    stale = make_client(pds_server, tmp_path, session_file=path)
    with pytest.raises(NotLoggedInError, match="log in again"):
        stale.whoami()


def test_login_replaces_the_session_of_another_account(pds_server: Any, tmp_path: Path) -> None:
    path = tmp_path / "cfg" / "session.json"
    client = make_client(pds_server, tmp_path, session_file=path)
    _, handle_a, pw_a = new_account(pds_server, "a")
    did_b, handle_b, pw_b = new_account(pds_server, "b")
    client.login(handle_a, pw_a)
    client.login(handle_b, pw_b)
    assert client.did == did_b and _session_of(path)["did"] == did_b


# --- no network at construction ----------------------------------------------------------------------


def test_default_backend_does_no_network_io(tmp_path: Path, monkeypatch: Any) -> None:
    monkeypatch.setenv("ATDATA_TUI_HOME", str(tmp_path / "home"))
    cfg = Config(atmosphere=AtmosphereConfig(pds="http://127.0.0.1:9", plc="http://127.0.0.1:9"))
    started = time.monotonic()
    backend = default_backend(cfg)
    assert time.monotonic() - started < 0.5
    assert not backend.can_list and backend.client.pds == "http://127.0.0.1:9"
    assert backend.client.session_file == tmp_path / "home" / "config" / "session.json"
    with pytest.raises(NotLoggedInError, match="log in"):
        backend.client.require_login()


# --- identity: DID documents ---------------------------------------------------------------------------


class _DidWebHandler(http.server.BaseHTTPRequestHandler):
    documents: dict[str, bytes] = {}

    def do_GET(self) -> None:
        body = self.documents.get(self.path)
        self.send_response(200 if body is not None else 404)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(body or b"{}")

    def log_message(self, *args: Any) -> None:
        pass


def test_did_web_documents_resolve_and_are_validated(pds_server: Any, pds_account: Any) -> None:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _DidWebHandler)
    port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    did = f"did:web:localhost%3A{port}"
    doc = {
        "id": did,
        "alsoKnownAs": [f"at://{pds_account.handle}"],
        "service": [
            {
                "id": "#atproto_pds",
                "type": "AtprotoPersonalDataServer",
                "serviceEndpoint": pds_server.url,
            }
        ],
    }
    try:
        _DidWebHandler.documents = {"/.well-known/did.json": json.dumps(doc).encode()}
        client = AtmosphereClient(session_file=None, timeout=5)
        ident = client.identify(did)
        assert ident.pds == pds_server.url.rstrip("/") and ident.handle == pds_account.handle

        bad_docs = {
            "is about": {**doc, "id": "did:web:evil.example"},
            "names no PDS": {**doc, "service": []},
            "not an http": {
                **doc,
                "service": [{**doc["service"][0], "serviceEndpoint": "file:///etc/passwd"}],
            },
        }
        for problem, bad in bad_docs.items():
            client.resolver.forget()
            _DidWebHandler.documents = {"/.well-known/did.json": json.dumps(bad).encode()}
            with pytest.raises(AtmosphereError, match=problem):
                client.identify(did)
        client.resolver.forget()
        _DidWebHandler.documents = {}
        with pytest.raises(HandleNotFoundError, match="not registered"):
            client.identify(did)
    finally:
        server.shutdown()
        server.server_close()


def test_a_handle_whose_did_document_does_not_claim_it_is_refused(
    pds_server: Any, pds_account: Any
) -> None:
    """A lying handle resolver may not pass off someone else's DID as a handle's."""
    from atdata_core.atmosphere.resolve import IdentityResolver

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _DidWebHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        _DidWebHandler.documents = {
            "/xrpc/com.atproto.identity.resolveHandle?handle=impostor.test": json.dumps(
                {"did": pds_account.did}
            ).encode()
        }
        liar = f"http://127.0.0.1:{server.server_address[1]}"
        resolver = IdentityResolver(plc_url=pds_server.plc_url, handle_resolver=liar)
        assert resolver.resolve_handle("impostor.test") == pds_account.did
        with pytest.raises(AtmosphereError, match="does not claim the handle"):
            resolver.identify("impostor.test")
        honest = IdentityResolver(plc_url=pds_server.plc_url, handle_resolver=pds_server.url)
        assert honest.identify(pds_account.handle).did == pds_account.did
    finally:
        server.shutdown()
        server.server_close()
