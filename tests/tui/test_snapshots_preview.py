"""SVG snapshots of the preview screen and of every renderer, at fixed terminal sizes.

Everything shown is deterministic: the demo datasets (fixed seeds and keys, written without PNG
bytes so zlib's version cannot change them), arrays and images built here, no watcher, and the
screenshot is taken only once the stream has finished. Update with ``--snapshot-update`` after
looking at the report.
"""

from __future__ import annotations

import io
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from textual.app import App, ComposeResult
from textual.widgets import Static

from atdata_core.index import Index
from atdata_core.samples import FieldType
from atdata_core.shards import BLOCK, tar_header
from atdata_tui.demo import create_demo
from atdata_tui.screens.preview import PreviewScreen
from atdata_tui.widgets.sample_views import FieldView

SMALL = (80, 24)
LARGE = (120, 36)


class PreviewApp(App[None]):
    """Hosts the preview screen for one entry (the real app adds the rest of the frame)."""

    def __init__(self, index: Index, name: str) -> None:
        super().__init__()
        self.index = index
        self._entry = index.resolve_entry(name)

    def on_mount(self) -> None:
        self.push_screen(PreviewScreen(self._entry, watch=False))


class FieldApp(App[None]):
    """One value in the full-screen field view, under a title naming the renderer."""

    CSS = "#title { height: 1; background: $panel; padding: 0 1; } FieldView { height: 1fr; }"

    def __init__(self, title: str, value: Any, ftype: FieldType | None = None) -> None:
        super().__init__()
        self._title = title
        self._value = value
        self._ftype = ftype

    def compose(self) -> ComposeResult:
        yield Static(self._title, id="title", markup=False)
        yield FieldView(self._value, self._ftype, id="field")


@pytest.fixture
def demo(tmp_path: Path) -> Index:
    index = Index(path=tmp_path / "index.db", atmosphere=None)
    create_demo(index, with_png=False)
    return index


async def settled(pilot: Any) -> None:
    """Wait for the stream to finish, then let the screen draw."""
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        await pilot.pause(0.02)
        screen = pilot.app.screen
        if isinstance(screen, PreviewScreen) and not screen.loading and screen.end is not None:
            break
    await pilot.pause(0.05)


def presses(*keys: str) -> Any:
    async def run(pilot: Any) -> None:
        await settled(pilot)
        for key in keys:
            await pilot.press(key)
            await pilot.pause(0.02)
        await settled(pilot)

    return run


def checker(h: int, w: int) -> np.ndarray:
    img = np.zeros((h, w, 3), np.uint8)
    yy, xx = np.mgrid[0:h, 0:w]
    img[..., 0] = (xx * 255 // max(1, w - 1)).astype(np.uint8)
    img[..., 1] = (yy * 255 // max(1, h - 1)).astype(np.uint8)
    img[..., 2] = 96
    img[((yy // 4) + (xx // 4)) % 2 == 0] //= 2
    return img


def png_bytes(pixels: np.ndarray) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(pixels, "RGB").save(buf, format="PNG", compress_level=0)
    return buf.getvalue()


# --- the screen --------------------------------------------------------------------------------------


def test_table_of_numbers_and_maps(snap_compare: Any, demo: Index) -> None:
    assert snap_compare(PreviewApp(demo, "demo-numbers"), terminal_size=SMALL, run_before=settled)


def test_sample_with_a_nested_map(snap_compare: Any, demo: Index) -> None:
    app = PreviewApp(demo, "demo-numbers")
    assert snap_compare(app, terminal_size=SMALL, run_before=presses("t", "down", "down", "down"))


def test_long_text_folded(snap_compare: Any, demo: Index) -> None:
    app = PreviewApp(demo, "demo-captions")
    assert snap_compare(app, terminal_size=SMALL, run_before=presses(*["down"] * 9, "enter"))


def test_long_text_expanded(snap_compare: Any, demo: Index) -> None:
    app = PreviewApp(demo, "demo-captions")
    assert snap_compare(app, terminal_size=SMALL, run_before=presses(*["down"] * 9, "enter", "e"))


def test_sparkline_and_heat_map_with_nan_and_inf(snap_compare: Any, demo: Index) -> None:
    app = PreviewApp(demo, "demo-signals")
    assert snap_compare(app, terminal_size=LARGE, run_before=presses(*["down"] * 5, "enter"))


def test_rgb_image_array(snap_compare: Any, demo: Index) -> None:
    app = PreviewApp(demo, "demo-images")
    assert snap_compare(app, terminal_size=LARGE, run_before=presses("t", "down"))


def test_image_field_full_screen(snap_compare: Any, demo: Index) -> None:
    app = PreviewApp(demo, "demo-images")
    assert snap_compare(app, terminal_size=SMALL, run_before=presses("t", "down", "enter"))


def test_image_without_colour(
    snap_compare: Any, demo: Index, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NO_COLOR", "1")
    app = PreviewApp(demo, "demo-images")
    assert snap_compare(app, terminal_size=SMALL, run_before=presses("t", "down"))


def test_schema_view(snap_compare: Any, demo: Index) -> None:
    app = PreviewApp(demo, "demo-captions")
    assert snap_compare(app, terminal_size=SMALL, run_before=presses("s"))


def _bad_entry(index: Index, tmp_path: Path) -> None:
    from atdata_tui.demo import DemoCaption

    ref = index.publish_schema(DemoCaption, version="9.0.0")
    path = tmp_path / "bad-000000.tar"
    with open(path, "wb") as f:
        for i in range(6):
            if i == 2:
                payload = b"\xc1\xc1 not msgpack"
            elif i == 4:
                payload = DemoCaption(text="no tokens", lang="en", tokens=[]).packed.replace(
                    b"\xa6tokens", b"\xa6tokenz"
                )
            else:
                payload = DemoCaption(text=f"caption {i}", lang="en", tokens=["a"]).packed
            record = tar_header(f"bad-{i:03d}.msgpack", len(payload)) + payload
            f.write(record + bytes((-len(record)) % BLOCK))
        f.write(tar_header("bad-006.msgpack", 4000)[:BLOCK] + b"cut short")
    index.add_entry([str(path)], name="bad-captions", schema_ref=ref)


def test_bad_samples_in_the_table(snap_compare: Any, demo: Index, tmp_path: Path) -> None:
    _bad_entry(demo, tmp_path)
    app = PreviewApp(demo, "bad-captions")
    assert snap_compare(app, terminal_size=SMALL, run_before=settled)


def test_bad_samples_in_the_schema_view(snap_compare: Any, demo: Index, tmp_path: Path) -> None:
    _bad_entry(demo, tmp_path)
    app = PreviewApp(demo, "bad-captions")
    assert snap_compare(app, terminal_size=SMALL, run_before=presses("s"))


def test_an_undecodable_sample(snap_compare: Any, demo: Index, tmp_path: Path) -> None:
    _bad_entry(demo, tmp_path)
    app = PreviewApp(demo, "bad-captions")
    assert snap_compare(app, terminal_size=SMALL, run_before=presses("down", "down", "enter"))


# --- every renderer, full screen -------------------------------------------------------------------------


def test_renderer_png_bytes(snap_compare: Any) -> None:
    pytest.importorskip("PIL")
    app = FieldApp("png: bytes (decoded with Pillow)", png_bytes(checker(24, 40)))
    assert snap_compare(app, terminal_size=SMALL)


def test_renderer_hex_dump_of_12_mb(snap_compare: Any) -> None:
    data = (bytes(range(256)) * (12_000_000 // 256 + 1))[:12_000_000]
    assert snap_compare(FieldApp("blob: bytes", data), terminal_size=SMALL)


def test_renderer_huge_string(snap_compare: Any) -> None:
    text = ("the quick brown fox jumps over the lazy dog " * 7_000)[:300_000]
    app = FieldApp("text: str (300,000 characters)", text)

    async def to_the_end(pilot: Any) -> None:
        await pilot.press("end")

    assert snap_compare(app, terminal_size=SMALL, run_before=to_the_end)


def test_renderer_tree(snap_compare: Any) -> None:
    value = {
        "split": "train",
        "ids": list(range(1000)),
        "nested": {"a": {"b": {"c": [1, 2, {"d": None}]}}},
        "flags": [True, False],
        "array": np.zeros((3, 4), np.float32),
        "score": 0.125,
    }
    assert snap_compare(FieldApp("meta: dict", value), terminal_size=SMALL)


def test_renderer_large_1d_array(snap_compare: Any) -> None:
    values = np.sin(np.linspace(0, 12 * np.pi, 3_000_000)).astype(np.float32)
    values[::100_000] = np.nan
    app = FieldApp("signal: ndarray[float32]", values, FieldType("ndarray", dtype="float32"))
    assert snap_compare(app, terminal_size=SMALL)


def test_renderer_heat_map(snap_compare: Any) -> None:
    yy, xx = np.mgrid[0:40, 0:60]
    grid = np.sin(xx / 6.0) * np.cos(yy / 5.0)
    grid[10, 10] = np.inf
    grid[20, 30] = np.nan
    assert snap_compare(FieldApp("field: ndarray[float64]", grid), terminal_size=SMALL)


def test_renderer_rgba_image(snap_compare: Any) -> None:
    rgba = np.dstack(
        [checker(32, 48), np.linspace(0, 255, 48, dtype=np.uint8)[None, :].repeat(32, 0)]
    )
    assert snap_compare(FieldApp("image: ndarray[uint8] (RGBA)", rgba), terminal_size=SMALL)


def test_renderer_grayscale_image(snap_compare: Any) -> None:
    yy, xx = np.mgrid[0:28, 0:28]
    gray = ((np.hypot(yy - 14, xx - 14) < 10) * 200 + xx * 2).astype(np.uint8)
    assert snap_compare(FieldApp("digit: ndarray[uint8] (grayscale)", gray), terminal_size=SMALL)


def test_renderer_scalars_at_120_columns(snap_compare: Any) -> None:
    app = FieldApp("count: int", 1234567)
    assert snap_compare(app, terminal_size=LARGE)
