"""-o table|json|yaml for every read and create command.

Whatever a site or a person put in a field reaches the terminal only escaped: ``emit`` renders
tables and text lines from a copy of the data with every string passed through ``safe_text``
(ANSI escapes, other C0/C1 controls, DEL, bidi overrides and other invisible characters become
``\x1b``, ``\u202e``...), and ``table`` escapes each cell, so a region cannot clear the screen or
reorder a row. JSON (``json.dumps`` escapes every control and non-ASCII character) and YAML
(``safe_dump`` quotes and escapes non-printable characters) stay faithful to the data.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from typing import Any

import yaml

from controlplane.client.render import age, iso, safe_text, table

__all__ = ["OBJECT_OUTPUT", "age", "emit", "emit_lines", "emit_objects", "iso", "safe_text", "table"]


def _escaped(data: Any) -> Any:
    """A copy of ``data`` with every string (keys too) passed through ``safe_text``."""
    if isinstance(data, str):
        return safe_text(data)
    if isinstance(data, dict):
        return {_escaped(k): _escaped(v) for k, v in data.items()}
    if isinstance(data, list | tuple):
        return [_escaped(v) for v in data]
    return data


def _text(rendered: str) -> str:
    """A rendered table or line: any control character left escaped, its own newlines kept."""
    return "\n".join(safe_text(line) for line in rendered.split("\n"))


def emit_lines(text: str) -> None:
    """Multi-line text whose newlines are its format (a signed note): each line escaped, the
    newlines kept (``emit`` escapes every string's newlines, which would break the note)."""
    sys.stdout.write(_text(text) + "\n")


def emit(data: Any, fmt: str, render_table: Any = None) -> None:
    """Print ``data`` as json/yaml, or through ``render_table(data) -> str`` for the table format."""
    if fmt == "json":
        sys.stdout.write(json.dumps(data, indent=2, sort_keys=False) + "\n")
    elif fmt == "yaml":
        sys.stdout.write(yaml.safe_dump(data, sort_keys=False))
    elif render_table is not None:
        sys.stdout.write(_text(render_table(_escaped(data))) + "\n")
    else:
        sys.stdout.write(yaml.safe_dump(data, sort_keys=False))


#: Output modes of commands that show federation objects: kubectl's -o name (``kind/name`` per
#: line) and -o wide (the table with more columns) besides table, json and yaml.
OBJECT_OUTPUT = ("table", "wide", "json", "yaml", "name")


def emit_objects(
    data: Any,
    fmt: str,
    *,
    kind: str,
    names: Sequence[str],
    render_table: Any,
    render_wide: Any = None,
) -> None:
    """``emit`` for object commands: ``-o name`` prints ``kind/name`` lines, ``-o wide`` the wide
    table (the plain one when there is none), anything else as ``emit``."""
    if fmt == "name":
        sys.stdout.write("".join(f"{kind}/{safe_text(n)}\n" for n in names))
    elif fmt == "wide":
        emit(data, "table", render_wide or render_table)
    else:
        emit(data, fmt, render_table)
