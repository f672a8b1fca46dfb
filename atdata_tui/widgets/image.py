"""Images and heat maps drawn with half-block characters, as Textual ``Strip``s.

Each cell shows two pixels: ``▀`` with the foreground set to the top pixel and the background to
the bottom one, so an ``HxW`` image takes ``W`` columns and ``H/2`` rows and pixels come out about
square. Colours are true colour; Rich downgrades them per the terminal's colour system when the
frame is written (256 colours when ``COLORTERM`` does not say ``truecolor``), which keeps images
readable there. In monochrome (``NO_COLOR``) colours would be stripped and every cell would become
a solid block, so images are drawn with shaded characters by luminance instead.
"""

from __future__ import annotations

import warnings
from functools import lru_cache

import numpy as np
from rich.color import Color, ColorType
from rich.color_triplet import ColorTriplet
from rich.segment import Segment
from rich.style import Style
from textual.strip import Strip

UPPER_HALF = "▀"
#: Shades from dark to light, for terminals without colour.
SHADES = " ░▒▓█"
#: Not-a-number cells in heat maps: a colour no ramp uses.
NAN_RGB = (255, 0, 255)

#: A perceptually even ramp (viridis), from low to high.
_RAMP = np.array(
    [
        (68, 1, 84),
        (72, 40, 120),
        (62, 74, 137),
        (49, 104, 142),
        (38, 130, 142),
        (31, 158, 137),
        (53, 183, 121),
        (109, 205, 89),
        (180, 222, 44),
        (253, 231, 37),
    ],
    dtype=np.float64,
)


@lru_cache(maxsize=16384)
def _color(r: int, g: int, b: int) -> Color:
    """A true-colour Rich ``Color``, built directly (``Color.from_rgb`` costs 20 µs a call)."""
    return Color(f"#{r:02x}{g:02x}{b:02x}", ColorType.TRUECOLOR, triplet=ColorTriplet(r, g, b))


def _packed_color(value: int) -> Color:
    return _color(value >> 16, (value >> 8) & 0xFF, value & 0xFF)


#: Styles by ``top << 25 | has_bottom << 24 | bottom`` (packed RGB): a dict lookup per cell.
_STYLES: dict[int, Style] = {}
_MAX_STYLES = 65536


def _cell_style(key: int) -> Style:
    style = _STYLES.get(key)
    if style is None:
        if len(_STYLES) >= _MAX_STYLES:
            _STYLES.clear()
        top = key >> 25
        bottom = _packed_color(key & 0xFFFFFF) if key & (1 << 24) else None
        style = _STYLES[key] = Style.from_color(_packed_color(top), bottom)
    return style


def image_strips(pixels: np.ndarray, *, mono: bool = False) -> list[Strip]:
    """Strips for an RGB ``uint8`` image (``h x w x 3``): one strip per two pixel rows.

    Runs of cells with the same two colours become one segment, and styles are cached by the
    packed colour pair, so a frame of an image costs about a microsecond per cell.
    """
    if pixels.size == 0:
        return []
    if mono:
        return _shaded_strips(_luminance(pixels))
    h, w = pixels.shape[:2]
    rgb = pixels[..., :3].astype(np.int64)
    packed = (rgb[..., 0] << 16) | (rgb[..., 1] << 8) | rgb[..., 2]
    strips: list[Strip] = []
    for y in range(0, h, 2):
        if y + 1 < h:
            keys = ((packed[y] << 25) | (1 << 24) | packed[y + 1]).tolist()
        else:
            keys = (packed[y] << 25).tolist()
        segments: list[Segment] = []
        run_key, run = keys[0], 0
        for key in keys:
            if key != run_key:
                segments.append(Segment(UPPER_HALF * run, _cell_style(run_key)))
                run_key, run = key, 0
            run += 1
        segments.append(Segment(UPPER_HALF * run, _cell_style(run_key)))
        strips.append(Strip(segments, w))
    return strips


def _luminance(pixels: np.ndarray) -> np.ndarray:
    """Rec. 601 luma in 0..1."""
    rgb = pixels[..., :3].astype(np.float64)
    return (0.299 * rgb[..., 0] + 0.587 * rgb[..., 1] + 0.114 * rgb[..., 2]) / 255.0


def _shaded_strips(levels: np.ndarray, nan_mask: np.ndarray | None = None) -> list[Strip]:
    """Two pixel rows per line, averaged, as shade characters (works with no colour at all)."""
    h, w = levels.shape
    strips = []
    for y in range(0, h, 2):
        pair = levels[y : y + 2]
        if pair.shape[0] == 2:
            with warnings.catch_warnings():  # two NaN pixels average to NaN, which is fine here
                warnings.simplefilter("ignore", RuntimeWarning)
                value = np.nanmean(pair, axis=0)
        else:
            value = pair[0]
        chars = []
        for x in range(w):
            v = value[x]
            if nan_mask is not None and nan_mask[y : y + 2, x].all():
                chars.append("?")
            elif np.isnan(v):
                chars.append(" ")
            else:
                chars.append(SHADES[min(len(SHADES) - 1, int(v * len(SHADES)))])
        text = "".join(chars)
        strips.append(Strip([Segment(text)], w))
    return strips


def ramp_rgb(values: np.ndarray) -> np.ndarray:
    """Map values in 0..1 (NaN allowed) to RGB ``uint8`` along the ramp; NaN → ``NAN_RGB``."""
    v = np.clip(np.nan_to_num(values, nan=0.0), 0.0, 1.0) * (len(_RAMP) - 1)
    lo = np.floor(v).astype(np.int64)
    hi = np.minimum(lo + 1, len(_RAMP) - 1)
    frac = (v - lo)[..., None]
    rgb = _RAMP[lo] * (1 - frac) + _RAMP[hi] * frac
    out = np.rint(rgb).astype(np.uint8)
    out[np.isnan(values)] = NAN_RGB
    return out


def normalize(grid: np.ndarray, vmin: float | None, vmax: float | None) -> np.ndarray:
    """Scale to 0..1 by ``vmin``/``vmax`` (of the finite values); ±inf clamp to the ends."""
    with np.errstate(all="ignore"):
        finite = grid[np.isfinite(grid)]
        if vmin is None or vmax is None:
            if finite.size == 0:
                return np.full(grid.shape, np.nan)
            vmin, vmax = float(finite.min()), float(finite.max())
        span = vmax - vmin
        if not np.isfinite(span) or span <= 0:
            out = np.where(np.isnan(grid), np.nan, 0.5)
        else:
            out = (grid - vmin) / span
        out = np.where(np.isposinf(grid), 1.0, out)
        out = np.where(np.isneginf(grid), 0.0, out)
    return np.clip(out, 0.0, 1.0, where=~np.isnan(out), out=out)


def heatmap_strips(
    grid: np.ndarray, *, vmin: float | None = None, vmax: float | None = None, mono: bool = False
) -> list[Strip]:
    """Strips for a 2-D float grid (already resampled to pixels): the ramp, or shades."""
    levels = normalize(grid, vmin, vmax)
    if mono:
        return _shaded_strips(levels, np.isnan(grid))
    return image_strips(ramp_rgb(levels))


def legend_strip(vmin: float, vmax: float, *, width: int = 10, mono: bool = False) -> Strip:
    """``-1.25 ▕██████████▏ 3.5``: what the heat map's colours (or shades) mean."""
    left, right = f"{_num(vmin)} ", f" {_num(vmax)}"
    levels = np.linspace(0.0, 1.0, width)
    if mono:
        bar = [Segment("".join(SHADES[min(len(SHADES) - 1, int(v * len(SHADES)))] for v in levels))]
    else:
        bar = [
            Segment(" ", Style.from_color(None, _color(*map(int, rgb)))) for rgb in ramp_rgb(levels)
        ]
    segments = [Segment(left), *bar, Segment(right)]
    return Strip(segments).simplify()


def _num(value: float) -> str:
    if value == int(value) and abs(value) < 1e15:
        return str(int(value))
    return f"{value:.4g}"
