"""Parse the dataset references users type: ``name``, ``repo/name``, ``@handle/name``, ``at://…``.

One parser, so the CLI, the TUI and the Index all agree on what a reference means and all give the
same clear error for a bad one.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from .errors import RefError

LOCAL_REPO = "local"
ATMOSPHERE_REPO = "_atmosphere"

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+-]{0,199}")
_REPO = re.compile(r"[A-Za-z][A-Za-z0-9_-]{0,63}")
_HANDLE = re.compile(
    r"(?=.{1,253}$)([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z][A-Za-z0-9-]*"
)
_DID = re.compile(r"did:(plc:[a-z2-7]{24}|web:[A-Za-z0-9.%:-]{1,253})")
_NSID = re.compile(
    r"[a-zA-Z]([a-zA-Z0-9-]*[a-zA-Z0-9])?(\.[a-zA-Z]([a-zA-Z0-9-]*[a-zA-Z0-9])?){2,}"
)
_RKEY = re.compile(r"[A-Za-z0-9._:~-]{1,512}")
_CID = re.compile(r"bafy[a-z2-7]{20,}")

RefKind = Literal["local", "repo", "handle", "at_uri", "cid"]


@dataclass(frozen=True)
class DatasetRef:
    """A parsed dataset reference. ``str(ref)`` gives back a canonical form."""

    kind: RefKind
    name: str | None = None
    version: str | None = None
    repo: str = LOCAL_REPO
    handle: str | None = None
    did: str | None = None
    collection: str | None = None
    rkey: str | None = None
    cid: str | None = None

    def __str__(self) -> str:
        v = f"@{self.version}" if self.version else ""
        if self.kind == "local":
            return f"{self.name}{v}"
        if self.kind == "repo":
            return f"{self.repo}/{self.name}{v}"
        if self.kind == "handle":
            return f"@{self.handle or self.did}/{self.name}{v}"
        if self.kind == "at_uri":
            return f"at://{self.did or self.handle}/{self.collection}/{self.rkey}"
        return str(self.cid)

    @property
    def is_remote(self) -> bool:
        return self.kind in ("handle", "at_uri")


def validate_dataset_name(name: str) -> str:
    """Dataset names: letters, digits and ``._+-``, up to 200 characters, starting alphanumeric."""
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise RefError(
            f"invalid dataset name {name!r}: use letters, digits, '.', '_', '+' or '-' "
            "(up to 200, starting with a letter or digit)"
        )
    return name


def validate_repo_name(repo: str) -> str:
    if not _REPO.fullmatch(repo):
        raise RefError(
            f"invalid repository name {repo!r}: use letters, digits, '_' or '-', starting with a letter"
        )
    return repo


def _split_version(text: str) -> tuple[str, str | None]:
    name, sep, version = text.partition("@")
    if sep and not version:
        raise RefError(f"reference {text!r} ends with '@': give a version after it or drop the '@'")
    return name, (version or None)


def parse_at_uri(text: str) -> DatasetRef:
    """``at://did:plc:…/collection/rkey`` (a handle may stand in for the DID)."""
    body = text[len("at://") :]
    parts = body.split("/")
    if len(parts) != 3 or not all(parts):
        raise RefError(
            f"invalid at:// URI {text!r}: expected at://<did or handle>/<collection>/<record key>"
        )
    authority, collection, rkey = parts
    did = authority if authority.startswith("did:") else None
    if did is not None and not _DID.fullmatch(did):
        raise RefError(f"invalid DID {did!r} in {text!r}")
    if did is None and not _HANDLE.fullmatch(authority):
        raise RefError(f"invalid handle {authority!r} in {text!r}")
    if not _NSID.fullmatch(collection):
        raise RefError(f"invalid collection {collection!r} in {text!r}")
    if not _RKEY.fullmatch(rkey):
        raise RefError(f"invalid record key {rkey!r} in {text!r}")
    return DatasetRef(
        "at_uri",
        handle=None if did else authority,
        did=did,
        collection=collection,
        rkey=rkey,
    )


def parse_ref(text: str) -> DatasetRef:
    """Parse a dataset reference, raising ``RefError`` that says which forms are accepted."""
    if not isinstance(text, str):
        raise RefError(f"a dataset reference must be a string, not {type(text).__name__}")
    text = text.strip()
    if not text:
        raise RefError("empty dataset reference: give a name, repo/name, @handle/name or at:// URI")
    if any(ord(c) < 32 or ord(c) == 127 for c in text) or len(text) > 1024:
        raise RefError(f"dataset reference {text[:60]!r} has control characters or is too long")
    if text.startswith("at://"):
        return parse_at_uri(text)
    if _CID.fullmatch(text):
        return DatasetRef("cid", cid=text)
    if text.startswith("@"):
        authority, sep, rest = text[1:].partition("/")
        if not sep or not rest:
            raise RefError(f"reference {text!r} needs a dataset name: @handle/name")
        name, version = _split_version(rest)
        validate_dataset_name(name)
        if authority == LOCAL_REPO:
            return DatasetRef("local", name=name, version=version)
        if authority.startswith("did:"):
            if not _DID.fullmatch(authority):
                raise RefError(f"invalid DID {authority!r} in {text!r}")
            return DatasetRef("handle", name=name, version=version, did=authority)
        if not _HANDLE.fullmatch(authority):
            raise RefError(
                f"invalid handle {authority!r} in {text!r}: a handle looks like alice.bsky.social"
            )
        return DatasetRef("handle", name=name, version=version, handle=authority.lower())
    if "/" in text:
        repo, _, rest = text.partition("/")
        if "/" in rest:
            raise RefError(f"reference {text!r} has too many '/': use repo/name")
        validate_repo_name(repo)
        name, version = _split_version(rest)
        validate_dataset_name(name)
        if repo == LOCAL_REPO:
            return DatasetRef("local", name=name, version=version)
        return DatasetRef("repo", name=name, version=version, repo=repo)
    name, version = _split_version(text)
    validate_dataset_name(name)
    return DatasetRef("local", name=name, version=version)
