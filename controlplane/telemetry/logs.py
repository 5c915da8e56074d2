"""``--log-format text|json`` for every process, and the ids in context.

JSON is one object per line: ``time`` (RFC 3339, UTC, milliseconds), ``level``, ``logger``,
``message``, then whichever of ``site``, ``directive``, ``rollout``, ``action`` are in context
(set with :func:`context` around the work they concern; contextvars follow asyncio tasks, so a
site's link stream tags everything it logs without passing ids around), and ``exception`` with
the formatted traceback when there is one. A log aggregator then filters one site's or one
rollout's lines without parsing prose.
"""

from __future__ import annotations

import contextlib
import contextvars
import datetime as dt
import json
import logging
import sys
from collections.abc import Iterator
from typing import Any

FORMATS = ("text", "json")
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
#: The ids a log line may carry, in output order.
IDS = ("site", "directive", "rollout", "action")
_VARS: dict[str, contextvars.ContextVar[str]] = {
    k: contextvars.ContextVar(f"log_{k}", default="") for k in IDS
}


@contextlib.contextmanager
def context(**ids: str) -> Iterator[None]:
    """Tag every line logged inside (in this task and tasks it creates) with ``ids``."""
    tokens = [(_VARS[k], _VARS[k].set(str(v))) for k, v in ids.items() if v]
    try:
        yield
    finally:
        for var, token in reversed(tokens):
            var.reset(token)


def bind(**ids: str) -> None:
    """Set ids for the rest of the current task (a stream handler's whole life)."""
    for k, v in ids.items():
        _VARS[k].set(str(v))


def current() -> dict[str, str]:
    return {k: v for k in IDS if (v := _VARS[k].get())}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "time": dt.datetime.fromtimestamp(record.created, dt.UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        ids = current()
        for k in IDS:  # ``extra={"site": ...}`` on a call wins over the context
            v = getattr(record, k, None) or ids.get(k)
            if v:
                out[k] = str(v)
        if record.exc_info:
            out["exception"] = self.formatException(record.exc_info)
        return json.dumps(out, ensure_ascii=False, default=str)


def setup(level: str | int = "INFO", fmt: str = "text", *, text_format: str = TEXT_FORMAT) -> None:
    """Configure the root logger once per process (replaces basicConfig)."""
    if fmt not in FORMATS:
        raise ValueError(f"--log-format: must be one of {', '.join(FORMATS)}, not {fmt!r}")
    if isinstance(level, str):
        name = level.upper()
        if not isinstance(logging.getLevelName(name), int):
            raise ValueError(f"--log-level: unknown level {level!r}")
        level = logging.getLevelName(name)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else logging.Formatter(text_format))
    root = logging.getLogger()
    for h in list(root.handlers):
        root.removeHandler(h)
    root.addHandler(handler)
    root.setLevel(level)
