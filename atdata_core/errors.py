"""One small error hierarchy, so callers (the TUI, the CLI, scripts) can catch ``AtdataError``.

Every message names the thing that failed and, where there is one, what to do about it.
"""

from __future__ import annotations


class AtdataError(Exception):
    """Root of every error this library raises on purpose."""


# --- samples and shards -------------------------------------------------------------------------


class SampleError(AtdataError):
    """A sample could not be encoded or decoded."""

    def __init__(self, problem: str, *, shard: str | None = None, key: str | None = None) -> None:
        self.problem = problem
        self.shard = shard
        self.key = key
        where = []
        if shard:
            where.append(f"shard {shard}")
        if key:
            where.append(f"sample {key}")
        super().__init__(f"{', '.join(where)}: {problem}" if where else problem)

    def located(self, *, shard: str | None = None, key: str | None = None) -> SampleError:
        """The same error with its location filled in (decoders deep down do not know it)."""
        return type(self)(self.problem, shard=shard or self.shard, key=key or self.key)


class NotMsgpackError(SampleError):
    """A tar member's bytes are not a msgpack map."""


class MissingFieldError(SampleError):
    """A required field of the sample type is absent from the stored map."""


class FieldTypeError(SampleError):
    """A stored value does not have the type the schema declares."""


class NDArrayError(SampleError):
    """An NDArray blob has a bad header (dtype, rank, shape or length)."""


class ShardError(AtdataError):
    """A shard cannot be read: corrupt, truncated, missing or unreachable."""

    def __init__(self, problem: str, *, shard: str | None = None) -> None:
        self.problem = problem
        self.shard = shard
        super().__init__(f"shard {shard}: {problem}" if shard else problem)


class CorruptShardError(ShardError):
    """The tar structure is damaged (bad header checksum, impossible sizes, unsafe names)."""


class TruncatedShardError(CorruptShardError):
    """The shard ends in the middle of a member."""


class SourceError(ShardError):
    """The place a shard lives (disk, HTTP, S3, PDS) could not be reached or refused us."""


# --- refs, schemas, lenses ----------------------------------------------------------------------


class RefError(AtdataError, ValueError):
    """A dataset or schema reference the user typed cannot be parsed or routed."""


class SchemaError(AtdataError):
    """A schema record is malformed, hostile, or does not match the data."""


class LensError(AtdataError):
    """No lens connects two sample types, or a lens failed."""


# --- index, stores, backends --------------------------------------------------------------------


class NotFoundError(AtdataError, KeyError):
    """A dataset, schema, label or lens is not in the index."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class AlreadyExistsError(AtdataError):
    """A name is taken and the caller asked not to replace it."""


class WriteError(AtdataError):
    """Writing a dataset failed; nothing was registered and partial shards were removed."""


class StoreError(AtdataError):
    """A data store (disk, S3, PDS blobs) refused or failed an operation."""


class BackendUnavailableError(AtdataError):
    """An index backend or server cannot be reached (names the backend and address)."""

    def __init__(self, backend: str, address: str, detail: str) -> None:
        self.backend = backend
        self.address = address
        super().__init__(f"{backend} at {address} is unavailable: {detail}")


class ReadOnlyError(AtdataError):
    """A write was attempted on something opened read-only."""


# --- the atmosphere (ATProto) -------------------------------------------------------------------


class AtmosphereError(AtdataError):
    """An ATProto operation failed."""


class LoginError(AtmosphereError):
    """Login failed: bad credentials, unknown handle, or the PDS is unreachable."""


class NotLoggedInError(AtmosphereError):
    """An operation needs a logged-in session and there is none."""


class RecordError(AtmosphereError):
    """A record from the network is malformed (missing fields, wrong types, hostile values)."""


class BlobTooLargeError(AtmosphereError):
    """A shard is larger than the PDS accepts as one blob."""


class CancelledError(AtdataError):
    """The user cancelled a long operation; whatever it wrote has been removed."""
