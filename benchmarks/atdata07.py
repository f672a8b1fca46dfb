"""The named baseline of DESIGN.md's shard targets: the public ``atdata`` library, version 0.7.

atdata 0.7 needs Python ≥3.12 and this project runs on 3.11, so it gets its own virtual
environment: the same "cached Python 3.12 environment for a pinned requirements file" the test
suite uses for atdata-app (``tests/services/python312.py``), built once from
``atdata07-requirements.txt`` (exact versions, ``uv pip compile --python-version 3.12``) under
``${ATDATA_TEST_CACHE:-~/.cache/atdata-tui-test}/atdata07-<hash>``. ``ATDATA07_PYTHON`` names an
interpreter that already has atdata instead. Each measurement runs ``MEASURE_SCRIPT`` in a fresh
child of that interpreter, on the same shards and the same disk as ours, and reports its peak RSS.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import textwrap
from pathlib import Path

#: The atdata release the benchmarks compare against (0.7.0b1 is the 0.7 line on PyPI); it is
#: pinned, with its dependencies, in ``REQUIREMENTS``.
ATDATA07_VERSION = "0.7.0b1"
REQUIREMENTS = Path(__file__).resolve().with_name("atdata07-requirements.txt")


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
    from tests.services import ServiceError
    from tests.services.python312 import ensure_venv

    try:
        return str(ensure_venv(REQUIREMENTS, "atdata07")), ""
    except ServiceError as exc:
        return None, f"installing atdata {ATDATA07_VERSION} failed: {str(exc)[:300]}"


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
