"""One line at the bottom: which index (backend and address), which repository, who is logged in,
how many jobs run. It watches the app's reactives, so login and job changes show up everywhere."""

from __future__ import annotations

from rich.cells import cell_len, set_cell_size
from textual.content import Content
from textual.reactive import reactive
from textual.widget import Widget


def _squeeze(text: str, width: int) -> str:
    """Cut the middle of ``text`` (paths keep their start and their file name)."""
    if width <= 0:
        return ""
    if cell_len(text) <= width:
        return text
    if width < 5:
        return set_cell_size(text, width)
    head = (width - 1) // 2
    tail = width - 1 - head
    return text[:head] + "…" + text[-tail:]


class StatusBar(Widget):
    """``sqlite /path/index.db · local · read-only        @alice.test · 2 jobs``"""

    DEFAULT_CSS = """
    StatusBar {
        height: 1;
        width: 1fr;
        padding: 0 1;
        background: $panel;
        color: $text-muted;
    }
    """

    repo: reactive[str | None] = reactive(None)
    index_label: reactive[str] = reactive("opening index…")
    session_handle: reactive[str | None] = reactive(None)
    running_jobs: reactive[int] = reactive(0)
    readonly: reactive[bool] = reactive(False)

    def __init__(self, repo: str | None = None, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.set_reactive(StatusBar.repo, repo)

    def on_mount(self) -> None:
        app = self.app
        for name in ("index_label", "session_handle", "running_jobs", "readonly"):
            if hasattr(app, name):
                self.watch(app, name, self._sync, init=False)
        self._sync()

    def _sync(self, _value: object = None) -> None:
        app = self.app
        self.index_label = getattr(app, "index_label", "")
        self.session_handle = getattr(app, "session_handle", None)
        self.running_jobs = getattr(app, "running_jobs", 0)
        self.readonly = getattr(app, "readonly", False)

    def render(self) -> Content:
        width = self.content_region.width
        right_parts = [
            f"@{self.session_handle.lstrip('@')}" if self.session_handle else "not logged in"
        ]
        if self.running_jobs:
            right_parts.append(
                f"{self.running_jobs} job{'s' if self.running_jobs != 1 else ''} running"
            )
        right = " · ".join(right_parts)
        left_tail = ""
        if self.repo:
            left_tail += f" · {self.repo}"
        if self.readonly:
            left_tail += " · read-only"
        room = width - cell_len(right) - cell_len(left_tail) - 2
        left = _squeeze(self.index_label, max(room, 8)) + left_tail
        gap = max(width - cell_len(left) - cell_len(right), 1)
        line = left + " " * gap + right
        return Content(set_cell_size(line, width) if cell_len(line) > width else line)
