"""The committed screenshots are exactly what ``scripts/screenshots.py`` produces.

The snapshot tests prove each snapshot is what the app draws today; this test proves each
committed screenshot is byte-identical to its snapshot, and that every screen has one.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _script():
    spec = importlib.util.spec_from_file_location(
        "screenshots", ROOT / "scripts" / "screenshots.py"
    )
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_every_screen_has_a_screenshot_that_matches_its_snapshot() -> None:
    script = _script()
    found = script.available()
    assert set(found) == set(script.SCREENSHOTS), (
        f"no snapshot for {set(script.SCREENSHOTS) - set(found)}"
    )
    stale = [
        name
        for name, src in found.items()
        if not (ROOT / "screenshots" / f"{name}.svg").exists()
        or (ROOT / "screenshots" / f"{name}.svg").read_bytes() != src.read_bytes()
    ]
    assert not stale, f"run scripts/screenshots.py: stale or missing {stale}"
    extra = {p.stem for p in (ROOT / "screenshots").glob("*.svg")} - set(script.SCREENSHOTS)
    assert not extra, f"screenshots nobody produces: {extra}"
