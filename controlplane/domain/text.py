"""Text that is safe to put on a terminal. Pure.

``escape_controls`` replaces every character Python does not call printable (C0 controls such as
ESC, DEL, C1 controls, bidi overrides and isolates, zero-width and other format characters, line
and paragraph separators, unassigned code points), except the ASCII space, with a visible escape
(``\\x1b``, ``\\u202e``). An ANSI sequence from a site then shows as text instead of clearing the
admin's screen, and a right-to-left override cannot make a row read differently than it is.
"""

from __future__ import annotations


def _escape(c: str) -> str:
    n = ord(c)
    return f"\\x{n:02x}" if n < 0x100 else f"\\u{n:04x}" if n < 0x10000 else f"\\U{n:08x}"


def escape_controls(value: str) -> str:
    if value.isprintable():  # the common case: one C-level scan
        return value
    return "".join(c if c.isprintable() or c == " " else _escape(c) for c in value)
