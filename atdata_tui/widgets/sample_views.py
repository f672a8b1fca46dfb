"""Renderers for sample fields, and the line-API views that show a sample and its fields.

Every renderer turns one value into a list of ``Strip``s for a given width, bounded by the output
and never by the input: a 50 MB string is cut before it is wrapped, a 12 MB bytes field shows its
first bytes, a 1e8-element array is summarised from a strided view (``atdata_core.preview``),
trees stop at a depth and an item count, and every cut says so ("… 950 more"). Which renderer is
chosen follows the schema's field type when the value has it, else the value itself (schema-free
``DictSample``s).

``SampleView`` shows one sample as a stack of fields (a cursor picks a field; enter opens it full
screen) and ``FieldView`` one field at full size; both are ``ScrollView``s that hand Textual only
the visible strips, so a sample with a huge field costs what is on screen.
"""

from __future__ import annotations

import hashlib
import math
import re
import weakref
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
from rich.console import Console
from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from textual.binding import Binding
from textual.geometry import Size
from textual.message import Message
from textual.reactive import reactive
from textual.scroll_view import ScrollView
from textual.strip import Strip

from atdata_core.preview import (
    TIMES,
    ArrayStats,
    ImageUnavailable,
    PreviewSample,
    array_stats,
    decode_image_bytes,
    downsample_1d,
    fit_size,
    grid_2d,
    human_bytes,
    image_pixels,
    is_image_like,
    pick_indices,
    sample_fields,
    sniff_image,
)
from atdata_core.samples import FieldSpec, FieldType

from ..bindings import KeySpec, bind
from .image import heatmap_strips, image_strips, legend_strip

#: Characters of a string wrapped when a field is expanded (the rest is summarised, never drawn).
TEXT_EXPANDED_CHARS = 64_000
#: ...and in the full-screen field view.
TEXT_FULL_CHARS = 256_000
#: Bytes shown in a hex dump when expanded / full screen (16 per line).
HEX_FULL_BYTES = 4096
#: Lines a tree may take when expanded / full screen, and items shown per container.
TREE_FULL_LINES = 2000
TREE_FULL_ITEMS = 200
TREE_FOLDED_ITEMS = 8
TREE_MAX_DEPTH = 8
#: Encoded images larger than this are not decoded on the event loop (shown as hex with a note).
IMAGE_DECODE_MAX_BYTES = 8 << 20
SPARK = "▁▂▃▄▅▆▇█"

_CONSOLE = Console(
    width=200, color_system="truecolor", force_terminal=True, legacy_windows=False, file=None
)

# --- styles ------------------------------------------------------------------------------------------
DIM = Style(dim=True)
KEY = Style(color="cyan")
STRING = Style(color="green")
NUMBER = Style(color="bright_blue")
BOOL = Style(color="magenta")
NONE = Style(color="magenta", italic=True)
NOTE = Style(color="yellow", italic=True)
ERROR = Style(color="red", bold=True)
GUIDE = Style(dim=True)
HEADER = Style(bold=True)
ACCENT = Style(color="bright_cyan")


@dataclass(frozen=True)
class ViewOptions:
    """How much room a renderer has and how much it may show.

    ``max_lines`` bounds a folded field (``None``: expanded, bounded by the module's caps
    instead); ``image_rows`` is the height of images and heat maps in cells (two pixels each);
    ``mono`` draws images with shade characters for terminals without colour; ``full`` is the
    full-screen field view (larger caps).
    """

    width: int = 80
    max_lines: int | None = 6
    image_rows: int = 12
    mono: bool = False
    full: bool = False

    @property
    def folded(self) -> bool:
        return self.max_lines is not None


# --- plumbing ----------------------------------------------------------------------------------------

_CONTROL = {i: 0x2400 + i for i in range(32) if i not in (9, 10)}
_CONTROL[127] = 0x2421
_CONTROL_EXTRA = re.compile("[\u0080-\u009f\u200b-\u200f\u2028-\u202e\u2066-\u2069]")


def clean(text: str) -> str:
    """Make data safe to draw: control characters (ESC above all) become visible symbols.

    Strings from shards are untrusted; a raw ESC in a segment would reach the terminal as an
    escape sequence. Tabs become spaces, C0 controls their U+2400 picture, C1 and bidi controls
    ``�``.
    """
    text = text.translate(_CONTROL).replace("\t", "    ")
    return _CONTROL_EXTRA.sub("\ufffd", text)


def clean_line(text: str) -> str:
    """``clean`` for text that must stay on one line (newlines shown as ``↵``)."""
    return clean(text.replace("\r\n", "\n")).replace("\n", "↵")


def text_strips(text: Text, width: int) -> list[Strip]:
    """Wrap a Rich ``Text`` to ``width`` cells and return one strip per line."""
    width = max(1, width)
    lines = text.wrap(_CONSOLE, width, overflow="fold")
    return [Strip(list(line.render(_CONSOLE, end="")), line.cell_len) for line in lines]


def line(*parts: tuple[str, Style | None] | str, width: int | None = None) -> Strip:
    """One strip from ``(text, style)`` parts, cropped to ``width`` with an ellipsis."""
    text = Text(no_wrap=True, overflow="ellipsis", end="")
    for part in parts:
        if isinstance(part, str):
            text.append(part)
        else:
            text.append(part[0], part[1])
    if width is not None and text.cell_len > width:
        text.truncate(max(1, width), overflow="ellipsis")
    return Strip(list(text.render(_CONSOLE, end="")), text.cell_len)


def note(message: str, width: int) -> list[Strip]:
    return text_strips(Text(message, style=NOTE), width)


def fmt_num(value: Any) -> str:
    """Numbers as people read them: ints with separators, floats with 6 significant digits."""
    if isinstance(value, (bool, np.bool_)):
        return "true" if value else "false"
    if isinstance(value, (int, np.integer)):
        return f"{int(value):,}" if abs(int(value)) >= 10_000 else str(int(value))
    value = float(value)
    if math.isnan(value):
        return "nan"
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    if value == 0:
        return "0"
    if 1e-4 <= abs(value) < 1e6:
        return f"{value:.6g}"
    return f"{value:.4e}"


def ordinal(n: int) -> str:
    """``1st``, ``2nd``, ``3rd``, ``4th``, ``11th``, ``22nd``, ``1,001st``."""
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n:,}{suffix}"


def shape_text(shape: Sequence[int]) -> str:
    return TIMES.join(str(d) for d in shape) if shape else "scalar"


# --- leaves ------------------------------------------------------------------------------------------


def render_scalar(value: Any, opts: ViewOptions) -> list[Strip]:
    """None, booleans and numbers: one line."""
    if value is None:
        return [line(("None", NONE))]
    if isinstance(value, (bool, np.bool_)):
        return [line(("true" if value else "false", BOOL))]
    if isinstance(value, (int, np.integer)):
        text = str(int(value))
        if abs(int(value)) >= 10_000:
            text += f"  ({int(value):,})"
        return [line((text, NUMBER), width=opts.width)]
    if isinstance(value, (float, np.floating)):
        return [line((repr(float(value)), NUMBER), width=opts.width)]
    if isinstance(value, (complex, np.complexfloating)):
        return [line((str(complex(value)), NUMBER), width=opts.width)]
    return [line((clean_line(repr(value)[:2000]), None), width=opts.width)]


def render_text(value: str, opts: ViewOptions) -> list[Strip]:
    """A string, wrapped; folded to ``max_lines`` and cut at a cap with a note, never whole."""
    width = max(1, opts.width)
    total = len(value)
    if total == 0:
        return [line(('""', DIM), ("  (empty string)", NOTE))]
    if opts.folded:
        assert opts.max_lines is not None
        cap = (opts.max_lines + 1) * width
    else:
        cap = TEXT_FULL_CHARS if opts.full else TEXT_EXPANDED_CHARS
    shown = value[:cap]
    strips = text_strips(Text(clean(shown), style=STRING), width)
    if opts.folded and opts.max_lines is not None and len(strips) > opts.max_lines:
        strips = strips[: opts.max_lines]
        hidden = total - _chars_in(shown, strips, width)
        strips += note(f"… {hidden:,} more characters of {total:,} · e expands", width)
    elif total > cap:
        strips += note(
            f"… showing the first {cap:,} of {total:,} characters "
            f"({human_bytes(total)}); the rest is not drawn",
            width,
        )
    return strips


def _chars_in(shown: str, strips: list[Strip], width: int) -> int:
    """About how many characters the kept strips hold (for the "n more" note)."""
    cells = sum(s.cell_length for s in strips)
    newlines = shown.count("\n", 0, cells + len(strips))
    return min(len(shown), cells + min(newlines, len(strips)))


def render_hex(data: bytes | bytearray | memoryview, opts: ViewOptions) -> list[Strip]:
    """A hex dump of the first bytes (``max_lines`` rows folded), saying how many there are."""
    total = len(data)
    if total == 0:
        return [line(("b''", DIM), ("  (no bytes)", NOTE))]
    per_line = 16 if opts.width >= 77 else 8 if opts.width >= 44 else 4
    rows = opts.max_lines if opts.max_lines is not None else HEX_FULL_BYTES // per_line
    head = bytes(data[: rows * per_line])
    strips = []
    for start in range(0, len(head), per_line):
        chunk = head[start : start + per_line]
        groups = [" ".join(f"{b:02x}" for b in chunk[i : i + 8]) for i in range(0, len(chunk), 8)]
        hex_part = "  ".join(groups).ljust(per_line * 3 - 1 + (per_line // 8 - 1))
        ascii_part = "".join(chr(b) if 32 <= b < 127 else "." for b in chunk)
        strips.append(
            line(
                (f"{start:08x}  ", DIM),
                (hex_part, NUMBER),
                ("  │", GUIDE),
                (ascii_part, STRING),
                ("│", GUIDE),
                width=opts.width,
            )
        )
    if total > len(head):
        more = total - len(head)
        hint = " · e expands" if opts.folded else ""
        strips += note(f"… {more:,} more bytes ({human_bytes(total)} in all){hint}", opts.width)
    return strips


def render_bytes(data: bytes | bytearray | memoryview, opts: ViewOptions) -> list[Strip]:
    """Bytes: an encoded image (PNG/JPEG/...) drawn when Pillow can decode it, else a hex dump."""
    kind = sniff_image(data)
    if kind is None:
        return render_hex(data, opts)
    header = line((f"{kind} image · {human_bytes(len(data))}", DIM), width=opts.width)
    if len(data) > IMAGE_DECODE_MAX_BYTES:
        return [
            header,
            *note(f"not decoded: larger than {human_bytes(IMAGE_DECODE_MAX_BYTES)}", opts.width),
            *render_hex(data, replace(opts, max_lines=min(opts.max_lines or 8, 8))),
        ]
    try:
        pixels = _decoded_image(bytes(data), opts.image_rows * 2, opts.width)
    except ImageUnavailable as exc:
        return [
            header,
            *note(f"{exc}; showing the bytes", opts.width),
            *render_hex(data, opts),
        ]
    size = f" · {pixels.shape[1]}{TIMES}{pixels.shape[0]} shown" if pixels.size else ""
    header = line((f"{kind} image · {human_bytes(len(data))}{size}", DIM), width=opts.width)
    return [header, *image_strips(pixels, mono=opts.mono)]


#: Decoded images by content digest: redraws (cursor moves, resizes) must not decode again, and
#: the cache must not keep the encoded bytes alive once their sample has left memory.
_IMAGE_CACHE: dict[tuple[bytes, int, int], np.ndarray] = {}
_IMAGE_CACHE_SIZE = 16


def _decoded_image(data: bytes, max_h: int, max_w: int) -> np.ndarray:
    """Decoded, resized pixels (at most ``max_h x max_w``), cached by a digest of the bytes."""
    key = (hashlib.blake2b(data, digest_size=16).digest(), max_h, max_w)
    pixels = _IMAGE_CACHE.get(key)
    if pixels is None:
        pixels = decode_image_bytes(data, max_h, max_w)
        if len(_IMAGE_CACHE) >= _IMAGE_CACHE_SIZE:
            _IMAGE_CACHE.pop(next(iter(_IMAGE_CACHE)))
        _IMAGE_CACHE[key] = pixels
    return pixels


# --- arrays ------------------------------------------------------------------------------------------


def stats_strips(stats: ArrayStats, width: int) -> list[Strip]:
    """The summary lines of an array: shape/dtype/size, then min/max/mean/std, NaN/Inf, sampling."""
    strips = [
        line(
            ("ndarray ", DIM),
            (shape_text(stats.shape), HEADER),
            (" · ", DIM),
            (stats.dtype, ACCENT),
            (f" · {stats.size:,} values · {human_bytes(stats.nbytes)}", DIM),
            width=width,
        )
    ]
    if stats.min is not None:
        strips.append(
            line(
                ("min ", DIM),
                (fmt_num(stats.min), NUMBER),
                ("  max ", DIM),
                (fmt_num(stats.max), NUMBER),
                ("  mean ", DIM),
                (fmt_num(stats.mean), NUMBER),
                ("  std ", DIM),
                (fmt_num(stats.std), NUMBER),
                width=width,
            )
        )
    if stats.nan or stats.inf:
        strips.append(
            line(
                ("nan ", DIM),
                (f"{stats.nan:,}", ERROR if stats.nan else NUMBER),
                ("  inf ", DIM),
                (f"{stats.inf:,}", ERROR if stats.inf else NUMBER),
                (" (in the values counted)" if stats.sampled else "", DIM),
                width=width,
            )
        )
    if stats.sampled:
        strips += note(
            f"statistics of {stats.counted:,} of {stats.size:,} values "
            f"(every {ordinal(stats.step)})",
            width,
        )
    if stats.note:
        strips += note(stats.note, width)
    return strips


def _values_line(arr: np.ndarray, width: int) -> Strip:
    """``[0.5, 1, 2, … 3 more]`` for the start of a 1-D array, within one line."""
    parts: list[str] = []
    used = 2
    for i, v in enumerate(arr[:64].tolist()):
        text = fmt_num(v) if isinstance(v, (int, float, bool)) else clean_line(repr(v))
        rest = arr.shape[0] - i
        if used + len(text) + 2 + len(f"… {rest:,} more") > width and i > 0:
            parts.append(f"… {rest:,} more")
            break
        parts.append(text)
        used += len(text) + 2
    else:
        if arr.shape[0] > 64:
            parts.append(f"… {arr.shape[0] - 64:,} more")
    return line(("[", DIM), (", ".join(parts), NUMBER), ("]", DIM), width=width)


def sparkline_strip(arr: np.ndarray, width: int) -> Strip:
    """A one-line sparkline of a 1-D array (bucket means; blanks where a bucket is all NaN)."""
    cols = min(width, arr.shape[0]) if arr.shape[0] else 1
    values = downsample_1d(arr, cols)
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        return line((" " * cols, None))
    lo, hi = float(finite.min()), float(finite.max())
    span = hi - lo
    chars = []
    for v in values:
        if not np.isfinite(v):
            chars.append(" ")
        elif span <= 0:
            chars.append(SPARK[len(SPARK) // 2])
        else:
            chars.append(SPARK[min(len(SPARK) - 1, int((v - lo) / span * len(SPARK)))])
    return line(("".join(chars), ACCENT))


def bar_chart_strips(arr: np.ndarray, width: int, rows: int) -> list[Strip]:
    """A sparkline ``rows`` lines tall (eighth blocks at the top of each bar), for more room."""
    cols = min(width, arr.shape[0]) if arr.shape[0] else 1
    values = downsample_1d(arr, cols)
    finite = values[np.isfinite(values)]
    if finite.size == 0 or rows < 2:
        return [sparkline_strip(arr, width)]
    lo, hi = float(finite.min()), float(finite.max())
    span = hi - lo
    levels = []
    for v in values:
        if not np.isfinite(v):
            levels.append(-1)
        elif span <= 0:
            levels.append(rows * 4)
        else:
            levels.append(max(1, round((v - lo) / span * rows * 8)))
    strips = []
    for r in range(rows - 1, -1, -1):  # top line first
        chars = []
        for level in levels:
            fill = level - r * 8
            if level < 0 or fill <= 0:
                chars.append(" ")
            elif fill >= 8:
                chars.append("█")
            else:
                chars.append(SPARK[fill - 1])
        strips.append(line(("".join(chars), ACCENT)))
    return strips


def _image_view(arr: np.ndarray) -> np.ndarray | None:
    """The array as an HxW(xC) image if it looks like one (uint8, or float in 0..1; CHW too)."""
    if arr.ndim == 3 and arr.shape[0] in (3, 4) and arr.shape[2] not in (1, 3, 4):
        arr = arr.transpose(1, 2, 0)  # channels first: a view, no copy
    if is_image_like(arr):
        return arr
    return None


def _float_image(arr: np.ndarray, stats: ArrayStats) -> bool:
    return (
        arr.dtype.kind == "f"
        and arr.ndim == 3
        and arr.shape[2] in (3, 4)
        and stats.min is not None
        and stats.min >= 0.0
        and stats.max is not None
        and stats.max <= 1.0
        and not stats.nan
    )


def render_array(arr: np.ndarray, opts: ViewOptions) -> list[Strip]:
    """Shape, dtype, statistics, then a picture: sparkline (1-D), image, or heat map (2-D+)."""
    stats = _cached_stats(arr)
    strips = stats_strips(stats, opts.width)
    if arr.size == 0 or arr.dtype.kind not in "biuf":
        if arr.ndim == 1 and arr.size:
            strips.append(_values_line(arr, opts.width))
        return strips
    if arr.ndim == 0:
        strips.append(line(("value ", DIM), (fmt_num(arr.item()), NUMBER)))
        return strips
    if arr.ndim == 1:
        strips.append(_values_line(arr, opts.width))
        if opts.folded:
            strips.append(sparkline_strip(arr, opts.width))
        else:
            strips += bar_chart_strips(arr, opts.width, max(2, min(12, opts.image_rows // 2)))
        return strips
    rows = max(1, opts.image_rows)
    image = _image_view(arr)
    pixels: np.ndarray | None = None
    if image is not None:
        pixels = image_pixels(image, rows * 2, opts.width)
    elif _float_image(arr, stats):
        h, w = arr.shape[:2]
        out_h, out_w = fit_size(h, w, rows * 2, opts.width)
        cells = arr[np.ix_(pick_indices(h, out_h), pick_indices(w, out_w))][:, :, :3]
        pixels = np.clip(np.rint(cells * 255), 0, 255).astype(np.uint8)
    if pixels is not None:
        strips.append(line((f"image {pixels.shape[1]}{TIMES}{pixels.shape[0]} px", DIM)))
        strips += image_strips(pixels, mono=opts.mono)
        return strips
    plane = arr
    label = ""
    if arr.ndim > 2:
        index = (0,) * (arr.ndim - 2)
        plane = arr[index]
        label = f" of slice [{', '.join('0' for _ in index)}, :, :]"
    h, w = plane.shape
    k = max(1, min(4, opts.width // max(1, w), (rows * 2) // max(1, h)))
    out_h, out_w = min(rows * 2, h * k), min(opts.width, w * k)
    grid = grid_2d(plane, out_h, out_w)
    vmin, vmax = stats.min, stats.max
    if vmin is None or vmax is None:
        vmin = vmax = 0.0
    strips.append(line((f"heat map {out_w}{TIMES}{out_h} px{label}", DIM)))
    strips += heatmap_strips(grid, vmin=vmin, vmax=vmax, mono=opts.mono)
    strips.append(legend_strip(vmin, vmax, width=10, mono=opts.mono))
    return strips


_STATS_CACHE: dict[int, tuple[weakref.ref[np.ndarray], ArrayStats]] = {}
_STATS_CACHE_SIZE = 64


def _cached_stats(arr: np.ndarray) -> ArrayStats:
    """Stats per array object, so redraws do not recompute them; weak, so no array outlives its
    sample because of the cache."""
    hit = _STATS_CACHE.get(id(arr))
    if hit is not None and hit[0]() is arr:
        return hit[1]
    stats = array_stats(arr)
    if len(_STATS_CACHE) >= _STATS_CACHE_SIZE:
        _STATS_CACHE.pop(next(iter(_STATS_CACHE)))
    _STATS_CACHE[id(arr)] = (weakref.ref(arr), stats)
    return stats


# --- trees -------------------------------------------------------------------------------------------


def inline(value: Any, width: int = 60) -> Text:
    """A one-line summary of any value (table cells, tree leaves)."""
    if value is None:
        return Text("None", NONE)
    if isinstance(value, (bool, np.bool_)):
        return Text("true" if value else "false", BOOL)
    if isinstance(value, (int, float, np.integer, np.floating)):
        return Text(fmt_num(value), NUMBER, justify="right")
    if isinstance(value, str):
        shown = clean_line(value[: width + 1])
        text = Text(shown if len(value) <= width else shown[: max(1, width - 1)] + "…", STRING)
        return text
    if isinstance(value, (bytes, bytearray, memoryview)):
        kind = sniff_image(value)
        if kind:
            return Text(f"{kind} · {human_bytes(len(value))}", ACCENT)
        head = " ".join(f"{b:02x}" for b in bytes(value[:8]))
        return Text(f"{human_bytes(len(value))} · {head}{' …' if len(value) > 8 else ''}", DIM)
    if isinstance(value, np.ndarray):
        return Text(f"{shape_text(value.shape)} {value.dtype.name}", ACCENT)
    if isinstance(value, dict):
        return Text(f"{{{len(value):,} keys}}", DIM)
    if isinstance(value, (list, tuple)):
        return Text(f"[{len(value):,} items]", DIM)
    return Text(clean_line(repr(value)[: width + 1])[:width])


def render_tree(value: Any, opts: ViewOptions) -> list[Strip]:
    """Lists and maps as an indented tree, with depth, item and line limits that say what is cut."""
    folded = opts.folded
    max_items = TREE_FOLDED_ITEMS if folded else TREE_FULL_ITEMS
    max_lines = (opts.max_lines or 6) * 2 if folded else TREE_FULL_LINES
    max_depth = 3 if folded else TREE_MAX_DEPTH
    out: list[Strip] = []
    width = opts.width

    def container_label(v: Any) -> str:
        return f"dict · {len(v):,} keys" if isinstance(v, dict) else f"list · {len(v):,} items"

    def walk(v: Any, prefix: str, depth: int) -> bool:
        items: Iterable[tuple[str, Any]]
        if isinstance(v, dict):
            items = ((clean_line(str(k))[:80], x) for k, x in v.items())
        else:
            items = ((f"[{i}]", x) for i, x in enumerate(v))
        n = len(v)
        shown = min(n, max_items)
        for i, (label, child) in enumerate(items):
            if i >= shown:
                break
            if len(out) >= max_lines:
                return False
            last = i == n - 1
            branch = "└─ " if last else "├─ "
            is_container = isinstance(child, (dict, list, tuple)) and len(child) > 0
            if is_container:
                out.append(
                    line(
                        (prefix + branch, GUIDE),
                        (label, KEY),
                        (": ", DIM),
                        (container_label(child), DIM),
                        width=width,
                    )
                )
                if depth + 1 >= max_depth:
                    out.append(
                        line(
                            (prefix + ("   " if last else "│  ") + "└─ ", GUIDE),
                            ("… deeper levels not shown", NOTE),
                            width=width,
                        )
                    )
                elif not walk(child, prefix + ("   " if last else "│  "), depth + 1):
                    return False
            else:
                room = max(8, width - len(prefix) - len(label) - 5)
                out.append(
                    line(
                        (prefix + branch, GUIDE),
                        (label, KEY),
                        (": ", DIM),
                        *_text_parts(inline(child, room)),
                        width=width,
                    )
                )
        if n > shown and len(out) < max_lines:
            hint = " · e expands" if folded else ""
            out.append(
                line((prefix + "└─ ", GUIDE), (f"… {n - shown:,} more{hint}", NOTE), width=width)
            )
        return True

    out.append(line((container_label(value), DIM), width=width))
    if len(value) == 0:
        return out
    if not walk(value, "", 0):
        hint = " · e expands" if folded else ""
        out += note(f"… cut at {max_lines:,} lines{hint}", width)
    return out


def _text_parts(text: Text) -> list[tuple[str, Style | None]]:
    plain = text.plain
    style = text.style if isinstance(text.style, Style) else None
    return [(plain, style)]


# --- dispatch ----------------------------------------------------------------------------------------


def render_value(value: Any, ftype: FieldType | None, opts: ViewOptions) -> list[Strip]:
    """Strips for one field value: by its declared type when the value has it, else by value."""
    kind = ftype.kind if ftype is not None else None
    if value is None:
        return render_scalar(None, opts)
    if kind == "ndarray" and isinstance(value, np.ndarray):
        return render_array(value, opts)
    if kind == "primitive" and ftype is not None:
        if ftype.primitive == "str" and isinstance(value, str):
            return render_text(value, opts)
        if ftype.primitive == "bytes" and isinstance(value, (bytes, bytearray, memoryview)):
            return render_bytes(value, opts)
    if isinstance(value, np.ndarray):
        return render_array(value, opts)
    if isinstance(value, str):
        return render_text(value, opts)
    if isinstance(value, (bytes, bytearray, memoryview)):
        return render_bytes(value, opts)
    if isinstance(value, (dict, list, tuple)):
        return render_tree(value, opts)
    return render_scalar(value, opts)


def describe_value(value: Any, ftype: FieldType | None) -> str:
    """The type label of a field header: the schema's type, else one read off the value."""
    if ftype is not None:
        return ftype.describe()
    if value is None:
        return "None"
    if isinstance(value, np.ndarray):
        return f"ndarray[{value.dtype.name}]"
    if isinstance(value, (bool, np.bool_)):
        return "bool"
    if isinstance(value, (list, tuple)):
        return "list"
    if isinstance(value, dict):
        return "dict"
    return type(value).__name__


def field_header(
    name: str,
    value: Any,
    ftype: FieldType | None,
    problem: str | None,
    *,
    width: int,
    selected: bool = False,
) -> Strip:
    """``▸ name  type  summary  problem`` — the line the field cursor sits on."""
    marker = "▶ " if selected else "  "
    parts: list[tuple[str, Style | None]] = [
        (marker, ACCENT),
        (clean_line(name), Style(bold=True, color="bright_white")),
        ("  " + describe_value(value, ftype), DIM),
    ]
    if isinstance(value, np.ndarray):
        parts.append(("  " + shape_text(value.shape), DIM))
    elif isinstance(value, str) and len(value) > 80:
        parts.append((f"  {len(value):,} chars", DIM))
    elif isinstance(value, (bytes, bytearray, memoryview)):
        parts.append((f"  {human_bytes(len(value))}", DIM))
    elif isinstance(value, (list, tuple, dict)):
        parts.append((f"  {len(value):,} items", DIM))
    if problem:
        parts.append((f"  ⚠ {problem}", ERROR))
    strip = line(*parts, width=width)
    if selected:
        strip = strip.extend_cell_length(width).apply_style(Style(bgcolor="grey23"))
    return strip


def sample_header(item: PreviewSample, width: int) -> list[Strip]:
    """The sample's identity and whether it matches the schema."""
    status: tuple[str, Style]
    if item.status == "ok":
        status = ("✓ ok", Style(color="green"))
    elif item.status == "mismatch":
        status = ("≠ does not match the schema", Style(color="yellow", bold=True))
    else:
        status = ("✗ cannot be decoded", ERROR)
    strips = [
        line(
            (f"#{item.index}", HEADER),
            ("  key ", DIM),
            (clean_line(item.key), KEY),
            width=width,
        ),
        line(
            (f"shard {item.shard_index} · byte {item.offset:,} · {human_bytes(item.size)}  ", DIM),
            status,
            width=width,
        ),
    ]
    if item.error:
        strips += text_strips(Text(clean(item.error), style=ERROR), width)
    if item.note:
        strips += note(item.note, width)
    return strips


# --- keys --------------------------------------------------------------------------------------------

#: The preview's own binding ids, in the shape of ``atdata_tui.bindings.KEYS`` (default keys,
#: footer label, help text), so the app can merge them there and users can remap them from the
#: config's ``[keys]``. Shared meanings (cursor, pages, refresh, back) use the app's ids.
PREVIEW_KEYS: dict[str, KeySpec] = {
    "preview-toggle-view": KeySpec("t", "Table/Sample", "Switch between the table and one sample"),
    "preview-schema": KeySpec("s", "Schema", "Show the schema and the samples that do not match"),
    "preview-next-page": KeySpec("n", "More", "Load the next samples (or the next shard)"),
    "preview-prev-page": KeySpec("p", "Prev page", "Load the previous samples"),
    "preview-next-shard": KeySpec("right_square_bracket", "Next shard", "Preview the next shard"),
    "preview-prev-shard": KeySpec(
        "left_square_bracket", "Prev shard", "Preview the previous shard"
    ),
    "preview-jump": KeySpec(
        "colon", "Jump", "Jump to a sample (17), shard:sample (2:17), shard (s2)"
    ),
    "preview-next-entry": KeySpec("right_curly_bracket", "Next entry", "Preview the next entry"),
    "preview-prev-entry": KeySpec("left_curly_bracket", "Prev entry", "Preview the previous entry"),
    "preview-next-sample": KeySpec("right,l", "Next sample", "Show the next sample"),
    "preview-prev-sample": KeySpec("left,h", "Prev sample", "Show the previous sample"),
    "preview-open-field": KeySpec(
        "enter", "Open field", "Show the field under the cursor full screen"
    ),
    "preview-expand": KeySpec("e", "Expand", "Unfold (or fold) the field under the cursor"),
    "preview-open-sample": KeySpec("enter", "Open sample", "Show the sample under the cursor"),
    "preview-scroll-right": KeySpec("right,l", "Scroll right", "Scroll the table right"),
    "preview-scroll-left": KeySpec("left,h", "Scroll left", "Scroll the table left"),
}

_KEY_DISPLAY = {
    "colon": ":",
    "right_square_bracket": "]",
    "left_square_bracket": "[",
    "right_curly_bracket": "}",
    "left_curly_bracket": "{",
}


def preview_bind(binding_id: str, action: str, *, show: bool = True) -> Binding:
    """A ``Binding`` for one of ``PREVIEW_KEYS`` (what ``bindings.bind`` does for the app's ids)."""
    spec = PREVIEW_KEYS[binding_id]
    first = spec.keys.split(",")[0]
    return Binding(
        spec.keys,
        action,
        spec.description,
        show=show,
        key_display=_KEY_DISPLAY.get(first),
        tooltip=spec.help,
        id=binding_id,
    )


# --- views -------------------------------------------------------------------------------------------


@dataclass
class _Block:
    """Where one field sits among a view's lines."""

    name: str
    start: int
    length: int


class SampleView(ScrollView, can_focus=True):
    """One sample, field after field, with a field cursor; built from strips, drawn lazily."""

    DEFAULT_CSS = """
    SampleView {
        background: $surface;
        padding: 0 0 0 1;
        overflow-x: hidden;
        overflow-y: scroll;  /* always there, so the wrap width never changes under the text */
        scrollbar-size-vertical: 1;
    }
    """

    BINDINGS = [
        bind("cursor-up", "field_up", show=False),
        bind("cursor-down", "field_down", show=False),
        preview_bind("preview-next-sample", "step(1)"),
        preview_bind("preview-prev-sample", "step(-1)"),
        preview_bind("preview-open-field", "open_field"),
        preview_bind("preview-expand", "toggle_expand"),
        bind("page-up", "page_up", show=False),
        bind("page-down", "page_down", show=False),
        bind("cursor-top", "field_first", show=False),
        bind("cursor-bottom", "field_last", show=False),
    ]

    field_index: reactive[int] = reactive(0, always_update=True)

    @dataclass
    class OpenField(Message):
        """The user asked to see one field full screen."""

        view: SampleView
        item: PreviewSample
        name: str

        @property
        def control(self) -> SampleView:
            return self.view

    @dataclass
    class Step(Message):
        """The user asked for the next (``delta`` 1) or previous (-1) sample."""

        view: SampleView
        delta: int

        @property
        def control(self) -> SampleView:
            return self.view

    def __init__(self, *, mono: bool | None = None, id: str | None = None) -> None:
        super().__init__(id=id)
        self.item: PreviewSample | None = None
        self.specs: list[FieldSpec] | None = None
        self.expanded: set[str] = set()
        self.placeholder = "no sample yet"
        self._mono = mono
        self._lines: list[Strip] = []
        self._blocks: list[_Block] = []
        self._field_cache: dict[tuple[Any, ...], list[Strip]] = {}
        self._built_for: tuple[Any, ...] | None = None

    @property
    def mono(self) -> bool:
        return self._mono if self._mono is not None else bool(getattr(self.app, "no_color", False))

    def show(self, item: PreviewSample | None, specs: Sequence[FieldSpec] | None = None) -> None:
        """Show a sample (``None``: the placeholder), keeping the field cursor where it was."""
        if item is not self.item:
            self._field_cache.clear()
            if self.item is None or item is None or item.key != self.item.key:
                self.expanded.clear()
        self.item = item
        self.specs = list(specs) if specs else None
        self._built_for = None
        self._rebuild()

    def set_placeholder(self, text: str) -> None:
        self.placeholder = text
        if self.item is None:
            self._built_for = None
            self._rebuild()

    @property
    def fields(self) -> list[tuple[str, Any, FieldType | None, str | None]]:
        return sample_fields(self.item, self.specs) if self.item is not None else []

    @property
    def current_field(self) -> str | None:
        if not self._blocks:
            return None
        return self._blocks[min(self.field_index, len(self._blocks) - 1)].name

    def on_resize(self) -> None:
        self._rebuild()

    def _options(self, width: int) -> ViewOptions:
        # Pictures take about two thirds of the view, so the next field's header stays in sight.
        rows = max(6, min(16, (self.size.height - 2) * 2 // 3)) if self.size.height else 12
        return ViewOptions(width=width, max_lines=6, image_rows=rows, mono=self.mono)

    def _rebuild(self) -> None:
        width = max(20, self.scrollable_content_region.width or self.size.width or 80) - 1
        key = (id(self.item), width, self.size.height, frozenset(self.expanded), self.field_index)
        if key == self._built_for:
            return
        self._built_for = key
        lines: list[Strip] = []
        blocks: list[_Block] = []
        if self.item is None:
            lines = [line((self.placeholder, NOTE), width=width)]
        else:
            lines += sample_header(self.item, width)
            fields = self.fields
            if self.field_index >= len(fields) and fields:
                self.set_reactive(SampleView.field_index, len(fields) - 1)
            opts = self._options(width - 2)
            for i, (name, value, ftype, problem) in enumerate(fields):
                lines.append(Strip.blank(0))
                start = len(lines)
                lines.append(
                    field_header(
                        name, value, ftype, problem, width=width, selected=i == self.field_index
                    )
                )
                expanded = name in self.expanded
                cache_key = (name, opts, expanded)
                body = self._field_cache.get(cache_key)
                if body is None:
                    body = render_value(
                        value, ftype, replace(opts, max_lines=None) if expanded else opts
                    )
                    self._field_cache[cache_key] = body
                lines += [_indent(s, 2) for s in body]
                blocks.append(_Block(name, start, len(lines) - start))
            if self.item.status == "error" and self.item.raw is not None:
                lines.append(Strip.blank(0))
                lines.append(line(("raw bytes of the sample", HEADER)))
                lines += [
                    _indent(s, 2) for s in render_hex(self.item.raw, ViewOptions(width - 2, 16))
                ]
            for ext, value in self.item.extra.items() if self.item.status == "error" else ():
                lines.append(line((f"member .{clean_line(ext)}", HEADER), width=width))
                lines += [_indent(s, 2) for s in render_bytes(value, self._options(width - 2))]
        self._lines = lines
        self._blocks = blocks
        self.virtual_size = Size(width, len(lines))
        self.refresh()

    def render_line(self, y: int) -> Strip:
        scroll_x, scroll_y = self.scroll_offset
        index = scroll_y + y
        width = self.scrollable_content_region.width
        if index >= len(self._lines):
            return Strip.blank(width, self.rich_style)
        strip = self._lines[index]
        return strip.crop_extend(scroll_x, scroll_x + width, self.rich_style).apply_style(
            self.rich_style
        )

    # --- actions
    def _move(self, delta: int) -> None:
        if not self._blocks:
            return
        self.field_index = max(0, min(len(self._blocks) - 1, self.field_index + delta))
        self._built_for = None
        self._rebuild()
        block = self._blocks[self.field_index]
        top = block.start - 1 if self.field_index else 0
        bottom = block.start + min(block.length, max(1, self.size.height - 1))
        if top < self.scroll_y:
            self.scroll_to(y=top, animate=False)
        elif bottom > self.scroll_y + self.size.height:
            self.scroll_to(y=max(0, bottom - self.size.height), animate=False)

    def action_field_up(self) -> None:
        self._move(-1)

    def action_field_down(self) -> None:
        self._move(1)

    def action_field_first(self) -> None:
        self._move(-len(self._blocks))
        self.scroll_home(animate=False)

    def action_field_last(self) -> None:
        self._move(len(self._blocks))

    def action_toggle_expand(self) -> None:
        name = self.current_field
        if name is None:
            return
        self.expanded.symmetric_difference_update({name})
        self._built_for = None
        self._rebuild()

    def action_step(self, delta: int) -> None:
        self.post_message(self.Step(self, delta))

    def action_open_field(self) -> None:
        name = self.current_field
        if self.item is not None and name is not None:
            self.post_message(self.OpenField(self, self.item, name))


def _indent(strip: Strip, n: int) -> Strip:
    return Strip([Segment(" " * n), *strip], strip.cell_length + n)


class SampleTable(ScrollView, can_focus=True):
    """One row per kept sample, one column per field: a line-API table (no widget per row).

    Cells are summarised once (``inline``) when a row is added; a row's strip is built only when
    it is on screen and cached until the column widths change, so adding a batch of rows or
    moving the cursor redraws a couple of lines, not the table. The header stays on top.
    """

    DEFAULT_CSS = """
    SampleTable { background: $surface; overflow-x: auto; overflow-y: scroll; scrollbar-size-vertical: 1; }
    """

    BINDINGS = [
        bind("cursor-up", "cursor(-1)", show=False),
        bind("cursor-down", "cursor(1)", show=False),
        bind("page-up", "page(-1)", show=False),
        bind("page-down", "page(1)", show=False),
        bind("cursor-top", "cursor_to(0)", show=False),
        bind("cursor-bottom", "cursor_to(-1)", show=False),
        preview_bind("preview-open-sample", "select"),
        preview_bind("preview-scroll-right", "scroll_right", show=False),
        preview_bind("preview-scroll-left", "scroll_left", show=False),
    ]

    #: The widest a column gets (cells are summaries: the sample view shows everything).
    MAX_CELL = 28
    GAP = 2

    @dataclass
    class Highlighted(Message):
        """The cursor moved to ``row``."""

        table: SampleTable
        row: int

        @property
        def control(self) -> SampleTable:
            return self.table

    @dataclass
    class Selected(Message):
        """Enter (or a click) on ``row``."""

        table: SampleTable
        row: int

        @property
        def control(self) -> SampleTable:
            return self.table

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.columns: list[str] = []
        self.rows: list[list[Text]] = []
        self.row_styles: list[Style | None] = []
        self.widths: list[int] = []
        self.cursor_row = 0
        self._strips: dict[int, Strip] = {}
        self._header: Strip | None = None

    # --- content
    @property
    def row_count(self) -> int:
        return len(self.rows)

    def clear(self, columns: bool = False) -> None:
        self.rows = []
        self.row_styles = []
        self.cursor_row = 0
        if columns:
            self.columns = []
            self.widths = []
        self._invalidate()
        self.scroll_to(0, 0, animate=False)

    def set_columns(self, names: Sequence[str]) -> None:
        self.columns = [clean_line(n) for n in names]
        self.widths = [min(self.MAX_CELL, max(1, len(n))) for n in self.columns]
        self._invalidate()

    def add_rows(self, rows: Sequence[Sequence[Text]], styles: Sequence[Style | None] = ()) -> None:
        """Append rows (one ``Text`` per column); widths grow to fit, up to ``MAX_CELL``."""
        grew = False
        for i, cells in enumerate(rows):
            row = list(cells)[: len(self.columns)]
            row += [Text("")] * (len(self.columns) - len(row))
            self.rows.append(row)
            self.row_styles.append(styles[i] if i < len(styles) else None)
            for c, cell in enumerate(row):
                width = min(self.MAX_CELL, cell.cell_len)
                if width > self.widths[c]:
                    self.widths[c] = width
                    grew = True
        if grew:
            self._invalidate()
        else:
            self._update_virtual_size()
            self.refresh()

    def row_text(self, row: int) -> list[str]:
        """The plain text of a row's cells (tests, and copying)."""
        return [cell.plain for cell in self.rows[row]]

    def move_cursor(self, row: int, *, scroll: bool = True) -> None:
        if not self.rows:
            return
        row = max(0, min(row, len(self.rows) - 1))
        if row != self.cursor_row:
            old = self.cursor_row
            self.cursor_row = row
            self._strips.pop(old, None)
            self._strips.pop(row, None)
            self.refresh()
            self.post_message(self.Highlighted(self, row))
        if scroll:
            self._scroll_to_cursor()

    # --- drawing
    def _invalidate(self) -> None:
        self._strips.clear()
        self._header = None
        self._update_virtual_size()
        self.refresh()

    def _update_virtual_size(self) -> None:
        width = sum(self.widths) + self.GAP * max(0, len(self.widths) - 1) + 1
        size = Size(width, len(self.rows) + 1)
        if size != self.virtual_size:
            self.virtual_size = size

    def _line(self, cells: Sequence[Text], style: Style | None) -> Strip:
        segments: list[Segment] = [Segment(" ")]
        for c, (cell, width) in enumerate(zip(cells, self.widths, strict=False)):
            if c:
                segments.append(Segment(" " * self.GAP))
            text = cell.copy()
            text.truncate(width, overflow="ellipsis")
            pad = width - text.cell_len
            if pad > 0 and cell.justify == "right":
                segments.append(Segment(" " * pad))
                pad = 0
            segments.extend(text.render(_CONSOLE, end=""))
            if pad > 0:
                segments.append(Segment(" " * pad))
        strip = Strip(segments)
        return strip.apply_style(style) if style is not None else strip

    def _header_strip(self) -> Strip:
        if self._header is None:
            titles = [Text(name, style=HEADER) for name in self.columns]
            self._header = self._line(titles, Style(bold=True, bgcolor="grey19"))
        return self._header

    def render_line(self, y: int) -> Strip:
        scroll_x, scroll_y = self.scroll_offset
        width = self.scrollable_content_region.width
        if y == 0:
            strip = self._header_strip()
        else:
            row = scroll_y + y - 1
            if row >= len(self.rows):
                return Strip.blank(width, self.rich_style)
            cached = self._strips.get(row)
            if cached is not None:
                strip = cached
            else:
                style = self.row_styles[row]
                if row == self.cursor_row:
                    cursor = (
                        Style(bgcolor="dodger_blue3", bold=True)
                        if self.has_focus
                        else Style(bgcolor="grey30")
                    )
                    style = style + cursor if style is not None else cursor
                elif row % 2:
                    zebra = Style(bgcolor="grey15")
                    style = style + zebra if style is not None else zebra
                strip = self._line(self.rows[row], style)
                if len(self._strips) > 512:
                    self._strips.clear()
                self._strips[row] = strip
        extend = self.rich_style
        if y and scroll_y + y - 1 == self.cursor_row:
            extend = (
                self.rich_style + Style(bgcolor="dodger_blue3")
                if self.has_focus
                else self.rich_style + Style(bgcolor="grey30")
            )
        return strip.crop_extend(scroll_x, scroll_x + width, extend).apply_style(self.rich_style)

    def on_focus(self) -> None:
        self._strips.pop(self.cursor_row, None)
        self.refresh()

    def on_blur(self) -> None:
        self._strips.pop(self.cursor_row, None)
        self.refresh()

    # --- keys and mouse
    def _scroll_to_cursor(self) -> None:
        visible = max(1, self.scrollable_content_region.height - 1)
        if self.cursor_row < self.scroll_y:
            self.scroll_to(y=self.cursor_row, animate=False)
        elif self.cursor_row >= self.scroll_y + visible:
            self.scroll_to(y=self.cursor_row - visible + 1, animate=False)

    def action_cursor(self, delta: int) -> None:
        self.move_cursor(self.cursor_row + delta)

    def action_page(self, delta: int) -> None:
        self.move_cursor(
            self.cursor_row + delta * max(1, self.scrollable_content_region.height - 2)
        )

    def action_cursor_to(self, row: int) -> None:
        self.move_cursor(row if row >= 0 else len(self.rows) - 1)

    def action_select(self) -> None:
        if self.rows:
            self.post_message(self.Selected(self, self.cursor_row))

    def on_click(self, event: Any) -> None:
        row = self.scroll_offset.y + event.y - 1
        if event.y >= 1 and 0 <= row < len(self.rows):
            self.move_cursor(row, scroll=False)
            if getattr(event, "chain", 1) >= 2:
                self.post_message(self.Selected(self, row))


class FieldView(ScrollView, can_focus=True):
    """One field at the size of the screen (full screen view): bigger images, longer text."""

    DEFAULT_CSS = """
    FieldView {
        background: $surface;
        padding: 0 0 0 1;
        overflow-x: hidden;
        overflow-y: scroll;
        scrollbar-size-vertical: 1;
    }
    """

    BINDINGS = [
        bind("page-up", "page_up", show=False),
        bind("page-down", "page_down", show=False),
        bind("cursor-top", "scroll_home", show=False),
        bind("cursor-bottom", "scroll_end", show=False),
    ]

    def __init__(
        self,
        value: Any,
        ftype: FieldType | None,
        *,
        mono: bool | None = None,
        id: str | None = None,
    ) -> None:
        super().__init__(id=id)
        self.value = value
        self.ftype = ftype
        self._mono = mono
        self._lines: list[Strip] = []
        self._built_for: tuple[int, int] | None = None

    def on_resize(self) -> None:
        self._rebuild()

    def on_mount(self) -> None:
        self._rebuild()

    def _rebuild(self) -> None:
        width = max(20, self.scrollable_content_region.width or self.size.width or 80) - 1
        height = self.size.height or 24
        if (width, height) == self._built_for:
            return
        self._built_for = (width, height)
        mono = self._mono if self._mono is not None else bool(getattr(self.app, "no_color", False))
        opts = ViewOptions(
            width=width, max_lines=None, image_rows=max(4, height - 5), mono=mono, full=True
        )
        self._lines = render_value(self.value, self.ftype, opts)
        self.virtual_size = Size(width, len(self._lines))
        self.refresh()

    def render_line(self, y: int) -> Strip:
        scroll_x, scroll_y = self.scroll_offset
        index = scroll_y + y
        width = self.scrollable_content_region.width
        if index >= len(self._lines):
            return Strip.blank(width, self.rich_style)
        return (
            self._lines[index]
            .crop_extend(scroll_x, scroll_x + width, self.rich_style)
            .apply_style(self.rich_style)
        )


# --- a plain-text form, for tests and the headless CLI ------------------------------------------------


def strips_text(strips: Iterable[Strip]) -> str:
    """The characters of some strips, one line each (trailing spaces removed)."""
    return "\n".join(strip.text.rstrip() for strip in strips)


RenderFn = Callable[[Any, ViewOptions], list[Strip]]

__all__ = [
    "PREVIEW_KEYS",
    "FieldView",
    "SampleTable",
    "SampleView",
    "ViewOptions",
    "clean",
    "field_header",
    "inline",
    "preview_bind",
    "render_array",
    "render_bytes",
    "render_hex",
    "render_scalar",
    "render_text",
    "render_tree",
    "render_value",
    "sample_header",
    "sparkline_strip",
    "stats_strips",
    "strips_text",
]
