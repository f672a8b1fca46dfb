"""The one place errors are shown: a scrollable modal; ``c`` copies the text (OSC 52 over SSH).

A second error while the modal is open is appended to it instead of stacking windows, so a flood
of failures (a server went down under ten workers) stays one window the user closes once.
"""

from __future__ import annotations

from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

from ..bindings import KEYS


class ErrorScreen(ModalScreen[None]):
    """Title + scrollable error text; ``c`` copies, ``escape`` closes."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding(KEYS["close"].keys, "close", "Close", id="close"),
        Binding(KEYS["copy-error"].keys, "copy", "Copy", id="copy-error"),
        Binding("j,down", "scroll_down", show=False),
        Binding("k,up", "scroll_up", show=False),
    ]

    def __init__(self, title: str, text: str) -> None:
        super().__init__(id="error")
        self.errors: list[tuple[str, str]] = [(title, text)]

    def compose(self) -> ComposeResult:
        with Vertical(id="error-dialog", classes="dialog"):
            yield Static(self._title(), id="error-title", markup=False)
            with VerticalScroll(id="error-scroll"):
                yield Static(self.text, id="error-text", markup=False)
            yield Static(
                "c: copy · escape: close", id="error-hint", classes="dialog-hint", markup=False
            )

    def on_mount(self) -> None:
        self.query_one("#error-scroll").focus()

    def _title(self) -> str:
        if len(self.errors) == 1:
            return self.errors[0][0]
        return f"{len(self.errors)} errors"

    @property
    def text(self) -> str:
        """Everything shown, as copied by ``c``."""
        if len(self.errors) == 1:
            return self.errors[0][1]
        return "\n\n".join(f"{title}\n{text}" for title, text in self.errors)

    def add_error(self, title: str, text: str) -> None:
        """Append another error (called by the app when the modal is already open)."""
        if (title, text) in self.errors:
            return
        self.errors.append((title, text))
        self.query_one("#error-title", Static).update(self._title())
        self.query_one("#error-text", Static).update(self.text)

    def action_copy(self) -> None:
        self.app.copy_to_clipboard(self.text)
        self.notify("Copied the error text to the clipboard")

    def action_close(self) -> None:
        self.dismiss(None)

    def action_scroll_down(self) -> None:
        self.query_one("#error-scroll", VerticalScroll).scroll_down(animate=False)

    def action_scroll_up(self) -> None:
        self.query_one("#error-scroll", VerticalScroll).scroll_up(animate=False)
