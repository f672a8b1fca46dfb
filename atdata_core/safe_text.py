"""The one sanitizer for text of untrusted origin on its way to a terminal.

Names, descriptions, sample strings, tar member names, error messages that quote them, handles a
PDS returns: anything another person wrote can carry ESC (OSC 52 rewrites the clipboard, OSC 0 the
window title, CSI 2J clears the screen), C1 controls (``\\x9b`` is a one-byte CSI on some
terminals), bidi overrides that make text read backwards, or zero-width characters that hide
what a name really is. Stored data is kept exactly as given; only what is *shown* passes here:

* C0 controls become their Unicode control pictures (ESC → ``␛``, CR → ``␍``), DEL → ``␡``;
* C1 controls become ``\\x9b``-style escapes; format characters (bidi overrides and isolates,
  zero-width characters, BOM, soft hyphen, tag characters), line/paragraph separators and lone
  surrogates become ``\\u202e``-style escapes;
* newline and tab are kept by ``safe_text`` (multi-line layouts) and folded by ``safe_line``.

``safe_json`` is ``json.dumps`` for machines that may still print what they get: the same
characters are written as ``\\uXXXX`` escapes, so the JSON decodes to the exact stored text.

Pure Python, no Textual or Rich: the CLI, the TUI and error messages all use this module.
"""

from __future__ import annotations

import json
import re
from typing import Any

__all__ = ["UNSAFE", "is_safe", "safe_json", "safe_line", "safe_text"]

# Unicode categories Cc, Cf, Zl, Zp and Cs (Unicode 14), minus tab and newline, which the
# callers decide about. Written out, not computed: computing it walks 1.1M code points (0.3 s).
UNSAFE = re.compile(
    "[\x00-\x08\x0b-\x1f\x7f-\x9f\xad\u0600-\u0605\u061c\u06dd\u070f\u0890-\u0891\u08e2"
    "\u180e\u200b-\u200f\u2028-\u202e\u2060-\u2064\u2066-\u206f\ud800-\udfff\ufeff"
    "\ufff9-\ufffb\U000110bd\U000110cd\U00013430-\U00013438\U0001bca0-\U0001bca3"
    "\U0001d173-\U0001d17a\U000e0001\U000e0020-\U000e007f]"
)
_LINE_BREAKS = re.compile("\r\n|\n")


def _visible(ch: str) -> str:
    cp = ord(ch)
    if cp < 0x20:
        return chr(0x2400 + cp)  # ␀ … ␟ (ESC is ␛)
    if cp == 0x7F:
        return "\u2421"  # ␡
    if cp <= 0xFF:
        return f"\\x{cp:02x}"
    if cp <= 0xFFFF:
        return f"\\u{cp:04x}"
    return f"\\U{cp:08x}"


_VISIBLE_CACHE: dict[str, str] = {}


def _replace(match: re.Match[str]) -> str:
    ch = match.group()
    out = _VISIBLE_CACHE.get(ch)
    if out is None:
        out = _VISIBLE_CACHE[ch] = _visible(ch)
    return out


def is_safe(text: str) -> bool:
    """Whether ``text`` can be shown as is (tab and newline allowed)."""
    return UNSAFE.search(text) is None


def safe_text(value: object) -> str:
    """``value`` as text that is safe to draw; newlines and tabs are kept for the layout."""
    text = value if isinstance(value, str) else str(value)
    if UNSAFE.search(text) is None:  # the common case costs one scan, no copy
        return text
    return UNSAFE.sub(_replace, text)


def safe_line(value: object, limit: int | None = None) -> str:
    """``safe_text`` on one line: newlines show as ``↵``, tabs as one space; ``limit`` caps the
    length (an ellipsis marks the cut). For table cells, titles, notifications and error lines."""
    text = value if isinstance(value, str) else str(value)
    if limit is not None and len(text) > limit:
        text = text[:limit] + "…"
    if "\n" in text:
        text = _LINE_BREAKS.sub("↵", text)
    if "\t" in text:
        text = text.replace("\t", " ")
    return safe_text(text)


def _json_escape(match: re.Match[str]) -> str:
    cp = ord(match.group())
    if cp > 0xFFFF:  # JSON spells astral code points as a surrogate pair
        cp -= 0x10000
        return f"\\u{0xD800 + (cp >> 10):04x}\\u{0xDC00 + (cp & 0x3FF):04x}"
    return f"\\u{cp:04x}"


def safe_json(value: Any, **kwargs: Any) -> str:
    """``json.dumps(value, ensure_ascii=False, **kwargs)`` with every unsafe character escaped.

    ``json.dumps`` already escapes C0 controls but writes C1, bidi and zero-width characters raw;
    they can only occur inside JSON strings (the syntax is ASCII), where ``\\uXXXX`` is exact.
    """
    text = json.dumps(value, ensure_ascii=False, **kwargs)
    if UNSAFE.search(text) is None:
        return text
    return UNSAFE.sub(_json_escape, text)
