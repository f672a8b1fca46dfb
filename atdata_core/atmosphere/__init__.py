"""The atmosphere: datasets published on the AT Protocol network (``science.alt.dataset``).

- ``AtmosphereClient``: login (handle or DID + app password, any PDS), saved 0600 sessions with
  refreshed tokens persisted, logout; record and blob writes; anonymous reads of anyone's repo.
- ``records``: build and validate entry, schema, label and lens records (legacy namespace read).
- ``PDSBlobStore``: shards as PDS blobs; ``getBlob`` URLs stream them back.
- ``AtmosphereBackend``: what ``Index`` calls for ``@handle/name`` and ``at://`` references.
- ``plan_promotion`` / ``execute_plan``: resumable, idempotent publication of local entries.

``default_backend()`` builds a backend from the config and the saved session without any
network I/O (the session file is read on first use).
"""

from __future__ import annotations

from typing import Any

from ..errors import AtmosphereError, BlobTooLargeError, LoginError, NotLoggedInError, RecordError
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


def default_backend(config: Any = None, **client_kwargs: Any) -> AtmosphereBackend:
    """A backend from the ``[atmosphere]`` config and the saved session (if any). No network I/O.

    Logged in when a session file exists (it is read on first use), anonymous otherwise.
    """
    return AtmosphereBackend(AtmosphereClient.from_config(config, **client_kwargs))


__all__ = [
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
    "NotLoggedInError",
    "PDSBlobStore",
    "PlannedBlob",
    "PlannedRecord",
    "PromotionPlan",
    "PromotionProgress",
    "RecordError",
    "RecordRef",
    "RecordView",
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
