"""The audit log's Merkle tree on every store: each commit stores its leaves, tiles and root in the
same transaction; proofs from the stored tiles verify; replicas interleave without a gap; events
written before the tree existed are added to it; a commit never exceeds etcd's 128 operations."""

from __future__ import annotations

import asyncio
import json
import random

from controlplane.domain import merkle
from controlplane.domain.records import AUDIT_EVENTS, AUDIT_HEAD, AUDIT_TREE, audit_key, tile_key
from controlplane.services.audit import AuditLog, Entry
from controlplane.services.log_tree import TAIL_KEY, LogTree
from controlplane.store import Compare, Put, Store


def entry(i: int) -> Entry:
    return Entry("spiffe://t/user/admin", "test.event", f"thing/{i}", details={"i": str(i)})


async def stored_leaves(store: Store) -> list[bytes]:
    return [kv.value for kv in (await store.range(AUDIT_EVENTS)).items]


async def check_tree(store: Store, audit: AuditLog, samples: int = 40) -> int:
    raws = await stored_leaves(store)
    hashes = [merkle.leaf_hash(r) for r in raws]
    size, root = await audit.tree.state()
    head = json.loads((await store.get(AUDIT_HEAD)).value)
    assert size == len(raws) == head["sequence"]
    assert (
        root
        == await audit.tree.root(size)
        == merkle.fold(
            [merkle.perfect_root(hashes[i << h : (i + 1) << h]) for h, i in merkle.range_nodes(0, size)]
        )
    )
    for _ in range(samples):
        index = random.randrange(size)
        path = await audit.tree.inclusion(index, size)
        merkle.verify_inclusion(index, size, hashes[index], path, root)
        first = random.randint(1, size)
        old_root = await audit.tree.root(first)
        merkle.verify_consistency(first, size, old_root, root, await audit.tree.consistency(first, size))
    return size


async def test_concurrent_commits_build_the_tree_of_the_stored_events(store: Store) -> None:
    audit = AuditLog(store)
    n = 0

    async def burst(k: int) -> None:
        nonlocal n
        base, n = n, n + k
        await asyncio.gather(*(audit.record(entry(base + i)) for i in range(k)))

    for k in (1, 7, 250, 3, 300):  # crosses tile boundaries inside one transaction
        await burst(k)
    assert await check_tree(store, audit) == 561


async def test_two_replicas_interleave(store: Store) -> None:
    a, b = AuditLog(store), AuditLog(store)
    for round_ in range(6):
        await asyncio.gather(*(log.record(entry(round_ * 100 + i)) for i, log in enumerate([a, b] * 20)))
    await check_tree(store, a)
    assert await b.tree.state() == await a.tree.state()


async def test_sequences_are_returned_and_a_failed_compare_writes_nothing(store: Store) -> None:
    audit = AuditLog(store)
    result, seqs = await audit.commit_sequenced([], [Put("/x/a", b"1")], [entry(1), entry(2)])
    assert result.succeeded and seqs == [1, 2]
    before = await audit.tree.state()
    failed, none = await audit.commit_sequenced([Compare.absent("/x/a")], [Put("/x/a", b"2")], [entry(3)])
    assert not failed.succeeded and none == [] and await audit.tree.state() == before
    _, seqs = await audit.commit_sequenced([], [], [entry(4)])
    assert seqs == [3]


async def test_events_from_before_the_tree_are_added_to_it(store: Store) -> None:
    # A log written by a version without the tree: events and a head, no tiles, no tree record.
    old = AuditLog(store)
    for i in range(300):
        await old.record(entry(i))
    await store.txn([], [Put(AUDIT_TREE, json.dumps({"size": 0, "root": ""}).encode())])
    for key in [kv.key for kv in (await store.range("/stargate/audit/tiles/")).items]:
        await store.delete(key)
    new = AuditLog(store)
    await new.record(entry(300))
    assert await check_tree(store, new) == 301


async def test_a_full_commit_stays_within_etcds_operation_limit(store: Store) -> None:
    # 100 caller writes and 19 events at a tile boundary at level 0 and level 1: etcd refuses a
    # transaction of more than 128 operations, so this fails there if the tree's bound is wrong.
    audit = AuditLog(store)
    await asyncio.gather(*(audit.record(entry(i)) for i in range(256 * 2 - 10)))
    ops = [Put(f"/x/{i}", b"v") for i in range(100)]
    result, seqs = await audit.commit_sequenced([], ops, [entry(1000 + i) for i in range(19)])
    assert result.succeeded and seqs[-1] == 256 * 2 + 9
    await check_tree(store, audit, samples=10)
    assert (await store.get(audit_key(seqs[-1]))) is not None


async def test_the_growing_tile_is_strips_plus_a_tail_and_reads_back_whole(store: Store) -> None:
    audit = AuditLog(store)
    for i in range(300):  # one event per commit: the growing tile changes every time
        await audit.record(entry(i))
        if i % 37 == 0 or i in (15, 16, 17, 255, 256, 257):
            size, root = await AuditLog(store).tree.state()
            fresh = LogTree(store)  # reads the store, not this replica's cache
            assert (await fresh.edge(size)).root() == root == await fresh.root(size)
            leaves = [merkle.leaf_hash(r) for r in await stored_leaves(store)]
            merkle.verify_inclusion(size - 1, size, leaves[-1], await fresh.inclusion(size - 1, size), root)
    main = (await store.get(tile_key(0, 1))).value
    tail = (await store.get(TAIL_KEY)).value
    assert len(main) == 32 * 32 and tail[:8] == (1).to_bytes(8, "big") and len(tail) == 10 + 12 * 32
    assert len((await store.get(tile_key(0, 0))).value) == 256 * 32
