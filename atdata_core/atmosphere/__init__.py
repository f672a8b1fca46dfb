"""The atmosphere: datasets published on the AT Protocol network (``science.alt.dataset``).

- ``AtmosphereClient``: login (handle or DID + app password, any PDS), saved 0600 sessions with
  refreshed tokens persisted, logout; record and blob writes; anonymous reads of anyone's repo.
- ``records``: build and validate entry, schema, label and lens records (legacy namespace read).
- ``PDSBlobStore``: shards as PDS blobs; ``getBlob`` URLs stream them back.
- ``AtmosphereBackend``: what ``Index`` calls for ``@handle/name`` and ``at://`` references.
- ``plan_promotion`` / ``execute_plan``: resumable, idempotent publication of local entries.
- ``AppViewClient``: search and lookups across the whole network through the dataset AppView
  (atdata-app), answers validated like PDS records.

``default_backend()`` builds a backend from the config and the saved session without any
network I/O (the session file is read on first use).
"""

from __future__ import annotations

from typing import Any

from ..errors import AtmosphereError, BlobTooLargeError, LoginError, NotLoggedInError, RecordError
from .appview import AppViewClient, AppViewError, NetworkPage, ServiceInfo
from .backend import AtmosphereBackend, DatasetNotFoundError
from .blobs import PDSBlobStore, UploadedBlob, blob_cid
from .client import (
    AtmosphereClient,
    RecordRef,
    RecordView,
    SessionInfo,
    blob_url,
    parse_blob_url,
)
from .lexicons import LexiconSet, LexiconValidationError
from .promote import (
    PlannedBlob,
    PlannedRecord,
    PromotionPlan,
    PromotionProgress,
    execute_plan,
    plan_promotion,
    promote_dataset,
    promote_entry,
)
from .records import (
    Checksum,
    CodeReference,
    DatasetSize,
    EntryRecord,
    LabelRecord,
    LensRecord,
    Storage,
    parse_schema,
    schema_to_record,
)
from .resolve import HandleNotFoundError, Identity, IdentityResolver


def default_backend(
    config: Any = None, *, appview: str | None = None, **client_kwargs: Any
) -> AtmosphereBackend:
    """A backend from the ``[atmosphere]`` config and the saved session (if any). No network I/O.

    Logged in when a session file exists (it is read on first use), anonymous otherwise. The
    AppView is ``appview`` (e.g. ``--appview``), else ``[atmosphere] appview``, else none.
    """
    from ..config import load_config

    cfg = config if config is not None else load_config()
    client = AtmosphereClient.from_config(cfg, **client_kwargs)
    url = appview or cfg.atmosphere.appview
    view = (
        AppViewClient(url, resolver=client.resolver, records=client, timeout=client.timeout)
        if url
        else None
    )
    return AtmosphereBackend(client, appview=view)


__all__ = [
    "AppViewClient",
    "AppViewError",
    "AtmosphereBackend",
    "AtmosphereClient",
    "AtmosphereError",
    "BlobTooLargeError",
    "Checksum",
    "CodeReference",
    "DatasetNotFoundError",
    "DatasetSize",
    "EntryRecord",
    "HandleNotFoundError",
    "Identity",
    "IdentityResolver",
    "LabelRecord",
    "LensRecord",
    "LexiconSet",
    "LexiconValidationError",
    "LoginError",
    "NetworkPage",
    "NotLoggedInError",
    "PDSBlobStore",
    "PlannedBlob",
    "PlannedRecord",
    "PromotionPlan",
    "PromotionProgress",
    "RecordError",
    "RecordRef",
    "RecordView",
    "ServiceInfo",
    "SessionInfo",
    "Storage",
    "UploadedBlob",
    "blob_cid",
    "blob_url",
    "default_backend",
    "execute_plan",
    "parse_blob_url",
    "parse_schema",
    "plan_promotion",
    "promote_dataset",
    "promote_entry",
    "schema_to_record",
]
