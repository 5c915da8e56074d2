"""The audit log: every state change commits together with its audit events, in one transaction.

Events form a hash chain (controlplane/domain/audit.py) kept gap-free by a compare on the head
key. One lock per process serialises appends from this replica (so it never races itself); several
replicas race through the compare, and the loser retries against the new head.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from dataclasses import dataclass, field

from controlplane.domain.audit import seal, verify_chain
from controlplane.domain.records import AUDIT_EVENTS, AUDIT_HEAD, AuditEvent, audit_key
from controlplane.errors import Unavailable
from controlplane.services import clock
from controlplane.store import Compare, KeyValue, Op, Put, Store, TxnResult

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


class AuditLog:
    def __init__(self, store: Store) -> None:
        self._store = store
        self._lock = asyncio.Lock()

    async def _head(self) -> tuple[KeyValue | None, int, str]:
        kv = await self._store.get(AUDIT_HEAD)
        if kv is None:
            return None, 0, ""
        head = json.loads(kv.value)
        return kv, int(head["sequence"]), str(head["hash"])

    async def commit(
        self, compares: Sequence[Compare], ops: Sequence[Op], entries: Sequence[Entry]
    ) -> TxnResult:
        """Apply ``ops`` if ``compares`` hold, together with ``entries`` appended to the log.

        Returns the failed TxnResult when a caller's compare fails (nothing is written), so the
        caller can re-read and decide; retries only when the audit head moved under it.
        """
        async with self._lock:
            for _ in range(MAX_ATTEMPTS):
                head_kv, seq, prev = await self._head()
                now = clock.now()
                writes: list[Op] = list(ops)
                for entry in entries:
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
                if entries:
                    writes.append(Put(AUDIT_HEAD, json.dumps({"sequence": seq, "hash": prev}).encode()))
                head_cmp = Compare.absent(AUDIT_HEAD) if head_kv is None else Compare.unchanged(head_kv)
                result = await self._store.txn([*compares, head_cmp] if entries else compares, writes)
                if result.succeeded:
                    return result
                if not entries or (await self._store.get(AUDIT_HEAD)) == head_kv:
                    return result  # the caller's compare failed, not ours
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
