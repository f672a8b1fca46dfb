"""Headless ``write``, ``promote``, ``login`` and ``logout``: the TUI's jobs, for scripts and CI.

    atdata-tui write SOURCE --name NAME [--kind jsonl|csv|images|tar] [--repo R]
                     [--maxcount N] [--maxsize BYTES] [--description TEXT] [--skip-bad]
                     [--image-mode array|encoded]
    atdata-tui promote NAME [--dry-run]
    atdata-tui login HANDLE [--pds URL]      (password: ATDATA_APP_PASSWORD or a prompt)
    atdata-tui logout

They call the same worker functions as the TUI (``workers.write``, ``workers.promote``,
``workers.login``). Progress goes to stderr, results (the new ref, the ``at://`` URI) to stdout;
errors print one line and exit non-zero (``cli.main`` turns ``AtdataError`` into exit 1).
Registered at import time: ``cli.EXTENSION_MODULES`` names this module.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import TYPE_CHECKING, Any

from .cli import PROG, CliContext, register_command

if TYPE_CHECKING:
    from atdata_core.atmosphere import AtmosphereBackend

PASSWORD_ENV = "ATDATA_APP_PASSWORD"


def _backend(ctx: CliContext) -> AtmosphereBackend:
    """The atmosphere backend for this run's config (``--config`` included), shared with the index."""
    from atdata_core.atmosphere import default_backend

    backend = ctx.extra.get("atmosphere")
    if backend is None:
        backend = default_backend(ctx.config)
        ctx.extra["atmosphere"] = backend
    return backend


# --- write ------------------------------------------------------------------------------------------


def _configure_write(p: argparse.ArgumentParser) -> None:
    p.add_argument("source", help="a .jsonl/.csv file, a folder of images, or tar URL(s)")
    p.add_argument("--name", required=True, help="name of the new dataset")
    p.add_argument(
        "--kind",
        choices=("jsonl", "csv", "images", "tar"),
        help="what SOURCE is (default: guessed from the path)",
    )
    p.add_argument("--repo", default="local", help="repository to write to (default: local)")
    p.add_argument("--maxcount", type=int, default=10000, help="samples per shard (default 10000)")
    p.add_argument("--maxsize", help="bytes per shard, e.g. 64M or 1G (default: no limit)")
    p.add_argument("--description", help="a description stored with the dataset")
    p.add_argument(
        "--skip-bad", action="store_true", help="skip malformed rows (counted) instead of failing"
    )
    p.add_argument(
        "--image-mode",
        choices=("array", "encoded"),
        default="array",
        help="images as HxWx3 uint8 arrays (default) or their PNG/JPEG bytes",
    )
    p.add_argument("--json", action="store_true", help="print the result as JSON")


def _run_write(args: argparse.Namespace, ctx: CliContext) -> int:
    from atdata_core.importers import parse_size

    from .workers.write import (
        StderrProgress,
        WriteRequest,
        check_request,
        inspect_source,
        run_write,
    )

    if ctx.options.readonly:
        print(f"{PROG}: error: --readonly: writing is disabled", file=sys.stderr)
        return 2
    if args.maxcount is not None and args.maxcount < 1:
        print(f"{PROG}: error: --maxcount must be at least 1", file=sys.stderr)
        return 2
    source = inspect_source(
        os.path.expanduser(args.source),
        args.kind,
        on_error="skip" if args.skip_bad else "raise",
        image_mode=args.image_mode,
    )
    request = WriteRequest(
        name=args.name,
        repo=args.repo,
        maxcount=args.maxcount,
        maxsize=parse_size(args.maxsize),
        description=args.description,
    )
    index = ctx.index()
    check_request(index, request)
    fields = ", ".join(f"{f.name}: {f.describe()}" for f in source.schema.fields)
    print(f"{PROG}: writing {source.describe()} as {request.ref} ({fields})", file=sys.stderr)
    entry = run_write(index, source, request, progress=StderrProgress())
    if source.skipped:
        print(f"{PROG}: skipped {source.skipped} bad row(s):", file=sys.stderr)
        for problem in source.problems[:5]:
            print(f"  {problem}", file=sys.stderr)
    if ctx.json:
        ctx.print_json(
            {
                "ref": request.ref,
                "cid": entry.cid,
                "urls": entry.data_urls,
                "samples": entry.samples,
                "skipped": source.skipped,
            }
        )
    else:
        print(f"{request.ref}\t{entry.cid}\t{entry.samples} samples\t{len(entry.data_urls)} shards")
    return 0


# --- promote ----------------------------------------------------------------------------------------


def _configure_promote(p: argparse.ArgumentParser) -> None:
    p.add_argument("name", help="the local dataset to publish (name or repo/name)")
    p.add_argument("--dry-run", action="store_true", help="print the plan, publish nothing")


def _run_promote(args: argparse.Namespace, ctx: CliContext) -> int:
    from .workers.promote import plan_entry, promote_job

    if ctx.options.readonly and not args.dry_run:
        print(f"{PROG}: error: --readonly: promotion is disabled", file=sys.stderr)
        return 2
    index = ctx.index()
    backend = _backend(ctx)
    index.atmosphere = backend
    entry = index.resolve_entry(args.name)
    plan = plan_entry(index, backend, entry)
    print(plan.describe())
    if args.dry_run:
        return 0
    run = promote_job(index, backend, entry, plan)
    uri = run(_CliJob(f"promote {entry.name}"))
    print(uri)
    return 0


class _CliJob:
    """The job context a worker function expects, reporting on stderr (for the CLI)."""

    def __init__(self, title: str) -> None:
        import time

        self.title = title
        self.job = self
        self.attempts = 1
        self._last = 0.0
        self._clock = time.monotonic

    def report(self, done: float | None = None, total: float | None = None, **kw: Any) -> None:
        """Periodic upload progress only (each step is printed once through ``log``)."""
        now = self._clock()
        if kw.get("force") or done is None or not total or now - self._last < 0.5:
            return
        self._last = now
        print(f"{PROG}: {100 * done / total:5.1f}% {kw.get('detail') or ''}", file=sys.stderr)

    def log(self, line: str) -> None:
        print(f"{PROG}: {line}", file=sys.stderr)

    def cancelled(self) -> bool:
        return False

    def check(self) -> None:
        return None

    def set_result_text(self, text: str) -> None:
        return None


# --- login / logout ---------------------------------------------------------------------------------


def _configure_login(p: argparse.ArgumentParser) -> None:
    p.add_argument("handle", help="your handle (alice.bsky.social) or DID")
    p.add_argument("--pds", metavar="URL", help="your PDS (default: from the DID document)")


def _run_login(args: argparse.Namespace, ctx: CliContext) -> int:
    import getpass

    from atdata_core.config import session_path

    from .workers.login import login, pds_from_did_document

    password = os.environ.get(PASSWORD_ENV)
    if not password:
        if not sys.stdin.isatty():
            print(
                f"{PROG}: error: no password: set {PASSWORD_ENV} or run in a terminal",
                file=sys.stderr,
            )
            return 2
        password = getpass.getpass(f"App password for {args.handle}: ")
    client = _backend(ctx).client
    pds = args.pds
    if pds is None and "@" not in args.handle.lstrip("@"):
        pds = pds_from_did_document(client, args.handle)  # "unknown handle" rather than 401
    info = login(client, args.handle, password, pds=pds)
    del password
    print(
        f"logged in as @{info.handle} ({info.did}) at {info.pds}; session saved to {session_path()}"
    )
    return 0


def _configure_logout(p: argparse.ArgumentParser) -> None:
    del p


def _run_logout(args: argparse.Namespace, ctx: CliContext) -> int:
    from .workers.login import logout

    client = _backend(ctx).client
    who = client.handle
    logout(client)
    print(f"logged out{f' @{who}' if who else ''}; the saved session was deleted")
    return 0


register_command("write", _configure_write, _run_write, help="import samples into a new dataset")
register_command(
    "promote", _configure_promote, _run_promote, help="publish a local dataset to your PDS"
)
register_command(
    "login",
    _configure_login,
    _run_login,
    help="log in to the AT Protocol network",
    needs_index=False,
)
register_command(
    "logout", _configure_logout, _run_logout, help="end the saved session", needs_index=False
)
