"""The audit log: every state change commits together with its audit events, in one transaction.

Events form a hash chain (controlplane/domain/audit.py) kept gap-free by a compare on the head
key. One worker per process appends (so a replica never races itself), grouping concurrent commits
into one transaction; several replicas race through the compare, and the loser retries against the
new head.
"""

from __future__ import annotations

import asyncio
import collections
import json
from collections.abc import Sequence
from dataclasses import dataclass, field

from controlplane.domain.audit import seal, verify_chain
from controlplane.domain.records import AUDIT_EVENTS, AUDIT_HEAD, AuditEvent, audit_key
from controlplane.errors import Unavailable
from controlplane.services import clock
from controlplane.store import Compare, Op, Put, Store, TxnResult

#: A head that moves on every attempt means heavy contention between replicas; 50 tries at
#: ~1 ms each is far beyond what 3 replicas produce and still bounded.
MAX_ATTEMPTS = 50


@dataclass(frozen=True)
class Entry:
    """An audit event before it has a sequence and hash."""

    actor: str
    action: str
    object: str
    outcome: str = "success"
    reason: str = ""
    details: dict[str, str] = field(default_factory=dict)


@dataclass
class _Pending:
    compares: Sequence[Compare]
    ops: Sequence[Op]
    entries: Sequence[Entry]
    future: asyncio.Future[TxnResult]

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

    #: Operations (and compares) per transaction; etcd's default --max-txn-ops is 128.
    MAX_BATCH_OPS = 120

    def __init__(self, store: Store) -> None:
        self._store = store
        self._queue: collections.deque[_Pending] = collections.deque()
        self._worker: asyncio.Task[None] | None = None
        #: (head compare, sequence, hash) as this replica last wrote or read it; a stale cache
        #: only costs one failed compare and a re-read.
        self._cached: tuple[Compare, int, str] | None = None

    async def _head(self) -> tuple[Compare, int, str]:
        if self._cached is not None:
            return self._cached
        kv = await self._store.get(AUDIT_HEAD)
        if kv is None:
            return Compare.absent(AUDIT_HEAD), 0, ""
        head = json.loads(kv.value)
        return Compare.unchanged(kv), int(head["sequence"]), str(head["hash"])

    async def commit(
        self, compares: Sequence[Compare], ops: Sequence[Op], entries: Sequence[Entry]
    ) -> TxnResult:
        """Apply ``ops`` if ``compares`` hold, together with ``entries`` appended to the log.

        Returns the failed TxnResult when a caller's compare fails (nothing is written), so the
        caller can re-read and decide; retries only when the audit head moved under it.
        """
        pending = _Pending(compares, ops, entries, asyncio.get_running_loop().create_future())
        self._queue.append(pending)
        if self._worker is None or self._worker.done():
            self._worker = asyncio.create_task(self._drain(), name="audit-group-commit")
        return await asyncio.shield(pending.future)

    def _take(self) -> list[_Pending]:
        batch: list[_Pending] = []
        keys: set[str] = set()
        size = 1  # the head
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
        for _ in range(MAX_ATTEMPTS):
            head_cmp, seq, prev = await self._head()
            now = clock.now()
            compares: list[Compare] = []
            writes: list[Op] = []
            for p in batch:
                compares += p.compares
                writes += p.ops
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
                    writes.append(Put(audit_key(seq), event.to_json()))
            with_events = any(p.entries for p in batch)
            if with_events:
                writes.append(Put(AUDIT_HEAD, json.dumps({"sequence": seq, "hash": prev}).encode()))
                compares.append(head_cmp)
            result = await self._store.txn(compares, writes)
            if result.succeeded:
                if with_events:
                    self._cached = (Compare(AUDIT_HEAD, "mod_revision", result.revision), seq, prev)
                return [result] * len(batch)
            self._cached = None
            if with_events and not await self._store.holds([head_cmp]):
                continue  # another replica appended: rebuild on the new head
            if len(batch) == 1:
                return [result]  # the caller's compare failed, not ours
            return [r for p in batch for r in await self._commit([p])]
        raise Unavailable("audit log contended, retry")

    async def record(self, entry: Entry) -> None:
        """Append one event with no other state change (refusals, denials)."""
        await self.commit((), (), (entry,))

    async def list(self, after: int = 0, limit: int = 1000) -> tuple[list[AuditEvent], bool]:
        """Events after ``after`` and whether their chain verifies (linked to the event before)."""
        limit = max(1, min(limit, 10_000))
        start = audit_key(after + 1)
        res = await self._store.range(AUDIT_EVENTS, start=start, limit=limit)
        events = [AuditEvent.from_json(kv.value) for kv in res.items]
        prev: str | None = None
        if after > 0 and events:
            before = await self._store.get(audit_key(after))
            prev = AuditEvent.from_json(before.value).hash if before else None
        elif after == 0:
            prev = ""
        return events, verify_chain(events, prev)
