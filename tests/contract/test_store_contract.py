"""One contract for every Store backend (see controlplane/store/base.py)."""

from __future__ import annotations

import asyncio

import pytest

from controlplane.errors import CompactedError, LeaseNotFound
from controlplane.store import Compare, Delete, EventType, Put, Store, WatchEvent


async def _collect(store: Store, prefix: str, start: int, n: int, timeout: float = 5.0) -> list[WatchEvent]:
    out: list[WatchEvent] = []
    it = store.watch(prefix, start_revision=start)

    async def run() -> None:
        async for batch in it:
            out.extend(batch)
            if len(out) >= n:
                return

    try:
        await asyncio.wait_for(run(), timeout)
    finally:
        await it.aclose()  # type: ignore[attr-defined]
    return out


async def test_put_get_revisions(store: Store) -> None:
    r0 = await store.current_revision()
    r1 = await store.put("/t/a", b"1")
    assert r1 == r0 + 1
    kv = await store.get("/t/a")
    assert kv is not None and kv.value == b"1"
    assert kv.create_revision == kv.mod_revision == r1 and kv.version == 1
    r2 = await store.put("/t/a", b"2")
    kv2 = await store.get("/t/a")
    assert kv2 is not None and kv2.create_revision == r1 and kv2.mod_revision == r2 and kv2.version == 2
    assert await store.get("/t/missing") is None


async def test_range_prefix_order_start_limit(store: Store) -> None:
    for k in ["/r/b", "/r/a", "/r/c", "/rx/z", "/q/0"]:
        await store.put(k, k.encode())
    res = await store.range("/r/")
    assert [kv.key for kv in res.items] == ["/r/a", "/r/b", "/r/c"]
    assert res.revision == await store.current_revision()
    assert [kv.key for kv in (await store.range("/r/", start="/r/b")).items] == ["/r/b", "/r/c"]
    assert [kv.key for kv in (await store.range("/r/", limit=2)).items] == ["/r/a", "/r/b"]
    assert (await store.range("/none/")).items == []


async def test_txn_is_atomic_and_one_revision(store: Store) -> None:
    await store.put("/x/guard", b"g")
    guard = await store.get("/x/guard")
    assert guard is not None
    before = await store.current_revision()
    ok = await store.txn(
        [Compare.unchanged(guard)], [Put("/x/1", b"a"), Put("/x/2", b"b"), Delete("/x/guard")]
    )
    assert ok.succeeded and ok.revision == before + 1
    a, b = await store.get("/x/1"), await store.get("/x/2")
    assert a is not None and b is not None and a.mod_revision == b.mod_revision == ok.revision
    assert await store.get("/x/guard") is None
    # A failed compare changes nothing and does not advance the revision.
    failed = await store.txn([Compare.unchanged(guard)], [Put("/x/3", b"c")])
    assert not failed.succeeded
    assert await store.get("/x/3") is None
    assert await store.current_revision() == ok.revision


async def test_cas_conflict(store: Store) -> None:
    assert await store.create("/c/k", b"v1")
    assert not await store.create("/c/k", b"again")
    kv = await store.get("/c/k")
    assert kv is not None
    assert await store.cas("/c/k", b"v2", kv.mod_revision)
    assert not await store.cas("/c/k", b"v3", kv.mod_revision)  # stale revision loses
    now = await store.get("/c/k")
    assert now is not None and now.value == b"v2"
    assert await store.txn([Compare("/c/k", "value", b"v2")], [Put("/c/k", b"v4")])
    assert (await store.txn([Compare("/c/k", "value", b"nope")], [Put("/c/k", b"v5")])).succeeded is False


async def test_concurrent_cas_exactly_one_wins(store: Store) -> None:
    await store.put("/cc/k", b"0")
    kv = await store.get("/cc/k")
    assert kv is not None
    results = await asyncio.gather(*(store.cas("/cc/k", str(i).encode(), kv.mod_revision) for i in range(20)))
    assert sum(results) == 1


async def test_delete(store: Store) -> None:
    await store.put("/d/k", b"v")
    assert await store.delete("/d/k")
    assert not await store.delete("/d/k")
    assert await store.get("/d/k") is None


async def test_watch_from_revision_replays_in_order(store: Store) -> None:
    start = await store.current_revision() + 1
    await store.put("/w/a", b"1")
    await store.put("/other", b"x")
    await store.txn([], [Put("/w/b", b"2"), Put("/w/c", b"3")])
    await store.delete("/w/a")
    events = await _collect(store, "/w/", start, 4)
    assert [(e.type, e.kv.key) for e in events] == [
        (EventType.PUT, "/w/a"),
        (EventType.PUT, "/w/b"),
        (EventType.PUT, "/w/c"),
        (EventType.DELETE, "/w/a"),
    ]
    revs = [e.kv.mod_revision for e in events]
    assert revs == sorted(revs) and revs[1] == revs[2]


async def test_watch_live_events(store: Store) -> None:
    start = await store.current_revision() + 1
    task = asyncio.create_task(_collect(store, "/live/", start, 3))
    await asyncio.sleep(0.05)
    for i in range(3):
        await store.put(f"/live/{i}", b"x")
    events = await task
    assert [e.kv.key for e in events] == ["/live/0", "/live/1", "/live/2"]


async def test_watch_from_compacted_revision_fails_then_relist(store: Store) -> None:
    first = await store.put("/k/a", b"1")
    await store.put("/k/a", b"2")
    latest = await store.put("/k/b", b"3")
    await store.compact(latest)
    with pytest.raises(CompactedError):
        await _collect(store, "/k/", first, 1, timeout=5)
    # The documented recovery: re-list, then watch from the list's revision + 1.
    listed = await store.range("/k/")
    assert [kv.value for kv in listed.items] == [b"2", b"3"]
    task = asyncio.create_task(_collect(store, "/k/", listed.revision + 1, 1))
    await asyncio.sleep(0.05)
    await store.put("/k/c", b"4")
    events = await task
    assert [e.kv.key for e in events] == ["/k/c"]


async def test_lease_expiry_deletes_keys_and_is_watched(store: Store) -> None:
    lease = await store.grant_lease(1)
    start = await store.current_revision() + 1
    await store.put("/l/k", b"v", lease=lease)
    kv = await store.get("/l/k")
    assert kv is not None and kv.lease == lease
    events = await _collect(store, "/l/", start, 2, timeout=8)
    assert [e.type for e in events] == [EventType.PUT, EventType.DELETE]
    assert await store.get("/l/k") is None
    with pytest.raises(LeaseNotFound):
        await store.refresh_lease(lease)


async def test_lease_refresh_keeps_keys(store: Store) -> None:
    lease = await store.grant_lease(1)
    await store.put("/lr/k", b"v", lease=lease)
    for _ in range(4):
        await asyncio.sleep(0.4)
        assert await store.refresh_lease(lease) >= 1
    assert await store.get("/lr/k") is not None
    await store.revoke_lease(lease)
    assert await store.get("/lr/k") is None
    await store.revoke_lease(lease)  # idempotent


async def test_put_with_unknown_lease_changes_nothing(store: Store) -> None:
    before = await store.current_revision()
    with pytest.raises(LeaseNotFound):
        await store.txn([], [Put("/ul/a", b"1"), Put("/ul/b", b"2", lease=0x7FFF_FFFF)])
    assert await store.get("/ul/a") is None
    assert await store.current_revision() == before


async def test_healthy(store: Store) -> None:
    assert await store.healthy() is True
