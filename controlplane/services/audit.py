"""The audit log: every state change commits together with its audit events, in one transaction.

Events form a hash chain (controlplane/domain/audit.py) kept gap-free by a compare on the head
key, and are the leaves of an RFC 9162 Merkle tree (leaf = the event's canonical bytes, exactly as
stored): the same transaction stores the tiles the new leaves change and the tree's size and root
(services/log_tree.py), so that signed checkpoints and proofs (services/checkpoints.py) always
cover exactly what was committed. One worker per process appends (so a replica never races
itself), grouping concurrent commits into one transaction; several replicas race through the
compare, and the loser retries against the new head.
"""

from __future__ import annotations

import asyncio
import collections
import json
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from controlplane.domain.audit import seal, verify_chain
from controlplane.domain.merkle import leaf_hash
from controlplane.domain.records import AUDIT_EVENTS, AUDIT_HEAD, AUDIT_TREE, AuditEvent, audit_key
from controlplane.domain.tiles import TreeEdge
from controlplane.errors import FailedPrecondition
from controlplane.services import cas, clock
from controlplane.services.log_tree import LogTree, tile_puts, tree_record
from controlplane.store import Compare, Op, Put, Store, TxnResult

log = logging.getLogger(__name__)
#: Events with their bytes as stored.
Page = list[tuple[AuditEvent, bytes]]

#: Operations the tree adds to a transaction with events: the tree record and the tiles the new
#: leaves touch (at most 3 writes at level 0: a full tile, the next one and the tail; 1 per level
#: above: 7 below 2^40 events). A lone commit of 119 operations plus the head stays at etcd's 128.
TREE_OPS = 8


@dataclass(frozen=True)
class Entry:
    """An audit event before it has a sequence and hash."""

    actor: str
    action: str
    object: str
    outcome: str = "success"
    reason: str = ""
    details: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class _Head:
    compare: Compare
    sequence: int
    hash: str
    edge: TreeEdge


@dataclass
class _Pending:
    compares: Sequence[Compare]
    ops: Sequence[Op]
    entries: Sequence[Entry]
    future: asyncio.Future[TxnResult]
    #: The sequences its entries got, once committed.
    sequences: list[int] = field(default_factory=list)

    @property
    def keys(self) -> set[str]:
        return {c.key for c in self.compares} | {op.key for op in self.ops}

    @property
    def size(self) -> int:
        return max(len(self.compares), len(self.ops) + len(self.entries))


class AuditLog:
    """Appends with group commit: commits that arrive while one is in flight go together in the
    next transaction (one head update, one store round trip), so 1,000 sites acking a halt at once
    cost ~10 transactions instead of 1,000 serialised ones. A batch never holds two commits that
    touch the same key, and stays under etcd's 128 operations per transaction. If a caller's
    compare fails inside a batch, the batch is retried one commit at a time, so each caller still
    gets exactly its own outcome."""

    #: Operations (and compares) per transaction (the head and the tree's included); etcd's
    #: default --max-txn-ops is 128, and one commit alone may bring 119 plus the tree's 7.
    MAX_BATCH_OPS = 120

    def __init__(self, store: Store) -> None:
        self._store = store
        self.tree = LogTree(store)
        self._queue: collections.deque[_Pending] = collections.deque()
        self._worker: asyncio.Task[None] | None = None
        #: The head and the tree's edge as this replica last wrote or read them; a stale cache
        #: only costs one failed compare and a re-read.
        self._cached: _Head | None = None
        #: Called with the new tree size after every commit that appended events (checkpoints).
        self._listeners: list[Callable[[int], None]] = []

    def subscribe(self, listener: Callable[[int], None]) -> None:
        self._listeners.append(listener)

    async def _head(self) -> _Head:
        if self._cached is not None:
            return self._cached

        async def attempt() -> _Head | cas.Retry:
            kv = await self._store.get(AUDIT_HEAD)
            if kv is None:
                return _Head(Compare.absent(AUDIT_HEAD), 0, "", TreeEdge.empty())
            head = json.loads(kv.value)
            sequence = int(head["sequence"])
            # After the head: written together, so the tree is never behind it unless a replica
            # without the tree appended (then its events are added below).
            size, _ = await self.tree.state()
            edge: TreeEdge | None = await self.tree.edge(min(size, sequence))
            if edge is not None and edge.size < sequence:
                edge = await self._catch_up(Compare.unchanged(kv), edge, sequence)
            if edge is None:
                return cas.RETRY
            return _Head(Compare.unchanged(kv), sequence, str(head["hash"]), edge)

        return await cas.retry(self._store, attempt, policy=cas.AUDIT_HEAD)

    async def _catch_up(self, head: Compare, edge: TreeEdge, sequence: int) -> TreeEdge | None:
        """Add the leaves of events that have none (appended before the tree existed, or by a
        replica of an older version): 256 events per transaction, each guarded by the head so
        that no tile is written over a longer one; None if the head moved meanwhile. The next
        commit stores the tree record."""
        log.warning("audit log: adding events %d-%d to the Merkle tree", edge.size + 1, sequence)
        while edge.size < sequence:
            first = edge.size + 1
            res = await self._store.range(AUDIT_EVENTS, start=audit_key(first), limit=256)
            raws = []
            for i, kv in enumerate(res.items):
                if kv.key != audit_key(first + i) or first + i > sequence:
                    break
                raws.append(kv.value)
            if not raws:
                raise FailedPrecondition(f"audit event {first} is missing: the store was altered or damaged")
            grown, touched = edge.append([leaf_hash(r) for r in raws])
            ops = tile_puts(edge, touched)
            edge = grown
            if not (await self._store.txn([head], ops)).succeeded:
                return None
        return edge

    def _tree_ops(self, edge: TreeEdge, raws: list[bytes]) -> tuple[TreeEdge, list[Op]]:
        """The tree after appending ``raws`` (events as stored) and the writes that store it."""
        grown, touched = edge.append([leaf_hash(r) for r in raws])
        ops: list[Op] = [*tile_puts(edge, touched), Put(AUDIT_TREE, tree_record(grown))]
        return grown, ops

    async def commit(
        self, compares: Sequence[Compare], ops: Sequence[Op], entries: Sequence[Entry]
    ) -> TxnResult:
        """Apply ``ops`` if ``compares`` hold, together with ``entries`` appended to the log.

        Returns the failed TxnResult when a caller's compare fails (nothing is written), so the
        caller can re-read and decide; retries only when the audit head moved under it.
        """
        return (await self.commit_sequenced(compares, ops, entries))[0]

    async def commit_sequenced(
        self, compares: Sequence[Compare], ops: Sequence[Op], entries: Sequence[Entry]
    ) -> tuple[TxnResult, list[int]]:
        """``commit``, also returning the sequences the entries got (empty when it failed): what
        an inclusion proof of one of them is asked for with (services/checkpoints.py)."""
        pending = _Pending(compares, ops, entries, asyncio.get_running_loop().create_future())
        self._queue.append(pending)
        if self._worker is None or self._worker.done():
            self._worker = asyncio.create_task(self._drain(), name="audit-group-commit")
        result = await asyncio.shield(pending.future)
        return result, pending.sequences if result.succeeded else []

    def _take(self) -> list[_Pending]:
        batch: list[_Pending] = []
        keys: set[str] = set()
        size = 1 + TREE_OPS  # the head and the tree
        while self._queue:
            p = self._queue[0]
            if batch and (p.keys & keys or size + p.size > self.MAX_BATCH_OPS):
                break  # FIFO: the next batch starts with it
            batch.append(self._queue.popleft())
            keys |= p.keys
            size += p.size
        return batch

    async def _drain(self) -> None:
        while self._queue:
            batch = self._take()
            try:
                results = await self._commit(batch)
            except Exception as e:
                if len(batch) == 1:
                    results = [e]
                else:  # one commit's fault (e.g. an expired lease) must not fail the others
                    results = []
                    for p in batch:
                        try:
                            results += await self._commit([p])
                        except Exception as one:
                            results.append(one)
            for p, r in zip(batch, results, strict=True):
                if p.future.done():
                    continue
                if isinstance(r, BaseException):
                    p.future.set_exception(r)
                else:
                    p.future.set_result(r)

    async def _commit(self, batch: list[_Pending]) -> list[TxnResult | BaseException]:

        async def attempt() -> list[TxnResult | BaseException] | cas.Retry:
            head = await self._head()
            seq, prev = head.sequence, head.hash
            now = clock.now()
            compares: list[Compare] = []
            writes: list[Op] = []
            raws: list[bytes] = []
            sequences: list[list[int]] = []
            for p in batch:
                compares += p.compares
                writes += p.ops
                sequences.append([])
                for entry in p.entries:
                    seq += 1
                    event = seal(
                        AuditEvent(
                            sequence=seq,
                            time=now,
                            actor=entry.actor,
                            action=entry.action,
                            object=entry.object,
                            outcome=entry.outcome,
                            reason=entry.reason,
                            details=dict(entry.details),
                        ),
                        prev,
                    )
                    prev = event.hash
                    raw = event.to_json()  # the leaf's data: exactly the stored bytes
                    raws.append(raw)
                    sequences[-1].append(seq)
                    writes.append(Put(audit_key(seq), raw))
            with_events = bool(raws)
            edge = head.edge
            if with_events:
                edge, tree_ops = self._tree_ops(edge, raws)
                writes += tree_ops
                writes.append(Put(AUDIT_HEAD, json.dumps({"sequence": seq, "hash": prev}).encode()))
                compares.append(head.compare)
            result = await self._store.txn(compares, writes)
            if result.succeeded:
                if with_events:
                    self._cached = _Head(
                        Compare(AUDIT_HEAD, "mod_revision", result.revision), seq, prev, edge
                    )
                    for p, seqs in zip(batch, sequences, strict=True):
                        p.sequences = seqs
                    for listener in self._listeners:
                        listener(seq)
                return [result] * len(batch)
            self._cached = None
            if with_events and not await self._store.holds([head.compare]):
                return cas.RETRY  # another replica appended: rebuild on the new head
            if len(batch) == 1:
                return [result]  # the caller's compare failed, not ours
            return [r for p in batch for r in await self._commit([p])]

        return await cas.retry(self._store, attempt, policy=cas.AUDIT_HEAD)

    async def record(self, entry: Entry) -> None:
        """Append one event with no other state change (refusals, denials)."""
        await self.commit((), (), (entry,))

    async def list(self, after: int = 0, limit: int = 1000) -> tuple[list[AuditEvent], bool]:
        """Events after ``after`` and whether their chain verifies (linked to the event before)."""
        page, verified = await self.page(after, limit)
        return [e for e, _ in page], verified

    async def page(self, after: int = 0, limit: int = 1000) -> tuple[Page, bool]:
        """``list``, with each event's bytes as stored (its Merkle leaf's data)."""
        limit = max(1, min(limit, 10_000))
        start = audit_key(after + 1)
        res = await self._store.range(AUDIT_EVENTS, start=start, limit=limit)
        raws = [kv.value for kv in res.items]
        events = [AuditEvent.from_json(raw) for raw in raws]
        prev: str | None = None
        if after > 0 and events:
            before = await self._store.get(audit_key(after))
            prev = AuditEvent.from_json(before.value).hash if before else None
        elif after == 0:
            prev = ""
        return list(zip(events, raws, strict=True)), verify_chain(events, prev)
