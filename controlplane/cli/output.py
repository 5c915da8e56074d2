"""-o table|json|yaml for every read and create command."""

from __future__ import annotations

import datetime as dt
import json
import sys
from collections.abc import Sequence
from typing import Any

import yaml


def iso(ts: Any) -> str:
    """A protobuf Timestamp as RFC 3339 UTC, or "" when unset."""
    if ts is None or (ts.seconds == 0 and ts.nanos == 0):
        return ""
    return ts.ToDatetime(dt.UTC).isoformat().replace("+00:00", "Z")


def age(when: str) -> str:
    if not when:
        return "-"
    delta = dt.datetime.now(dt.UTC) - dt.datetime.fromisoformat(when.replace("Z", "+00:00"))
    s = max(0, int(delta.total_seconds()))
    return f"{s}s" if s < 120 else f"{s // 60}m" if s < 7200 else f"{s // 3600}h"


def table(rows: Sequence[Sequence[Any]], headers: Sequence[str]) -> str:
    cells = [[str(h) for h in headers], *[[str(c) for c in r] for r in rows]]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in cells)


def emit(data: Any, fmt: str, render_table: Any = None) -> None:
    """Print ``data`` as json/yaml, or through ``render_table(data) -> str`` for the table format."""
    if fmt == "json":
        sys.stdout.write(json.dumps(data, indent=2, sort_keys=False) + "\n")
    elif fmt == "yaml":
        sys.stdout.write(yaml.safe_dump(data, sort_keys=False))
    elif render_table is not None:
        sys.stdout.write(render_table(data) + "\n")
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
        sys.stdout.write("".join(f"{kind}/{n}\n" for n in names))
    elif fmt == "wide":
        emit(data, "table", render_wide or render_table)
    else:
        emit(data, fmt, render_table)
