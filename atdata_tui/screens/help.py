"""Context help (``?`` / F1): the keys that work on the screen below, built from its active bindings.

Built from ``Screen.active_bindings`` (the focused widget's, the screen's and the app's bindings,
after the user's keymap), so it can never disagree with what the keys really do.
"""

from __future__ import annotations

from typing import Any, ClassVar

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical, VerticalScroll
from textual.screen import ModalScreen, Screen
from textual.widgets import Static

from ..bindings import KEYS


def binding_rows(screen: Screen[object]) -> list[tuple[str, str, str]]:
    """``(keys, action, help)`` for the enabled bindings of ``screen``: the screen's own, then the
    focused widget's, then the app's; keys of one action are merged (``j ↓``).

    Built-in bindings without an id that are also hidden from the footer (a table's sideways
    scrolling and the like) are left out: they are noise next to the app's own keys.
    """
    app = screen.app
    groups: dict[tuple[int, str], dict[str, Any]] = {}
    for key, active in screen.active_bindings.items():
        binding, node = active.binding, active.node
        if not active.enabled or binding.system:
            continue
        order = 0 if node is screen else (2 if node is app else 1)
        ident = (order, binding.action)
        group = groups.setdefault(ident, {"keys": [], "description": "", "help": "", "ours": False})
        display = app.get_key_display(binding.with_key(key))
        if display not in group["keys"]:
            group["keys"].append(display)
        spec = KEYS.get(binding.id or "")
        if spec is not None:
            group["ours"] = True
            group["description"] = spec.description
            group["help"] = spec.help
        else:
            group["ours"] = group["ours"] or binding.show
            group["description"] = group["description"] or binding.description
            group["help"] = group["help"] or binding.tooltip
    rows = []
    for (_order, _action), group in sorted(groups.items(), key=lambda item: item[0][0]):
        if group["ours"] and group["description"]:
            rows.append((" ".join(group["keys"]), group["description"], group["help"]))
    return rows


class HelpScreen(ModalScreen[None]):
    """The keys of the screen below, with what they do."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding(KEYS["close"].keys + ",question_mark,f1", "dismiss", "Close", id="close"),
        Binding("j,down", "scroll_down", show=False),
        Binding("k,up", "scroll_up", show=False),
    ]

    def __init__(self, title: str, rows: list[tuple[str, str, str]]) -> None:
        super().__init__(id="help")
        self.title_text = title
        self.rows = rows

    def compose(self) -> ComposeResult:
        table = Table(
            box=None, padding=(0, 2, 0, 0), expand=True, show_header=True, header_style="bold"
        )
        table.add_column("Key", no_wrap=True, style="bold")
        table.add_column("Does", no_wrap=True)
        table.add_column("", ratio=1, style="dim")
        for keys, description, tip in self.rows:
            table.add_row(Text(keys), Text(description), Text(tip))
        with Vertical(id="help-dialog", classes="dialog"):
            yield Static(Text(f"Keys: {self.title_text}", style="bold"), id="help-title")
            with VerticalScroll(id="help-scroll"):
                yield Static(table, id="help-table")
            yield Static(
                "escape / q / ? : close · ctrl+p: all commands",
                id="help-hint",
                classes="dialog-hint",
            )

    def on_mount(self) -> None:
        self.query_one("#help-scroll").focus()

    def action_scroll_down(self) -> None:
        self.query_one("#help-scroll", VerticalScroll).scroll_down(animate=False)

    def action_scroll_up(self) -> None:
        self.query_one("#help-scroll", VerticalScroll).scroll_up(animate=False)

    async def action_dismiss(self, result: None = None) -> None:
        self.dismiss(None)
