"""Where shards are read from: the ``DataSource`` seam, URLs (local, ``file://``, HTTP) and a registry.

A ``Dataset`` never opens files or sockets itself: it asks a ``DataSource`` for a shard (a stream or
an in-memory buffer that ``shards.iter_raw_samples`` parses), for a byte range of a shard (one sample
found through its manifest) or for a small sidecar (the manifest). Local shards are memory-mapped;
HTTP shards stream in chunks as they are parsed, so the first sample of a 1 GB shard costs one round
trip and a few kilobytes, never the whole body. Other schemes (``s3://``, PDS blobs) plug in through
``register_source`` without this module importing their dependencies.
"""

from __future__ import annotations

import contextlib
import gzip
import http.client
import importlib
import mmap
import os
import re
import threading
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from typing import IO, Any, Protocol, runtime_checkable

from .errors import AtdataError, SourceError
from .shards import MAX_MEMBER_SIZE, Readable, expand_braces, open_local

#: What ``DataSource.open_shard`` yields: a binary stream, or a buffer parsed without copying.
ShardStream = Readable | bytes | memoryview | mmap.mmap

#: Factories build a source for a list of URLs that share a scheme.
SourceFactory = Callable[[list[str]], "DataSource"]

#: Seconds to wait for a connection or for the next bytes of a response.
DEFAULT_TIMEOUT = 30.0
#: Sidecars (manifests) larger than this are refused: they are JSON indexes, not data.
MAX_SIDECAR_BYTES = 256 << 20
_USER_AGENT = "atdata-tui"
_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://")
_HTTP_READ = 1 << 20


@runtime_checkable
class DataSource(Protocol):
    """A set of shards and the three ways to read them.

    Shard ids are the URLs (or URL-like strings) the source was made from; sidecars such as
    ``shards.manifest_url(shard_id)`` are addressed the same way.
    """

    @property
    def shards(self) -> list[str]:
        """Every shard id, in dataset order."""
        ...

    def list_shards(self) -> list[str]:
        """Same as ``shards`` (a method for callers that prefer one)."""
        ...

    def open_shard(self, shard_id: str) -> AbstractContextManager[ShardStream]:
        """Open a shard for one sequential pass; closing the context releases it.

        Raises ``SourceError`` (naming the shard) when it cannot be opened.
        """
        ...

    def read_range(self, shard_id: str, start: int, end_inclusive: int) -> bytes:
        """Bytes ``start..end_inclusive`` of a shard (fewer if the shard ends first)."""
        ...

    def read_bytes(self, url: str) -> bytes | None:
        """The whole of a small object next to the shards (a manifest), or ``None`` if absent."""
        ...


# --- URLs ------------------------------------------------------------------------------------------


def url_scheme(url: str) -> str:
    """``"https"`` for ``https://…``; ``""`` for a local path (``C:\\x`` is a path, not a scheme)."""
    match = _SCHEME.match(url)
    return match.group(1).lower() if match else ""


def display_url(url: str) -> str:
    """A URL fit for error messages and logs: no password, no query (presigned URLs carry secrets)."""
    if not url_scheme(url):
        return url
    parts = urllib.parse.urlsplit(url)
    netloc = parts.hostname or ""
    if parts.port:
        netloc += f":{parts.port}"
    if parts.username:
        netloc = f"{parts.username}@{netloc}"
    query = "?…" if parts.query else ""
    return f"{parts.scheme}://{netloc}{parts.path}{query}"


def local_path(url: str) -> str | None:
    """The filesystem path of a local path or ``file://`` URL; ``None`` for anything remote."""
    scheme = url_scheme(url)
    if scheme == "":
        return os.path.expanduser(url)
    if scheme != "file":
        return None
    parts = urllib.parse.urlsplit(url)
    if parts.netloc not in ("", "localhost"):
        raise SourceError(
            f"file:// URLs must name this machine (got host {parts.netloc!r})", shard=url
        )
    return urllib.request.url2pathname(parts.path)


_UNTRUSTED_SCHEMES = frozenset({"http", "https", "s3", "at"})


def check_untrusted_url(url: str) -> str:
    """Accept a URL that came from a network record only if it is http(s), s3 or at; return it.

    A record from someone else's PDS must never make us read this machine's files (a bare path or
    ``file://``) or speak other protocols. Raises ``SourceError`` naming the URL otherwise.
    """
    if not isinstance(url, str) or not url:
        raise SourceError(f"refusing a shard URL from a record: {url!r} is not a URL")
    if any(ord(c) < 0x21 or ord(c) == 0x7F for c in url):
        raise SourceError(
            f"refusing shard URL {url[:200]!r} from a record: it contains spaces or control "
            "characters"
        )
    scheme = url_scheme(url)
    if scheme not in _UNTRUSTED_SCHEMES:
        shown = scheme + "://" if scheme else "a local path"
        raise SourceError(
            f"refusing shard URL {url[:200]!r} from a record: {shown} is not allowed there "
            "(only http://, https://, s3:// and at:// are; local paths could read this "
            "machine's files)"
        )
    netloc = urllib.parse.urlsplit(url).netloc
    if not netloc:
        raise SourceError(f"refusing shard URL {url[:200]!r} from a record: it names no host")
    return url


def expand_urls(urls: str | Sequence[str]) -> list[str]:
    """Brace-expand one URL or each of several (``data-{000000..000009}.tar``)."""
    if isinstance(urls, str):
        urls = [urls]
    out: list[str] = []
    for url in urls:
        if not isinstance(url, str):
            raise TypeError(f"shard URLs must be strings, got {type(url).__name__}")
        out.extend(expand_braces(url))
    return out


# --- HTTP ------------------------------------------------------------------------------------------


class _HTTPStream:
    """A response body read as it arrives, with network failures turned into ``SourceError``.

    ``read(n)`` returns what one socket read gives (at most ``n`` bytes) rather than waiting for
    all ``n``: the tar parser asks again until it has what it needs, so a preview can show the
    first sample before the next megabyte has arrived.
    """

    def __init__(self, response: http.client.HTTPResponse, url: str) -> None:
        self._response = response
        self._url = url
        self.received = 0
        length = response.getheader("Content-Length")
        self.length = int(length) if length and length.isdigit() else None

    def read(self, n: int = -1) -> bytes:
        try:
            data = self._response.read1(n if n and n > 0 else _HTTP_READ)
        except (OSError, http.client.HTTPException) as exc:
            raise SourceError(
                f"connection failed after {self.received} bytes: {_describe(exc)}",
                shard=display_url(self._url),
            ) from None
        if not data and self.length is not None and self.received < self.length:
            raise SourceError(
                f"connection closed after {self.received} of {self.length} bytes",
                shard=display_url(self._url),
            )
        self.received += len(data)
        return data

    def readable(self) -> bool:
        return True

    def close(self) -> None:
        self._response.close()


def _describe(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError):
        return "timed out"
    if isinstance(exc, urllib.error.URLError) and not isinstance(exc, urllib.error.HTTPError):
        reason = exc.reason
        return str(reason.strerror if isinstance(reason, OSError) and reason.strerror else reason)
    return str(exc) or type(exc).__name__


def _http_open(
    url: str,
    *,
    timeout: float,
    headers: Mapping[str, str],
    byte_range: tuple[int, int] | None = None,
    missing_ok: bool = False,
) -> http.client.HTTPResponse | None:
    """Send a GET (optionally ranged); errors become ``SourceError`` naming the URL."""
    request = urllib.request.Request(url, headers={"User-Agent": _USER_AGENT, **headers})
    if byte_range is not None:
        request.add_header("Range", f"bytes={byte_range[0]}-{byte_range[1]}")
    try:
        return urllib.request.urlopen(request, timeout=timeout)  # scheme checked by callers
    except urllib.error.HTTPError as exc:
        exc.close()
        if missing_ok and exc.code in (404, 410):
            return None
        what = {
            401: "unauthorized",
            403: "forbidden",
            404: "not found",
            410: "gone",
            416: "range not satisfiable",
        }.get(exc.code, exc.reason or "error")
        raise SourceError(f"HTTP {exc.code} {what}", shard=display_url(url)) from None
    except (OSError, http.client.HTTPException, ValueError) as exc:
        raise SourceError(f"cannot reach: {_describe(exc)}", shard=display_url(url)) from None


def _read_exactly(stream: Any, n: int) -> bytes:
    parts = []
    have = 0
    while have < n:
        chunk = stream.read(min(n - have, _HTTP_READ))
        if not chunk:
            break
        parts.append(chunk)
        have += len(chunk)
    return b"".join(parts)


def _check_http(url: str) -> None:
    """Only http(s) goes to urllib (which would also open ftp://, data: and file:// URLs)."""
    if url_scheme(url) not in ("http", "https"):
        raise SourceError(
            "URLSource reads local paths, file:// and http(s):// URLs; use source_for_urls() "
            "to pick a source by scheme",
            shard=display_url(url),
        )


def _is_gzip(url: str) -> bool:
    path = urllib.parse.urlsplit(url).path if url_scheme(url) else url
    return path.endswith((".gz", ".tgz"))


# --- URLSource -------------------------------------------------------------------------------------


class URLSource:
    """Shards named by URLs: local paths, ``file://`` (memory-mapped) and ``http(s)://`` (streamed).

    ``urls`` may use brace notation (``data-{000000..000009}.tar``). ``headers`` are sent with every
    HTTP request (e.g. an ``Authorization`` header); ``timeout`` bounds connecting and each read.
    ``.tar.gz``/``.tgz`` shards are decompressed as they stream (they cannot be seeked into).
    """

    def __init__(
        self,
        urls: str | Sequence[str],
        *,
        timeout: float = DEFAULT_TIMEOUT,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        self._urls = expand_urls(urls)
        self.timeout = timeout
        self.headers = dict(headers or {})
        for url in self._urls:
            scheme = url_scheme(url)
            if scheme not in ("", "file", "http", "https"):
                raise SourceError(
                    f"URLSource reads local paths, file:// and http(s):// URLs, not {scheme}://; "
                    "use source_for_urls() to pick a source by scheme",
                    shard=display_url(url),
                )

    def __repr__(self) -> str:
        first = display_url(self._urls[0]) if self._urls else ""
        return (
            f"URLSource({first!r}{f', … {len(self._urls)} shards' if len(self._urls) > 1 else ''})"
        )

    @property
    def shards(self) -> list[str]:
        return list(self._urls)

    def list_shards(self) -> list[str]:
        return list(self._urls)

    @contextlib.contextmanager
    def open_shard(self, shard_id: str) -> Iterator[ShardStream]:
        path = local_path(shard_id)
        if path is not None:
            if _is_gzip(path):
                with self._open_local_file(path) as f, gzip.GzipFile(fileobj=f) as gz:
                    yield _GzipStream(gz, shard_id)
                return
            with open_local(path) as buffer:
                yield buffer
            return
        _check_http(shard_id)
        response = _http_open(shard_id, timeout=self.timeout, headers=self.headers)
        assert response is not None
        stream = _HTTPStream(response, shard_id)
        try:
            if _is_gzip(shard_id):
                with gzip.GzipFile(fileobj=stream) as gz:  # type: ignore[call-overload]
                    yield _GzipStream(gz, shard_id)
            else:
                yield stream
        finally:
            stream.close()

    @staticmethod
    def _open_local_file(path: str) -> IO[bytes]:
        try:
            return open(path, "rb")
        except FileNotFoundError:
            raise SourceError("file not found", shard=path) from None
        except OSError as exc:
            raise SourceError(f"cannot open: {exc.strerror or exc}", shard=path) from None

    def read_range(self, shard_id: str, start: int, end_inclusive: int) -> bytes:
        if start < 0 or end_inclusive < start:
            raise ValueError(f"bad byte range {start}..{end_inclusive}")
        length = end_inclusive - start + 1
        if length > MAX_MEMBER_SIZE + 4096:
            raise SourceError(f"refusing to read a range of {length} bytes", shard=shard_id)
        if _is_gzip(shard_id):
            raise SourceError(
                "compressed shards cannot be read by byte range; stream them instead",
                shard=display_url(shard_id),
            )
        path = local_path(shard_id)
        if path is not None:
            with self._open_local_file(path) as f:
                try:
                    # never trust a manifest's size for the allocation: clamp to the file
                    available = max(0, os.fstat(f.fileno()).st_size - start)
                    return os.pread(f.fileno(), min(length, available), start)
                except OSError as exc:
                    raise SourceError(f"cannot read: {exc.strerror or exc}", shard=path) from None
        _check_http(shard_id)
        response = _http_open(
            shard_id,
            timeout=self.timeout,
            headers=self.headers,
            byte_range=(start, end_inclusive),
        )
        assert response is not None
        stream = _HTTPStream(response, shard_id)
        try:
            if response.status == 206:
                content_range = response.getheader("Content-Range") or ""
                match = re.match(r"bytes (\d+)-", content_range)
                if match and int(match.group(1)) != start:
                    raise SourceError(
                        f"server answered range {content_range!r} for bytes {start}-"
                        f"{end_inclusive}",
                        shard=display_url(shard_id),
                    )
                return _read_exactly(stream, length)
            # The server ignored Range (200): skip to the start without keeping what we skip.
            skipped = 0
            while skipped < start:
                chunk = stream.read(min(start - skipped, _HTTP_READ))
                if not chunk:
                    return b""
                skipped += len(chunk)
            return _read_exactly(stream, length)
        finally:
            stream.close()

    def read_bytes(self, url: str) -> bytes | None:
        path = local_path(url)
        if path is not None:
            try:
                with open(path, "rb") as f:
                    data = f.read(MAX_SIDECAR_BYTES + 1)
            except FileNotFoundError:
                return None
            except OSError as exc:
                raise SourceError(f"cannot read: {exc.strerror or exc}", shard=path) from None
        else:
            _check_http(url)
            response = _http_open(url, timeout=self.timeout, headers=self.headers, missing_ok=True)
            if response is None:
                return None
            stream = _HTTPStream(response, url)
            try:
                data = _read_exactly(stream, MAX_SIDECAR_BYTES + 1)
            finally:
                stream.close()
        if len(data) > MAX_SIDECAR_BYTES:
            raise SourceError(
                f"sidecar is larger than {MAX_SIDECAR_BYTES >> 20} MB", shard=display_url(url)
            )
        return data


class _GzipStream:
    """A gzip stream whose decompression errors become ``SourceError`` (naming the shard)."""

    def __init__(self, gz: gzip.GzipFile, url: str) -> None:
        self._gz = gz
        self._url = url

    def read(self, n: int = -1) -> bytes:
        try:
            return self._gz.read(n)
        except (OSError, EOFError, gzip.BadGzipFile) as exc:
            if isinstance(exc, SourceError):
                raise
            raise SourceError(f"bad gzip data: {exc}", shard=display_url(self._url)) from None


# --- routing by scheme -----------------------------------------------------------------------------

_REGISTRY: dict[str, SourceFactory] = {}
_REGISTRY_LOCK = threading.Lock()


def register_source(scheme: str, factory: SourceFactory) -> None:
    """Make ``source_for_urls`` use ``factory(urls)`` for URLs of ``scheme`` (``""`` = local paths).

    A later registration replaces an earlier one, so a store module can take over its scheme when
    it is imported.
    """
    with _REGISTRY_LOCK:
        _REGISTRY[scheme.lower()] = factory


def register_lazy_source(scheme: str, module: str, attr: str, *, hint: str = "") -> None:
    """Register a source whose module is imported only when a URL of ``scheme`` is first opened.

    On first use ``module`` is imported; if it registered its own factory on import, that one is
    used, otherwise ``module.attr(urls)``. A missing module or dependency becomes an
    ``AtdataError`` that says what to install (``hint``).
    """

    def factory(urls: list[str]) -> DataSource:
        try:
            mod = importlib.import_module(module)
        except ImportError as exc:
            missing = getattr(exc, "name", None) or str(exc)
            if missing == module or module.startswith(f"{missing}."):
                raise AtdataError(
                    f"{scheme}:// URLs need {module}, which is not part of this installation"
                    + (f"; {hint}" if hint else "")
                ) from None
            raise AtdataError(
                f"{scheme}:// URLs need the package {missing!r}, which is not installed"
                + (f"; {hint}" if hint else "")
            ) from None
        with _REGISTRY_LOCK:
            current = _REGISTRY.get(scheme)
        if current is not None and current is not factory:
            return current(urls)
        cls = getattr(mod, attr, None)
        if cls is None:
            raise AtdataError(f"{module} defines no {attr} to read {scheme}:// URLs")
        register_source(scheme, cls)
        return cls(urls)  # type: ignore[no-any-return]

    register_source(scheme, factory)


def source_for_urls(urls: str | Sequence[str]) -> DataSource:
    """The data source for some shard URLs (brace notation allowed), chosen by their scheme.

    URLs of different schemes may be mixed: each group gets its own source and the result routes
    every shard to the right one.
    """
    expanded = expand_urls(urls)
    if not expanded:
        raise AtdataError("no shard URLs given")
    groups: dict[SourceFactory, list[str]] = {}
    for url in expanded:
        scheme = url_scheme(url)
        with _REGISTRY_LOCK:
            factory = _REGISTRY.get(scheme)
        if factory is None:
            known = ", ".join(sorted(f"{s}://" for s in _REGISTRY if s)) or "none"
            raise SourceError(
                f"no data source reads {scheme}:// URLs (known: local paths, {known})",
                shard=display_url(url),
            )
        groups.setdefault(factory, []).append(url)
    if len(groups) == 1:
        factory, group = next(iter(groups.items()))
        return factory(group)
    return MultiSource(expanded, [factory(group) for factory, group in groups.items()])


class MultiSource:
    """Shards spread over several sources (e.g. some local, some in S3), kept in their order."""

    def __init__(self, shards: Sequence[str], sources: Sequence[DataSource]) -> None:
        self._shards = list(shards)
        self._route: dict[str, DataSource] = {}
        for source in sources:
            for shard in source.shards:
                self._route[shard] = source
        self._sources = list(sources)

    @property
    def shards(self) -> list[str]:
        return list(self._shards)

    def list_shards(self) -> list[str]:
        return list(self._shards)

    def _source(self, url: str) -> DataSource:
        source = self._route.get(url)
        if source is not None:
            return source
        return source_for_urls([url])

    def open_shard(self, shard_id: str) -> AbstractContextManager[ShardStream]:
        return self._source(shard_id).open_shard(shard_id)

    def read_range(self, shard_id: str, start: int, end_inclusive: int) -> bytes:
        return self._source(shard_id).read_range(shard_id, start, end_inclusive)

    def read_bytes(self, url: str) -> bytes | None:
        return self._source(url).read_bytes(url)


def _url_source(urls: list[str]) -> DataSource:
    return URLSource(urls)


for _scheme in ("", "file", "http", "https"):
    register_source(_scheme, _url_source)
register_lazy_source(
    "s3",
    "atdata_core.stores.s3",
    "S3Source",
    hint="install boto3 (a dependency of atdata-tui) and configure the repository's S3 store",
)

__all__ = [
    "DEFAULT_TIMEOUT",
    "DataSource",
    "MultiSource",
    "ShardStream",
    "SourceFactory",
    "URLSource",
    "check_untrusted_url",
    "display_url",
    "expand_urls",
    "local_path",
    "register_lazy_source",
    "register_source",
    "source_for_urls",
    "url_scheme",
]
