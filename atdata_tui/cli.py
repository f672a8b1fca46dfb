"""``atdata-tui``: the TUI with no subcommand; a headless CLI on the same core with one.

    atdata-tui [--index PATH | --redis URL | --postgres DSN] [--handle @someone] [--readonly]
               [--appview URL] [--demo] [--config PATH]
    atdata-tui ls [REPO] [--filter X] [--limit N] [--offset N] [--json]
    atdata-tui schemas [REPO] [--json]
    atdata-tui show REF [--json]
    atdata-tui search TEXT [--author @HANDLE] [--limit N] [--json]     (through the AppView)
    atdata-tui verify REF [--json]
    atdata-tui demo
    atdata-tui config path | config init

Subcommands live in a registry so other modules add theirs with one call::

    from atdata_tui.cli import register_command

    def configure(parser: argparse.ArgumentParser) -> None:
        parser.add_argument("ref")

    def run(args: argparse.Namespace, ctx: CliContext) -> int:
        entry = ctx.index().resolve_entry(args.ref)
        ...
        return 0

    register_command("preview", configure, run, help="print samples of an entry")

The modules named in ``EXTENSION_MODULES`` are imported (if they exist) before parsing, so a
module there that calls ``register_command`` at import time is all it takes. The names in
``RESERVED`` answer "not available yet" until someone registers them. Errors the library raises
on purpose (``AtdataError``) print one line on stderr and exit 1 — never a traceback.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import json
import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .workers.index import IndexOptions

if TYPE_CHECKING:
    from rich.console import Console

    from atdata_core.config import Config
    from atdata_core.index import Index, IndexEntry

PROG = "atdata-tui"
#: Subcommand names other engineers own; each says "not available yet" until registered.
RESERVED = ("write", "promote", "login", "logout", "gc", "preview")
#: Modules imported before parsing so they can ``register_command`` their subcommands.
EXTENSION_MODULES = (
    "atdata_tui.jobs",
    "atdata_tui.workers.preview",
    "atdata_tui.cli_jobs",
    "atdata_tui.cli_preview",
    "atdata_tui.cli_network",
)

Configure = Callable[[argparse.ArgumentParser], None]
Run = Callable[[argparse.Namespace, "CliContext"], int]


@dataclass
class CommandSpec:
    name: str
    configure: Configure
    run: Run
    help: str = ""
    #: Whether the command opens the index (then the global index flags apply to it).
    needs_index: bool = True


_REGISTRY: dict[str, CommandSpec] = {}


def register_command(
    name: str,
    configure: Configure,
    run: Run,
    *,
    help: str = "",
    needs_index: bool = True,
    replace: bool = True,
) -> None:
    """Add (or replace) subcommand ``name``: ``configure(parser)`` adds its arguments, ``run(args,
    ctx)`` does the work and returns the exit code."""
    if name in _REGISTRY and not replace:
        raise ValueError(f"subcommand {name!r} is already registered")
    _REGISTRY[name] = CommandSpec(name, configure, run, help, needs_index)


def registered_commands() -> dict[str, CommandSpec]:
    return dict(_REGISTRY)


# --- context given to every subcommand ----------------------------------------------------------


@dataclass
class CliContext:
    """What a subcommand needs: the options, the config, the index (opened on first use), output."""

    options: IndexOptions
    json: bool = False
    _index: Index | None = None
    _config: Config | None = None
    _console: Console | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def config(self) -> Config:
        if self._config is None:
            from .workers.index import load_config

            self._config = load_config(self.options)
        return self._config

    def index(self) -> Index:
        """The index from the flags/config; named repositories that fail are warned about."""
        if self._index is None:
            from .workers.index import build_index

            self._index, problems = build_index(self.options, self.config)
            for problem in problems:
                print(f"{PROG}: warning: {problem}", file=sys.stderr)
        return self._index

    @property
    def console(self) -> Console:
        if self._console is None:
            from rich.console import Console

            self._console = Console(highlight=False, soft_wrap=False)
        return self._console

    def print_json(self, value: Any) -> None:
        sys.stdout.write(json.dumps(value, indent=2, ensure_ascii=False, default=str) + "\n")

    def close(self) -> None:
        if self._index is not None:
            self._index.close()


# --- parser -------------------------------------------------------------------------------------


def _add_index_options(parser: argparse.ArgumentParser, *, suppress: bool) -> None:
    """The index flags, on the main parser and (so they may follow the subcommand) every subparser."""
    default: Any = argparse.SUPPRESS if suppress else None
    group = parser.add_argument_group("index")
    where = group.add_mutually_exclusive_group()
    where.add_argument("--index", metavar="PATH", default=default, help="a SQLite index file")
    where.add_argument("--redis", metavar="URL", default=default, help="a Redis index")
    where.add_argument("--postgres", metavar="DSN", default=default, help="a PostgreSQL index")
    group.add_argument(
        "--handle",
        metavar="@HANDLE",
        default=default,
        help="browse a handle's published datasets (read-only, through the AT Protocol)",
    )
    group.add_argument(
        "--appview",
        metavar="URL",
        default=default,
        help="the dataset AppView to search the network with (default: [atmosphere] appview)",
    )
    group.add_argument(
        "--readonly",
        action="store_true",
        default=argparse.SUPPRESS if suppress else False,
        help="never write to the index",
    )
    group.add_argument("--config", metavar="PATH", default=default, help="config file to read")


class _VersionAction(argparse.Action):
    """``--version``, looked up only when asked (start-up time matters)."""

    def __init__(self, option_strings: list[str], dest: str, **kwargs: Any) -> None:
        super().__init__(option_strings, dest, nargs=0, help="show the version and exit")

    def __call__(self, parser: argparse.ArgumentParser, *args: Any, **kwargs: Any) -> None:
        from importlib.metadata import PackageNotFoundError, version

        try:
            text = version("atdata-tui")
        except PackageNotFoundError:
            text = "unknown"
        parser.exit(message=f"{PROG} {text}\n")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Browse, preview, write and publish typed, sharded ML datasets.",
        epilog="With no subcommand, starts the terminal UI. Config: `atdata-tui config path`.",
    )
    parser.add_argument("--version", action=_VersionAction)
    _add_index_options(parser, suppress=False)
    parser.add_argument(
        "--demo", action="store_true", help="create the demo datasets, then open the TUI"
    )
    parser.add_argument(
        "--demo-if-empty",
        action="store_true",
        help="create the demo datasets only when the index has no entries (./scripts/run uses it)",
    )
    common = argparse.ArgumentParser(add_help=False)
    _add_index_options(common, suppress=True)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in sorted(_REGISTRY):
        spec = _REGISTRY[name]
        parents = [common] if spec.needs_index else []
        p = sub.add_parser(name, help=spec.help, description=spec.help, parents=parents)
        spec.configure(p)
    return parser


def _options(args: argparse.Namespace) -> IndexOptions:
    return IndexOptions(
        index_path=getattr(args, "index", None),
        redis=getattr(args, "redis", None),
        postgres=getattr(args, "postgres", None),
        handle=getattr(args, "handle", None),
        readonly=bool(getattr(args, "readonly", False)),
        config_path=getattr(args, "config", None),
        appview=getattr(args, "appview", None),
    )


#: Global options that take a value (to find the subcommand in argv without parsing it).
_VALUE_OPTIONS = {"--index", "--redis", "--postgres", "--handle", "--config", "--appview"}


def _wants_subcommand(argv: Sequence[str]) -> bool:
    """Whether argv names a subcommand (else it starts the TUI, with nothing else imported)."""
    skip = False
    for token in argv:
        if skip:
            skip = False
        elif token in _VALUE_OPTIONS:
            skip = True
        elif token in ("-h", "--help") or not token.startswith("-"):
            return True
    return False


def _load_extensions() -> None:
    for module in EXTENSION_MODULES:
        try:
            importlib.import_module(module)
        except ModuleNotFoundError as exc:
            if exc.name != module:
                raise


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the console script; returns the exit code (``sys.exit`` is done by setuptools)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if _wants_subcommand(argv):
        _load_extensions()  # other modules' subcommands (they may import Textual or numpy)
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        return run_tui(args)
    ctx = CliContext(_options(args), json=bool(getattr(args, "json", False)))
    from atdata_core.errors import AtdataError

    try:
        return _REGISTRY[args.command].run(args, ctx)
    except AtdataError as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 1
    except BrokenPipeError:  # `atdata-tui ls | head`
        # Python's recipe: point stdout at /dev/null so the flush at exit does not fail again.
        with contextlib.suppress(OSError, ValueError):
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except OSError as exc:  # a path the user gave that cannot be read or written
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 130
    finally:
        ctx.close()


def run_tui(args: argparse.Namespace) -> int:
    """Start the app. Nothing heavy is imported here: the config and the index are read by the
    app's opening worker after the first screen is drawn (a broken config shows in the app)."""
    from . import workers
    from .app import AtdataApp

    options = _options(args)
    demo: bool | str = False
    if args.demo:
        demo = True
    elif getattr(args, "demo_if_empty", False):
        demo = "if-empty"
    app = AtdataApp(options=options, demo=demo)
    try:
        app.run()
    finally:
        workers.shutdown()
        if app.index is not None:
            app.index.close()
    return app.return_code or 0


# --- built-in subcommands -----------------------------------------------------------------------


def _repo_arg(repo: str | None) -> tuple[str, str | None]:
    """``REPO`` as typed: ``local``, a named repository, or ``@handle`` (the atmosphere)."""
    from .workers.index import ATMOSPHERE, LOCAL

    if not repo:
        return LOCAL, None
    if repo.startswith("@"):
        return ATMOSPHERE, repo[1:]
    return repo, None


def _entry_json(entry: IndexEntry) -> dict[str, Any]:
    from .workers.index import entry_ref

    data = entry.to_dict()
    data.update(
        ref=entry_ref(entry),
        samples=entry.samples,
        shards=entry.shards,
        size_bytes=entry.size_bytes,
        storage=entry.storage,
        at_uri=entry.at_uri,
        promoted=entry.promoted,
    )
    return data


def _configure_ls(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "repo",
        nargs="?",
        help="local (default), a named repository, @handle, or network (the AppView's listing)",
    )
    p.add_argument("--filter", "-f", metavar="TEXT", help="only names containing TEXT")
    p.add_argument("--limit", "-n", type=int, default=50, help="entries to list (default 50)")
    p.add_argument("--offset", type=int, default=0, help="skip this many entries first")
    p.add_argument("--json", action="store_true", help="machine-readable output")


def _run_ls(args: argparse.Namespace, ctx: CliContext) -> int:
    from rich.table import Table
    from rich.text import Text

    from .workers.index import GAP, cell_values, fetch_page, layout_columns

    if args.limit < 0 or args.offset < 0:
        raise SystemExit(f"{PROG} ls: --limit and --offset must be >= 0")
    repo, handle = _repo_arg(args.repo)
    if repo == "network" and "network" not in ctx.config.repos:
        from .cli_network import run_ls_network

        return run_ls_network(args, ctx)
    handle = handle or ctx.options.handle
    page = fetch_page(
        ctx.index(),
        repo,
        offset=args.offset,
        limit=args.limit,
        name_filter=args.filter,
        handle=handle,
    )
    if ctx.json:
        ctx.print_json(
            {
                "repo": args.repo or repo,
                "filter": args.filter,
                "offset": args.offset,
                "limit": args.limit,
                "total": page.total,
                "count": len(page.items),
                "truncated": page.total is None or args.offset + len(page.items) < page.total,
                "entries": [_entry_json(e) for e in page.items],
            }
        )
        return 0
    columns = layout_columns(ctx.console.width)
    table = Table(box=None, header_style="bold", pad_edge=False, padding=(0, GAP, 0, 0))
    for column, width in columns:
        justify = column.align if column.align in ("left", "right", "center") else "left"
        table.add_column(
            column.title,
            justify=justify,  # type: ignore[arg-type]
            no_wrap=True,
            overflow="ellipsis",
            min_width=min(width, column.min_width or width),
            max_width=None if column.key == "name" else width,
        )
    for e in page.items:
        values = cell_values(e)
        table.add_row(*(Text(values[column.key]) for column, _ in columns))
    if page.items:
        ctx.console.print(table)
    shown = len(page.items)
    where = f" matching {args.filter!r}" if args.filter else ""
    if page.total is None:
        summary = (
            f"{shown} entries{where} shown (more may exist: use --offset {args.offset + shown})"
        )
    elif shown < page.total:
        summary = (
            f"{args.offset + 1 if shown else args.offset}-{args.offset + shown} of "
            f"{page.total:,} entries{where} (use --limit/--offset for more)"
        )
    else:
        summary = f"{page.total:,} entries{where}"
    print(summary)
    return 0


def _configure_schemas(p: argparse.ArgumentParser) -> None:
    p.add_argument("repo", nargs="?", help="local (default) or a named repository")
    p.add_argument("--json", action="store_true", help="machine-readable output")


def _run_schemas(args: argparse.Namespace, ctx: CliContext) -> int:
    from rich.table import Table
    from rich.text import Text

    from .workers.index import load_schemas

    repo, _ = _repo_arg(args.repo)
    schemas = load_schemas(ctx.index(), repo)
    if ctx.json:
        ctx.print_json(
            [
                {
                    "name": s.name,
                    "versions": s.versions,
                    "latest": s.versions[0] if s.versions else None,
                    "fields": s.fields,
                    "description": s.description,
                }
                for s in schemas
            ]
        )
        return 0
    if not schemas:
        print("no schemas")
        return 0
    table = Table(box=None, header_style="bold", pad_edge=False)
    table.add_column("Schema", no_wrap=True)
    table.add_column("Versions (newest first)")
    table.add_column("Fields", justify="right")
    table.add_column("Description")
    for s in schemas:
        table.add_row(
            Text(s.name),
            Text(", ".join(s.versions)),
            "" if s.fields is None else str(s.fields),
            Text(s.description or ""),
        )
    ctx.console.print(table)
    return 0


def _configure_show(p: argparse.ArgumentParser) -> None:
    p.add_argument("ref", help="name, repo/name, @handle/name, at:// URI, CID, or a schema ref")
    p.add_argument("--json", action="store_true", help="machine-readable output")


def _run_show(args: argparse.Namespace, ctx: CliContext) -> int:
    from rich.table import Table
    from rich.text import Text

    from .jobs import human_bytes
    from .workers.index import LOCAL, entry_ref, human_count, load_schema_detail

    ref: str = args.ref
    if ref.startswith(("atdata://local/schema/", "local://schemas/")):
        from atdata_core.schema import parse_schema_ref

        name, version = parse_schema_ref(ref)
        index = ctx.index()
        version = version or (index.schema_versions(name) or ["?"])[0]
        detail = load_schema_detail(index, LOCAL, name, version)
        if ctx.json:
            ctx.print_json(
                {
                    "ref": detail.ref,
                    "name": detail.name,
                    "version": detail.version,
                    "description": detail.description,
                    "fields": [
                        {"name": f.name, "type": f.type, "optional": f.optional}
                        for f in detail.fields
                    ],
                    "error": detail.error,
                }
            )
            return 0 if detail.error is None else 1
        ctx.console.print(Text(f"{detail.name}@{detail.version}", style="bold"))
        if detail.description:
            ctx.console.print(Text(detail.description))
        for f in detail.fields:
            ctx.console.print(Text(f"  {f.name}: {f.type}{' (optional)' if f.optional else ''}"))
        if detail.error:
            print(f"{PROG}: error: {detail.error}", file=sys.stderr)
            return 1
        return 0
    from .cli_network import resolve_for_show

    entry = resolve_for_show(ctx, ref)
    if ctx.json:
        data = _entry_json(entry)
        data["shard_list"] = [
            {
                "url": url,
                "samples": entry.shard_samples.get(url),
                "bytes": entry.shard_sizes.get(url),
                "sha256": entry.checksums.get(url),
            }
            for url in entry.data_urls
        ]
        ctx.print_json(data)
        return 0
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold", no_wrap=True)
    grid.add_column()
    rows = [
        ("Name", entry.name),
        ("Ref", entry_ref(entry)),
        ("Repository", entry.repo),
        ("CID", entry.cid),
        ("Schema", entry.schema_ref),
        ("Created", entry.created_at or "-"),
        (
            "Size",
            f"{human_count(entry.samples)} samples · {human_count(entry.shards)} shards · "
            f"{human_bytes(entry.size_bytes)}",
        ),
        ("Storage", entry.storage),
        ("Published", entry.at_uri or "no"),
    ]
    if entry.description:
        rows.append(("Description", str(entry.description)))
    if entry.tags:
        rows.append(("Tags", ", ".join(map(str, entry.tags))))
    if entry.license:
        rows.append(("License", str(entry.license)))
    for label, value in rows:
        grid.add_row(label, Text(value))
    ctx.console.print(grid)
    shards = Table(box=None, header_style="bold", pad_edge=False, title_justify="left")
    shards.add_column("#", justify="right")
    shards.add_column("URL", overflow="fold")
    shards.add_column("Samples", justify="right")
    shards.add_column("Size", justify="right")
    shards.add_column("SHA-256", overflow="fold")
    for i, url in enumerate(entry.data_urls):
        shards.add_row(
            str(i),
            Text(url),
            human_count(entry.shard_samples.get(url)),
            human_bytes(entry.shard_sizes.get(url)),
            entry.checksums.get(url, "-"),
        )
    ctx.console.print()
    ctx.console.print(shards)
    return 0


def _configure_verify(p: argparse.ArgumentParser) -> None:
    p.add_argument("ref", help="the entry to check: name, repo/name, at:// URI or CID")
    p.add_argument("--json", action="store_true", help="machine-readable output")


def _run_verify(args: argparse.Namespace, ctx: CliContext) -> int:
    """Recompute every shard's SHA-256; exit 1 when any shard is missing or does not match."""
    from rich.table import Table
    from rich.text import Text

    report = ctx.index().verify(args.ref)
    if ctx.json:
        ctx.print_json(
            {
                "ref": args.ref,
                "cid": report.entry.cid,
                "ok": report.ok,
                "shards": [
                    {
                        "url": s.url,
                        "status": s.status,
                        "expected": s.expected,
                        "actual": s.actual,
                        "bytes": s.bytes,
                        "error": s.error,
                    }
                    for s in report.shards
                ],
            }
        )
        return 0 if report.ok else 1
    table = Table(box=None, header_style="bold", pad_edge=False)
    table.add_column("Status", no_wrap=True)
    table.add_column("URL", overflow="fold")
    table.add_column("Detail", overflow="fold")
    styles = {"ok": "green", "unchecked": "yellow", "mismatch": "bold red", "missing": "bold red"}
    for s in report.shards:
        if s.status == "mismatch":
            detail = f"expected {s.expected}, got {s.actual}"
        elif s.status == "missing":
            detail = s.error or ""
        elif s.status == "unchecked":
            detail = "no checksum recorded"
        else:
            detail = ""
        table.add_row(Text(s.status, style=styles.get(s.status, "")), Text(s.url), Text(detail))
    ctx.console.print(table)
    bad = sum(1 for s in report.shards if s.status in ("mismatch", "missing"))
    if report.ok:
        print(f"ok: {len(report.shards)} shards of {report.entry.name} verified")
        return 0
    print(f"{PROG}: {bad} of {len(report.shards)} shards failed verification", file=sys.stderr)
    return 1


def _configure_demo(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", action="store_true", help="machine-readable output")


def _run_demo(args: argparse.Namespace, ctx: CliContext) -> int:
    from .demo import create_demo

    entries = create_demo(ctx.index())
    if ctx.json:
        ctx.print_json([_entry_json(e) for e in entries])
        return 0
    for e in entries:
        print(f"{e.name}\t{e.samples} samples\t{e.cid}")
    return 0


def _configure_config(p: argparse.ArgumentParser) -> None:
    p.add_argument("action", choices=("path", "init"), help="print the path, or write an example")
    p.add_argument(
        "--config", metavar="PATH", default=argparse.SUPPRESS, help="another config file"
    )


def _run_config(args: argparse.Namespace, ctx: CliContext) -> int:
    from pathlib import Path

    from atdata_core.config import EXAMPLE_CONFIG, config_path

    path = Path(args.config) if getattr(args, "config", None) else config_path()
    if args.action == "path":
        print(path)
        return 0
    if path.exists():
        print(f"{path} already exists; not overwritten", file=sys.stderr)
        return 0
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(EXAMPLE_CONFIG, encoding="utf-8")
    print(f"wrote {path}")
    return 0


def _not_available(name: str) -> Run:
    def run(args: argparse.Namespace, ctx: CliContext) -> int:
        print(f"{PROG}: `{name}` is not available yet in this version", file=sys.stderr)
        return 2

    return run


def _configure_reserved(p: argparse.ArgumentParser) -> None:
    p.add_argument("rest", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)


register_command("ls", _configure_ls, _run_ls, help="list the entries of a repository")
register_command("schemas", _configure_schemas, _run_schemas, help="list schemas and versions")
register_command("show", _configure_show, _run_show, help="show an entry (or a schema)")


def _configure_gc(p: argparse.ArgumentParser) -> None:
    p.add_argument("repo", nargs="?", default="local", help="repository to clean (default: local)")
    p.add_argument("--delete", action="store_true", help="remove what was found (default: list)")
    p.add_argument(
        "--min-age",
        type=float,
        default=3600.0,
        metavar="SECONDS",
        help="leave files younger than this alone: a write may still be running (default 3600)",
    )
    p.add_argument("--json", action="store_true", help="machine-readable output")


def _run_gc(args: argparse.Namespace, ctx: CliContext) -> int:
    """List (or with --delete remove) shards and temp files that no entry points at."""
    from atdata_core.gc import collect_garbage

    report = collect_garbage(
        ctx.index(), repo=args.repo, dry_run=not args.delete, min_age=args.min_age
    )
    if ctx.json:
        ctx.print_json(
            {
                "repo": args.repo,
                "removed": report.removed,
                "orphan_shards": report.orphan_shards,
                "partial_files": report.partial_files,
                "incomplete_uploads": report.incomplete_uploads,
                "skipped_young": report.skipped_young,
                "bytes": report.bytes,
            }
        )
        return 0
    for label, items in (
        ("orphan shard", report.orphan_shards),
        ("partial file", report.partial_files),
        ("incomplete upload", report.incomplete_uploads),
    ):
        for item in items:
            print(f"{label}: {item}")
    verb = "removed" if report.removed else "found"
    print(
        f"{verb} {report.total} item(s), {report.bytes:,} bytes"
        + (
            f"; {report.skipped_young} younger than {args.min_age:g} s left alone"
            if report.skipped_young
            else ""
        )
        + ("" if report.removed or not report.total else "; run with --delete to remove them"),
        file=sys.stderr,
    )
    return 0


register_command("verify", _configure_verify, _run_verify, help="recompute shard checksums")
register_command(
    "gc", _configure_gc, _run_gc, help="find (and --delete) shards left by crashed writes"
)
register_command("demo", _configure_demo, _run_demo, help="create the demo datasets")
register_command(
    "config",
    _configure_config,
    _run_config,
    help="print the config path or write an example config",
    needs_index=False,
)
for _name in RESERVED:
    if _name not in _REGISTRY:  # an extension imported before us may have registered it
        register_command(
            _name, _configure_reserved, _not_available(_name), help=f"{_name} (not available yet)"
        )


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
