"""Refusals audited in bounded volume: one event per actor, action and window, with a count.

A refused call is evidence and must be audited, but the audit log is permanent: 2,000 bad Enroll
calls in 2.5 s once added 2,000 events. So per (actor, action):

- the first refusal after a quiet window is recorded at once, with its precise reason (an
  operator looking into one failed join sees it immediately);
- further refusals within the window are counted, and when the window ends one event records
  how many there were, with their most frequent reasons (``details``: ``count``, ``window_s``,
  ``reasons``). A sustained flood is thus one event per window;
- a window that ends without refusals is forgotten (the next refusal is recorded at once again).

The table is bounded (``max_keys``): past it, refusals of actors it has no room for are counted
together under ``<kind>@*`` (e.g. ``anonymous@*``), so memory stays bounded whatever the number
of peers. ``close`` writes what is still counted (a replica that stops loses no count).
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field

from controlplane.errors import StargateError
from controlplane.services import clock
from controlplane.services.audit import AuditLog, Entry

log = logging.getLogger(__name__)

#: Distinct reasons kept per window (the rest are counted under "other").
MAX_REASONS = 5


@dataclass
class _Window:
    actor: str
    object: str
    start: float
    count: int = 0
    reasons: dict[str, int] = field(default_factory=dict)

    def add(self, reason: str) -> None:
        self.count += 1
        key = reason if reason in self.reasons or len(self.reasons) < MAX_REASONS else "other"
        self.reasons[key] = self.reasons.get(key, 0) + 1


class Refusals:
    def __init__(self, audit: AuditLog, *, window: float = 60.0, max_keys: int = 10_000) -> None:
        self._audit = audit
        self.window = window
        self.max_keys = max_keys
        self._windows: dict[tuple[str, str], _Window] = {}

    def __len__(self) -> int:
        return len(self._windows)

    async def note(
        self, actor: str, action: str, obj: str, reason: str, details: dict[str, str] | None = None
    ) -> None:
        """A refusal of ``actor``'s ``action`` on ``obj`` (see the module docstring)."""
        reason = reason[:512]
        key = (actor, action)
        w = self._windows.get(key)
        if w is None and len(self._windows) >= self.max_keys:
            # Counted together; overflow windows are few (one per kind of actor and action).
            key = (actor.partition("@")[0] + "@*", action)
            w = self._windows.get(key)
        if w is not None:
            w.add(reason)
            return
        self._windows[key] = _Window(key[0], obj, clock.now())
        await self._record(Entry(actor, action, obj, "denied", reason, {"count": "1"} | (details or {})))

    async def flush(self, *, everything: bool = False) -> int:
        """Record one event for every window that ended (all of them with ``everything``); returns
        the number of events written."""
        now = clock.now()
        written = 0
        for key, w in list(self._windows.items()):
            if not everything and now - w.start < self.window:
                continue
            if not w.count:
                del self._windows[key]
                continue
            top = sorted(w.reasons.items(), key=lambda kv: -kv[1])
            details = {
                "count": str(w.count),
                "window_s": f"{now - w.start:.1f}",
                "reasons": "; ".join(f"{r} (x{n})" for r, n in top)[:1024],
            }
            reason = f"{w.count} more refusals in {now - w.start:.0f}s"
            if everything:
                del self._windows[key]
            else:
                self._windows[key] = _Window(w.actor, w.object, now)  # a flood goes on: next window
            await self._record(Entry(w.actor, key[1], w.object, "denied", reason, details))
            written += 1
        return written

    async def _record(self, entry: Entry) -> None:
        try:
            await self._audit.record(entry)
        except StargateError as e:  # a store outage must not turn a refusal into another error
            log.warning("could not audit refusal of %s by %s: %s", entry.action, entry.actor, e.public)

    async def run(self) -> None:
        """Flush ended windows, four times per window."""
        while True:
            await asyncio.sleep(self.window / 4)
            try:
                await self.flush()
            except Exception:  # one bad pass must not end the audit of refusals for good
                log.exception("refusal audit flush failed")

    async def close(self) -> None:
        await self.flush(everything=True)
