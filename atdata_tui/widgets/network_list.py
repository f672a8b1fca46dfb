"""The entry list, showing results from the network: author, schema, size and license columns.

Same virtual list as ``EntryList`` (rows drawn on the line API from a page cache filled by a
worker), so a long result list costs what a screenful costs. Every value comes from the AppView,
so every cell goes through ``safe_line`` before it is drawn.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..workers.network import layout_network_columns, network_cell_values
from .entry_list import EntryList

if TYPE_CHECKING:
    from atdata_core.index import IndexEntry

    from ..workers.index import Column


class NetworkResultList(EntryList):
    """Search results (``IndexEntry`` objects found through the AppView)."""

    worker_group = "network-search"
    empty_message = "no datasets (nothing indexed yet)"
    no_match_message = "no datasets match"

    def layout_columns(self, width: int) -> list[tuple[Column, int]]:
        return layout_network_columns(width)

    def cell_values(self, entry: IndexEntry) -> dict[str, str]:
        from atdata_core.safe_text import safe_line

        return {k: safe_line(v) for k, v in network_cell_values(entry).items()}

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        # marks are for promoting local entries: network results have nothing to promote
        return action != "toggle_mark"
