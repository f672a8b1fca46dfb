"""``atdata-tui preview REF``: the first samples of a dataset, summarized for a terminal or JSON.

The same decoding as the TUI's preview (``atdata_core.preview``): a bad sample is printed with its
error instead of stopping the listing, arrays are summarized by shape, dtype and statistics, long
strings and bytes are cut with a note saying how much was left out.
"""

from __future__ import annotations

import argparse
import itertools
from typing import Any

import numpy as np

from .cli import CliContext, register_command

MAX_TEXT = 200


def summarize(value: Any) -> Any:
    """A short, JSON-friendly description of one field value."""
    from atdata_core.preview import array_stats, sniff_image

    if isinstance(value, np.ndarray):
        stats = array_stats(value)
        return {
            "ndarray": list(stats.shape),
            "dtype": stats.dtype,
            "min": stats.min,
            "max": stats.max,
            "mean": stats.mean,
            "std": stats.std,
            "nan": stats.nan,
            "inf": stats.inf,
            **({"sampled_every": stats.step} if stats.sampled else {}),
        }
    if isinstance(value, (bytes, bytearray, memoryview)):
        kind = sniff_image(bytes(value[:16]))
        return {
            "bytes": len(value),
            **({"image": kind} if kind else {}),
            "head": bytes(value[:16]).hex(),
        }
    if isinstance(value, str) and len(value) > MAX_TEXT:
        return value[:MAX_TEXT] + f"… ({len(value):,} characters)"
    if isinstance(value, dict):
        return {str(k): summarize(v) for k, v in itertools.islice(value.items(), 50)}
    if isinstance(value, list):
        out = [summarize(v) for v in value[:50]]
        return [*out, f"… {len(value) - 50} more"] if len(value) > 50 else out
    return value


def _configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("ref", help="the dataset: name, repo/name, @handle/name, at:// URI or CID")
    p.add_argument("-n", "--count", type=int, default=5, help="how many samples (default 5)")
    p.add_argument("--shard", type=int, default=0, help="which shard to read (default 0)")
    p.add_argument("--json", action="store_true", help="machine-readable output")


def _run(args: argparse.Namespace, ctx: CliContext) -> int:
    from atdata_core.dataset import Dataset
    from atdata_core.preview import decode_preview, sample_fields

    index = ctx.index()
    entry = index.resolve_entry(args.ref)
    sample_type = index._sample_type_for(entry)
    ds = Dataset(list(entry.data_urls), sample_type)
    shard = ds.shard_list[args.shard]
    rows = []
    bad = 0
    for i, raw in enumerate(itertools.islice(ds.raw(args.shard), max(args.count, 0))):
        item = decode_preview(
            raw.key,
            raw.parts,
            sample_type=sample_type,
            shard=shard,
            shard_index=args.shard,
            index=i,
            offset=raw.offset,
        )
        bad += not item.ok
        fields = {name: summarize(value) for name, value, _t, _p in sample_fields(item)}
        rows.append({"key": item.key, "status": item.status, "error": item.error, "fields": fields})
    if ctx.json:
        ctx.print_json({"ref": args.ref, "shard": shard, "samples": rows})
    else:
        for row in rows:
            mark = "" if row["status"] == "ok" else f"  [{row['status']}: {row['error']}]"
            print(f"── {row['key']}{mark}")
            for name, value in row["fields"].items():
                print(f"   {name}: {value}")
    return 1 if bad else 0


register_command("preview", _configure, _run, help="print the first samples of a dataset")
