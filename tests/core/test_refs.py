"""The reference parser: every accepted form, and a clear error for each bad one."""

from __future__ import annotations

import pytest

from atdata_core.errors import RefError
from atdata_core.refs import parse_ref


@pytest.mark.parametrize(
    ("text", "kind", "name", "repo", "version"),
    [
        ("mnist", "local", "mnist", "local", None),
        ("mnist@2", "local", "mnist", "local", "2"),
        ("@local/mnist", "local", "mnist", "local", None),
        ("local/mnist", "local", "mnist", "local", None),
        ("lab/imagenet-1k", "repo", "imagenet-1k", "lab", None),
        ("lab/imagenet-1k@v3", "repo", "imagenet-1k", "lab", "v3"),
    ],
)
def test_local_and_repo_refs(
    text: str, kind: str, name: str, repo: str, version: str | None
) -> None:
    ref = parse_ref(text)
    assert (ref.kind, ref.name, ref.repo, ref.version) == (kind, name, repo, version)


def test_handle_ref_is_lowercased_and_round_trips() -> None:
    ref = parse_ref("@Alice.Bsky.Social/mnist")
    assert ref.kind == "handle" and ref.handle == "alice.bsky.social" and ref.name == "mnist"
    assert str(ref) == "@alice.bsky.social/mnist"
    assert ref.is_remote


def test_did_authority() -> None:
    ref = parse_ref("@did:plc:abcdefghijklmnopqrstuvwx/ds")
    assert ref.kind == "handle" and ref.did == "did:plc:abcdefghijklmnopqrstuvwx"


def test_at_uri() -> None:
    ref = parse_ref("at://did:plc:abcdefghijklmnopqrstuvwx/science.alt.dataset.entry/3kabc")
    assert ref.kind == "at_uri"
    assert ref.collection == "science.alt.dataset.entry" and ref.rkey == "3kabc"


def test_cid() -> None:
    cid = "bafyreiecbxtrmybkejs6lik2jblcg7uza54m5jssd3xqallbqxwots7cpi"
    assert parse_ref(cid).kind == "cid"


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("", "empty"),
        ("   ", "empty"),
        ("a/b/c", "too many"),
        ("@alice.test", "needs a dataset name"),
        ("@not a handle/x", "invalid handle"),
        ("at://did:plc:x/coll", "expected at://"),
        ("at://did:plc:short/science.alt.dataset.entry/k", "invalid DID"),
        ("name@", "ends with '@'"),
        ("../../etc/passwd", "too many"),
        ("../x", "invalid repository"),
        ("bad name", "invalid dataset name"),
        ("x\x00y", "control characters"),
        ("n" * 2000, "too long"),
        ("-leading", "invalid dataset name"),
    ],
)
def test_bad_refs_say_what_is_wrong(text: str, fragment: str) -> None:
    with pytest.raises(RefError, match=fragment):
        parse_ref(text)


def test_non_string() -> None:
    with pytest.raises(RefError, match="must be a string"):
        parse_ref(42)  # type: ignore[arg-type]
