"""The dataset AppView (atdata-app): find datasets across the whole network, not one account at a time.

A PDS serves one account's records. The AppView indexes everybody's ``science.alt.dataset.*``
records (it follows the relay) in PostgreSQL and answers XRPC queries over all of them:
``searchDatasets`` (full text over names, descriptions and tags), ``listEntries``, ``getEntry`` /
``getEntries``, ``getSchema``, ``listSchemas``, ``resolveSchema``, ``resolveLabel``,
``listLenses`` / ``searchLenses``, ``resolveBlobs`` and ``describeService``.

What an AppView answers is untrusted, exactly like a record from a stranger's PDS, and goes
through the same parsers (``records.EntryRecord.parse``, ``parse_schema``, ``LensRecord.parse``,
``LabelRecord.parse``): lexicon limits, safe identifiers, shard URLs only http(s)/s3 (never a local
path), bounded metadata. A page with one bad record lists the others and says how many were left
out (``NetworkPage.skipped``); an answer that is not what the query returns at all, a server that
is down, too slow (a timeout on every request) or too talkative (a byte cap on every answer)
raises ``AppViewError``, which names the AppView and what to do.

Who wrote an entry comes from the entry's at:// URI (a DID); the handle shown for it is the one the
DID document claims *and* that resolves back to the DID (``IdentityResolver``, cached), never a
handle the AppView asserts. Blob shards stream from the author's PDS as its DID document names it;
``resolveBlobs`` is asked only when the DID document cannot be read, and its URLs must be
``getBlob`` URLs for that DID and for blobs the record lists.

Entries come back as ``IndexEntry`` objects in the ``_atmosphere`` repository, like those read from
a PDS, so opening, previewing, loading and verifying them works the same way; their
``metadata["atproto"]`` adds ``appview`` (where they were found) and ``schema`` (the schema's
``name@version`` when the AppView knows the schema record).
"""

from __future__ import annotations

import re
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import httpx

from ..errors import AtmosphereError, NotFoundError, RecordError
from ..index.entries import IndexEntry
from ._http import DEFAULT_TIMEOUT, XrpcCallError, clean, get_json, make_http
from .backend import DatasetNotFoundError
from .lexicons import ENTRY_COLLECTIONS, LABEL_COLLECTIONS, NAMESPACE, SCHEMA_COLLECTIONS
from .records import (
    EntryRecord,
    LabelRecord,
    LensRecord,
    iso_datetime,
    parse_schema,
)
from .resolve import IdentityResolver, is_did, normalize_handle

#: The most one AppView answer may be (a page of 100 entries is normally well under 1 MB).
MAX_ANSWER_BYTES = 16 << 20
#: The AppView serves at most this many records per page (atdata-app's limit).
MAX_PAGE = 100
#: ``getEntries`` and ``resolveBlobs`` take at most this many URIs per call.
MAX_BATCH = 25
#: Authors, schemas: looked up at most this many at a time (one thread each, on a page's worth).
LOOKUP_THREADS = 8
#: How long author identities and schema names are remembered.
CACHE_SECONDS = 300.0
#: Cursors longer than this (or with control characters) are not followed.
MAX_CURSOR = 1024
#: Labels of one account read at most when listing the versions of a dataset.
MAX_LABELS = 10_000

_AT_URI = re.compile(
    r"at://(did:[a-z]+:[a-zA-Z0-9._:%-]{1,2048})/([a-zA-Z0-9.-]{3,317})/([A-Za-z0-9._:~-]{1,512})"
)
_CID = re.compile(r"b[a-z2-7]{20,200}")


class AppViewError(AtmosphereError):
    """The AppView is not configured, unreachable, too slow, or answered something malformed."""


@dataclass(frozen=True)
class ServiceInfo:
    """What ``describeService`` says: the AppView's DID and how many records it holds."""

    url: str
    did: str | None
    entries: int | None
    schemas: int | None
    labels: int | None
    lenses: int | None


@dataclass
class NetworkPage:
    """One page of AppView results: valid entries, the cursor of the next page, what was left out."""

    items: list[Any]
    cursor: str | None
    skipped: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class NetworkLens:
    """A lens record found through the AppView (its code is a reference: never run)."""

    uri: str
    did: str
    lens: LensRecord


@dataclass(frozen=True)
class LabelVersion:
    """One version under a dataset's label: the label record and the entry it names."""

    name: str
    version: str | None
    created_at: str
    label_uri: str
    dataset_uri: str
    entry: IndexEntry | None = None
    error: str | None = None


@dataclass
class Versions:
    """The versions under the label that names an entry (newest first)."""

    label: str | None
    versions: list[LabelVersion]
    note: str | None = None


def normalize_appview_url(url: str) -> str:
    """An AppView base URL: ``http(s)://host[:port][/path]`` (or ``did:web:host``), no query.

    Raises ``AppViewError`` naming the value and the expected form.
    """
    text = url.strip() if isinstance(url, str) else ""
    if text.startswith("did:web:"):
        host = urllib.parse.unquote(text[len("did:web:") :])
        text = f"https://{host}"
    text = text.rstrip("/").removesuffix("/xrpc")
    parts = urllib.parse.urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise AppViewError(
            f"{clean(url, 120)!r} is not an AppView URL (expected https://host or http://host:port)"
        )
    if parts.query or parts.fragment or parts.username or parts.password:
        raise AppViewError(
            f"AppView URL {clean(url, 120)!r} may not carry a query, fragment or credentials"
        )
    if any(ord(c) < 0x21 or ord(c) == 0x7F for c in text):
        raise AppViewError(f"AppView URL {clean(url, 120)!r} contains spaces or control characters")
    return text


def _cursor(value: Any) -> str | None:
    if not isinstance(value, str) or not value or len(value) > MAX_CURSOR:
        return None
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in value):
        return None
    return value


def split_entry_uri(uri: Any) -> tuple[str, str, str]:
    """``(did, collection, rkey)`` of an entry's at:// URI as the AppView gives it (strict)."""
    if not isinstance(uri, str):
        raise RecordError(f"an entry's 'uri' must be a string, got {type(uri).__name__}")
    m = _AT_URI.fullmatch(uri)
    if m is None or not is_did(m.group(1)):
        raise RecordError(f"{clean(uri, 120)!r} is not an at://<did>/<collection>/<rkey> URI")
    return m.group(1), m.group(2), m.group(3)


class _TtlCache:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._items: dict[str, tuple[float, Any]] = {}

    def get(self, key: str) -> Any:
        with self._lock:
            hit = self._items.get(key)
        if hit is not None and time.monotonic() - hit[0] < CACHE_SECONDS:
            return hit[1]
        return None

    def put(self, key: str, value: Any) -> None:
        with self._lock:
            if len(self._items) > 4096:
                self._items.clear()
            self._items[key] = (time.monotonic(), value)


@dataclass(frozen=True)
class _Author:
    handle: str | None
    pds: str | None
    problem: str | None = None


class AppViewClient:
    """XRPC queries to one AppView, answers validated and turned into ``IndexEntry`` objects.

    ``resolver`` finds authors' handles and PDSes (the same resolver the atmosphere client uses,
    so a configured PLC and handle resolver apply); ``records`` (an ``AtmosphereClient``) reads
    label records from authors' PDSes, which the AppView has no listing for.
    """

    def __init__(
        self,
        url: str,
        *,
        resolver: IdentityResolver | None = None,
        records: Any = None,
        timeout: float = DEFAULT_TIMEOUT,
        http: httpx.Client | None = None,
    ) -> None:
        self.url = normalize_appview_url(url)
        self.timeout = timeout
        self._http = http or make_http(timeout)
        self.resolver = resolver or IdentityResolver(timeout=timeout)
        self.records = records
        self._authors = _TtlCache()
        self._schema_names = _TtlCache()

    def __repr__(self) -> str:
        return f"AppViewClient({self.url!r})"

    def close(self) -> None:
        self._http.close()

    # --- transport ------------------------------------------------------------------------------------
    def query(
        self, nsid: str, params: Mapping[str, Any] | None = None, *, what: str
    ) -> dict[str, Any]:
        """GET ``/xrpc/<nsid>``; the answer must be a JSON object. ``XrpcCallError`` for 4xx/5xx."""
        url = f"{self.url}/xrpc/{nsid}"
        clean_params = {k: v for k, v in (params or {}).items() if v is not None}
        try:
            data = get_json(self._http, url, clean_params, what=what, max_bytes=MAX_ANSWER_BYTES)
        except XrpcCallError:
            raise
        except AtmosphereError as exc:
            raise AppViewError(
                f"{exc} (the AppView is set by [atmosphere] appview in the config or --appview)"
            ) from None
        if not isinstance(data, dict):
            raise AppViewError(f"{what}: the AppView {self.url} did not answer a JSON object")
        return data

    def _call(self, nsid: str, params: Mapping[str, Any], *, what: str) -> dict[str, Any]:
        """``query`` with server errors as ``AppViewError`` (404 stays ``XrpcCallError``)."""
        try:
            return self.query(nsid, params, what=what)
        except XrpcCallError as exc:
            if exc.status in (400, 404):
                raise
            raise AppViewError(f"{what}: {exc}") from None

    def _list_of(self, data: Mapping[str, Any], key: str, what: str) -> list[Any]:
        value = data.get(key, [])
        if not isinstance(value, list):
            raise AppViewError(
                f"{what}: the AppView {self.url} answered {key!r} as {type(value).__name__}, "
                "not a list"
            )
        if len(value) > MAX_PAGE * 2:
            raise AppViewError(
                f"{what}: the AppView {self.url} answered {len(value)} items for a page of "
                f"at most {MAX_PAGE}"
            )
        return value

    # --- service --------------------------------------------------------------------------------------
    def describe(self) -> ServiceInfo:
        """The AppView's DID and record counts (also the cheapest "is it up?")."""
        data = self._call(f"{NAMESPACE}.describeService", {}, what="asking the AppView")
        counts = data.get("recordCount")
        counts = counts if isinstance(counts, dict) else {}

        def count(collection: str) -> int | None:
            n = counts.get(f"{NAMESPACE}.{collection}")
            return n if isinstance(n, int) and not isinstance(n, bool) and n >= 0 else None

        did = data.get("did")
        return ServiceInfo(
            self.url,
            did if isinstance(did, str) and is_did(did) else None,
            count("entry"),
            count("schema"),
            count("label"),
            count("lens"),
        )

    # --- authors -------------------------------------------------------------------------------------
    def _author(self, did: str) -> _Author:
        cached = self._authors.get(did)
        if cached is not None:
            return cached  # type: ignore[no-any-return]
        try:
            pds, handles = self.resolver.pds_of(did)
        except AtmosphereError as exc:
            author = _Author(None, None, str(exc))
        else:
            handle = None
            for candidate in handles[:3]:
                try:
                    if self.resolver.resolve_handle(candidate) == did:
                        handle = candidate
                        break
                except AtmosphereError:
                    continue
            author = _Author(handle, pds)
        self._authors.put(did, author)
        return author

    def _authors_of(self, dids: Iterable[str]) -> dict[str, _Author]:
        wanted = list(dict.fromkeys(dids))
        missing = [d for d in wanted if self._authors.get(d) is None]
        if len(missing) > 1:
            with ThreadPoolExecutor(min(LOOKUP_THREADS, len(missing))) as pool:
                list(pool.map(self._author, missing))
        return {d: self._author(d) for d in wanted}

    def handle_of(self, did: str) -> str | None:
        """The verified handle of ``did`` (``None`` if it has none or it does not check out)."""
        return self._author(did).handle

    def did_of(self, actor: str) -> str:
        """A DID for ``actor`` (a DID as is; a handle resolved and checked both ways)."""
        text = actor.strip().removeprefix("@")
        if text.startswith("did:"):
            if not is_did(text):
                raise AtmosphereError(f"{clean(actor, 80)!r} is not a valid DID")
            return text
        return self.resolver.identify(normalize_handle(text)).did

    # --- entries -------------------------------------------------------------------------------------
    def _blob_pds_from_appview(self, uri: str, value: Mapping[str, Any], did: str) -> str:
        """The PDS base URL for a blob entry, from ``resolveBlobs`` (the DID document failed)."""
        storage = value.get("storage")
        blobs = storage.get("blobs") if isinstance(storage, Mapping) else None
        cids = set()
        for item in blobs if isinstance(blobs, list) else []:
            ref = item.get("blob", {}).get("ref") if isinstance(item, Mapping) else None
            if isinstance(ref, Mapping) and isinstance(ref.get("$link"), str):
                cids.add(ref["$link"])
        urls = self.resolve_blobs([uri]).get(uri, [])
        from .client import parse_blob_url
        from .resolve import normalize_pds_url

        bases = set()
        for cid, url in urls:
            parsed = parse_blob_url(url)
            if parsed is None or parsed[1] != did or parsed[2] != cid or cid not in cids:
                raise RecordError(
                    f"{uri}: the AppView's blob URL {clean(url, 120)!r} is not a getBlob URL "
                    "for a blob of this record"
                )
            bases.add(normalize_pds_url(parsed[0]))
        if len(bases) != 1:
            raise RecordError(f"{uri}: the AppView does not say which PDS holds the blobs")
        return bases.pop()

    def _entry(self, value: Any, author: _Author | None = None) -> IndexEntry:
        """One AppView entry object → a validated ``IndexEntry`` (``RecordError`` if it is bad)."""
        if not isinstance(value, Mapping):
            raise RecordError(f"an entry must be an object, got {type(value).__name__}")
        uri = value.get("uri")
        did, collection, _rkey = split_entry_uri(uri)
        assert isinstance(uri, str)
        if collection not in ENTRY_COLLECTIONS:
            raise RecordError(
                f"{clean(uri, 120)}: a {clean(collection, 60)} record is not an entry"
            )
        claimed = value.get("did")
        if claimed is not None and claimed != did:
            raise RecordError(f"{uri}: 'did' {clean(claimed, 80)!r} is not the URI's author")
        cid = value.get("cid")
        if cid is not None and (not isinstance(cid, str) or not _CID.fullmatch(cid)):
            raise RecordError(f"{uri}: 'cid' is not a CID")
        author = author or self._author(did)
        pds = author.pds
        storage = value.get("storage")
        stype = storage.get("$type") if isinstance(storage, Mapping) else None
        if pds is None and isinstance(stype, str) and stype.endswith("storageBlobs"):
            try:
                pds = self._blob_pds_from_appview(uri, value, did)
            except AtmosphereError as exc:
                raise RecordError(
                    f"{uri}: cannot tell where its blobs are: {author.problem or 'no PDS'}; {exc}"
                ) from None
        # (the PDS is only used for blob storage, which has one by now or was refused above)
        record = EntryRecord.parse(value, uri=uri, did=did, pds=pds or "https://pds.invalid")
        entry = record.to_index_entry(
            uri=uri, cid=cid or "", did=did, handle=author.handle, pds=pds or ""
        )
        atproto = entry.metadata["atproto"] if entry.metadata else {}
        atproto["appview"] = self.url
        return entry

    def _entries(self, raw: Sequence[Any]) -> tuple[list[IndexEntry], list[str]]:
        """Valid entries (in order, duplicates dropped) and a message per record left out."""
        dids = []
        for value in raw:
            try:
                dids.append(
                    split_entry_uri(value.get("uri") if isinstance(value, Mapping) else None)[0]
                )
            except RecordError:
                continue
        authors = self._authors_of(dids)
        out: list[IndexEntry] = []
        skipped: list[str] = []
        seen: set[str] = set()
        for value in raw:
            try:
                if not isinstance(value, Mapping):
                    raise RecordError(f"an entry must be an object, got {type(value).__name__}")
                did = split_entry_uri(value.get("uri"))[0]
                entry = self._entry(value, authors.get(did))
            except (RecordError, AtmosphereError) as exc:
                skipped.append(str(exc))
                continue
            if entry.at_uri in seen:
                continue
            seen.add(entry.at_uri or "")
            out.append(entry)
        self._name_schemas(out)
        return out, skipped

    def _entry_page(self, nsid: str, params: dict[str, Any], what: str) -> NetworkPage:
        data = self._call(nsid, params, what=what)
        raw = self._list_of(data, "entries", what)
        entries, skipped = self._entries(raw)
        return NetworkPage(entries, _cursor(data.get("cursor")) if raw else None, skipped)

    def search(
        self,
        text: str,
        *,
        tags: Sequence[str] | None = None,
        schema_ref: str | None = None,
        author: str | None = None,
        limit: int = 25,
        cursor: str | None = None,
    ) -> NetworkPage:
        """Datasets whose name, description or tags match ``text`` (AppView full-text search)."""
        query = " ".join(text.split())
        if not query:
            raise AppViewError("search for what? give some words (an empty search matches nothing)")
        params: dict[str, Any] = {
            "q": query[:500],
            "limit": max(1, min(limit, MAX_PAGE)),
            "cursor": cursor,
            "schemaRef": schema_ref,
            "repo": self.did_of(author) if author else None,
        }
        if tags:
            params["tags"] = list(tags)
        return self._entry_page(
            f"{NAMESPACE}.searchDatasets", params, f"searching {self.url} for {clean(query, 60)!r}"
        )

    def list_entries(
        self, *, author: str | None = None, limit: int = 50, cursor: str | None = None
    ) -> NetworkPage:
        """The most recently indexed entries (of one author, if given)."""
        params = {
            "limit": max(1, min(limit, MAX_PAGE)),
            "cursor": cursor,
            "repo": self.did_of(author) if author else None,
        }
        return self._entry_page(
            f"{NAMESPACE}.listEntries", params, f"listing entries of {self.url}"
        )

    def get_entry(self, uri: str) -> IndexEntry:
        """One entry by its at:// URI (``DatasetNotFoundError`` if the AppView does not have it)."""
        split_entry_uri(uri)
        try:
            data = self._call(f"{NAMESPACE}.getEntry", {"uri": uri}, what=f"reading {uri}")
        except XrpcCallError as exc:
            if exc.status == 404:
                raise DatasetNotFoundError(
                    f"the AppView {self.url} has no entry {uri} (not indexed yet, or deleted)"
                ) from None
            raise AppViewError(f"reading {uri}: {exc}") from None
        entry = self._entry(data.get("entry"))
        if entry.at_uri != uri:
            raise AppViewError(f"asked the AppView for {uri}, it answered {clean(entry.at_uri)}")
        self._name_schemas([entry])
        return entry

    def get_entries(self, uris: Sequence[str]) -> tuple[dict[str, IndexEntry], list[str]]:
        """Entries by URI, ``MAX_BATCH`` per request: ``({uri: entry}, problems)``; unknown URIs are
        simply absent."""
        found: dict[str, IndexEntry] = {}
        problems: list[str] = []
        wanted = list(dict.fromkeys(uris))
        for start in range(0, len(wanted), MAX_BATCH):
            batch = wanted[start : start + MAX_BATCH]
            data = self._call(f"{NAMESPACE}.getEntries", {"uris": batch}, what="reading entries")
            entries, skipped = self._entries(self._list_of(data, "entries", "reading entries"))
            problems += skipped
            for entry in entries:
                if entry.at_uri in batch:
                    found[entry.at_uri] = entry
        return found, problems

    def resolve_label(self, actor: str, name: str, version: str | None = None) -> tuple[str, str]:
        """``(dataset_uri, label_uri)`` of ``@actor/name[@version]`` (newest label of that name)."""
        did = self.did_of(actor)
        want = f"{name}@{version}" if version else name
        try:
            data = self._call(
                f"{NAMESPACE}.resolveLabel",
                {"handle": did, "name": name, "version": version},
                what=f"resolving {clean(want, 80)!r} of {did}",
            )
        except XrpcCallError as exc:
            if exc.status == 404:
                raise DatasetNotFoundError(
                    f"the AppView {self.url} knows no dataset {clean(want, 80)!r} of {did}"
                ) from None
            raise AppViewError(f"resolving {clean(want, 80)!r}: {exc}") from None
        label_value = data.get("label")
        label_uri = label_value.get("uri") if isinstance(label_value, Mapping) else None
        if not isinstance(label_uri, str):
            raise AppViewError(f"resolving {clean(want, 80)!r}: the AppView sent no label URI")
        label = LabelRecord.parse(label_value, uri=label_uri)
        if label.name != name or (version is not None and label.version != version):
            raise AppViewError(
                f"asked the AppView for {clean(want, 80)!r}, it answered the label "
                f"{clean(label.name, 80)!r}"
            )
        if not label_uri.startswith(f"at://{did}/") or label.dataset_uri != data.get("uri"):
            raise AppViewError(
                f"resolving {clean(want, 80)!r}: the AppView's answer is inconsistent"
            )
        return label.dataset_uri, label_uri

    def resolve_blobs(self, uris: Sequence[str]) -> dict[str, list[tuple[str, str]]]:
        """``{entry uri: [(blob cid, getBlob URL), ...]}`` for blob-stored entries, as the AppView
        says (validate before use: ``_entry`` does)."""
        out: dict[str, list[tuple[str, str]]] = {}
        wanted = list(dict.fromkeys(uris))
        for start in range(0, len(wanted), MAX_BATCH):
            batch = wanted[start : start + MAX_BATCH]
            data = self._call(f"{NAMESPACE}.resolveBlobs", {"uris": batch}, what="locating blobs")
            for item in self._list_of(data, "blobs", "locating blobs")[: MAX_PAGE * 2]:
                if not isinstance(item, Mapping):
                    continue
                uri, cid, url = item.get("uri"), item.get("cid"), item.get("url")
                if uri in batch and isinstance(cid, str) and isinstance(url, str):
                    out.setdefault(uri, []).append((cid, url))
        return out

    # --- schemas -------------------------------------------------------------------------------------
    def get_schema(self, uri: str) -> dict[str, Any]:
        """The schema record at ``uri`` in local form (validated like a PDS record; never run)."""
        _did, collection, _ = split_entry_uri(uri)
        if collection not in SCHEMA_COLLECTIONS:
            raise RecordError(f"{uri} is a {clean(collection, 60)} record, not a schema")
        try:
            data = self._call(f"{NAMESPACE}.getSchema", {"uri": uri}, what=f"reading {uri}")
        except XrpcCallError as exc:
            if exc.status == 404:
                raise DatasetNotFoundError(f"the AppView {self.url} has no schema {uri}") from None
            raise AppViewError(f"reading {uri}: {exc}") from None
        if data.get("uri", uri) != uri:
            raise AppViewError(f"asked the AppView for {uri}, it answered {clean(data.get('uri'))}")
        local = parse_schema(data, uri=uri)
        self._schema_names.put(uri, f"{local['name']}@{local['version']}")
        return local

    def list_schemas(
        self, *, author: str | None = None, limit: int = 50, cursor: str | None = None
    ) -> NetworkPage:
        """Schema records (local form, ``$ref`` = at:// URI), most recently indexed first."""
        what = f"listing schemas of {self.url}"
        params = {
            "limit": max(1, min(limit, MAX_PAGE)),
            "cursor": cursor,
            "repo": self.did_of(author) if author else None,
        }
        data = self._call(f"{NAMESPACE}.listSchemas", params, what=what)
        raw = self._list_of(data, "schemas", what)
        out, skipped = [], []
        for value in raw:
            try:
                uri = value.get("uri") if isinstance(value, Mapping) else None
                _did, collection, _ = split_entry_uri(uri)
                if collection not in SCHEMA_COLLECTIONS:
                    raise RecordError(f"{uri}: not a schema record")
                assert isinstance(uri, str)
                local = parse_schema(value, uri=uri)
            except (RecordError, AtmosphereError) as exc:
                skipped.append(str(exc))
                continue
            self._schema_names.put(uri, f"{local['name']}@{local['version']}")
            out.append(local)
        return NetworkPage(out, _cursor(data.get("cursor")) if raw else None, skipped)

    def schema_versions(
        self, uri: str, *, max_pages: int = 20
    ) -> tuple[list[dict[str, Any]], bool]:
        """Every schema record of ``uri``'s author with the same name (newest version first), and
        whether the listing was cut at ``max_pages`` pages."""
        from ..schema import sort_versions

        did = split_entry_uri(uri)[0]
        name = self.get_schema(uri)["name"]
        found: dict[str, dict[str, Any]] = {}
        cursor: str | None = None
        seen: set[str] = set()
        for _ in range(max_pages):
            page = self.list_schemas(author=did, limit=MAX_PAGE, cursor=cursor)
            for local in page.items:
                if local["name"] == name:
                    found.setdefault(local["$ref"], local)
            if page.cursor is None or page.cursor in seen:
                return _newest_first(found, sort_versions), False
            seen.add(page.cursor)
            cursor = page.cursor
        return _newest_first(found, sort_versions), True

    def resolve_schema(
        self, actor: str, schema_id: str, version: str | None = None
    ) -> dict[str, Any]:
        """``resolveSchema``: the schema of ``actor`` whose record key is ``schema_id@version``
        (atdata's key form; the newest version when none is given)."""
        did = self.did_of(actor)
        want = f"{schema_id}@{version}" if version else schema_id
        try:
            data = self._call(
                f"{NAMESPACE}.resolveSchema",
                {"handle": did, "schemaId": schema_id, "version": version},
                what=f"resolving schema {clean(want, 80)!r} of {did}",
            )
        except XrpcCallError as exc:
            if exc.status == 404:
                raise NotFoundError(
                    f"the AppView {self.url} knows no schema {want!r} of {did}"
                ) from None
            raise AppViewError(f"resolving schema {clean(want, 80)!r}: {exc}") from None
        record = data.get("record")
        uri = data.get("uri")
        did_of_uri, collection, _ = split_entry_uri(uri)
        if did_of_uri != did or collection not in SCHEMA_COLLECTIONS:
            raise AppViewError(
                f"resolving schema {clean(want, 80)!r}: the answer names another record"
            )
        assert isinstance(uri, str)
        return parse_schema(record, uri=uri)

    def schema_name(self, uri: str) -> str | None:
        """``name@version`` of the schema at ``uri`` (from the AppView, cached), ``None`` if it
        cannot be had: for labels, never for decisions."""
        known = self._schema_names.get(uri)
        if known is None:
            try:
                self.get_schema(uri)
            except (AtmosphereError, NotFoundError):
                self._schema_names.put(uri, "")
            known = self._schema_names.get(uri)
        return known or None

    def _name_schemas(self, entries: list[IndexEntry]) -> None:
        """Put each entry's schema ``name@version`` in its metadata (from the AppView, cached).

        Best effort: a schema the AppView does not have (or that is malformed) leaves the entry as
        it is; the schema is checked again when the entry is opened.
        """
        uris = {e.schema_ref for e in entries if e.schema_ref.startswith("at://")}
        missing = [u for u in uris if self._schema_names.get(u) is None]

        def lookup(uri: str) -> None:
            try:
                self.get_schema(uri)
            except (AtmosphereError, NotFoundError):
                self._schema_names.put(uri, "")

        if missing:
            with ThreadPoolExecutor(min(LOOKUP_THREADS, len(missing))) as pool:
                list(pool.map(lookup, missing))
        for entry in entries:
            label = self._schema_names.get(entry.schema_ref)
            if label and entry.metadata is not None:
                entry.metadata["atproto"]["schema"] = label

    # --- lenses --------------------------------------------------------------------------------------
    def _lenses(self, data: Mapping[str, Any], what: str) -> tuple[list[NetworkLens], list[str]]:
        out, skipped = [], []
        for value in self._list_of(data, "lenses", what):
            try:
                uri = value.get("uri") if isinstance(value, Mapping) else None
                did, _collection, _ = split_entry_uri(uri)
                assert isinstance(uri, str)
                out.append(NetworkLens(uri, did, LensRecord.parse(value, uri=uri)))
            except (RecordError, AtmosphereError) as exc:
                skipped.append(str(exc))
        return out, skipped

    def list_lenses(
        self,
        *,
        author: str | None = None,
        source_schema: str | None = None,
        target_schema: str | None = None,
        limit: int = 50,
        cursor: str | None = None,
    ) -> NetworkPage:
        """Lens records (all of them, or from/to one schema), most recently indexed first."""
        what = f"listing lenses of {self.url}"
        params = {
            "limit": max(1, min(limit, MAX_PAGE)),
            "cursor": cursor,
            "repo": self.did_of(author) if author else None,
            "sourceSchema": source_schema,
            "targetSchema": target_schema,
        }
        data = self._call(f"{NAMESPACE}.listLenses", params, what=what)
        lenses, skipped = self._lenses(data, what)
        return NetworkPage(
            lenses, _cursor(data.get("cursor")) if lenses or skipped else None, skipped
        )

    def lenses_for(
        self, schema_uri: str, *, max_pages: int = 10
    ) -> tuple[list[NetworkLens], list[str]]:
        """Every lens that reads from or writes to ``schema_uri`` (``searchLenses``, both ways)."""
        split_entry_uri(schema_uri)
        what = f"finding lenses of {schema_uri}"
        out: list[NetworkLens] = []
        skipped: list[str] = []
        cursor: str | None = None
        seen: set[str] = set()
        for _ in range(max_pages):
            data = self._call(
                f"{NAMESPACE}.searchLenses",
                {
                    "sourceSchema": schema_uri,
                    "targetSchema": schema_uri,
                    "limit": MAX_PAGE,
                    "cursor": cursor,
                },
                what=what,
            )
            lenses, bad = self._lenses(data, what)
            skipped += bad
            for lens in lenses:
                if lens.uri not in seen and schema_uri in (
                    lens.lens.source_schema,
                    lens.lens.target_schema,
                ):
                    seen.add(lens.uri)
                    out.append(lens)
            cursor = _cursor(data.get("cursor")) if lenses or bad else None
            if cursor is None:
                break
        return out, skipped

    # --- versions under a label -----------------------------------------------------------------------
    def versions(self, entry: IndexEntry, *, max_labels: int = MAX_LABELS) -> Versions:
        """The other versions under the label that names ``entry``: every label of its author with
        that name, newest first, each with its entry (from the AppView).

        The AppView resolves one label at a time and lists none, so the labels are read from the
        author's own PDS (``records``); the entries they name come from the AppView in batches.
        An entry no label names lists just itself.
        """
        uri = entry.at_uri
        if not uri:
            raise AtmosphereError(f"{entry.name} is not a published entry (it has no at:// URI)")
        did = split_entry_uri(uri)[0]
        if self.records is None:
            raise AppViewError("listing labels needs an atmosphere client (records=...)")
        labels: list[tuple[str, LabelRecord]] = []
        broken = 0
        for collection in LABEL_COLLECTIONS:
            try:
                views = list(self.records.iter_records(did, collection, max_records=max_labels))
            except AtmosphereError as exc:
                raise AtmosphereError(f"cannot read the labels of {did}: {exc}") from None
            for view in views:
                try:
                    labels.append((view.uri, LabelRecord.parse(view.value, uri=view.uri)))
                except RecordError:
                    broken += 1
        names = [label.name for _, label in labels if label.dataset_uri == uri]
        note = f"{broken} malformed label records were left out" if broken else None
        if not names:
            own = LabelVersion(entry.name, None, entry.created_at, "", uri, entry)
            return Versions(None, [own], note or "no label names this entry")
        name = max(set(names), key=names.count)
        chosen = [(u, label) for u, label in labels if label.name == name]
        found, problems = self.get_entries([label.dataset_uri for _, label in chosen])
        found.setdefault(uri, entry)
        out = [
            LabelVersion(
                label.name,
                label.version,
                label.created_at,
                label_uri,
                label.dataset_uri,
                found.get(label.dataset_uri),
                None if label.dataset_uri in found else "not indexed by the AppView",
            )
            for label_uri, label in chosen
        ]
        out.sort(key=lambda v: (_sortable_time(v.created_at), v.label_uri), reverse=True)
        if problems:
            note = "; ".join(filter(None, [note, f"{len(problems)} entries were malformed"]))
        return Versions(name, out, note)


def _newest_first(
    found: Mapping[str, dict[str, Any]], sort_versions: Callable[..., list[str]]
) -> list[dict[str, Any]]:
    order = {v: i for i, v in enumerate(sort_versions([s["version"] for s in found.values()]))}
    return sorted(found.values(), key=lambda s: order.get(s["version"], len(order)))


def _sortable_time(text: str) -> str:
    try:
        return iso_datetime(text)
    except ValueError:
        return ""
