"""Refusals audited in bounded volume (controlplane/services/refusals.py), on the memory store."""

from __future__ import annotations

import pytest

from controlplane.services import clock
from controlplane.services.audit import AuditLog
from controlplane.services.refusals import Refusals
from controlplane.store.memory import MemoryStore


@pytest.fixture
def now(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    t = [1000.0]
    monkeypatch.setattr(clock, "now", lambda: t[0])
    return t


async def _events(audit: AuditLog) -> list[tuple[str, str, str]]:
    events, _ = await audit.list(0, 10_000)
    return [(e.actor, e.reason, e.details.get("count", "")) for e in events]


async def test_the_first_refusal_at_once_the_rest_of_the_window_as_one_event(now: list[float]) -> None:
    store = MemoryStore()
    audit = AuditLog(store)
    r = Refusals(audit, window=60.0)
    await r.note("anonymous@ipv4:1.2.3.4", "site.enroll", "site/x", "unknown join token")
    assert await _events(audit) == [("anonymous@ipv4:1.2.3.4", "unknown join token", "1")]
    for i in range(1999):
        await r.note(
            "anonymous@ipv4:1.2.3.4", "site.enroll", "site/x", "unknown join token" if i % 2 else "expired"
        )
    assert len(await _events(audit)) == 1 and await r.flush() == 0  # the window is still open
    now[0] += 61
    assert await r.flush() == 1
    events, _ = await audit.list(0, 100)
    assert (
        events[-1].details["count"] == "1999" and "unknown join token (x999)" in events[-1].details["reasons"]
    )
    # A flood that goes on: one event per window, not one per call.
    for _ in range(500):
        await r.note("anonymous@ipv4:1.2.3.4", "site.enroll", "site/x", "rate limited")
    now[0] += 61
    await r.flush()
    assert [c for _, _, c in await _events(audit)] == ["1", "1999", "500"]
    # A quiet window forgets the peer: its next refusal is recorded at once again.
    now[0] += 61
    await r.flush()
    assert len(r) == 0
    await r.note("anonymous@ipv4:1.2.3.4", "site.enroll", "site/x", "again")
    assert (await _events(audit))[-1] == ("anonymous@ipv4:1.2.3.4", "again", "1")
    await store.close()


async def test_the_table_is_bounded_and_nothing_counted_is_lost_at_close(now: list[float]) -> None:
    store = MemoryStore()
    audit = AuditLog(store)
    r = Refusals(audit, window=60.0, max_keys=100)
    for i in range(5000):
        await r.note(f"anonymous@ipv4:10.0.{i // 256}.{i % 256}", "site.enroll", "site/?", "bad")
    assert len(r) <= 101  # 100 peers, then one window for all the others
    await r.close()
    events, _ = await audit.list(0, 10_000)
    assert sum(int(e.details["count"]) for e in events) == 5000
    assert len(events) == 102 and events[-1].actor == "anonymous@*"
    await store.close()
