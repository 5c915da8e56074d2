"""The safety lane on every store (memory and a real etcd): what it asks of a store beyond the
store contract - a compare on one shared sequence key under concurrent halts, ack batches that
etcd must accept, and a watch that follows the lane."""

from __future__ import annotations

import asyncio

from controlplane.domain import safety as sd
from controlplane.pki.safety_key import SafetyKey
from controlplane.services.audit import AuditLog
from controlplane.services.registry import Registry
from controlplane.services.safety import Safety
from controlplane.store import Store

ADMIN = "spiffe://t/user/alice"


def _safety(store: Store) -> Safety:
    audit = AuditLog(store)
    return Safety(store, audit, Registry(store, audit), SafetyKey.generate())


async def _lane_top(safety: Safety, top: int, timeout: float = 3.0) -> None:
    """Wait until the replica's lane cache holds every directive up to ``top``."""
    for _ in range(int(timeout / 0.01)):
        if safety.lane.top == top:
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"lane top {safety.lane.top}, expected {top}")


async def test_concurrent_halts_take_distinct_consecutive_sequences_and_the_watch_follows(
    store: Store,
) -> None:
    safety = _safety(store)
    watch = asyncio.create_task(safety.run_lane_watch())
    try:
        actions = await asyncio.gather(*(safety.halt(ADMIN, f"r{i}", "global", "x") for i in range(5)))
        await _lane_top(safety, 5)
        lane = [safety.lane.get(seq) for seq in range(1, 6)]
        assert sorted(e.record.id for e in lane if e is not None) == sorted(a.id for a in actions)
        assert (await store.get(sd.LANE_SEQ)).value == b"5"  # type: ignore[union-attr]
    finally:
        watch.cancel()


async def test_acks_in_one_batch_name_each_site_once_even_when_repeated(store: Store) -> None:
    safety = _safety(store)
    watch = asyncio.create_task(safety.run_lane_watch())
    try:
        halt = await safety.halt(ADMIN, "atlas-r1", "country:FR", "x")
        await _lane_top(safety, 1)
        sites = [f"fr-{i}" for i in range(150)]
        # Every site acks, some twice (outcomes are re-sent after a reconnect), all at once.
        acks = [
            safety.complete(f"spiffe://t/site/{s}", s, "FR", halt.id, 1, rejected=False)
            for s in [x for site in sites for x in ([site, site] if site < "fr-4" else [site])]
        ]
        assert all(await asyncio.gather(*acks))
        stored = await safety.deliveries(halt.id)
        assert sorted(stored) == sorted(sites) and {d.state for d in stored.values()} == {"Acked"}
        records = (await store.range(sd.acks_prefix(halt.id))).items
        named = [site for kv in records for site in sd.AckBatchRecord.from_json(kv.value).sites]
        assert sorted(named) == sorted(sites)  # each once, in a few records, not one per site
        assert len(records) < len(sites) / 10
        # A reject after the ack changes nothing.
        assert not await safety.complete("spiffe://t/site/fr-0", "fr-0", "FR", halt.id, 1, rejected=True)
        assert (await safety.deliveries(halt.id))["fr-0"].state == "Acked"
    finally:
        watch.cancel()


async def test_acks_for_many_actions_at_once_fit_in_a_transaction(store: Store) -> None:
    safety = _safety(store)
    watch = asyncio.create_task(safety.run_lane_watch())
    try:
        halts = await asyncio.gather(*(safety.halt(ADMIN, f"r{i}", "global", "x") for i in range(60)))
        await _lane_top(safety, 60)
        by_id = {safety.lane.get(seq).record.id: seq for seq in range(1, 61)}  # type: ignore[union-attr]
        # 120 acks naming 60 actions at once: 120 writes and 60 audit events cannot share one
        # transaction (etcd allows 128 operations).
        acks = [
            safety.complete(f"spiffe://t/site/{s}", s, "FR", h.id, by_id[h.id], rejected=False)
            for h in halts
            for s in ("fr-a", "fr-b")
        ]
        assert all(await asyncio.gather(*acks))
        for h in halts:
            assert sorted(await safety.deliveries(h.id)) == ["fr-a", "fr-b"]
    finally:
        watch.cancel()


async def test_an_ack_wins_over_a_reject_in_either_order_and_a_lost_batch_is_reported(store: Store) -> None:
    safety = _safety(store)
    watch = asyncio.create_task(safety.run_lane_watch())
    try:
        halt = await safety.halt(ADMIN, "atlas-r1", "global", "x")
        await _lane_top(safety, 1)
        # fr-a rejects, then (after a re-delivery) acks: the ack is what holds.
        assert await safety.complete("spiffe://t/site/fr-a", "fr-a", "FR", halt.id, 1, rejected=True)
        assert (await safety.deliveries(halt.id))["fr-a"].state == "Rejected"
        assert await safety.complete("spiffe://t/site/fr-a", "fr-a", "FR", halt.id, 1, rejected=False)
        # fr-b acks through a link (returns once queued), then a late reject changes nothing.
        lost: list[Exception] = []
        assert await safety.complete(
            "spiffe://t/site/fr-b", "fr-b", "FR", halt.id, 1, rejected=False, lost=lost.append
        )
        for _ in range(200):
            if "fr-b" in await safety.deliveries(halt.id):
                break
            await asyncio.sleep(0.01)
        assert not await safety.complete("spiffe://t/site/fr-b", "fr-b", "FR", halt.id, 1, rejected=True)
        stored = await safety.deliveries(halt.id)
        assert {s: d.state for s, d in stored.items()} == {"fr-a": "Acked", "fr-b": "Acked"} and not lost
        # Two acks, a few writes: the batches name their sites, no per-site ack records.
        keys = [kv.key for kv in (await store.range(sd.acks_prefix(halt.id))).items]
        assert sum(sd.ACK_BATCH_MARK in k for k in keys) == 2 and sd.ack_key(halt.id, "fr-b") not in keys
        # A batch that cannot be stored reaches its link's ``lost`` (the link then ends, and the
        # site re-sends on the next one); the ack queued and returned before that.
        watch.cancel()
        assert await safety.complete(
            "spiffe://t/site/fr-c", "fr-c", "FR", halt.id, 1, rejected=False, lost=lost.append
        )
        await store.close()
        for _ in range(200):
            if lost:
                break
            await asyncio.sleep(0.01)
        assert len(lost) == 1
    finally:
        watch.cancel()
