"""The named baseline of DESIGN.md's shard targets: the public ``atdata`` library, version 0.7.

atdata 0.7 needs Python ≥3.12 and this project runs on 3.11, so it gets its own virtual
environment, made once with ``uv`` in the user's cache directory (outside the checkout, keyed by
the pinned version and the interpreter) from the first interpreter ≥3.12 found: ``ATDATA07_PYTHON``
(an interpreter that already has atdata), ``uv python find``, pyenv's versions, or
``python3.1x`` on ``PATH``. Each measurement runs ``MEASURE_SCRIPT`` in a fresh child of that
interpreter, on the same shards and the same disk as ours, and reports its peak RSS.
"""

from __future__ import annotations

import glob
import json
import os
import re
import shutil
import subprocess
import textwrap
from pathlib import Path

import platformdirs

#: The atdata release the benchmarks compare against (0.7.0b1 is the 0.7 line on PyPI).
ATDATA07_VERSION = "0.7.0b1"


def _version_of(python: str) -> tuple[int, int] | None:
    try:
        out = subprocess.run(
            [python, "-c", "import sys; print(*sys.version_info[:2])"],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    parts = out.stdout.split()
    return (int(parts[0]), int(parts[1])) if out.returncode == 0 and len(parts) == 2 else None


def _candidate_interpreters() -> list[str]:
    found: list[str] = []
    uv = shutil.which("uv")
    if uv:
        out = subprocess.run(
            [uv, "python", "find", "--no-python-downloads", ">=3.12"],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        if out.returncode == 0 and out.stdout.strip():
            found.append(out.stdout.strip())
    pyenv_root = os.environ.get("PYENV_ROOT", os.path.expanduser("~/.pyenv"))
    for path in sorted(glob.glob(f"{pyenv_root}/versions/3.*/bin/python3")):
        if re.search(r"/3\.(1[2-9])[.\d]*/bin/", path):
            found.append(path)
    for name in ("python3.12", "python3.13", "python3.14"):
        if path := shutil.which(name):
            found.append(path)
    return [p for p in found if (_version_of(p) or (0, 0)) >= (3, 12)]


def _has_atdata(python: str) -> bool:
    probe = subprocess.run(
        [python, "-c", "import atdata"], capture_output=True, timeout=120, check=False
    )
    return probe.returncode == 0


def atdata07_python() -> tuple[str | None, str]:
    """An interpreter with atdata 0.7 installed (made on first use), or ``None`` and why not."""
    given = os.environ.get("ATDATA07_PYTHON")
    if given:
        if os.path.exists(given) and _has_atdata(given):
            return given, ""
        return None, f"ATDATA07_PYTHON={given} has no atdata"
    candidates = _candidate_interpreters()
    if not candidates:
        return None, "no Python ≥3.12 found (atdata 0.7 needs it): set ATDATA07_PYTHON"
    base = candidates[0]
    major, minor = _version_of(base) or (3, 12)
    venv = (
        Path(platformdirs.user_cache_dir("atdata-tui-bench"))
        / f"atdata-{ATDATA07_VERSION}-py{major}.{minor}"
    )
    python = str(venv / "bin" / "python")
    installed = glob.glob(str(venv / "lib" / "python3.*" / "site-packages" / "atdata-*.dist-info"))
    if os.path.exists(python) and installed:  # (importing atdata to check costs 3 s)
        return python, ""
    uv = shutil.which("uv")
    if uv is None:
        return None, "uv is needed to install atdata 0.7 into its own environment"
    steps = [
        [uv, "venv", "--quiet", "--python", base, str(venv)],
        [uv, "pip", "install", "--quiet", "--python", python, f"atdata=={ATDATA07_VERSION}"],
    ]
    for step in steps:
        out = subprocess.run(step, capture_output=True, text=True, timeout=900, check=False)
        if out.returncode != 0:
            last = (out.stderr.strip().splitlines() or ["no output"])[-1]
            return None, f"installing atdata {ATDATA07_VERSION} failed: {last[:200]}"
    return python, ""


#: Runs inside atdata 0.7's interpreter: ``read`` or ``write`` one case, print one JSON line.
#: Reads are timed in CPU time, best of ``passes`` after a warm pass (as ours); writes in wall
#: time, best of ``passes``, into fresh directories beside ours, samples built before the clock.
MEASURE_SCRIPT = textwrap.dedent(
    """
    import json, shutil, sys, tempfile, time
    import numpy as np
    from numpy.typing import NDArray
    import atdata

    @atdata.packable
    class SmallSample:
        text: str
        n: int
        x: float

    @atdata.packable
    class ArraySample:
        image: NDArray
        label: int

    def peak_mb():
        for line in open("/proc/self/status"):
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
        return None

    op, case, arg, n, maxcount, passes = sys.argv[1:7]
    n, maxcount, passes = int(n), int(maxcount), int(passes)
    sample_type = SmallSample if case == "small" else ArraySample
    if op == "read":
        ds = atdata.Dataset[sample_type](arg)  # a brace pattern over the shards
        count = sum(1 for _ in ds.ordered(batch_size=None))
        best = float("inf")
        for _ in range(passes):
            t = time.process_time()
            count = sum(1 for _ in ds.ordered(batch_size=None))
            best = min(best, time.process_time() - t)
    else:
        if case == "small":
            samples = [SmallSample(text=f"sample number {i}", n=i, x=i * 0.5) for i in range(n)]
        else:
            base = np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8)
            samples = [ArraySample(image=np.roll(base, i, axis=0), label=i) for i in range(n)]
        count, best = n, float("inf")
        for _ in range(passes):
            out = tempfile.mkdtemp(prefix="bench-atdata07-", dir=arg)
            try:
                t = time.perf_counter()
                atdata.write_samples(samples, out + "/a.tar", maxcount=maxcount)
                best = min(best, time.perf_counter() - t)
            finally:
                shutil.rmtree(out, ignore_errors=True)
    print(json.dumps({"seconds": best, "count": count, "peak_mb": peak_mb(),
                      "python": sys.version.split()[0]}))
    """
)


def measure(
    python: str,
    op: str,
    case: str,
    arg: str,
    n: int = 0,
    maxcount: int = 0,
    *,
    passes: int = 5,
) -> tuple[dict[str, float] | None, str]:
    """Run one ``read``/``write`` of ``case`` (``small``/``image``) under atdata 0.7."""
    try:
        out = subprocess.run(
            [python, "-c", MEASURE_SCRIPT, op, case, arg, str(n), str(maxcount), str(passes)],
            capture_output=True,
            text=True,
            timeout=1800,
            check=False,
        )
    except subprocess.SubprocessError as exc:
        return None, f"atdata 0.7 {op} failed: {exc}"
    if out.returncode != 0:
        last = (out.stderr.strip().splitlines() or ["no output"])[-1]
        return None, f"atdata 0.7 {op} failed: {last[:200]}"
    try:
        return json.loads(out.stdout.strip().splitlines()[-1]), ""
    except (ValueError, IndexError):
        return None, f"atdata 0.7 {op} printed no result"


def brace_pattern(urls: list[str]) -> str:
    """``dir/name-{000000..000009}.tar`` for consecutive shards written by ``write_shards``."""
    if len(urls) == 1:
        return urls[0]
    first, last = urls[0], urls[-1]
    m1, m2 = re.search(r"(\d+)(\.tar)$", first), re.search(r"(\d+)(\.tar)$", last)
    if not m1 or not m2 or first[: m1.start()] != last[: m2.start()]:
        raise ValueError(f"shards are not one numbered series: {first} … {last}")
    return f"{first[: m1.start()]}{{{m1.group(1)}..{m2.group(1)}}}.tar"
