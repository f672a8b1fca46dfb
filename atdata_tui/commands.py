"""The command palette (ctrl+p): only the commands that make sense right now.

Commands come from two places: the app (log in *or* log out, create the demo datasets only when
the index is empty, jobs, help) and the screen the palette was opened on (``BrowseScreen.commands``:
open this repository, copy this ref, refresh, clear the filter…). Nothing is listed that would
only answer "not possible here".
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from textual.command import DiscoveryHit, Hit, Hits, Provider

if TYPE_CHECKING:
    from .screens import Command


class AtdataCommands(Provider):
    """State-dependent commands of the app and of the current screen."""

    def _commands(self) -> Iterable[Command]:
        from .screens import BrowseScreen

        screen = self.screen
        if isinstance(screen, BrowseScreen):
            yield from screen.commands()
        app_commands = getattr(self.app, "app_commands", None)
        if app_commands is not None:
            yield from app_commands()

    async def discover(self) -> Hits:
        for command in self._commands():
            yield DiscoveryHit(command.title, command.callback, help=command.help)

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for command in self._commands():
            score = matcher.match(command.title)
            if score > 0:
                yield Hit(
                    score, matcher.highlight(command.title), command.callback, help=command.help
                )
