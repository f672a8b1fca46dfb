"""The sample renderers, called directly (strips in, text and styles out) and inside Pilot.

Each renderer is checked for what it shows, for what it refuses to show (bounded output, with a
note saying what was cut) and for its colours: true colour as drawn, 256 colours after Rich's
downgrade, and shade characters when there is no colour at all.
"""

from __future__ import annotations

import io
import sys
import time
from typing import Any

import numpy as np
import pytest
from rich.color import ColorSystem
from rich.style import Style
from textual.app import App, ComposeResult
from textual.strip import Strip

from atdata_core.preview import (
    STATS_MAX_ELEMENTS,
    TIMES,
    PreviewSample,
    array_stats,
    downsample_1d,
    fit_size,
    image_pixels,
    sample_fields,
    sniff_image,
)
from atdata_core.samples import DictSample, FieldSpec, FieldType
from atdata_tui.widgets.image import (
    NAN_RGB,
    SHADES,
    UPPER_HALF,
    heatmap_strips,
    image_strips,
    legend_strip,
    ramp_rgb,
)
from atdata_tui.widgets.sample_views import (
    FieldView,
    SampleView,
    ViewOptions,
    clean,
    field_header,
    inline,
    ordinal,
    render_array,
    render_bytes,
    render_hex,
    render_scalar,
    render_text,
    render_tree,
    render_value,
    strips_text,
)

WIDE = ViewOptions(width=80, max_lines=6, image_rows=12)
FULL = ViewOptions(width=80, max_lines=None, image_rows=20, full=True)


def text_of(strips: list[Strip]) -> str:
    return strips_text(strips)


def cells(strip: Strip) -> list[tuple[str, Style | None]]:
    """One ``(character, style)`` per cell of a strip."""
    out: list[tuple[str, Style | None]] = []
    for segment in strip:
        for ch in segment.text:
            out.append((ch, segment.style))
    return out


def rgb(color: Any) -> tuple[int, int, int]:
    t = color.get_truecolor()
    return (t.red, t.green, t.blue)


def png_bytes(pixels: np.ndarray, mode: str = "RGB", fmt: str = "PNG") -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    kwargs = {"compress_level": 0} if fmt == "PNG" else {"quality": 95}
    Image.fromarray(pixels, mode).save(buf, format=fmt, **kwargs)
    return buf.getvalue()


def checker(h: int = 8, w: int = 8) -> np.ndarray:
    """Red/blue checks with a white top-left pixel: every pixel's colour is known."""
    img = np.zeros((h, w, 3), np.uint8)
    yy, xx = np.mgrid[0:h, 0:w]
    img[(yy + xx) % 2 == 0] = (255, 0, 0)
    img[(yy + xx) % 2 == 1] = (0, 0, 255)
    img[0, 0] = (255, 255, 255)
    return img


# --- scalars and text -----------------------------------------------------------------------------------


def test_scalars() -> None:
    assert text_of(render_scalar(None, WIDE)) == "None"
    assert text_of(render_scalar(True, WIDE)) == "true"
    assert text_of(render_scalar(np.bool_(False), WIDE)) == "false"
    assert text_of(render_scalar(42, WIDE)) == "42"
    assert text_of(render_scalar(1234567, WIDE)) == "1234567  (1,234,567)"
    assert text_of(render_scalar(0.1, WIDE)) == "0.1"
    assert text_of(render_scalar(np.float32(2.5), WIDE)) == "2.5"
    assert text_of(render_scalar(float("nan"), WIDE)) == "nan"


def test_text_wraps_folds_and_says_how_much_is_hidden() -> None:
    assert text_of(render_text("hello", WIDE)) == "hello"
    assert "(empty string)" in text_of(render_text("", WIDE))
    long = " ".join(f"word{i}" for i in range(500))
    strips = render_text(long, ViewOptions(width=60, max_lines=3))
    lines = text_of(strips).splitlines()
    assert len(lines) == 4 and all(len(line) <= 60 for line in lines)
    assert (
        lines[-1].startswith("… ") and f"more characters of {len(long):,} · e expands" in lines[-1]
    )
    full = text_of(render_text(long, ViewOptions(width=40, max_lines=None)))
    assert "word499" in full and "more characters" not in full


def test_a_50_mb_string_is_never_wrapped_whole() -> None:
    huge = "x" * 50_000_000
    t0 = time.perf_counter()
    folded = render_text(huge, WIDE)
    expanded = render_text(huge, ViewOptions(width=80, max_lines=None))
    full = render_text(huge, FULL)
    assert time.perf_counter() - t0 < 2.0
    assert len(folded) == 7 and "49,999,520 more characters of 50,000,000" in text_of(folded)
    assert len(expanded) == 64_000 // 80 + 2
    assert "showing the first 64,000 of 50,000,000 characters (50.0 MB)" in text_of(expanded)
    assert "showing the first 256,000 of 50,000,000" in text_of(full)


def test_control_characters_from_data_never_reach_the_terminal() -> None:
    hostile = "title\x1b]0;pwned\x07\x1b[2J\u202eevil\tend"
    shown = text_of(render_text(hostile, WIDE))
    assert "\x1b" not in shown and "\x07" not in shown and "\u202e" not in shown
    assert "␛]0;pwned␇␛[2J" in shown and "evil    end" in shown
    assert clean("a\x00b\x7fc") == "a␀b␡c"
    assert "\x1b" not in inline("\x1b[31mred").plain
    header = field_header("na\x1bme", "v", None, None, width=40)
    assert "\x1b" not in header.text


# --- bytes ------------------------------------------------------------------------------------------------


def test_hex_dump_shows_the_first_bytes_and_the_total() -> None:
    data = bytes(range(256)) * (12_000_000 // 256)
    strips = render_hex(data, WIDE)
    lines = text_of(strips).splitlines()
    assert len(lines) == 7
    assert lines[0].startswith("00000000  00 01 02 03 04 05 06 07  08 09 0a 0b 0c 0d 0e 0f  │")
    assert lines[2].endswith("│ !\"#$%&'()*+,-./│")
    assert "11,999,904 more bytes (12.0 MB in all) · e expands" in lines[-1]
    narrow = text_of(render_hex(data, ViewOptions(width=50, max_lines=2))).splitlines()
    assert narrow[1].startswith("00000008  08 09 0a 0b 0c 0d 0e 0f  │")
    full = render_hex(data, FULL)
    assert len(full) == 4096 // 16 + 1 and "(12.0 MB in all)" in text_of(full[-1:])
    assert "(no bytes)" in text_of(render_hex(b"", WIDE))


def test_png_and_jpeg_bytes_are_drawn_as_images() -> None:
    pytest.importorskip("PIL")
    data = png_bytes(checker())
    assert sniff_image(data) == "PNG"
    strips = render_bytes(data, ViewOptions(width=80, max_lines=6, image_rows=4))
    assert text_of(strips[:1]) == f"PNG image · {len(data)} B · 8{TIMES}8 shown"
    assert len(strips) == 1 + 4 and all(ch == UPPER_HALF for ch, _ in cells(strips[1]))
    top_left = cells(strips[1])[0][1]
    assert top_left is not None and rgb(top_left.color) == (255, 255, 255)
    assert rgb(top_left.bgcolor) == (0, 0, 255)  # pixel (1, 0) of the checks
    jpeg = png_bytes(np.full((16, 16, 3), 200, np.uint8), fmt="JPEG")
    assert sniff_image(jpeg) == "JPEG"
    strips = render_bytes(jpeg, ViewOptions(width=80, max_lines=6, image_rows=8))
    assert text_of(strips[:1]).startswith("JPEG image") and len(strips) == 9
    style = cells(strips[3])[5][1]
    assert style is not None and all(abs(c - 200) <= 3 for c in rgb(style.color))


def test_undecodable_image_bytes_fall_back_to_hex_with_a_note() -> None:
    pytest.importorskip("PIL")
    fake = b"\x89PNG\r\n\x1a\n" + b"\x00garbage" * 10
    shown = text_of(render_bytes(fake, WIDE))
    assert "cannot decode image" in shown and "00000000  89 50 4e 47 0d 0a 1a 0a" in shown


def test_without_pillow_encoded_images_show_as_hex(monkeypatch: pytest.MonkeyPatch) -> None:
    from atdata_tui.widgets import sample_views

    monkeypatch.setitem(sys.modules, "PIL", None)  # "import PIL" now fails
    sample_views._IMAGE_CACHE.clear()
    data = b"\x89PNG\r\n\x1a\n" + bytes(100)
    shown = text_of(render_bytes(data, WIDE))
    assert "install Pillow to see encoded images; showing the bytes" in shown
    assert "00000000  89 50 4e 47" in shown


# --- trees ------------------------------------------------------------------------------------------------


def test_trees_limit_depth_items_and_lines_and_say_so() -> None:
    value = {
        "name": "alice",
        "scores": list(range(1000)),
        "deep": {"a": {"b": {"c": {"d": 1}}}},
        "arr": np.zeros((3, 4), np.float32),
        "blob": b"\x89PNG\r\n\x1a\nrest",
    }
    folded = text_of(render_tree(value, WIDE))
    assert folded.splitlines()[0] == "dict · 5 keys"
    assert "├─ name: alice" in folded and "scores: list · 1,000 items" in folded
    assert "… 992 more · e expands" in folded
    assert "… cut at 12 lines · e expands" in folded
    full = text_of(render_tree(value, FULL))
    assert "├─ [199]: 199" in full and "└─ … 800 more" in full and "e expands" not in full
    assert "d: 1" in full and f"arr: 3{TIMES}4 float32" in full and "blob: PNG · 12 B" in full
    deep: Any = 0
    for _ in range(20):
        deep = [deep]
    assert "deeper levels not shown" in text_of(render_tree(deep, FULL))
    assert text_of(render_tree([], WIDE)) == "list · 0 items"


def test_ordinals() -> None:
    assert [ordinal(n) for n in (1, 2, 3, 4, 11, 12, 13, 21, 22, 23, 111, 1001)] == [
        "1st",
        "2nd",
        "3rd",
        "4th",
        "11th",
        "12th",
        "13th",
        "21st",
        "22nd",
        "23rd",
        "111th",
        "1,001st",
    ]


def test_inline_summaries() -> None:
    assert inline(None).plain == "None"
    assert inline("a" * 100, 10).plain == "aaaaaaaaa…"
    assert inline("two\nlines").plain == "two↵lines"
    assert inline(b"\x00\x01" * 10).plain == "20 B · 00 01 00 01 00 01 00 01 …"
    assert inline(np.zeros((2, 3), np.uint8)).plain == f"2{TIMES}3 uint8"
    assert inline({"a": 1}).plain == "{1 keys}"
    assert inline([1, 2, 3]).plain == "[3 items]"
    assert inline(123456).plain == "123,456"


# --- arrays -----------------------------------------------------------------------------------------------


def test_1d_arrays_get_stats_values_and_a_sparkline() -> None:
    arr = np.array([0, 1, 2, 3, 4, 5, 6, 7, np.nan, np.inf], dtype=np.float32)
    lines = text_of(render_array(arr, WIDE)).splitlines()
    assert lines[0] == "ndarray 10 · float32 · 10 values · 40 B"
    assert lines[1] == "min 0  max 7  mean 3.5  std 2.29129"
    assert lines[2] == "nan 1  inf 1"
    assert lines[3] == "[0, 1, 2, 3, 4, 5, 6, 7, nan, inf]"
    assert lines[4] == "▁▂▃▄▅▆▇█"  # NaN and Inf buckets stay blank
    long = np.sin(np.linspace(0, 6.28, 100_000))
    spark = render_array(long, WIDE)[-1]
    assert spark.cell_length == 80 and set(spark.text) <= set("▁▂▃▄▅▆▇█")
    assert downsample_1d(long, 80).shape == (80,)


def test_2d_arrays_get_a_heat_map_with_a_legend() -> None:
    arr = np.arange(12, dtype=np.float64).reshape(3, 4)
    arr[0, 1] = np.nan
    strips = render_array(arr, ViewOptions(width=40, max_lines=6, image_rows=6))
    shown = text_of(strips)
    assert f"heat map 16{TIMES}12 px" in shown  # 4 pixels per value (at most)
    picture = [s for s in strips if UPPER_HALF in s.text]
    assert len(picture) == 6 and all(s.cell_length == 16 for s in picture)
    first = cells(picture[0])
    assert rgb(first[0][1].color) == tuple(ramp_rgb(np.array([0.0]))[0])  # the minimum
    assert rgb(first[4][1].color) == NAN_RGB  # the NaN value, 4 cells wide
    assert text_of(strips[-1:]).startswith("0 ") and text_of(strips[-1:]).endswith(" 11")


def test_images_are_drawn_pixel_for_pixel_with_half_blocks() -> None:
    img = checker(4, 6)
    strips = image_strips(img)
    assert len(strips) == 2 and all(s.cell_length == 6 for s in strips)
    for y in range(2):
        for x, (ch, style) in enumerate(cells(strips[y])):
            assert ch == UPPER_HALF and style is not None
            assert rgb(style.color) == tuple(img[2 * y, x])
            assert rgb(style.bgcolor) == tuple(img[2 * y + 1, x])
    odd = image_strips(checker(3, 2))
    assert len(odd) == 2 and cells(odd[1])[0][1].bgcolor is None


@pytest.mark.parametrize(
    ("make", "label"),
    [
        (lambda: checker(8, 8), f"image 8{TIMES}8 px"),
        (lambda: np.dstack([checker(8, 8), np.full((8, 8), 255, np.uint8)]), f"image 8{TIMES}8 px"),
        (lambda: np.arange(64, dtype=np.uint8).reshape(8, 8), f"image 8{TIMES}8 px"),
        (lambda: checker(8, 8).transpose(2, 0, 1).copy(), f"image 8{TIMES}8 px"),
        (lambda: checker(8, 8).astype(np.float32) / 255, f"image 8{TIMES}8 px"),
    ],
    ids=["rgb", "rgba", "gray", "chw", "float01"],
)
def test_image_like_arrays_become_images(make: Any, label: str) -> None:
    arr = make()
    strips = render_array(arr, ViewOptions(width=80, max_lines=6, image_rows=4))
    assert label in text_of(strips)
    picture = [s for s in strips if UPPER_HALF in s.text]
    assert len(picture) == 4


def test_big_images_shrink_to_the_room_and_small_ones_grow_by_whole_pixels() -> None:
    assert fit_size(1000, 2000, 20, 80) == (20, 40)
    assert fit_size(8, 8, 40, 80) == (40, 40)
    assert fit_size(24, 32, 40, 80) == (24, 32)  # 1.67x would make uneven pixels
    big = np.zeros((4000, 3000, 3), np.uint8)
    assert image_pixels(big, 24, 80).shape == (24, 18, 3)


def test_other_arrays_are_summarised_without_a_picture() -> None:
    cube = np.arange(2 * 3 * 4 * 5, dtype=np.int16).reshape(2, 3, 4, 5)
    assert "of slice [0, 0, :, :]" in text_of(render_array(cube, WIDE))
    assert "value 7" in text_of(render_array(np.array(7), WIDE))
    assert "empty" in text_of(render_array(np.zeros((0, 3)), WIDE))
    words = np.array(["a", "bc"])
    shown = text_of(render_array(words, WIDE))
    assert "no statistics for <U2 values" in shown and "['a', 'bc']" in shown
    complex_ = text_of(render_array(np.array([3 + 4j, 0j]), WIDE))
    assert "statistics of |z|" in complex_ and "max 5" in complex_
    flags = text_of(render_array(np.array([True, False, True]), WIDE))
    assert "mean 0.666667" in flags


def test_huge_arrays_are_summarised_from_a_stride_in_bounded_time() -> None:
    arr = np.zeros(100_000_000, dtype=np.uint8)
    t0 = time.perf_counter()
    strips = render_array(arr, WIDE)
    assert time.perf_counter() - t0 < 1.0
    shown = text_of(strips)
    step = -(-100_000_000 // STATS_MAX_ELEMENTS)
    assert "100,000,000 values" in shown and f"(every {ordinal(step)})" in shown
    assert array_stats(arr).sampled


# --- colour systems ---------------------------------------------------------------------------------------


def _render(strips: list[Strip], color_system: ColorSystem) -> str:
    """The escape codes Rich writes for some strips on a terminal with ``color_system``."""
    return "".join(
        # a fresh Style each time: Rich caches a style's codes for the first colour system asked
        Style.from_color(seg.style.color, seg.style.bgcolor).render(
            seg.text, color_system=color_system
        )
        if seg.style
        else seg.text
        for strip in strips
        for seg in strip
    )


def test_true_colour_images_downgrade_to_256_colours_and_keep_their_shape() -> None:
    strips = image_strips(checker(8, 8))
    truecolor = _render(strips, ColorSystem.TRUECOLOR)
    eight_bit = _render(strips, ColorSystem.EIGHT_BIT)
    assert "38;2;255;0;0" in truecolor and "48;2;0;0;255" in truecolor
    assert "38;2;" not in eight_bit and "38;5;" in eight_bit and "48;5;" in eight_bit
    assert eight_bit.count(UPPER_HALF) == truecolor.count(UPPER_HALF) == 8 * 4
    # pure red and blue land on the palette's red and blue, not on grey
    assert "38;5;196" in eight_bit and "48;5;21" in eight_bit


def test_monochrome_draws_shades_instead_of_colours() -> None:
    gray = np.linspace(0, 255, 16 * 4).astype(np.uint8).reshape(4, 16)
    strips = render_array(gray, ViewOptions(width=80, max_lines=6, image_rows=2, mono=True))
    picture = strips[-2:]
    assert all(set(s.text) <= set(SHADES) for s in picture)
    assert all(seg.style is None for s in picture for seg in s)
    assert picture[0].text[0] == " " and picture[-1].text[-1] == "█"
    heat = heatmap_strips(np.array([[0.0, np.nan], [1.0, np.nan]]), mono=True)
    assert heat[0].text == "▒?"
    assert set(legend_strip(0, 1, mono=True).text) <= set(SHADES + " 01")


# --- fields of a sample -----------------------------------------------------------------------------------


def test_sample_fields_lists_schema_fields_first_and_marks_problems() -> None:
    specs = [
        FieldSpec("a", FieldType("primitive", primitive="str")),
        FieldSpec("b", FieldType("primitive", primitive="int")),
        FieldSpec("c", FieldType("primitive", primitive="int"), optional=True),
    ]
    item = PreviewSample("s", 0, 0, "k", 0, 10, sample=DictSample({"a": "x", "z": 1}))
    fields = sample_fields(item, specs)
    assert [(n, p) for n, _v, _t, p in fields] == [
        ("a", None),
        ("b", "missing"),
        ("c", None),
        ("z", "not in schema"),
    ]
    header = field_header("b", None, specs[1].type, "missing", width=60)
    assert "⚠ missing" in header.text


def test_render_value_dispatches_by_type_then_by_value() -> None:
    str_type = FieldType("primitive", primitive="str")
    assert text_of(render_value("hi", str_type, WIDE)) == "hi"
    assert "ndarray 3" in text_of(render_value(np.zeros(3), FieldType("ndarray"), WIDE))
    assert text_of(render_value(b"ab", None, WIDE)).startswith("00000000  61 62")
    assert text_of(render_value({"k": 1}, None, WIDE)).startswith("dict · 1 keys")
    assert text_of(render_value(None, str_type, WIDE)) == "None"
    assert text_of(render_value(3, str_type, WIDE)) == "3"  # a wrong type is still shown


# --- in Pilot ---------------------------------------------------------------------------------------------


class ViewApp(App[None]):
    """One ``SampleView`` (or ``FieldView``) on its own."""

    def __init__(self, widget: Any) -> None:
        super().__init__()
        self.widget = widget
        self.opened: list[str] = []

    def compose(self) -> ComposeResult:
        yield self.widget

    def on_sample_view_open_field(self, message: SampleView.OpenField) -> None:
        self.opened.append(message.name)


def gallery_sample() -> PreviewSample:
    sample = DictSample(
        {
            "text": "a caption " * 30,
            "count": 12,
            "flag": True,
            "nothing": None,
            "meta": {"split": "train", "ids": list(range(20))},
            "signal": np.sin(np.linspace(0, 6.28, 64)).astype(np.float32),
            "image": checker(8, 8),
            "blob": bytes(range(64)),
        }
    )
    return PreviewSample("data-000000.tar", 0, 7, "sample-000007", 4096, 1234, sample=sample)


async def test_sample_view_cursor_expand_and_open_field() -> None:
    view = SampleView(id="view")
    app = ViewApp(view)
    async with app.run_test(size=(80, 40)) as pilot:
        view.show(gallery_sample())
        view.focus()
        await pilot.pause()
        shown = text_of(view._lines)
        assert shown.startswith("#7  key sample-000007")
        headers = [
            line[2:].split("  ")[0] for line in shown.splitlines() if line[:2] in ("▶ ", "  ")
        ]
        for name in ("text", "count", "flag", "nothing", "meta", "signal", "image", "blob"):
            assert name in headers
        assert view.current_field == "text"
        before = len(view._lines)
        await pilot.press("e")
        assert len(view._lines) == before  # 300 chars fit the folded lines at this width
        await pilot.press("down", "down", "down", "down")
        assert view.current_field == "meta"
        await pilot.press("e")
        assert len(view._lines) > before and "[19]: 19" in text_of(view._lines)
        await pilot.press("enter")
        await pilot.pause()
        assert app.opened == ["meta"]
        await pilot.press("end", "up")
        assert view.current_field == "image"


async def test_field_view_uses_the_whole_screen_for_an_image() -> None:
    view = FieldView(checker(16, 16), FieldType("ndarray"), id="field")
    app = ViewApp(view)
    async with app.run_test(size=(80, 40)) as pilot:
        await pilot.pause()
        shown = text_of(view._lines)
        assert f"image 64{TIMES}64 px" in shown  # 16 px enlarged 4 times to fill 35 rows
        assert sum(1 for s in view._lines if UPPER_HALF in s.text) == 32
