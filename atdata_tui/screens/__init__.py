"""Screens of the TUI. Browse: repositories → schemas / entries → entry detail → preview.

``BrowseScreen`` is the frame every browse screen shares: breadcrumbs on top, the status bar and
the footer at the bottom, ``escape`` to go back, failed workers forwarded to the app's one error
handler, and ``commands()`` for the command palette. Other screens (preview, login, promote,
write) may subclass it to get the same frame.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.screen import Screen
from textual.widgets import DataTable, Footer

from ..bindings import bind
from ..messages import ForwardWorkerErrors
from ..widgets.breadcrumbs import Breadcrumbs
from ..widgets.status_bar import StatusBar

if TYPE_CHECKING:
    from atdata_core.index import Index

    from ..app import AtdataApp


@dataclass(frozen=True)
class Command:
    """A command palette entry that fits the current state (see ``BrowseScreen.commands``)."""

    title: str
    help: str
    callback: Callable[[], Any]


class BrowseScreen(ForwardWorkerErrors, Screen[None]):
    """Breadcrumbs + body + status bar + footer; subclasses implement ``compose_body``."""

    BINDINGS: ClassVar[list[BindingType]] = [bind("back", "back", show=False)]

    #: The repository this screen is about (shown in the status bar), if any.
    repo: str | None = None

    def crumbs(self) -> list[str]:
        """Breadcrumb parts after "atdata", e.g. ``["local", "entries"]``."""
        return []

    def compose(self) -> ComposeResult:
        yield Breadcrumbs(*self.crumbs(), id="breadcrumbs")
        yield from self.compose_body()
        yield StatusBar(self.repo, id="status-bar")
        yield Footer(compact=True)

    def compose_body(self) -> ComposeResult:
        yield from ()

    @property
    def atdata(self) -> AtdataApp:
        """The app, typed (``self.app`` is typed as a plain ``App``)."""
        return self.app  # type: ignore[return-value]

    @property
    def index(self) -> Index | None:
        return getattr(self.app, "index", None)

    def commands(self) -> list[Command]:
        """Commands this screen offers in the palette right now (state-dependent)."""
        return []

    def action_back(self) -> None:
        if len(self.app.screen_stack) > 1:  # never pop the repositories screen
            self.app.pop_screen()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "back":
            return len(self.app.screen_stack) > 1
        return True


class VimDataTable(DataTable[Any]):
    """A ``DataTable`` that also moves with j/k/g/G (small tables: repositories, schemas)."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("j", "cursor_down", show=False, id="cursor-down"),
        Binding("k", "cursor_up", show=False, id="cursor-up"),
        Binding("g", "scroll_top", show=False, id="cursor-top"),
        Binding("G", "scroll_bottom", show=False, id="cursor-bottom"),
    ]
