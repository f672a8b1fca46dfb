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
from rich.color import Color
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


@lru_cache(maxsize=8192)
def _style(top: tuple[int, int, int], bottom: tuple[int, int, int] | None) -> Style:
    return Style.from_color(
        Color.from_rgb(*top), Color.from_rgb(*bottom) if bottom is not None else None
    )


def image_strips(pixels: np.ndarray, *, mono: bool = False) -> list[Strip]:
    """Strips for an RGB ``uint8`` image (``h x w x 3``): one strip per two pixel rows."""
    if pixels.size == 0:
        return []
    if mono:
        return _shaded_strips(_luminance(pixels))
    h, w = pixels.shape[:2]
    strips: list[Strip] = []
    rows = pixels.tolist()  # plain ints: much faster to hash into styles than numpy scalars
    for y in range(0, h, 2):
        top = rows[y]
        bottom = rows[y + 1] if y + 1 < h else None
        segments = []
        for x in range(w):
            t = tuple(top[x])
            b = tuple(bottom[x]) if bottom is not None else None
            segments.append(Segment(UPPER_HALF, _style(t, b)))  # type: ignore[arg-type]
        strips.append(Strip(segments, w).simplify())
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
            Segment(" ", Style.from_color(None, Color.from_rgb(*map(int, rgb))))
            for rgb in ramp_rgb(levels)
        ]
    segments = [Segment(left), *bar, Segment(right)]
    return Strip(segments).simplify()


def _num(value: float) -> str:
    if value == int(value) and abs(value) < 1e15:
        return str(int(value))
    return f"{value:.4g}"
