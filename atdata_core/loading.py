"""``load_dataset``: one call from a path, a glob, a brace URL or an index ref to a ``Dataset``.

Paths win over refs when both could apply (a file named like a dataset exists), because a user who
types a path means that file. Directories with split subfolders or ``train-*``/``test-*`` names
become a ``DatasetDict``.
"""

from __future__ import annotations

import glob
import os
import re
from typing import Any

from .errors import NotFoundError, RefError
from .refs import parse_ref
from .shards import expand_braces

SPLIT_NAMES = ("train", "test", "validation", "valid", "val", "dev")
_SPLIT_FILE = re.compile(r"^(train|test|validation|valid|val|dev)[-_.]", re.IGNORECASE)
_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")


def _tars_in(directory: str) -> list[str]:
    return sorted(
        os.path.join(directory, f)
        for f in os.listdir(directory)
        if f.endswith(".tar") and not f.startswith(".")
    )


def _splits_of_directory(directory: str) -> dict[str, list[str]]:
    """Split name → shard paths, from subfolders (``train/``) or file prefixes (``train-0.tar``)."""
    splits: dict[str, list[str]] = {}
    for name in sorted(os.listdir(directory)):
        path = os.path.join(directory, name)
        if os.path.isdir(path) and name.lower() in SPLIT_NAMES:
            tars = _tars_in(path)
            if tars:
                splits[name.lower()] = tars
    if splits:
        return splits
    tars = _tars_in(directory)
    for path in tars:
        match = _SPLIT_FILE.match(os.path.basename(path))
        if match:
            splits.setdefault(match.group(1).lower(), []).append(path)
    if splits and sum(len(v) for v in splits.values()) == len(tars):
        return splits
    return {"train": tars} if tars else {}


def _looks_like_path(text: str) -> bool:
    if _URL.match(text) and not text.startswith("at://"):
        return True
    if os.path.exists(text) or any(c in text for c in "*?[{"):
        return True
    return text.endswith(".tar") or text.startswith(("./", "../", "/", "~"))


def load_dataset(
    path_or_ref: str,
    sample_type: Any = None,
    *,
    split: str | None = None,
    index: Any = None,
) -> Any:
    """Open a dataset from local paths, globs, brace URLs, directories, or an index reference.

    Returns a ``Dataset`` for a single set of shards or when ``split`` is given, else a
    ``DatasetDict`` keyed by split. For index refs (``name``, ``@local/name``, ``repo/name``,
    ``@handle/name``, ``at://…``) the sample type comes from the stored schema unless given.
    """
    from .dataset import Dataset, DatasetDict

    if not isinstance(path_or_ref, str) or not path_or_ref.strip():
        raise RefError("load_dataset needs a path, URL or dataset reference")
    text = os.path.expanduser(path_or_ref.strip())
    if _looks_like_path(text):
        if os.path.isdir(text):
            splits = _splits_of_directory(text)
            if not splits:
                raise NotFoundError(f"no .tar shards in directory {text}")
            if split is not None:
                if split not in splits:
                    raise NotFoundError(
                        f"no split {split!r} in {text} (found: {', '.join(splits)})"
                    )
                return Dataset(splits[split], sample_type)
            return DatasetDict({k: Dataset(v, sample_type) for k, v in splits.items()})
        if _URL.match(text):
            urls = expand_braces(text)
        elif any(c in text for c in "*?["):
            urls = sorted(glob.glob(text))
            if not urls:
                raise NotFoundError(f"no files match {text}")
        else:
            urls = expand_braces(text)
            missing = [u for u in urls if not os.path.exists(u)]
            if missing:
                raise NotFoundError(
                    f"shard not found: {missing[0]}"
                    + (f" (and {len(missing) - 1} more)" if len(missing) > 1 else "")
                )
        dataset = Dataset(urls, sample_type)
        return dataset if split is not None else DatasetDict({"train": dataset})
    ref = parse_ref(text)
    if index is None:
        from .index import Index

        index = Index()
    return index.get_dataset(str(ref) if ref.kind != "at_uri" else text, sample_type)
