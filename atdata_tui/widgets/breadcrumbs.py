"""Where you are, on one line: ``atdata`` then the repository, the screen and the entry name."""

from __future__ import annotations

from rich.cells import cell_len
from textual.content import Content
from textual.widgets import Static

SEPARATOR = " \N{SINGLE RIGHT-POINTING ANGLE QUOTATION MARK} "


class Breadcrumbs(Static):
    """The path from the repositories screen to the current one; long paths lose their start."""

    DEFAULT_CSS = """
    Breadcrumbs {
        height: 1;
        width: 1fr;
        padding: 0 1;
        background: $panel;
        color: $text;
        text-style: bold;
    }
    """

    def __init__(self, *parts: str, id: str | None = None) -> None:
        self.parts: tuple[str, ...] = tuple(parts)
        super().__init__(self._text(), id=id, markup=False)

    def _text(self, width: int | None = None) -> Content:
        text = "atdata" + "".join(SEPARATOR + p for p in self.parts)
        if width is not None and cell_len(text) > width:
            text = "…" + text[-(width - 1) :]
        return Content(text)

    def set_parts(self, *parts: str) -> None:
        self.parts = tuple(parts)
        self.update(self._text(self.content_region.width or None))

    def on_resize(self) -> None:
        self.update(self._text(self.content_region.width or None))
