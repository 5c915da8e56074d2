"""Rendering for people: timestamps, ages, tables and escaped text. Pure, shared by stargatectl
and any other people's tool (a dashboard): whatever a site or a person put in a field is shown
only escaped (``safe_text``; controlplane/domain/text.py), so a region cannot clear a screen or
reorder a row."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

from controlplane.domain.text import escape_controls


def safe_text(value: str) -> str:
    """``value`` with every control or invisible character escaped (controlplane/domain/text.py)."""
    return escape_controls(value)


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
    cells = [[safe_text(str(h)) for h in headers], *[[safe_text(str(c)) for c in r] for r in rows]]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in cells)
