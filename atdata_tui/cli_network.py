"""``atdata-tui search TEXT`` and ``atdata-tui ls network``: datasets across the AT Protocol network.

Both ask the dataset AppView (``--appview URL`` or ``[atmosphere] appview`` in the config) and
print one row per dataset: name, author, schema, size, license, and the ``at://`` URI that
``show``, ``preview`` and ``verify`` take back. Everything the AppView sent is untrusted text and
goes through ``safe_line`` / ``safe_json`` on its way out. An AppView that is not configured, down,
too slow or answering garbage is an error (exit 1); records it sent that do not validate are left
out, and a warning on stderr says how many and why.
"""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING, Any

from .cli import PROG, CliContext, register_command

if TYPE_CHECKING:
    from atdata_core.index import IndexEntry, Page

    from .workers.network import NetworkPager


def _entry_json(entry: IndexEntry) -> dict[str, Any]:
    from .cli import _entry_json as base
    from .workers.network import author_of, schema_of

    data = base(entry)
    atproto = (entry.metadata or {}).get("atproto") or {}
    data.update(
        ref=entry.at_uri,
        author=author_of(entry),
        did=atproto.get("did"),
        handle=atproto.get("handle"),
        schema=schema_of(entry),
        description=entry.description,
        license=entry.license,
        tags=entry.tags,
        appview=atproto.get("appview"),
    )
    return data


def _print_page(
    ctx: CliContext,
    page: Page,
    pager: NetworkPager,
    *,
    query: str,
    offset: int,
    limit: int,
) -> int:
    from rich.text import Text

    from atdata_core.safe_text import safe_json, safe_line

    from .workers.network import layout_network_columns, network_cell_values

    url = pager.appview.url
    shown = len(page.items)
    more = page.total is None or offset + shown < page.total
    for problem in pager.skipped[:3]:
        print(
            f"{PROG}: warning: left out a record from the AppView: {safe_line(problem, 300)}",
            file=sys.stderr,
        )
    if len(pager.skipped) > 3:
        print(
            f"{PROG}: warning: … and {len(pager.skipped) - 3} more malformed records",
            file=sys.stderr,
        )
    if ctx.json:
        value = {
            "appview": url,
            "query": query or None,
            "author": pager.author,
            "offset": offset,
            "limit": limit,
            "count": shown,
            "total": page.total,
            "truncated": more,
            "capped": pager.truncated,
            "skipped": list(pager.skipped),
            "entries": [_entry_json(e) for e in page.items],
        }
        sys.stdout.write(safe_json(value, indent=2, default=str) + "\n")
        return 0
    if page.items:
        rows = [network_cell_values(e) for e in page.items]
        columns = _fit_columns(layout_network_columns(ctx.console.width), rows)
        header = "".join(_cell(c.title, w, c.align) + " " for c, w in columns)
        ctx.console.print(Text("  " + header.rstrip(), style="bold"), soft_wrap=True)
        for entry, cells in zip(page.items, rows, strict=True):
            line = "".join(_cell(safe_line(cells[c.key]), w, c.align) + " " for c, w in columns)
            ctx.console.print(Text("  " + line.rstrip()), soft_wrap=True)
            # the ref on a line of its own, never cut: it is what `show` and `preview` take
            ctx.console.print(
                Text("    " + safe_line(entry.at_uri or ""), style="dim"), soft_wrap=True
            )
    what = f" matching {safe_line(query, 80)!r}" if query else ""
    where = f" on {url}"
    if not page.items:
        print(f"no datasets{what}{where}" if offset == 0 else f"no more datasets{what}{where}")
    elif more:
        extra = "" if page.total is None else f" of {page.total:,}"
        print(
            f"{offset + 1}-{offset + shown}{extra} datasets{what}{where} "
            f"(more: --offset {offset + shown})"
        )
    else:
        print(
            f"{offset + shown:,} datasets{what}{where}"
            if offset == 0
            else f"{offset + 1}-{offset + shown} of {page.total:,} datasets{what}{where}"
        )
    if pager.truncated and not more:
        print(f"(only the first {page.total:,} results are listed: narrow the search)")
    return 0


def _fit_columns(
    columns: list[tuple[Any, int]], rows: list[dict[str, str]]
) -> list[tuple[Any, int]]:
    """The terminal's layout, with each fixed column as wide as its longest value needs (the
    room saved or borrowed comes from the name column, which keeps at least its minimum)."""
    from rich.cells import cell_len

    from atdata_core.safe_text import safe_line

    total = sum(w for _, w in columns)
    fitted = []
    for column, width in columns:
        if column.key == "name":
            fitted.append((column, width))
            continue
        need = max([cell_len(column.title)] + [cell_len(safe_line(r[column.key])) for r in rows])
        fitted.append((column, min(need, 40)))
    name_width = total - sum(w for c, w in fitted if c.key != "name")
    minimum = next((c.min_width for c, _ in columns if c.key == "name"), 10)
    longest = max([4] + [cell_len(safe_line(r["name"])) for r in rows])
    if name_width < minimum:  # too wide: fall back to the fixed layout
        return columns
    return [(c, min(name_width, longest) if c.key == "name" else w) for c, w in fitted]


def _cell(text: str, width: int, align: str) -> str:
    """``text`` padded or cut (with …) to exactly ``width`` cells."""
    from rich.cells import cell_len, set_cell_size

    if cell_len(text) > width:
        return set_cell_size(text, max(width - 1, 0)) + "…"
    pad = " " * (width - cell_len(text))
    return pad + text if align == "right" else text + pad


def _check_window(parser_name: str, limit: int, offset: int) -> None:
    from .workers.network import MAX_RESULTS

    if not 1 <= limit <= MAX_RESULTS:
        raise SystemExit(f"{PROG} {parser_name}: --limit must be between 1 and {MAX_RESULTS}")
    if not 0 <= offset < MAX_RESULTS:
        raise SystemExit(f"{PROG} {parser_name}: --offset must be between 0 and {MAX_RESULTS - 1}")


def _pager(ctx: CliContext, author: str | None) -> NetworkPager:
    from .workers.network import NetworkPager, appview_of

    return NetworkPager(appview_of(ctx.index()), author=author)


# --- search ------------------------------------------------------------------------------------------


def _configure_search(p: argparse.ArgumentParser) -> None:
    p.add_argument("text", nargs="+", help="words to find in dataset names, descriptions and tags")
    p.add_argument("--author", metavar="@HANDLE", help="only datasets published by this account")
    p.add_argument("--limit", "-n", type=int, default=25, help="results to show (default 25)")
    p.add_argument("--offset", type=int, default=0, help="skip this many results first")
    p.add_argument("--json", action="store_true", help="machine-readable output")


def _run_search(args: argparse.Namespace, ctx: CliContext) -> int:
    _check_window("search", args.limit, args.offset)
    query = " ".join(" ".join(args.text).split())
    if not query:
        raise SystemExit(f"{PROG} search: give some words to search for")
    pager = _pager(ctx, args.author)
    page = pager.fetch(args.offset, args.limit, query)
    return _print_page(ctx, page, pager, query=query, offset=args.offset, limit=args.limit)


def run_ls_network(args: argparse.Namespace, ctx: CliContext) -> int:
    """``ls network``: the AppView's most recently indexed datasets (``--filter``: a search)."""
    _check_window("ls", args.limit or 1, args.offset)
    query = " ".join((args.filter or "").split())
    pager = _pager(ctx, None)
    page = pager.fetch(args.offset, args.limit, query)
    return _print_page(ctx, page, pager, query=query, offset=args.offset, limit=args.limit)


# --- show ------------------------------------------------------------------------------------------


def resolve_for_show(ctx: CliContext, ref: str) -> IndexEntry:
    """``show REF``: the index resolves it (an ``at://`` entry is read from its author's PDS); when
    that PDS cannot be reached and an AppView is configured, the AppView's copy is shown instead,
    with a warning. A record the PDS says is gone is not brought back from the AppView."""
    from atdata_core.atmosphere.backend import DatasetNotFoundError
    from atdata_core.errors import AtdataError, AtmosphereError
    from atdata_core.safe_text import safe_line

    from .workers.network import resolve_from_network

    index = ctx.index()
    try:
        return index.resolve_entry(ref)
    except AtmosphereError as exc:
        if isinstance(exc, DatasetNotFoundError) or not ref.startswith("at://"):
            raise
        backend = index.atmosphere
        if getattr(backend, "appview", None) is None:
            raise
        try:
            entry = resolve_from_network(index, ref)
        except AtdataError:
            raise exc from None
        print(
            f"{PROG}: warning: {safe_line(exc, 300)}; showing the copy indexed by "
            f"{backend.appview.url}",
            file=sys.stderr,
        )
        return entry


register_command(
    "search",
    _configure_search,
    _run_search,
    help="search datasets across the AT Protocol network (through the AppView)",
)
