"""``python -m benchmarks [--quick] [--only NAME] [--list]``: run, print and record the benchmarks.

See the package docstring (``benchmarks/__init__.py``) for how to add a module.
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib
import json
import os
import pathlib
import subprocess
import sys
import tempfile
import time
import traceback
from typing import Any

HERE = pathlib.Path(__file__).resolve().parent
ROOT = HERE.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks.common import (  # noqa: E402  (the path above makes this work from anywhere)
    Row,
    format_machine,
    format_rows,
    machine_info,
)

RESULTS_MD = HERE / "results.md"
RESULTS_JSON = HERE / "results.json"


def discover() -> list[str]:
    """Module names (``shards`` for ``bench_shards.py``), sorted."""
    return sorted(p.stem.removeprefix("bench_") for p in HERE.glob("bench_*.py"))


def _select(names: list[str], only: list[str] | None) -> list[str]:
    if not only:
        return names
    wanted = [
        n.strip().removeprefix("bench_") for item in only for n in item.split(",") if n.strip()
    ]
    unknown = [n for n in wanted if n not in names]
    if unknown:
        raise SystemExit(f"unknown benchmark(s): {', '.join(unknown)} (have: {', '.join(names)})")
    return [n for n in names if n in wanted]


def run_module(name: str, quick: bool) -> list[Row]:
    """Import ``benchmarks.bench_<name>`` and call its ``run(quick)``."""
    module = importlib.import_module(f"benchmarks.bench_{name}")
    rows = module.run(quick)
    if not isinstance(rows, list) or not all(isinstance(r, Row) for r in rows):
        raise TypeError(f"bench_{name}.run() must return a list of benchmarks.common.Row")
    return rows


def _failure_row(name: str, detail: str) -> Row:
    last = [line for line in detail.strip().splitlines() if line.strip()]
    return Row(
        figure=f"{name}: crashed",
        ours=None,
        baseline=None,
        baseline_name="",
        unit="",
        target=None,
        met=False,
        peak_rss_mb=None,
        note=(last[-1] if last else "no output")[:300],
    )


def run_isolated(name: str, quick: bool) -> tuple[list[Row], bool]:
    """Run one module in a fresh interpreter; its rows, and whether it finished."""
    with tempfile.TemporaryDirectory(prefix="atdata-bench-") as tmp:
        out = pathlib.Path(tmp) / "rows.json"
        cmd = [sys.executable, "-m", "benchmarks", "--child", str(out), "--only", name]
        if quick:
            cmd.append("--quick")
        proc = subprocess.run(cmd, cwd=ROOT, stderr=subprocess.PIPE, text=True)
        if proc.stderr:
            sys.stderr.write(proc.stderr)
        if proc.returncode != 0 or not out.exists():
            return [_failure_row(name, proc.stderr or f"exit code {proc.returncode}")], False
        return [Row.from_json(r) for r in json.loads(out.read_text())], True


def _load_results() -> dict[str, Any]:
    try:
        data = json.loads(RESULTS_JSON.read_text())
        if isinstance(data, dict) and isinstance(data.get("modules"), dict):
            return data
    except (OSError, ValueError):
        pass
    return {"modules": {}}


def render(results: dict[str, Any], info: dict[str, str]) -> str:
    lines = [
        "# Benchmark results",
        "",
        format_machine(info),
        "",
        "Produced by `benchmarks/run` (see `benchmarks/__init__.py`). Baselines run in the same run "
        "on the same data and machine; *ratio* is how many times better ours is (>1 is better).",
    ]
    for name, entry in sorted(results["modules"].items()):
        lines += [
            "",
            f"## {name}",
            "",
            f"_{entry['when']}, {'quick' if entry['quick'] else 'full'} run, "
            f"{entry['seconds']:.0f} s; {entry['machine'].get('cpu', '?')}, "
            f"{entry['machine'].get('python', '?')}_",
            "",
            format_rows([Row.from_json(r) for r in entry["rows"]]),
        ]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small inputs: a smoke test")
    parser.add_argument(
        "--only", action="append", metavar="NAME", help="run these modules (repeat or commas)"
    )
    parser.add_argument("--list", action="store_true", help="list the modules and exit")
    parser.add_argument(
        "--in-process", action="store_true", help="run modules in this interpreter (debugging)"
    )
    parser.add_argument("--no-save", action="store_true", help="print only; keep results.md")
    parser.add_argument("--child", metavar="PATH", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    names = discover()
    if args.list:
        print("\n".join(names))
        return 0
    selected = _select(names, args.only)

    if args.child:  # one module, rows to a file, for run_isolated
        (name,) = selected
        rows = run_module(name, args.quick)
        pathlib.Path(args.child).write_text(json.dumps([r.to_json() for r in rows]))
        return 0

    info = machine_info()
    print(f"# Benchmarks ({'quick' if args.quick else 'full'})\n\n{format_machine(info)}\n")
    results = _load_results()
    ok = True
    for name in selected:
        print(f"## {name}", flush=True)
        started = time.monotonic()
        if args.in_process:
            try:
                rows, finished = run_module(name, args.quick), True
            except Exception:
                rows, finished = [_failure_row(name, traceback.format_exc())], False
                traceback.print_exc()
        else:
            rows, finished = run_isolated(name, args.quick)
        seconds = time.monotonic() - started
        # a quick run is a smoke test: small inputs make its ratios noisy, so only a benchmark
        # that cannot run fails it; a full run also fails on a missed target
        ok = ok and finished and (args.quick or all(r.met is not False for r in rows))
        print(format_rows(rows) + f"\n\n_{name}: {seconds:.0f} s_\n", flush=True)
        results["modules"][name] = {
            "when": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
            "quick": args.quick,
            "seconds": seconds,
            "machine": info,
            "rows": [r.to_json() for r in rows],
        }
    if args.quick and not args.no_save:
        print(f"quick run: {RESULTS_MD.relative_to(ROOT)} keeps the figures of the last full run")
    elif not args.no_save:
        tmp = RESULTS_JSON.with_suffix(f".json.{os.getpid()}")
        tmp.write_text(json.dumps(results, indent=1) + "\n")
        tmp.replace(RESULTS_JSON)
        RESULTS_MD.write_text(render(results, info))
        print(f"wrote {RESULTS_MD.relative_to(ROOT)}")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
