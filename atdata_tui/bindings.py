"""Every key binding of the app, by id, so users can remap any of them from ``[keys]`` in the config.

Screens build their ``BINDINGS`` with :func:`bind`, which looks the default key up here; the ids are
what ``app.set_keymap`` (and the config's ``[keys]`` table) refer to. One id may appear on several
screens when it means the same thing there ("refresh", "copy-ref"): remapping it remaps it
everywhere, which is what a user expects.
"""

from __future__ import annotations

from dataclasses import dataclass

from textual.binding import Binding


@dataclass(frozen=True)
class KeySpec:
    """The default key(s) and help text for one binding id."""

    keys: str
    description: str
    help: str


#: id -> default keys and help. Keys are Textual key names, comma separated for alternatives.
KEYS: dict[str, KeySpec] = {
    # app-wide
    "quit": KeySpec("q", "Quit", "Quit atdata-tui"),
    "help": KeySpec("question_mark,f1", "Help", "Show the keys of this screen"),
    "command-palette": KeySpec("ctrl+p", "Commands", "Open the command palette"),
    "back": KeySpec("escape", "Back", "Go back to the previous screen"),
    "refresh": KeySpec("r", "Refresh", "Reload what this screen shows"),
    "copy-ref": KeySpec("y", "Copy", "Copy the reference (or at:// URI) to the clipboard"),
    "show-jobs": KeySpec("J", "Jobs", "Show running jobs (writes, promotions)"),
    # repositories
    "open-repo": KeySpec("enter", "Open", "Browse the entries of the highlighted repository"),
    "open-schemas": KeySpec("s", "Schemas", "Browse the schemas of this repository"),
    "create-demo": KeySpec("d", "Demo data", "Create the demo datasets (only on an empty index)"),
    # lists (the entry list widget and tables)
    "cursor-down": KeySpec("j,down", "Down", "Move the cursor down"),
    "cursor-up": KeySpec("k,up", "Up", "Move the cursor up"),
    "cursor-top": KeySpec("g,home", "Top", "Jump to the first row"),
    "cursor-bottom": KeySpec("G,end", "Bottom", "Jump to the last row"),
    "page-down": KeySpec("pagedown,ctrl+f", "Page down", "Move one page down"),
    "page-up": KeySpec("pageup,ctrl+b", "Page up", "Move one page up"),
    # entries
    "filter": KeySpec("slash", "Filter", "Filter entries by name as you type"),
    "open-entry": KeySpec("enter", "Open", "Show the entry's details"),
    "preview": KeySpec("v", "Preview", "Preview the entry's samples"),
    "open-preview": KeySpec("enter", "Preview", "Preview the samples (on the entry's details)"),
    "mark": KeySpec("space", "Mark", "Mark or unmark the entry (for promote)"),
    "promote": KeySpec("p", "Promote", "Publish the marked entries to the AT Protocol network"),
    "new-dataset": KeySpec("n", "New", "Write a new dataset"),
    # entry detail
    "copy-cid": KeySpec("c", "Copy CID", "Copy the entry's CID"),
    "verify": KeySpec("V", "Verify", "Recompute the shards' SHA-256 checksums"),
    # schemas
    "mark-version": KeySpec("space", "Mark", "Mark a version; two marked versions show a diff"),
    "diff-previous": KeySpec("d", "Diff prev", "Diff the highlighted version with the one before"),
    "show-entries": KeySpec("e", "Entries", "Browse the entries of this repository"),
    # the network (search through the AppView)
    "search": KeySpec("slash", "Search", "Type words to search the network's datasets"),
    "result-schema": KeySpec("s", "Schema", "The dataset's schema: fields and other versions"),
    "result-lenses": KeySpec("l", "Lenses", "Lenses from and to the dataset's schema"),
    "result-versions": KeySpec("o", "Versions", "Other versions under the dataset's label"),
    # modals
    "close": KeySpec("escape,q", "Close", "Close this window"),
    "copy-error": KeySpec("c", "Copy", "Copy the error text to the clipboard"),
}


def bind(
    binding_id: str,
    action: str,
    *,
    show: bool = True,
    priority: bool = False,
    key_display: str | None = None,
) -> Binding:
    """A ``Binding`` for ``binding_id`` with its default keys and description from :data:`KEYS`."""
    spec = KEYS[binding_id]
    return Binding(
        spec.keys,
        action,
        spec.description,
        show=show,
        priority=priority,
        key_display=key_display,
        tooltip=spec.help,
        id=binding_id,
    )


_KEY_ALIASES = {"/": "slash", "?": "question_mark", " ": "space", "esc": "escape"}


def normalize_keys(keys: str) -> str:
    """Accept what people write in a config (``"/"``, ``"?"``, ``"esc"``) as Textual key names."""
    parts = [p.strip() for p in keys.split(",") if p.strip()]
    return ",".join(_KEY_ALIASES.get(p, p) for p in parts)


def keymap_from_config(keys: dict[str, str]) -> tuple[dict[str, str], list[str]]:
    """The keymap for ``App.set_keymap`` and a list of warnings about unknown ids in ``[keys]``."""
    keymap: dict[str, str] = {}
    warnings: list[str] = []
    for binding_id, value in keys.items():
        if binding_id not in KEYS:
            known = ", ".join(sorted(KEYS))
            warnings.append(f"[keys] {binding_id!r} is not a binding id (known: {known})")
            continue
        normalized = normalize_keys(value)
        if not normalized:
            warnings.append(f"[keys] {binding_id!r} has no key")
            continue
        keymap[binding_id] = normalized
    return keymap, warnings
