"""Per-site directive queues: ordered, gap-free sequences; re-delivered until acked or rejected.

A directive is stored under ``/stargate/directives/<site>/<seq>``; the next sequence is allocated
with a compare on ``/stargate/dirseq/<site>`` in the same transaction, so two replicas can never
hand out one number twice. Acks and rejects are idempotent: a second one changes nothing.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from controlplane.domain.records import (
    DIRECTIVE_SEQ,
    DirectiveRecord,
    DirectiveState,
    directive_id_key,
    directive_key,
    directive_prefix,
    site_key,
)
from controlplane.errors import Conflict, FailedPrecondition, InvalidArgument, NotFound, NotLeader
from controlplane.services import clock
from controlplane.services.audit import AuditLog, Entry
from controlplane.store import Compare, Put, Store

DEFAULT_TTL_S = 24 * 3600.0
CAS_ATTEMPTS = 50


class Directives:
    def __init__(self, store: Store, audit: AuditLog) -> None:
        self._store = store
        self._audit = audit

    async def issue(
        self,
        site_id: str,
        kind: str,
        payload: dict[str, Any],
        issuer: str,
        *,
        ttl_s: float = DEFAULT_TTL_S,
        fence: Sequence[Compare] = (),
        directive_id: str = "",
    ) -> DirectiveRecord:
        """Queue a directive for ``site_id``. ``fence`` lets a leader-only caller add its lease
        compare so that a deposed leader cannot issue.

        ``directive_id`` is an idempotency key: when a directive with that id exists for the site,
        it is returned and nothing is queued (a client retrying after a lost response, or a
        controller re-running a step after failover, cannot queue the same work twice).
        """
        if directive_id:
            try:
                directive_id = str(uuid.UUID(directive_id))
            except ValueError as e:
                raise InvalidArgument("request_id", "must be a UUID") from e
        for _ in range(CAS_ATTEMPTS):
            new_id = directive_id or str(uuid.uuid4())
            existing = await self._store.get(directive_id_key(site_id, new_id))
            if existing is not None:
                kv = await self._store.get(directive_key(site_id, int(existing.value)))
                if kv is not None:
                    return DirectiveRecord.from_json(kv.value)
            site = await self._store.get(site_key(site_id))
            if site is None:
                raise NotFound(f"site {site_id!r} not found")
            seq_kv = await self._store.get(DIRECTIVE_SEQ + site_id)
            last = int(seq_kv.value) if seq_kv else 0
            now = clock.now()
            rec = DirectiveRecord(
                site_id=site_id,
                sequence=last + 1,
                id=new_id,
                kind=kind,
                payload=payload,
                issued_at=now,
                expires_at=now + ttl_s,
                issuer=issuer,
            )
            seq_cmp = Compare.absent(DIRECTIVE_SEQ + site_id) if seq_kv is None else Compare.unchanged(seq_kv)
            result = await self._audit.commit(
                [
                    *fence,
                    Compare.absent(directive_id_key(site_id, new_id)),
                    Compare(site.key, "create_revision", site.create_revision),
                    seq_cmp,
                ],
                [
                    Put(DIRECTIVE_SEQ + site_id, str(rec.sequence).encode()),
                    Put(directive_key(site_id, rec.sequence), rec.to_json()),
                    Put(directive_id_key(site_id, rec.id), str(rec.sequence).encode()),
                ],
                [
                    Entry(
                        issuer,
                        "directive.issue",
                        f"site/{site_id}",
                        details={"id": rec.id, "kind": kind, "sequence": str(rec.sequence)},
                    )
                ],
            )
            if result.succeeded:
                return rec
            if fence and not await self._store.holds(fence):
                raise NotLeader()  # a failed fence is final: this replica is no longer the leader
        raise Conflict()

    async def get(self, site_id: str, directive_id: str) -> DirectiveRecord | None:
        """The directive with ``directive_id`` for ``site_id``, or None."""
        idx = await self._store.get(directive_id_key(site_id, directive_id))
        if idx is None:
            return None
        kv = await self._store.get(directive_key(site_id, int(idx.value)))
        return DirectiveRecord.from_json(kv.value) if kv is not None else None

    async def after(self, site_id: str, sequence: int, limit: int = 256) -> list[DirectiveRecord]:
        """Directives of ``site_id`` with a sequence greater than ``sequence``, in order."""
        res = await self._store.range(
            directive_prefix(site_id), start=directive_key(site_id, sequence + 1), limit=limit
        )
        return [DirectiveRecord.from_json(kv.value) for kv in res.items]

    async def list(self, site_id: str) -> list[DirectiveRecord]:
        return await self.after(site_id, 0, limit=0)

    async def complete(
        self, actor: str, site_id: str, directive_id: str, sequence: int, *, rejected: bool, reason: str = ""
    ) -> bool:
        """Record an ack or a reject. Returns False when it was already recorded (a duplicate)."""
        for _ in range(CAS_ATTEMPTS):
            kv = await self._store.get(directive_key(site_id, sequence))
            if kv is None:
                raise NotFound(f"directive {sequence} of site {site_id!r} not found")
            rec = DirectiveRecord.from_json(kv.value)
            if rec.id != directive_id:
                raise FailedPrecondition("directive id does not match its sequence")
            if rec.state != DirectiveState.PENDING:
                return False
            state = DirectiveState.REJECTED if rejected else DirectiveState.ACKED
            new = rec.replace(state=state, reason=reason[:512], completed_at=clock.now())
            action = "directive.reject" if rejected else "directive.ack"
            entry = Entry(
                actor,
                action,
                f"site/{site_id}",
                "denied" if rejected else "success",
                reason[:512],
                {"id": directive_id, "sequence": str(sequence)},
            )
            result = await self._audit.commit([Compare.unchanged(kv)], [Put(kv.key, new.to_json())], [entry])
            if result.succeeded:
                return True
        raise Conflict()
