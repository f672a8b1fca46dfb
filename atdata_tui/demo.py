"""Small, deterministic demo datasets, so a new user (and every screenshot) has something to browse.

Everything is fixed: numpy seeds, sample keys (``__key__``), metadata and schema versions, so
the same index content (and, given a fixed shard directory, the same CIDs) comes out every time.
The datasets exercise every kind of value the preview renders: short and long text, numbers and
nested maps, 1-D signals and 2-D heat maps (with NaN/Inf), RGB images and PNG bytes, and two
versions of one schema so the schema diff has something to show.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import numpy as np

from atdata_core.samples import NDArray, packable

if TYPE_CHECKING:
    from atdata_core.index import Index, IndexEntry

LICENSE = "CC0-1.0"


@packable
class _DemoCaptionV1:
    """A caption, its language, where it came from and a whole-number score (version 1)."""

    text: str
    lang: str
    source: str
    score: int | None = None


@packable
class DemoCaption:
    """A caption, its language, its tokens and an optional quality score."""

    text: str
    lang: str
    tokens: list[str]
    score: float | None = None


@packable
class DemoNumbers:
    """Scalars of every primitive type, a nested map and a list."""

    index: int
    value: float
    even: bool
    label: str
    meta: dict
    history: list[int]


@packable
class DemoSignal:
    """A 1-D float signal, a 2-D heat map and a label."""

    label: str
    signal: NDArray[np.float32]
    heatmap: NDArray[np.float32]


@packable
class DemoImage:
    """An RGB image (H x W x 3, uint8), its label, and the same picture as PNG bytes when available."""

    label: str
    image: NDArray[np.uint8]
    png: bytes | None = None


_SENTENCE = (
    "a small red boat drifts past the harbour wall while gulls circle overhead and the "
    "evening light turns the water to copper"
)
_WORDS = _SENTENCE.split()
_LANGS = ("en", "fr", "de", "ja", "es")


def _keyed(prefix: str, samples: Iterator[Any]) -> Iterator[Any]:
    """Give samples fixed keys (``prefix-000000`` …) so shards and previews are reproducible."""
    for i, sample in enumerate(samples):
        sample.__key__ = f"{prefix}-{i:06d}"
        yield sample


def _captions_v1() -> Iterator[_DemoCaptionV1]:
    rng = np.random.default_rng(1)
    for i in range(24):
        n = int(rng.integers(2, 8))
        text = " ".join(_WORDS[j % len(_WORDS)] for j in range(i, i + n))
        yield _DemoCaptionV1(
            text=text, lang="en", source="crawl-2023", score=int(rng.integers(0, 100))
        )


def _captions() -> Iterator[DemoCaption]:
    rng = np.random.default_rng(2)
    for i in range(40):
        if i % 10 == 9:  # a long one, to show wrapping and truncation
            words = [_WORDS[(i + j) % len(_WORDS)] for j in range(120)]
        else:
            words = [_WORDS[(i + j) % len(_WORDS)] for j in range(int(rng.integers(1, 12)))]
        text = " ".join(words)
        if i == 3:
            text = "Ünïcödé: 日本語のキャプション ✓ — émoji 🚤"
        score = None if i % 7 == 0 else round(float(rng.random()), 3)
        yield DemoCaption(
            text=text, lang=_LANGS[i % len(_LANGS)], tokens=text.split()[:16], score=score
        )


def _numbers() -> Iterator[DemoNumbers]:
    rng = np.random.default_rng(3)
    for i in range(100):
        yield DemoNumbers(
            index=i,
            value=round(float(rng.normal(0.0, 10.0)), 6),
            even=i % 2 == 0,
            label=f"item {i}",
            meta={
                "split": "train" if i < 80 else "test",
                "fold": i % 5,
                "extra": {"ok": True, "w": [i, i * 2]},
            },
            history=[int(x) for x in rng.integers(0, 100, size=i % 6)],
        )


def _signals() -> Iterator[DemoSignal]:
    rng = np.random.default_rng(4)
    t = np.linspace(0.0, 4.0 * np.pi, 128, dtype=np.float32)
    yy, xx = np.mgrid[0:16, 0:32].astype(np.float32)
    for i in range(32):
        signal = (np.sin(t * (1 + i % 4)) + rng.normal(0, 0.1, t.shape)).astype(np.float32)
        heat = np.exp(-((xx - 2 * (i % 16)) ** 2 + (yy - 8) ** 2) / (8 + i)).astype(np.float32)
        label = "sine"
        if i == 5:  # the awkward values a preview must survive
            signal[10] = np.nan
            signal[20] = np.inf
            signal[30] = -np.inf
            heat[4, 4] = np.nan
            label = "nan-inf"
        yield DemoSignal(label=label, signal=signal, heatmap=heat)


def _image(i: int) -> np.ndarray:
    h, w = 24, 32
    yy, xx = np.mgrid[0:h, 0:w]
    img = np.zeros((h, w, 3), dtype=np.uint8)
    img[..., 0] = (xx * 255 // (w - 1)).astype(np.uint8)
    img[..., 1] = (yy * 255 // (h - 1)).astype(np.uint8)
    img[..., 2] = (i * 37) % 256
    shape = i % 3
    cy, cx, r = h // 2, (i * 5) % w, 6
    if shape == 0:  # a disc
        img[(yy - cy) ** 2 + (xx - cx) ** 2 <= r * r] = (255, 255, 255)
    elif shape == 1:  # a square
        img[max(cy - r, 0) : cy + r, max(cx - r, 0) : cx + r] = (0, 0, 0)
    else:  # a diagonal stripe
        img[np.abs(yy - xx + i % 8) <= 1] = (255, 220, 0)
    return img


def _png(image: np.ndarray) -> bytes | None:
    try:
        from PIL import Image
    except ImportError:  # Pillow is optional at runtime
        return None
    buf = io.BytesIO()
    Image.fromarray(image, "RGB").save(buf, format="PNG", optimize=False, compress_level=6)
    return buf.getvalue()


def _images(with_png: bool) -> Callable[[], Iterator[DemoImage]]:
    def gen() -> Iterator[DemoImage]:
        for i in range(16):
            img = _image(i)
            yield DemoImage(
                label=("disc", "square", "stripe")[i % 3],
                image=img,
                png=_png(img) if with_png else None,
            )

    return gen


def create_demo(index: Index, *, with_png: bool | None = None) -> list[IndexEntry]:
    """Write the demo datasets into ``index``'s local repository (skipping ones that exist).

    ``with_png`` defaults to "if Pillow is installed"; screenshots pass ``False`` so the bytes
    (and the sizes shown) do not depend on the installed zlib.
    """
    if with_png is None:
        try:
            import PIL  # noqa: F401

            with_png = True
        except ImportError:
            with_png = False
    caption_v1 = index.publish_schema(_DemoCaptionV1, name="DemoCaption", version="1.0.0")
    caption_v2 = index.publish_schema(DemoCaption, version="1.1.0")
    plan: list[tuple[str, str | None, Callable[[], Iterator[Any]], int, str, list[str]]] = [
        (
            "demo-captions-v1",
            caption_v1,
            _captions_v1,
            12,
            "Captions, first schema version",
            ["text"],
        ),
        ("demo-captions", caption_v2, _captions, 16, "Captions with tokens and scores", ["text"]),
        (
            "demo-numbers",
            None,
            _numbers,
            50,
            "Ints, floats, bools, a nested map and a list",
            ["tabular"],
        ),
        (
            "demo-signals",
            None,
            _signals,
            16,
            "1-D signals and 2-D heat maps, with NaN/Inf",
            ["arrays"],
        ),
        (
            "demo-images",
            None,
            _images(with_png),
            8,
            "RGB gradients and shapes (and PNG bytes)",
            ["images"],
        ),
    ]
    entries: list[IndexEntry] = []
    for name, schema_ref, samples, maxcount, description, tags in plan:
        if index.provider.get_label(name) is not None:
            entries.append(index.resolve_entry(name))
            continue
        if schema_ref is None:
            first = next(iter(samples()))
            schema_ref = index.publish_schema(type(first), version="1.0.0")
        entries.append(
            index.write(
                _keyed(name, samples()),
                name=name,
                schema_ref=schema_ref,
                description=description,
                tags=["demo", *tags],
                license=LICENSE,
                maxcount=maxcount,
                metadata={"source": "atdata-tui demo", "seed": 0},
            )
        )
    return entries


DEMO_NAMES = ("demo-captions", "demo-captions-v1", "demo-images", "demo-numbers", "demo-signals")
