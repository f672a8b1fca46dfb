#!/usr/bin/env python3
"""Make ``screenshots/``: an SVG of every screen, from the deterministic demo index (and, for the
network screens, recorded AppView answers: no live AppView is needed).

    .venv/bin/python scripts/screenshots.py           # regenerate, then copy into screenshots/
    .venv/bin/python scripts/screenshots.py --copy    # only copy the current snapshots

The screens are drawn by the SVG snapshot tests (pytest-textual-snapshot, fixed terminal sizes,
a demo index in a fixed directory, frozen clocks and cursors): one source of truth, so a screen
that changes fails its snapshot test until this script is run and the result looked at.
``tests/test_screenshots.py`` fails when a committed screenshot differs from its snapshot.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "screenshots"
BROWSE = "tests/tui/snapshots/__snapshots__/test_snapshots_browse"
TOUR = "tests/tui/snapshots/__snapshots__/test_snapshots_tour"
PREVIEW = "tests/tui/__snapshots__/test_snapshots_preview"
JOBS = "tests/tui/__snapshots__/test_snapshots_jobs"
NETWORK = "tests/tui/snapshots/__snapshots__/test_snapshots_network"

#: screenshot name → the snapshot that draws it
SCREENSHOTS: dict[str, str] = {
    "repositories": f"{BROWSE}/test_repositories.svg",
    "repositories-empty": f"{BROWSE}/test_repositories_empty_index_offers_demo.svg",
    "schemas": f"{BROWSE}/test_schemas.svg",
    "schemas-diff": f"{BROWSE}/test_schemas_diff.svg",
    "entries": f"{BROWSE}/test_entries.svg",
    "entries-filtered": f"{BROWSE}/test_entries_filtered.svg",
    "entries-large-filtered": f"{TOUR}/test_million_entries_filtered.svg",
    "entries-80x24": f"{BROWSE}/test_entries_80x24.svg",
    "entry-detail": f"{BROWSE}/test_entry_detail.svg",
    "help": f"{BROWSE}/test_help.svg",
    "error": f"{BROWSE}/test_error_modal.svg",
    "preview-text": f"{PREVIEW}/test_long_text_folded.svg",
    "preview-arrays": f"{PREVIEW}/test_sparkline_and_heat_map_with_nan_and_inf.svg",
    "preview-images": f"{PREVIEW}/test_rgb_image_array.svg",
    "preview-image-full-screen": f"{PREVIEW}/test_image_field_full_screen.svg",
    "preview-nested": f"{PREVIEW}/test_sample_with_a_nested_map.svg",
    "preview-table": f"{PREVIEW}/test_table_of_numbers_and_maps.svg",
    "preview-schema": f"{PREVIEW}/test_schema_view.svg",
    "preview-bad-samples": f"{PREVIEW}/test_bad_samples_in_the_table.svg",
    "login": f"{JOBS}/test_login_modal.svg",
    "promote-plan": f"{JOBS}/test_promotion_plan.svg",
    "new-dataset": f"{JOBS}/test_new_dataset_screen.svg",
    "jobs": f"{JOBS}/test_jobs_panel_with_a_write_in_progress.svg",
    "network-search": f"{NETWORK}/test_network_search.svg",
    "network-search-80x24": f"{NETWORK}/test_network_search_80x24.svg",
    "network-entry-detail": f"{NETWORK}/test_network_entry_detail.svg",
    "network-schema": f"{NETWORK}/test_network_schema.svg",
    "network-lenses": f"{NETWORK}/test_network_lenses.svg",
    "network-versions": f"{NETWORK}/test_network_versions.svg",
}

SNAPSHOT_MODULES = [
    "tests/tui/test_snapshots_browse.py",
    "tests/tui/test_snapshots_tour.py",
    "tests/tui/test_snapshots_preview.py",
    "tests/tui/test_snapshots_jobs.py",
    "tests/tui/test_snapshots_network.py",
]


def available() -> dict[str, Path]:
    """The screenshots whose snapshot exists (a module may not draw every screen yet)."""
    return {name: ROOT / src for name, src in SCREENSHOTS.items() if (ROOT / src).exists()}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--copy", action="store_true", help="do not regenerate, only copy")
    args = parser.parse_args()
    if not args.copy:
        cmd = [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "--snapshot-update",
            *SNAPSHOT_MODULES,
        ]
        print("$", " ".join(cmd), flush=True)
        result = subprocess.run(cmd, cwd=ROOT)
        if result.returncode not in (0, 1):  # 1: snapshots were updated (reported as failures)
            return result.returncode
    OUT.mkdir(exist_ok=True)
    for old in OUT.glob("*.svg"):
        old.unlink()
    found = available()
    for name, src in found.items():
        shutil.copyfile(src, OUT / f"{name}.svg")
    missing = sorted(set(SCREENSHOTS) - set(found))
    print(f"wrote {len(found)} screenshots to {OUT.relative_to(ROOT)}/")
    if missing:
        print(f"no snapshot yet for: {', '.join(missing)}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
