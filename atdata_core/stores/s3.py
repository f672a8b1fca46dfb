"""S3-compatible storage (AWS, R2, MinIO, Ceph RGW): ``S3DataStore`` writes shards, ``S3Source`` reads.

Why this shape:

- Writes are all or nothing. Each shard is an S3 multipart upload fed in parts of at least 8 MiB
  (a few uploaded concurrently, so memory stays bounded whatever the shard size); nothing exists
  under the final key until the upload is completed, and a failed write aborts its uploads and
  deletes the shards it had already completed. Small shards skip multipart: one ``put_object``.
- Reads stream. ``S3Source.open_shard`` hands the tar parser the ``get_object`` body, read in
  chunks and closed (not drained) when the reader stops, so the first sample of a 1 GB shard
  costs one request and about one chunk. ``read_range`` is one ranged GET (a sample found through
  its manifest); a body that breaks mid-stream is resumed with a ranged GET pinned to its ETag.
- The endpoint is first class (path-style addressing whenever one is set, region defaulting to
  ``us-east-1``), every client has connect/read timeouts and bounded retries, so a dead gateway
  gives a clear error in seconds instead of a hang.
- URLs are ``s3://bucket/key`` and carry no secrets. How to reach a bucket (endpoint, region,
  credentials) comes from ``configure_bucket`` (a store registers its own bucket when it is made,
  so an index entry written through it reads back), else from boto3's own chain, which honours
  ``AWS_ENDPOINT_URL``/``AWS_ENDPOINT_URL_S3``, ``AWS_PROFILE`` and the ``AWS_*`` key variables.

boto3 is imported inside functions: ``import atdata_core`` must not pay for it.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import logging
import os
import threading
import uuid
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from typing import IO, Any, cast

from ..errors import (
    AtdataError,
    BackendUnavailableError,
    CorruptShardError,
    SourceError,
    StoreError,
)
from ..shards import MAX_MEMBER_SIZE, ShardWriter, expand_braces, manifest_url

log = logging.getLogger(__name__)

DEFAULT_REGION = "us-east-1"
#: Multipart part size: shards smaller than this go up in one ``put_object``.
PART_SIZE = 8 << 20
#: S3 refuses parts under 5 MiB (except the last one).
MIN_PART_SIZE = 5 << 20
#: S3 refuses parts over 5 GiB; one huge sample is cut into pieces of ``part_size``.
MAX_PART_SIZE = 5 << 30
#: S3 allows at most this many parts per upload.
MAX_PARTS = 10_000
#: Parts uploaded at the same time by one shard (memory: about ``(n + 1) * part_size``).
UPLOAD_CONCURRENCY = 4
#: How much a read of a shard stream asks the body for when the caller does not say.
READ_CHUNK = 1 << 20
#: Seconds to wait for a TCP connection, and for the next bytes of a response.
CONNECT_TIMEOUT = 5.0
READ_TIMEOUT = 30.0
#: Attempts per request (botocore "standard" retry mode: the first try plus retries).
MAX_ATTEMPTS = 3
#: Times a broken response body is resumed with a ranged GET before giving up.
MAX_RESUMES = 2
#: Bytes of a shard's start kept to tell a tar from something else in error messages.
BLOCK_PEEK = 512
#: Manifests and other sidecars larger than this are refused (they are JSON indexes, not data).
MAX_SIDECAR_BYTES = 256 << 20

_CREDENTIAL_CODES = frozenset(
    {
        "InvalidAccessKeyId",
        "SignatureDoesNotMatch",
        "ExpiredToken",
        "InvalidToken",
        "TokenRefreshRequired",
        "AuthorizationHeaderMalformed",
        "InvalidSecurity",
        "AccessDenied",
        "AllAccessDisabled",
    }
)
_UNAVAILABLE_CODES = frozenset(
    {
        "ServiceUnavailable",
        "SlowDown",
        "InternalError",
        "RequestTimeout",
        "503",
        "500",
        "502",
        "504",
    }
)
_MISSING_KEY_CODES = frozenset({"NoSuchKey", "404", "NotFound"})


# --- errors ----------------------------------------------------------------------------------------


class S3Error(StoreError, SourceError):
    """An S3 request failed; names the endpoint, bucket and key (never credentials).

    It is both a ``StoreError`` (writing) and a ``SourceError`` (reading: it names the shard), so
    callers of either side catch it with the class they already know.
    """

    def __init__(
        self,
        message: str,
        *,
        endpoint: str,
        bucket: str,
        key: str | None = None,
        code: str | None = None,
    ) -> None:
        self.endpoint = endpoint
        self.bucket = bucket
        self.key = key
        self.code = code
        self.problem = message
        self.shard = s3_url(bucket, key) if key else None
        Exception.__init__(self, message)

    def __reduce__(self) -> Any:  # keyword-only arguments: rebuild explicitly (multiprocessing)
        return (
            _rebuild_error,
            (type(self), self.problem, self.endpoint, self.bucket, self.key, self.code),
        )


def _rebuild_error(
    cls: type[S3Error], message: str, endpoint: str, bucket: str, key: str | None, code: str | None
) -> S3Error:
    return cls(message, endpoint=endpoint, bucket=bucket, key=key, code=code)


class S3CredentialsError(S3Error):
    """The endpoint rejected the credentials (unknown key, wrong secret, expired token, denied)."""


class S3BucketNotFoundError(S3Error):
    """The bucket does not exist at that endpoint."""


class S3KeyNotFoundError(S3Error):
    """No object under that key."""


class S3UnavailableError(S3Error, BackendUnavailableError):
    """The endpoint cannot be reached, timed out, or keeps failing (5xx after retries)."""

    def __init__(
        self,
        message: str,
        *,
        endpoint: str,
        bucket: str,
        key: str | None = None,
        code: str | None = None,
    ) -> None:
        super().__init__(message, endpoint=endpoint, bucket=bucket, key=key, code=code)
        self.backend = "S3"
        self.address = endpoint


def _where(bucket: str, key: str | None) -> str:
    return s3_url(bucket, key) if key else f"bucket {bucket!r}"


def translate_error(
    exc: BaseException,
    *,
    action: str,
    endpoint: str,
    bucket: str,
    key: str | None = None,
    settings: S3Settings | None = None,
) -> AtdataError:
    """Turn a botocore/urllib3 exception into an ``S3Error`` whose message says what to do.

    ``action`` is a verb phrase ("reading", "uploading a part of"); the message names the
    endpoint, bucket and key, never the credentials.
    """
    from botocore.exceptions import (
        ClientError,
        ConnectionClosedError,
        ConnectTimeoutError,
        EndpointConnectionError,
        IncompleteReadError,
        NoCredentialsError,
        PartialCredentialsError,
        ProfileNotFound,
        ReadTimeoutError,
        ResponseStreamingError,
    )

    if isinstance(exc, AtdataError):
        return exc
    where = _where(bucket, key)
    timeouts = settings or S3Settings()
    server_hint = (
        f"check that the endpoint is right and the server is running "
        f"(connect timeout {timeouts.connect_timeout:g}s, read timeout "
        f"{timeouts.read_timeout:g}s, {timeouts.max_attempts} attempts)"
    )
    fields: dict[str, Any] = {"endpoint": endpoint, "bucket": bucket, "key": key}
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        code = str(error.get("Code") or "")
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        detail = code + (f": {error['Message']}" if error.get("Message") else "")
        if code in _CREDENTIAL_CODES or status in (401, 403):
            return S3CredentialsError(
                f"S3 at {endpoint} refused {action} {where} ({detail or status}): check the "
                "credentials (the repository's access_key/secret_key or profile, or "
                "AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY/AWS_PROFILE) and that they may "
                f"access bucket {bucket!r}",
                code=code or str(status),
                **fields,
            )
        if code == "NoSuchBucket":
            return S3BucketNotFoundError(
                f"bucket {bucket!r} does not exist at {endpoint} ({action} {where}): create it "
                "or fix the bucket name (and endpoint) in the repository config",
                code=code,
                **fields,
            )
        if code in _MISSING_KEY_CODES or status == 404:
            return S3KeyNotFoundError(
                f"{where} does not exist at {endpoint} ({action} it): it was deleted or the "
                "index entry names the wrong bucket, prefix or endpoint",
                code=code or "404",
                **fields,
            )
        if code in _UNAVAILABLE_CODES or (isinstance(status, int) and status >= 500):
            return S3UnavailableError(
                f"S3 at {endpoint} keeps failing while {action} {where} ({detail or status}); "
                "try again later or check the server's health",
                code=code or str(status),
                **fields,
            )
        return S3Error(
            f"S3 at {endpoint} failed {action} {where}: {detail or status}",
            code=code or str(status),
            **fields,
        )
    if isinstance(exc, (NoCredentialsError, PartialCredentialsError, ProfileNotFound)):
        return S3CredentialsError(
            f"no usable S3 credentials for {action} {where} at {endpoint} ({exc}): set the "
            "repository's access_key/secret_key or profile, or AWS_ACCESS_KEY_ID/"
            "AWS_SECRET_ACCESS_KEY, or configure_bucket(...)",
            code=type(exc).__name__,
            **fields,
        )
    if isinstance(exc, (ConnectTimeoutError, ReadTimeoutError, TimeoutError)):
        return S3UnavailableError(
            f"S3 at {endpoint} timed out while {action} {where}: {server_hint}",
            code="Timeout",
            **fields,
        )
    if isinstance(exc, EndpointConnectionError):
        return S3UnavailableError(
            f"S3 at {endpoint} is unavailable: cannot connect while {action} {where}; "
            + server_hint,
            code="ConnectionError",
            **fields,
        )
    if isinstance(
        exc, (ConnectionClosedError, ResponseStreamingError, IncompleteReadError, OSError)
    ):
        return S3UnavailableError(
            f"S3 at {endpoint}: the connection broke while {action} {where} "
            f"({type(exc).__name__}); {server_hint}",
            code="ConnectionBroken",
            **fields,
        )
    return S3Error(
        f"S3 at {endpoint} failed {action} {where}: {type(exc).__name__}: {exc}",
        code=type(exc).__name__,
        **fields,
    )


# --- URLs ------------------------------------------------------------------------------------------


def s3_url(bucket: str, key: str) -> str:
    return f"s3://{bucket}/{key}"


def parse_s3_url(url: str) -> tuple[str, str]:
    """``s3://bucket/some/key.tar`` → ``("bucket", "some/key.tar")``."""
    if not url.startswith("s3://"):
        raise SourceError(f"not an s3:// URL: {url[:200]!r}")
    bucket, _, key = url[5:].partition("/")
    if not bucket or not key:
        raise SourceError(f"an s3:// URL needs a bucket and a key: {url[:200]!r}")
    return bucket, key


def _clean_prefix(prefix: str, *, what: str) -> str:
    """A key prefix with no empty, ``.`` or ``..`` segments and no control characters."""
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in prefix):
        raise StoreError(f"{what} {prefix!r} contains control characters")
    parts = [p for p in prefix.replace("\\", "/").split("/") if p]
    if any(p in (".", "..") for p in parts):
        raise StoreError(f"{what} {prefix!r} may not contain '.' or '..' segments")
    return "/".join(parts)


def _join(*parts: str) -> str:
    return "/".join(p.strip("/") for p in parts if p and p.strip("/"))


# --- settings, the bucket registry and clients ----------------------------------------------------


@dataclass(frozen=True)
class S3Settings:
    """How to reach a bucket. ``credentials`` is a dict, a ``boto3.Session`` or ``None`` (chain)."""

    endpoint: str | None = None
    region: str | None = None
    profile: str | None = None
    credentials: Any = field(default=None, repr=False, compare=False)
    connect_timeout: float = CONNECT_TIMEOUT
    read_timeout: float = READ_TIMEOUT
    max_attempts: int = MAX_ATTEMPTS
    #: Unsigned requests (public buckets): no credentials are looked up or sent.
    anonymous: bool = False

    def merged(self, **overrides: Any) -> S3Settings:
        """These settings with every non-``None`` override applied."""
        return replace(self, **{k: v for k, v in overrides.items() if v is not None})


_BUCKETS: dict[str, tuple[S3Settings, bool]] = {}
_BUCKETS_LOCK = threading.Lock()


def configure_bucket(
    bucket: str,
    *,
    endpoint: str | None = None,
    region: str | None = None,
    credentials: Any = None,
    profile: str | None = None,
    access_key: str | None = None,
    secret_key: str | None = None,
    session_token: str | None = None,
    anonymous: bool = False,
    connect_timeout: float = CONNECT_TIMEOUT,
    read_timeout: float = READ_TIMEOUT,
    max_attempts: int = MAX_ATTEMPTS,
) -> S3Settings:
    """Say how to reach ``bucket`` for every later read of its ``s3://bucket/...`` URLs.

    Explicit configuration wins over what stores register for themselves. Credentials are kept
    in memory only (never in the index or in URLs). ``anonymous=True`` sends unsigned requests
    (public buckets, e.g. ones named by someone else's dataset record: no key id is sent).
    """
    creds = _credentials_from(credentials, access_key, secret_key, session_token)
    settings = S3Settings(
        endpoint, region, profile, creds, connect_timeout, read_timeout, max_attempts, anonymous
    )
    with _BUCKETS_LOCK:
        _BUCKETS[bucket] = (settings, True)
    return settings


def _register_bucket(bucket: str, settings: S3Settings) -> None:
    """What a store does when it is made: it never overrides an explicit ``configure_bucket``."""
    with _BUCKETS_LOCK:
        current = _BUCKETS.get(bucket)
        if current is None or not current[1]:
            _BUCKETS[bucket] = (settings, False)


def forget_bucket(bucket: str) -> None:
    """Drop what ``configure_bucket`` (or a store) said about ``bucket``."""
    with _BUCKETS_LOCK:
        _BUCKETS.pop(bucket, None)


def bucket_settings(bucket: str) -> S3Settings:
    """The settings reads of ``bucket`` use (the defaults, i.e. boto3's chain, when none)."""
    with _BUCKETS_LOCK:
        entry = _BUCKETS.get(bucket)
    return entry[0] if entry else S3Settings()


def configure_from_repo(repo: Any) -> S3DataStore:
    """The store of a ``config.RepoConfig`` with ``store = "s3"`` (registers its bucket too).

    The repository config may name ``access_key``/``secret_key`` (else ``profile``, else the
    boto3 chain); they never reach the index.
    """
    if not getattr(repo, "bucket", None):
        raise StoreError(
            f"repository {getattr(repo, 'name', '?')!r} uses an S3 store but names no bucket: "
            'add bucket = "..." to its [repos.<name>] table'
        )
    credentials = None
    if repo.access_key or repo.secret_key:
        credentials = {"access_key": repo.access_key, "secret_key": repo.secret_key}
    return S3DataStore(
        bucket=repo.bucket,
        endpoint=repo.endpoint,
        prefix=repo.prefix or "",
        region=repo.region,
        credentials=credentials,
        profile=repo.profile,
    )


def _check_credentials(credentials: Any) -> Any:
    """Accept ``None``, a ``boto3.Session``, or a dict with an access key and a secret."""
    if credentials is None or not isinstance(credentials, dict):
        if credentials is not None and not hasattr(credentials, "client"):
            raise StoreError(
                "S3 credentials must be a dict(access_key=..., secret_key=..., "
                f"session_token=...) or a boto3.Session, not {type(credentials).__name__}"
            )
        return credentials
    normal = {
        "access_key": credentials.get("access_key", credentials.get("aws_access_key_id")),
        "secret_key": credentials.get("secret_key", credentials.get("aws_secret_access_key")),
        "session_token": credentials.get("session_token", credentials.get("aws_session_token")),
    }
    if not normal["access_key"] or not normal["secret_key"]:
        raise StoreError(
            "S3 credentials need both access_key and secret_key (got "
            + ", ".join(sorted(k for k, v in normal.items() if v) or ["neither"])
            + ")"
        )
    return normal


def _credentials_from(
    credentials: Any, access_key: str | None, secret_key: str | None, session_token: str | None
) -> Any:
    """One credentials value from either ``credentials=`` or the ``access_key=``… keywords."""
    if access_key is None and secret_key is None and session_token is None:
        return _check_credentials(credentials)
    if credentials is not None:
        raise StoreError("give S3 credentials either as credentials= or as access_key=/secret_key=")
    return _check_credentials(
        {"access_key": access_key, "secret_key": secret_key, "session_token": session_token}
    )


def _endpoint_from_env() -> str | None:
    return os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL") or None


_CLIENTS: dict[tuple[Any, ...], tuple[Any, Any]] = {}
_CLIENTS_LOCK = threading.Lock()
_MAX_CLIENTS = 32


def _client_key(settings: S3Settings) -> tuple[Any, ...]:
    creds = settings.credentials
    if isinstance(creds, dict):
        creds_key: Any = (creds["access_key"], creds["secret_key"], creds["session_token"])
    elif creds is not None:
        creds_key = ("session", id(creds))
    else:
        creds_key = None
    return (
        settings.endpoint or _endpoint_from_env(),
        settings.region,
        settings.profile,
        creds_key,
        settings.connect_timeout,
        settings.read_timeout,
        settings.max_attempts,
        settings.anonymous,
        # boto3's chain reads these: a change must not reuse a client made before it
        os.environ.get("AWS_ACCESS_KEY_ID"),
        os.environ.get("AWS_PROFILE"),
    )


def make_client(settings: S3Settings) -> Any:
    """A botocore S3 client for ``settings`` (cached: clients are thread-safe and slow to make).

    Path-style addressing whenever an endpoint is set (explicitly or through
    ``AWS_ENDPOINT_URL[_S3]``): S3-compatible servers rarely have wildcard DNS. Checksums only
    where S3 requires them: several compatible servers reject the newer default trailers.
    """
    key = _client_key(settings)
    with _CLIENTS_LOCK:
        cached = _CLIENTS.get(key)
        if cached is not None:
            return cached[0]
        import boto3
        from botocore import UNSIGNED
        from botocore.config import Config
        from botocore.exceptions import BotoCoreError

        endpoint = settings.endpoint or _endpoint_from_env()
        creds = settings.credentials
        where = endpoint or "AWS S3"
        try:
            if creds is not None and not isinstance(creds, dict):
                session = creds
            elif isinstance(creds, dict):
                session = boto3.session.Session(
                    aws_access_key_id=creds["access_key"],
                    aws_secret_access_key=creds["secret_key"],
                    aws_session_token=creds["session_token"],
                    profile_name=settings.profile,
                )
            else:
                session = boto3.session.Session(profile_name=settings.profile)
            region = settings.region or session.region_name or DEFAULT_REGION
            config = Config(
                connect_timeout=settings.connect_timeout,
                read_timeout=settings.read_timeout,
                retries={"max_attempts": settings.max_attempts, "mode": "standard"},
                s3={"addressing_style": "path" if endpoint else "auto"},
                max_pool_connections=max(16, UPLOAD_CONCURRENCY * 4),
                tcp_keepalive=True,
                request_checksum_calculation="when_required",
                response_checksum_validation="when_required",
                **({"signature_version": UNSIGNED} if settings.anonymous else {}),
            )
            client = session.client(
                "s3", endpoint_url=settings.endpoint, region_name=region, config=config
            )
        except (BotoCoreError, ValueError) as exc:
            raise StoreError(f"cannot set up an S3 client for {where}: {exc}") from None
        if len(_CLIENTS) >= _MAX_CLIENTS:
            _CLIENTS.pop(next(iter(_CLIENTS)))
        _CLIENTS[key] = (client, creds)  # holds a Session alive so its id() stays unique
        return client


def client_for_bucket(bucket: str) -> Any:
    """The client reads of ``bucket`` go through (e.g. to register botocore event hooks)."""
    return make_client(bucket_settings(bucket))


def endpoint_of(client: Any) -> str:
    return str(getattr(client.meta, "endpoint_url", None) or "AWS S3")


# --- writing ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class IncompleteUpload:
    """A multipart upload that was started and never completed or aborted (a crashed write)."""

    bucket: str
    key: str
    upload_id: str
    initiated: dt.datetime | None

    def __str__(self) -> str:
        when = f" started {self.initiated.isoformat(timespec='seconds')}" if self.initiated else ""
        return f"{s3_url(self.bucket, self.key)} (upload {self.upload_id}{when})"


@dataclass(frozen=True)
class S3Object:
    """One stored object: where it is, how big, and when it was written (for ``gc``'s min age)."""

    url: str
    key: str
    size: int
    last_modified: dt.datetime | None

    def age(self, now: dt.datetime | None = None) -> float:
        """Seconds since the object was written (0 when the server did not say)."""
        if self.last_modified is None:
            return 0.0
        return ((now or dt.datetime.now(dt.UTC)) - self.last_modified).total_seconds()


def _aware(when: dt.datetime | None) -> dt.datetime | None:
    return when.replace(tzinfo=dt.UTC) if when is not None and when.tzinfo is None else when


def _cutoff(older_than: dt.timedelta | float | None) -> dt.datetime | None:
    if older_than is None:
        return None
    if not isinstance(older_than, dt.timedelta):
        older_than = dt.timedelta(seconds=older_than)
    if older_than <= dt.timedelta(0):
        return None
    return dt.datetime.now(dt.UTC) - older_than


class S3ShardOutput:
    """One shard's bytes on their way to ``s3://bucket/key``: a multipart upload, or one PUT.

    Parts of at least ``part_size`` bytes are uploaded as soon as they fill, up to
    ``concurrency`` at a time; ``finish()`` completes the upload under the final key (only then
    does the object exist); ``abort()`` aborts it, or deletes the object (and its manifest) if it
    was already completed, so a whole write can be undone after some shards finished.
    """

    def __init__(self, store: S3DataStore, key: str) -> None:
        self.store = store
        self.bucket = store.bucket
        self.key = key
        self.url = s3_url(store.bucket, key)
        self.manifest_key: str | None = None
        self.completed = False
        self.bytes_written = 0
        self._client = store.client
        self._chunks: list[bytes] = []
        self._buffered = 0
        self._upload_id: str | None = None
        self._next_part = 1
        self._parts: dict[int, str] = {}
        self._pending: deque[tuple[int, Future[str]]] = deque()
        self._aborted = False
        self._finishing = False

    def __repr__(self) -> str:
        return f"S3ShardOutput({self.url!r})"

    def _error(self, exc: BaseException, action: str, key: str | None = None) -> AtdataError:
        return translate_error(
            exc,
            action=action,
            endpoint=self.store.endpoint_url,
            bucket=self.bucket,
            key=key or self.key,
            settings=self.store.settings,
        )

    # -- ShardOutput
    def write(self, data: bytes) -> None:
        if self._aborted or self.completed:
            raise StoreError(f"{self.url} is already {'aborted' if self._aborted else 'finished'}")
        self._chunks.append(data)
        self._buffered += len(data)
        self.bytes_written += len(data)
        if self._buffered >= self._part_target():
            self._flush(final=False)

    def _part_target(self) -> int:
        """``part_size``, growing by one ``part_size`` every 1000 parts.

        S3 allows 10,000 parts per upload: fixed 8 MiB parts would cap a shard at 80 GB; growing
        ones reach 430 GB while an ordinary shard still uploads in 8 MiB parts.
        """
        return self.store.part_size * (1 + (self._next_part - 1) // 1000)

    def finish(self) -> str:
        """Upload what is left and complete the upload: from now on the object exists."""
        if self.completed:
            return self.url
        # from here a failure may come after the server made the object (a timeout on the
        # answer): abort() then deletes the key too, which is harmless if it does not exist
        self._finishing = True
        try:
            if self._upload_id is None:
                body = b"".join(self._chunks)
                self._chunks, self._buffered = [], 0
                self._put(self.key, body, "application/x-tar", "writing")
            else:
                self._flush(final=True)
                self._drain()
                parts = [{"PartNumber": n, "ETag": e} for n, e in sorted(self._parts.items())]
                try:
                    self._client.complete_multipart_upload(
                        Bucket=self.bucket,
                        Key=self.key,
                        UploadId=self._upload_id,
                        MultipartUpload={"Parts": parts},
                    )
                except Exception as exc:
                    raise self._error(exc, "completing the upload of") from None
        except BaseException:
            with contextlib.suppress(Exception):  # the first failure is the one to report
                self.abort()
            raise
        self.completed = True
        return self.url

    def publish_manifest(self, document: dict[str, Any]) -> str:
        """Upload the shard's manifest sidecar (``<key without .tar>.manifest.json``)."""
        _bucket, key = parse_s3_url(manifest_url(self.url))
        # set first: abort() must delete it even if the PUT's fate is unknown
        self.manifest_key = key
        body = json.dumps(document, separators=(",", ":")).encode()
        self._put(key, body, "application/json", "writing the manifest")
        return s3_url(self.bucket, key)

    def abort(self) -> None:
        """Throw the shard away: abort the upload, or delete the completed object and manifest."""
        if self._aborted:
            return
        self._aborted = True
        self._chunks, self._buffered = [], 0
        for _number, future in self._pending:
            with contextlib.suppress(BaseException):
                future.result()  # S3 may keep parts that finish after an abort: wait first
        self._pending.clear()
        from botocore.exceptions import ClientError

        problems = []
        if self._upload_id is not None and not self.completed:
            try:
                self._client.abort_multipart_upload(
                    Bucket=self.bucket, Key=self.key, UploadId=self._upload_id
                )
            except ClientError as exc:
                if exc.response.get("Error", {}).get("Code") not in ("NoSuchUpload", "404"):
                    problems.append(self._error(exc, "aborting the upload of"))
            except Exception as exc:
                problems.append(self._error(exc, "aborting the upload of"))
        shard = self.key if self.completed or self._finishing else None
        doomed = [k for k in (shard, self.manifest_key) if k]
        for key in doomed:
            try:
                self._client.delete_object(Bucket=self.bucket, Key=key)
            except Exception as exc:
                problems.append(self._error(exc, "deleting", key))
        if problems:
            log.warning(
                "could not clean up %s (%s); S3DataStore.abort_incomplete_uploads() and "
                "list_urls() find what is left",
                self.url,
                "; ".join(str(p) for p in problems),
            )
            raise problems[0]

    # -- internals
    def _put(self, key: str, body: bytes, content_type: str, action: str) -> None:
        try:
            self._client.put_object(
                Bucket=self.bucket, Key=key, Body=body, ContentType=content_type
            )
        except Exception as exc:
            raise self._error(exc, action, key) from None

    def _flush(self, *, final: bool) -> None:
        """Turn buffered chunks into parts; on ``final`` the remainder becomes the last part."""
        if not self._buffered or (not final and self._buffered < self._part_target()):
            return
        body = b"".join(self._chunks)
        self._chunks, self._buffered = [], 0
        if self._upload_id is None:
            try:
                response = self._client.create_multipart_upload(
                    Bucket=self.bucket, Key=self.key, ContentType="application/x-tar"
                )
            except Exception as exc:
                raise self._error(exc, "starting the upload of") from None
            self._upload_id = response["UploadId"]
        if len(body) <= MAX_PART_SIZE:
            self._submit(body)
            return
        step = self.store.part_size
        view = memoryview(body)
        for start in range(0, len(body), step):
            self._submit(bytes(view[start : start + step]))

    def _submit(self, body: bytes) -> None:
        number = self._next_part
        if number > MAX_PARTS:
            raise StoreError(
                f"{self.url}: a shard may have at most {MAX_PARTS} parts (about "
                f"{55_000 * self.store.part_size / 1e9:,.0f} GB with part_size "
                f"{self.store.part_size >> 20} MiB); use a smaller maxsize or a larger part_size"
            )
        self._next_part += 1
        while len(self._pending) >= self.store.upload_concurrency:
            self._collect(*self._pending.popleft())
        self._pending.append((number, self.store.submit(self._upload_part, number, body)))

    def _upload_part(self, number: int, body: bytes) -> str:
        response = self._client.upload_part(
            Bucket=self.bucket, Key=self.key, UploadId=self._upload_id, PartNumber=number, Body=body
        )
        return str(response["ETag"])

    def _collect(self, number: int, future: Future[str]) -> None:
        try:
            self._parts[number] = future.result()
        except Exception as exc:
            raise self._error(exc, f"uploading part {number} of") from None

    def _drain(self) -> None:
        while self._pending:
            self._collect(*self._pending.popleft())


class S3DataStore:
    """Shards in an S3-compatible bucket: ``s3://<bucket>/<prefix>/<name>/<token>/data-%06d.tar``.

    Every write gets its own token directory, so it never overwrites an older dataset's shards.
    ``credentials`` is ``None`` (boto3's chain, or ``profile``), a dict with ``access_key``,
    ``secret_key`` and optionally ``session_token`` (or the same as keywords), or a
    ``boto3.Session``. Making a store registers how to reach its bucket (see
    ``configure_bucket``) so its URLs read back anywhere in this process; pass
    ``register=False`` not to.
    """

    kind = "s3"

    def __init__(
        self,
        *,
        bucket: str,
        endpoint: str | None = None,
        prefix: str = "",
        region: str | None = None,
        credentials: Any = None,
        profile: str | None = None,
        access_key: str | None = None,
        secret_key: str | None = None,
        session_token: str | None = None,
        part_size: int = PART_SIZE,
        upload_concurrency: int = UPLOAD_CONCURRENCY,
        connect_timeout: float = CONNECT_TIMEOUT,
        read_timeout: float = READ_TIMEOUT,
        max_attempts: int = MAX_ATTEMPTS,
        register: bool = True,
    ) -> None:
        if not bucket or "/" in bucket:
            raise StoreError(f"S3 bucket name {bucket!r} is not valid")
        if not MIN_PART_SIZE <= part_size <= MAX_PART_SIZE:
            raise ValueError(f"part_size must be between 5 MiB and 5 GiB, got {part_size}")
        if upload_concurrency < 1:
            raise ValueError("upload_concurrency must be at least 1")
        self.bucket = bucket
        self.prefix = _clean_prefix(prefix, what="store prefix")
        self.part_size = part_size
        self.upload_concurrency = upload_concurrency
        creds = _credentials_from(credentials, access_key, secret_key, session_token)
        self.settings = S3Settings(
            endpoint, region, profile, creds, connect_timeout, read_timeout, max_attempts
        )
        self._client: Any = None
        self._executor: ThreadPoolExecutor | None = None
        self._lock = threading.Lock()
        if register:
            _register_bucket(bucket, self.settings)

    @classmethod
    def from_config(cls, repo: Any) -> S3DataStore:
        """The store a ``config.RepoConfig`` describes (``store = "s3"``)."""
        return configure_from_repo(repo)

    def __repr__(self) -> str:
        where = self.settings.endpoint or _endpoint_from_env() or "AWS"
        prefix = f"/{self.prefix}" if self.prefix else ""
        return f"S3DataStore(s3://{self.bucket}{prefix} at {where})"

    @property
    def client(self) -> Any:
        """The boto3 S3 client (made on first use: boto3 is slow to import)."""
        if self._client is None:
            self._client = make_client(self.settings)
        return self._client

    @property
    def endpoint_url(self) -> str:
        return endpoint_of(self.client)

    def submit(self, fn: Callable[..., str], *args: Any) -> Future[str]:
        """Run a part upload on the store's small thread pool (inline when concurrency is 1)."""
        if self.upload_concurrency == 1:
            future: Future[str] = Future()
            try:
                future.set_result(fn(*args))
            except BaseException as exc:
                future.set_exception(exc)
            return future
        with self._lock:
            if self._executor is None:
                self._executor = ThreadPoolExecutor(
                    max_workers=self.upload_concurrency, thread_name_prefix="atdata-s3-upload"
                )
        return self._executor.submit(fn, *args)

    def close(self) -> None:
        """Stop the upload threads (they are made again if the store is used later)."""
        with self._lock:
            executor, self._executor = self._executor, None
        if executor is not None:
            executor.shutdown(wait=True)

    def _error(self, exc: BaseException, action: str, key: str | None = None) -> AtdataError:
        return translate_error(
            exc,
            action=action,
            endpoint=self.endpoint_url,
            bucket=self.bucket,
            key=key,
            settings=self.settings,
        )

    def _key_prefix(self, prefix: str) -> str:
        return _join(self.prefix, _clean_prefix(prefix, what="dataset prefix"))

    # -- DataStore
    def shard_writer(
        self,
        prefix: str,
        *,
        maxcount: int | None = 10000,
        maxsize: int | None = None,
        manifest: bool = False,
    ) -> ShardWriter:
        """A writer whose shards are multipart uploads under a fresh ``<prefix>/<token>/``."""
        base = _join(self._key_prefix(prefix), uuid.uuid4().hex[:12])
        return ShardWriter(
            maxcount=maxcount,
            maxsize=maxsize,
            manifest=manifest,
            open_output=lambda i: S3ShardOutput(self, f"{base}/data-{i:06d}.tar"),
        )

    def write_shards(
        self,
        ds_or_samples: Any,
        *,
        prefix: str,
        maxcount: int | None = 10000,
        maxsize: int | None = None,
        manifest: bool = False,
    ) -> list[str]:
        """Write samples (or copy a ``Dataset`` byte for byte, keys kept) to new shards.

        All or nothing: on any failure every shard written so far is removed and the error is
        raised. Returns the ``s3://`` URLs, in order.
        """
        writer = self.shard_writer(prefix, maxcount=maxcount, maxsize=maxsize, manifest=manifest)
        try:
            raw = getattr(ds_or_samples, "raw", None)
            if callable(raw):
                for sample in raw():
                    for ext, data in sample.parts.items():
                        name = f"{sample.key}.{ext}" if ext else sample.key
                        writer.write_member(name, bytes(data), key=sample.key)
            else:
                writer.write_all(ds_or_samples)
            if writer.total_samples == 0:
                raise ValueError(f"no samples to write to s3://{self.bucket}/{prefix}")
            infos = writer.commit()
        except BaseException:
            writer.abort()
            raise
        return [info.url for info in infos]

    def delete_urls(self, urls: list[str]) -> None:
        """Delete shards and their manifests; URLs outside this store's bucket/prefix are skipped."""
        keys: list[str] = []
        for url in urls:
            try:
                bucket, key = parse_s3_url(url)
            except SourceError:
                continue
            if bucket != self.bucket or (self.prefix and not key.startswith(self.prefix + "/")):
                log.warning("not deleting %s: it is outside %r", url, self)
                continue
            keys.append(key)
            if key.endswith(".tar"):
                keys.append(parse_s3_url(manifest_url(url))[1])
        for start in range(0, len(keys), 1000):
            batch = keys[start : start + 1000]
            try:
                response = self.client.delete_objects(
                    Bucket=self.bucket,
                    Delete={"Objects": [{"Key": k} for k in batch], "Quiet": True},
                )
            except Exception as exc:
                raise self._error(exc, f"deleting {len(batch)} objects from") from None
            errors = [e for e in response.get("Errors", []) if e.get("Code") != "NoSuchKey"]
            if errors:
                first = errors[0]
                raise S3Error(
                    f"S3 at {self.endpoint_url} could not delete {len(errors)} objects from "
                    f"bucket {self.bucket!r}, e.g. {first.get('Key')!r}: {first.get('Code')}",
                    endpoint=self.endpoint_url,
                    bucket=self.bucket,
                    key=first.get("Key"),
                    code=first.get("Code"),
                )

    def iter_objects(self, prefix: str = "", *, page_size: int = 1000) -> Iterator[S3Object]:
        """Every object under the store's prefix (plus ``prefix``), one listing page at a time."""
        key_prefix = self._key_prefix(prefix)
        paginator = self.client.get_paginator("list_objects_v2")
        try:
            for page in paginator.paginate(
                Bucket=self.bucket,
                Prefix=key_prefix + "/" if key_prefix else "",
                PaginationConfig={"PageSize": page_size},
            ):
                for item in page.get("Contents", []):
                    key = item["Key"]
                    yield S3Object(
                        s3_url(self.bucket, key),
                        key,
                        int(item.get("Size", 0)),
                        _aware(item.get("LastModified")),
                    )
        except AtdataError:
            raise
        except Exception as exc:
            raise self._error(exc, "listing") from None

    def list_objects(self, prefix: str = "", *, page_size: int = 1000) -> list[S3Object]:
        """Shards (``.tar``) with their sizes and ages: what ``gc`` needs to spare young ones."""
        objects = self.iter_objects(prefix, page_size=page_size)
        return sorted((o for o in objects if o.key.endswith(".tar")), key=lambda o: o.url)

    def list_urls(self, prefix: str = "", *, page_size: int = 1000) -> list[str]:
        """Every shard (``.tar``) URL under the store's prefix plus ``prefix``, sorted."""
        return [o.url for o in self.list_objects(prefix, page_size=page_size)]

    def list_incomplete_uploads(
        self, prefix: str = "", *, older_than: dt.timedelta | float | None = None
    ) -> list[IncompleteUpload]:
        """Multipart uploads under the store's prefix never completed or aborted (crashed writes).

        With ``older_than`` (seconds or a timedelta) only those started at least that long ago.
        """
        key_prefix = self._key_prefix(prefix)
        paginator = self.client.get_paginator("list_multipart_uploads")
        cutoff = _cutoff(older_than)
        out = []
        try:
            for page in paginator.paginate(
                Bucket=self.bucket, Prefix=key_prefix + "/" if key_prefix else ""
            ):
                for item in page.get("Uploads", []):
                    upload = IncompleteUpload(
                        self.bucket, item["Key"], item["UploadId"], _aware(item.get("Initiated"))
                    )
                    if cutoff is None or upload.initiated is None or upload.initiated <= cutoff:
                        out.append(upload)
        except Exception as exc:
            raise self._error(exc, "listing incomplete uploads in") from None
        return sorted(out, key=lambda u: (u.key, u.upload_id))

    def abort_incomplete_uploads(
        self, *, older_than: dt.timedelta | float | None = dt.timedelta(days=1), prefix: str = ""
    ) -> list[IncompleteUpload]:
        """Abort the incomplete uploads started more than ``older_than`` ago; returns them.

        ``None`` or 0 aborts all of them; the default (a day) spares writes still running.
        """
        from botocore.exceptions import ClientError

        aborted = []
        for upload in self.list_incomplete_uploads(prefix, older_than=older_than):
            try:
                self.client.abort_multipart_upload(
                    Bucket=self.bucket, Key=upload.key, UploadId=upload.upload_id
                )
            except ClientError as exc:
                if exc.response.get("Error", {}).get("Code") != "NoSuchUpload":
                    raise self._error(exc, "aborting an incomplete upload of", upload.key) from None
            except Exception as exc:
                raise self._error(exc, "aborting an incomplete upload of", upload.key) from None
            aborted.append(upload)
        return aborted

    def read_url(self, url: str) -> str:
        return url

    def supports_streaming(self) -> bool:
        return True

    def source(self, urls: Sequence[str]) -> S3Source:
        """A source reading these URLs with this store's settings."""
        return S3Source(self.bucket, list(urls), settings=self.settings)


# --- reading ---------------------------------------------------------------------------------------


class _S3Stream:
    """A ``get_object`` body read in chunks; a broken connection is resumed by a ranged GET.

    The resume is pinned to the first response's ETag (``If-Match``), so a shard replaced
    meanwhile is never spliced from two versions. Failures become ``S3Error``s naming the shard.
    ``start``/``end`` (inclusive) describe the byte range the response covers.
    """

    def __init__(
        self,
        source: S3Source,
        bucket: str,
        key: str,
        response: dict[str, Any],
        *,
        start: int = 0,
        end: int | None = None,
    ) -> None:
        self._source = source
        self.bucket = bucket
        self.key = key
        self._body = response["Body"]
        self.etag = response.get("ETag")
        self.length = response.get("ContentLength")
        self.content_type = response.get("ContentType")
        self.start = start
        self.end = end
        self.position = 0
        self.resumes = 0
        self.head = b""  # the first bytes seen: tells a tar from something else in errors

    def readable(self) -> bool:
        return True

    def read(self, n: int = -1) -> bytes:
        from botocore.exceptions import (
            ConnectionClosedError,
            IncompleteReadError,
            ResponseStreamingError,
        )

        size = n if n is not None and n > 0 else READ_CHUNK
        while True:
            try:
                data = self._body.read(size)
            except (ResponseStreamingError, IncompleteReadError, ConnectionClosedError) as exc:
                if self.resumes >= MAX_RESUMES:
                    raise self._fail(exc) from None
                self._resume()
                continue
            except Exception as exc:
                raise self._fail(exc) from None
            if self.position < BLOCK_PEEK:
                self.head += data[: BLOCK_PEEK - self.position]
            self.position += len(data)
            self._source._count(len(data))
            return data

    def _fail(self, exc: BaseException) -> AtdataError:
        return self._source._error(
            exc, f"reading (at byte {self.start + self.position} of)", self.bucket, self.key
        )

    def _resume(self) -> None:
        self.resumes += 1
        with contextlib.suppress(Exception):
            self._body.close()
        end = "" if self.end is None else str(self.end)
        extra = {"IfMatch": self.etag} if self.etag else {}
        response = self._source._get(
            self.bucket,
            self.key,
            f"resuming (at byte {self.start + self.position} of)",
            Range=f"bytes={self.start + self.position}-{end}",
            **extra,
        )
        self._body = response["Body"]

    def looks_like_tar(self) -> bool:
        """Whether the first block is a ustar/GNU tar header (for "not a tar" errors)."""
        return len(self.head) >= BLOCK_PEEK and self.head[257:262] == b"ustar"

    def close(self) -> None:
        """Close without draining: the rest of a 1 GB shard is never downloaded."""
        with contextlib.suppress(Exception):
            self._body.close()


class S3Source:
    """Shards in S3: ``S3Source("bucket", ["a/data-000000.tar", ...])`` or full ``s3://`` URLs.

    Shard ids are ``s3://bucket/key`` URLs (brace notation allowed in keys). How to reach each
    bucket comes from the explicit arguments, else ``configure_bucket``/a store for that bucket,
    else boto3's chain (``AWS_ENDPOINT_URL``, ``AWS_PROFILE``, ``~/.aws``...).
    """

    def __init__(
        self,
        bucket: str,
        keys: str | Sequence[str],
        *,
        endpoint: str | None = None,
        region: str | None = None,
        credentials: Any = None,
        profile: str | None = None,
        access_key: str | None = None,
        secret_key: str | None = None,
        session_token: str | None = None,
        anonymous: bool | None = None,
        connect_timeout: float | None = None,
        read_timeout: float | None = None,
        max_attempts: int | None = None,
        settings: S3Settings | None = None,
    ) -> None:
        self.bucket = bucket
        if isinstance(keys, str):
            keys = [keys]
        self._urls: list[str] = []
        for item in keys:
            for one in expand_braces(item):
                self._urls.append(
                    one if one.startswith("s3://") else s3_url(bucket, one.lstrip("/"))
                )
        for url in self._urls:
            parse_s3_url(url)  # validates
        self._base = settings
        self._overrides = {
            "endpoint": endpoint,
            "region": region,
            "profile": profile,
            "credentials": _credentials_from(credentials, access_key, secret_key, session_token),
            "anonymous": anonymous,
            "connect_timeout": connect_timeout,
            "read_timeout": read_timeout,
            "max_attempts": max_attempts,
        }
        self.requests = 0
        self.bytes_read = 0
        self._stats_lock = threading.Lock()

    @classmethod
    def from_urls(cls, urls: Sequence[str], **options: Any) -> S3Source:
        """The factory ``sources.source_for_urls`` calls with a list of ``s3://`` URLs."""
        urls = [u for url in urls for u in expand_braces(url)]
        if not urls:
            raise SourceError("no s3:// URLs given")
        bucket, _key = parse_s3_url(urls[0])
        return cls(bucket, urls, **options)

    def __repr__(self) -> str:
        more = f", … {len(self._urls)} shards" if len(self._urls) > 1 else ""
        first = self._urls[0] if self._urls else f"s3://{self.bucket}/"
        return f"S3Source({first!r}{more})"

    # -- settings and clients
    def settings_for(self, bucket: str) -> S3Settings:
        base = self._base if self._base is not None else bucket_settings(bucket)
        return base.merged(**self._overrides)

    def client(self, bucket: str | None = None) -> Any:
        """The boto3 client used for ``bucket`` (default: the source's own bucket)."""
        return make_client(self.settings_for(bucket or self.bucket))

    def _locate(self, shard_id: str) -> tuple[str, str]:
        if shard_id.startswith("s3://"):
            return parse_s3_url(shard_id)
        return self.bucket, shard_id.lstrip("/")

    def _error(self, exc: BaseException, action: str, bucket: str, key: str) -> AtdataError:
        try:
            endpoint = endpoint_of(self.client(bucket))
        except AtdataError:
            endpoint = self.settings_for(bucket).endpoint or "S3"
        return translate_error(
            exc,
            action=action,
            endpoint=endpoint,
            bucket=bucket,
            key=key,
            settings=self.settings_for(bucket),
        )

    def _count(self, received: int) -> None:
        with self._stats_lock:
            self.bytes_read += received

    def _get(self, bucket: str, key: str, action: str, **params: Any) -> dict[str, Any]:
        client = self.client(bucket)
        with self._stats_lock:
            self.requests += 1
        try:
            response: dict[str, Any] = client.get_object(Bucket=bucket, Key=key, **params)
        except Exception as exc:
            raise self._error(exc, action, bucket, key) from None
        return response

    # -- DataSource
    @property
    def shards(self) -> list[str]:
        return list(self._urls)

    def list_shards(self) -> list[str]:
        return list(self._urls)

    @contextlib.contextmanager
    def open_shard(self, shard_id: str) -> Iterator[IO[bytes]]:
        """Stream a shard; leaving the block closes the connection (the rest is not fetched)."""
        bucket, key = self._locate(shard_id)
        stream = _S3Stream(self, bucket, key, self._get(bucket, key, "reading"))
        try:
            yield cast("IO[bytes]", stream)  # a read-only binary stream: read(n), close()
        except CorruptShardError as exc:
            if (
                exc.shard not in (None, shard_id, key, s3_url(bucket, key))
                or stream.looks_like_tar()
            ):
                raise
            endpoint = endpoint_of(self.client(bucket))
            kind = f", Content-Type {stream.content_type}" if stream.content_type else ""
            raise CorruptShardError(
                f"{exc.problem}; the object at {endpoint} ({stream.length} bytes{kind}) does not "
                "start with a tar header, so it is not a WebDataset tar shard: check the key, "
                "or that the entry's URLs point at .tar shards",
                shard=s3_url(bucket, key),
            ) from None
        finally:
            stream.close()

    def read_range(self, shard_id: str, start: int, end_inclusive: int) -> bytes:
        """One ranged GET (``Range: bytes=start-end``); fewer bytes if the shard ends first."""
        if start < 0 or end_inclusive < start:
            raise ValueError(f"bad byte range {start}..{end_inclusive}")
        length = end_inclusive - start + 1
        bucket, key = self._locate(shard_id)
        if length > MAX_MEMBER_SIZE + 4096:
            raise SourceError(
                f"refusing to read a range of {length} bytes", shard=s3_url(bucket, key)
            )
        try:
            response = self._get(
                bucket, key, "reading a byte range of", Range=f"bytes={start}-{end_inclusive}"
            )
        except S3Error as exc:
            if exc.code in ("InvalidRange", "416"):
                return b""  # the range starts past the end of the shard
            raise
        stream = _S3Stream(self, bucket, key, response, start=start, end=end_inclusive)
        try:
            parts = []
            have = 0
            while have < length:
                chunk = stream.read(min(length - have, READ_CHUNK * 8))
                if not chunk:
                    break
                parts.append(chunk)
                have += len(chunk)
            return b"".join(parts)
        finally:
            stream.close()

    def read_bytes(self, url: str) -> bytes | None:
        """A whole small object (a manifest); ``None`` if there is no such key (or it is hidden)."""
        bucket, key = self._locate(url)
        try:
            response = self._get(bucket, key, "reading")
        except S3KeyNotFoundError:
            return None
        except S3CredentialsError as exc:
            # S3 answers 403, not 404, for a missing key to whoever may not list the bucket
            # (anonymous readers of a public shard): a sidecar that is absent, not an error.
            # Wrong keys (InvalidAccessKeyId, SignatureDoesNotMatch) still raise.
            if exc.code == "AccessDenied":
                return None
            raise
        length = response.get("ContentLength")
        stream = _S3Stream(self, bucket, key, response)
        try:
            if length is not None and length > MAX_SIDECAR_BYTES:
                raise SourceError(
                    f"sidecar is larger than {MAX_SIDECAR_BYTES >> 20} MB",
                    shard=s3_url(bucket, key),
                )
            parts = []
            have = 0
            while have <= MAX_SIDECAR_BYTES:
                chunk = stream.read(READ_CHUNK)
                if not chunk:
                    break
                parts.append(chunk)
                have += len(chunk)
            if have > MAX_SIDECAR_BYTES:
                raise SourceError(
                    f"sidecar is larger than {MAX_SIDECAR_BYTES >> 20} MB",
                    shard=s3_url(bucket, key),
                )
            return b"".join(parts)
        finally:
            stream.close()

    def exists(self, shard_id: str) -> bool:
        """Whether the object exists (one HEAD request)."""
        bucket, key = self._locate(shard_id)
        try:
            self.client(bucket).head_object(Bucket=bucket, Key=key)
        except Exception as exc:
            error = self._error(exc, "checking", bucket, key)
            if isinstance(error, S3KeyNotFoundError):
                return False
            raise error from None
        return True


def _register() -> None:
    from .. import sources

    sources.register_source("s3", S3Source.from_urls)


_register()


__all__ = [
    "DEFAULT_REGION",
    "PART_SIZE",
    "IncompleteUpload",
    "S3BucketNotFoundError",
    "S3CredentialsError",
    "S3DataStore",
    "S3Error",
    "S3KeyNotFoundError",
    "S3Object",
    "S3Settings",
    "S3ShardOutput",
    "S3Source",
    "S3UnavailableError",
    "bucket_settings",
    "client_for_bucket",
    "configure_bucket",
    "configure_from_repo",
    "forget_bucket",
    "make_client",
    "parse_s3_url",
    "s3_url",
    "translate_error",
]
