"""The core never imports the UI: importing ``atdata_core`` loads no Textual, and no Rich of its own.

Runs in fresh interpreters, since this test process may already hold those modules. An import
hook records which module first imported ``rich``/``textual``, so a failure names the culprit.

One known exception: ``httpx`` (used by the atproto SDK and the atmosphere client) imports ``rich``
for its optional command-line client whenever rich is installed, i.e. always next to the TUI.
That import is not ours, so it is allowed for modules that need httpx, and reported; the data path
(samples, shards, sources, dataset, lens) must stay free of both.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

#: Optional extras whose absence may make a provider module unimportable; that is fine.
OPTIONAL = ["redis", "psycopg", "psycopg_binary", "psycopg_pool", "boto3", "botocore"]
#: Third-party packages known to import rich themselves (see the module docstring).
TRANSITIVE_RICH = {"httpx"}

HOOK = textwrap.dedent(
    """
    import builtins, sys

    first_importer = {}
    _real_import = builtins.__import__

    def _spy(name, globals=None, locals=None, fromlist=(), level=0):
        root = name.split(".")[0] if level == 0 else None
        if root in ("rich", "textual") and root not in sys.modules and root not in first_importer:
            importer = (globals or {}).get("__name__", "?")
            first_importer[root] = importer
        return _real_import(name, globals, locals, fromlist, level)

    builtins.__import__ = _spy
    """
)

WALK = HOOK + textwrap.dedent(
    """
    import importlib, json, pkgutil

    optional = set(json.loads(sys.argv[1]))
    import atdata_core

    imported, skipped, failed = ["atdata_core"], [], []
    for info in pkgutil.walk_packages(atdata_core.__path__, "atdata_core."):
        try:
            importlib.import_module(info.name)
        except ModuleNotFoundError as exc:
            if (exc.name or "").split(".")[0] in optional:
                skipped.append(info.name)
                continue
            failed.append(f"{info.name}: {exc!r}")
            continue
        except Exception as exc:
            failed.append(f"{info.name}: {exc!r}")
            continue
        imported.append(info.name)
    loaded = sorted({m.split(".")[0] for m in sys.modules} & {"rich", "textual", "atdata_tui"})
    print(json.dumps({"imported": imported, "skipped": skipped, "failed": failed,
                      "loaded": loaded, "first_importer": first_importer}))
    """
)

DATA_PATH = HOOK + textwrap.dedent(
    """
    import json
    import atdata_core, atdata_core.samples, atdata_core.shards, atdata_core.sources
    import atdata_core.dataset, atdata_core.lens
    heavy = ("textual", "rich", "torch", "webdataset", "boto3", "httpx", "atproto")
    print(json.dumps(sorted(m for m in heavy if m in sys.modules)))
    """
)


def _run(script: str, *args: str) -> object:
    out = subprocess.run(
        [sys.executable, "-c", script, *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_every_core_module_imports_without_the_ui() -> None:
    result = _run(WALK, json.dumps(OPTIONAL))
    assert isinstance(result, dict)
    assert result["failed"] == [], "\n".join(result["failed"])
    assert "textual" not in result["loaded"], f"textual imported by {result['first_importer']}"
    assert "atdata_tui" not in result["loaded"]
    if "rich" in result["loaded"]:
        importer = result["first_importer"].get("rich", "?")
        assert importer.split(".")[0] in TRANSITIVE_RICH, (
            f"rich was imported by {importer}: atdata_core must not import rich"
        )
    for module in (
        "atdata_core.samples",
        "atdata_core.shards",
        "atdata_core.sources",
        "atdata_core.dataset",
        "atdata_core.lens",
    ):
        assert module in result["imported"]


def test_the_data_path_loads_nothing_heavy() -> None:
    """Reading shards needs neither the UI nor torch, webdataset, boto3 or an HTTP client."""
    assert _run(DATA_PATH) == []
