"""A cached Python ≥3.12 virtual environment for a pinned requirements file.

This project runs on Python 3.11; the peers it is tested and measured against need ≥3.12
(atdata-app, the AppView; atdata 0.7, the library). Each gets its own environment, made once with
``uv`` from a requirements file with exact versions (``uv pip compile ... --python-version 3.12``)
and kept outside the checkout, in the test cache::

    ${ATDATA_TEST_CACHE:-~/.cache/atdata-tui-test}/<name>-<sha256 of the requirements, 16 hex>/

so changing the requirements file makes a new environment and an unchanged one is reused. The
interpreter is the first ≥3.12 found: ``ATDATA_PYTHON312``, ``uv python find``, pyenv's versions,
then ``python3.12``…``python3.14`` on ``PATH`` (uv never downloads one). Building takes a lock, so
two test runs at once build it once; a build that fails leaves nothing that looks complete.

One implementation for everybody: ``./scripts/test`` calls ``python -m tests.services.python312
NAME REQUIREMENTS`` (its ``ensure_py312_venv`` function), the AppView fixture and the atdata 0.7
benchmark call ``ensure_venv``.
"""

from __future__ import annotations

import contextlib
import fcntl
import glob
import hashlib
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from ._util import ServiceError, cache_root

MARKER = ".complete"


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


def candidate_interpreters() -> list[str]:
    """Interpreters that might be ≥3.12, in order of preference (not yet checked)."""
    found: list[str] = []
    if given := os.environ.get("ATDATA_PYTHON312"):
        found.append(given)
    uv = shutil.which("uv")
    if uv:
        with contextlib.suppress(OSError, subprocess.SubprocessError):
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
    return found


def find_python312() -> str | None:
    """The first interpreter ≥3.12 that runs, or ``None``."""
    for path in candidate_interpreters():
        if (_version_of(path) or (0, 0)) >= (3, 12):
            return path
    return None


def venv_dir(requirements: Path | str, name: str) -> Path:
    """Where the environment for ``requirements`` lives (whether or not it exists yet)."""
    digest = hashlib.sha256(Path(requirements).read_bytes()).hexdigest()[:16]
    return cache_root() / f"{name}-{digest}"


def venv_python(requirements: Path | str, name: str) -> Path | None:
    """The environment's interpreter if it was built completely, else ``None`` (no I/O beyond stat)."""
    directory = venv_dir(requirements, name)
    python = directory / "bin" / "python"
    return python if (directory / MARKER).is_file() and python.exists() else None


def _uv() -> list[str]:
    if uv := shutil.which("uv"):
        return [uv]
    probe = subprocess.run(
        [sys.executable, "-m", "uv", "--version"], capture_output=True, check=False
    )
    if probe.returncode == 0:
        return [sys.executable, "-m", "uv"]
    raise ServiceError("uv is needed to build a Python 3.12 environment (pip install uv)")


def ensure_venv(
    requirements: Path | str,
    name: str,
    *,
    log: Callable[[str], None] = lambda _msg: None,
    timeout: float = 900,
) -> Path:
    """The interpreter of the cached environment for ``requirements``, built on first use."""
    requirements = Path(requirements).resolve()
    if (python := venv_python(requirements, name)) is not None:
        return python
    directory = venv_dir(requirements, name)
    directory.parent.mkdir(parents=True, exist_ok=True)
    with open(directory.parent / f".{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
        if (python := venv_python(requirements, name)) is not None:
            return python
        base = find_python312()
        if base is None:
            raise ServiceError(
                f"{name} needs Python ≥3.12 and none was found "
                "(install one with pyenv, or set ATDATA_PYTHON312 to its path)"
            )
        log(f"building the {name} environment in {directory} (Python {base}); first time only")
        shutil.rmtree(directory, ignore_errors=True)
        env = dict(os.environ, UV_PYTHON_DOWNLOADS="never", VIRTUAL_ENV="")
        uv = _uv()
        steps = [
            [*uv, "venv", "--quiet", "--python", base, str(directory)],
            [*uv, "pip", "sync", "--quiet", "--python", str(directory / "bin" / "python"),
             str(requirements)],
        ]  # fmt: skip
        for step in steps:
            try:
                out = subprocess.run(
                    step, capture_output=True, text=True, timeout=timeout, env=env, check=False
                )
            except subprocess.TimeoutExpired:
                shutil.rmtree(directory, ignore_errors=True)
                raise ServiceError(f"building {name}: `{' '.join(step)}` timed out") from None
            if out.returncode != 0:
                shutil.rmtree(directory, ignore_errors=True)
                tail = "\n".join((out.stdout + out.stderr).strip().splitlines()[-15:])
                raise ServiceError(f"building {name}: `{' '.join(step)}` failed:\n{tail}")
        (directory / MARKER).write_text(f"{base}\n{requirements}\n")
    return directory / "bin" / "python"


def main(argv: list[str] | None = None) -> int:
    """``python -m tests.services.python312 NAME REQUIREMENTS``: build if needed, print the path."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 2:
        print("usage: python -m tests.services.python312 NAME REQUIREMENTS", file=sys.stderr)
        return 2
    name, requirements = args
    try:
        python = ensure_venv(requirements, name, log=lambda m: print(m, file=sys.stderr))
    except ServiceError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(python)
    return 0


if __name__ == "__main__":
    sys.exit(main())
