"""Per-site directive queues: ordered, gap-free sequences; re-delivered until acked or rejected.

A directive is stored under ``/stargate/directives/<site>/<seq>``; the next sequence is allocated
with a compare on ``/stargate/dirseq/<site>`` in the same transaction, so two replicas can never
hand out one number twice. Acks and rejects are idempotent: a second one changes nothing.

A stored record that cannot be used (unreadable, wrong fields, disagreeing with its key) is read as
a Failed placeholder (``controlplane/domain/defects.py``): listing works whatever is stored, and
the link marks it Failed (``fail``) and goes on with the next directive. ``cancel`` takes a Pending
directive out of delivery (an admin's decision, audited).

Every directive is signed here, when queued, with the directive key on this replica's disk, over
its site id and sequence (services/directive_wire.py); the record stores the signature, never the
key. Every Deploy passes the halted-artifact check here (domain/artifact_halts.py), whether it
comes from a low-level deploy or a rollout, and compares the artifact's halt record in the same
transaction, so a Deploy of an artifact being halted meanwhile is not queued.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Sequence
from typing import Any

from controlplane.api import directive_kinds
from controlplane.api.directive_kinds import Lane
from controlplane.domain import artifact_halts as ah
from controlplane.domain import defects
from controlplane.domain.limits import DIRECTIVE_TTL
from controlplane.domain.records import (
    DIRECTIVE_SEQ,
    DirectiveRecord,
    DirectiveState,
    directive_id_key,
    directive_key,
    directive_prefix,
    site_key,
)
from controlplane.errors import FailedPrecondition, InvalidArgument, NotFound
from controlplane.pki.directive_key import DirectiveKey
from controlplane.services import cas, clock
from controlplane.services.audit import AuditLog, Entry
from controlplane.services.directive_wire import signed
from controlplane.services.log_proofs import deploy_details, index_directive
from controlplane.store import Compare, KeyValue, Put, Store
from controlplane.telemetry import metrics

log = logging.getLogger(__name__)
DEFAULT_TTL_S = 24 * 3600.0


def _sequence_of(key: str) -> int | None:
    """The sequence a directive key names, or None for a key of another layout."""
    tail = key.rsplit("/", 1)[-1]
    return int(tail) if len(tail) == 20 and tail.isdigit() else None


class Directives:
    def __init__(self, store: Store, audit: AuditLog, key: DirectiveKey) -> None:
        self._store = store
        self._audit = audit
        self._key = key

    async def _halt_fence(
        self, site_id: str, site: KeyValue, kind: str, payload: dict[str, Any], issuer: str
    ) -> list[Compare]:
        """For a Deploy: refuse (FailedPrecondition, audited) when its artifact is halted at this
        site; else the compare that keeps it so until the Deploy is queued."""
        if not directive_kinds.get(kind).artifact:
            return []
        key = ah.artifact_key(str(payload.get("model", "")), str(payload.get("digest", "")))
        kv = await self._store.get(key)
        if kv is None:
            return [Compare.absent(key)]
        try:
            index: ah.ArtifactHalts | None = ah.ArtifactHalts.from_json(kv.value)
            country = str(json.loads(site.value).get("country", ""))
        except (ValueError, TypeError, AttributeError):  # unreadable: treat the artifact as halted
            index, country = ah.ArtifactHalts("?", "?", {"unreadable-record": "global"}), ""
        why = ah.refusal(index, site_id=site_id, country=country)
        if why:
            await self._audit.record(Entry(issuer, "directive.issue", f"site/{site_id}", "denied", why))
            raise FailedPrecondition(why)
        return [Compare.unchanged(kv)]

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
        DIRECTIVE_TTL.check("ttl_seconds", ttl_s)
        spec = directive_kinds.get(kind)
        if spec.lane is not Lane.ORDERED:
            raise InvalidArgument("kind", f"{kind} directives go through the safety lane, not a site's queue")
        if spec.validate is not None:
            spec.validate(payload)

        async def attempt() -> DirectiveRecord | cas.Retry:
            new_id = directive_id or str(uuid.uuid4())
            existing = await self._store.get(directive_id_key(site_id, new_id))
            if existing is not None:
                found = await self.get(site_id, new_id)
                if found is not None:
                    return found
            site = await self._store.get(site_key(site_id))
            if site is None:
                raise NotFound(f"site {site_id!r} not found")
            halt_fence = await self._halt_fence(site_id, site, kind, payload, issuer)
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
            rec = signed(rec, self._key)  # ~60 us: over the site id and the sequence just allocated
            seq_cmp = Compare.absent(DIRECTIVE_SEQ + site_id) if seq_kv is None else Compare.unchanged(seq_kv)
            result, events = await self._audit.commit_sequenced(
                [
                    *fence,
                    Compare.absent(directive_id_key(site_id, new_id)),
                    Compare(site.key, "create_revision", site.create_revision),
                    seq_cmp,
                    *halt_fence,
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
                        details={"id": rec.id, "kind": kind, "sequence": str(rec.sequence)}
                        | deploy_details(kind, payload),
                    )
                ],
            )
            if result.succeeded:
                metrics.count_directive(kind, "queued")
                await index_directive(self._store, site_id, rec.sequence, events)  # for its site's proof
                return rec
            return cas.RETRY

        return await cas.retry(self._store, attempt, fence=fence, policy=cas.QUEUE)

    async def get(self, site_id: str, directive_id: str) -> DirectiveRecord | None:
        """The directive with ``directive_id`` for ``site_id``, or None (a Failed placeholder when
        its stored record cannot be used)."""
        idx = await self._store.get(directive_id_key(site_id, directive_id))
        if idx is None or not idx.value.isdigit():
            return None
        sequence = int(idx.value)
        kv = await self._store.get(directive_key(site_id, sequence))
        return defects.directive_or_placeholder(site_id, sequence, kv.value) if kv is not None else None

    async def after(self, site_id: str, sequence: int, limit: int = 256) -> list[DirectiveRecord]:
        """Directives of ``site_id`` with a sequence greater than ``sequence``, in order; one whose
        stored record cannot be used is an UnreadableDirective (Failed) in its place."""
        res = await self._store.range(
            directive_prefix(site_id), start=directive_key(site_id, sequence + 1), limit=limit
        )
        out: list[DirectiveRecord] = []
        for kv in res.items:
            seq = _sequence_of(kv.key)
            if seq is None:
                log.error("key %s is not a directive key; ignored", kv.key[:200])
                continue
            out.append(defects.directive_or_placeholder(site_id, seq, kv.value))
        return out

    async def list(self, site_id: str) -> list[DirectiveRecord]:
        return await self.after(site_id, 0, limit=0)

    async def _final(self, kv: KeyValue, new: DirectiveRecord, entry: Entry) -> bool:
        """Store ``new`` over ``kv`` with its audit event, if ``kv`` is unchanged."""
        result = await self._audit.commit([Compare.unchanged(kv)], [Put(kv.key, new.to_json())], [entry])
        return result.succeeded

    async def fail(self, actor: str, site_id: str, sequence: int, reason: str) -> bool:
        """Mark a directive that cannot be sent Failed, with ``reason`` (audited). A record that
        cannot be used is replaced by its Failed placeholder (the audit event keeps the old bytes'
        SHA-256). False when it is gone or no longer Pending."""

        async def attempt() -> bool | cas.Retry:
            kv = await self._store.get(directive_key(site_id, sequence))
            if kv is None:
                return False
            rec = defects.directive_or_placeholder(site_id, sequence, kv.value)
            unusable = isinstance(rec, defects.UnreadableDirective)
            if not unusable and rec.state != DirectiveState.PENDING:
                return False
            new = rec.replace(state=DirectiveState.FAILED, reason=reason[:512], completed_at=clock.now())
            details = {"id": rec.id, "sequence": str(sequence), "sha256": defects.digest(kv.value)}
            entry = Entry(actor, "directive.fail", f"site/{site_id}", "failed", reason[:512], details)
            if await self._final(kv, new, entry):
                log.error("directive %d of %s not sent: %s", sequence, site_id, reason)
                return True
            return cas.RETRY

        return await cas.retry(self._store, attempt, policy=cas.QUEUE)

    async def cancel(
        self, actor: str, site_id: str, *, directive_id: str = "", sequence: int = 0, reason: str = ""
    ) -> DirectiveRecord:
        """Take a Pending directive out of delivery (by id or sequence): it is never sent again. One
        already sent may still be applied by the site; its ack is then recorded (see complete)."""
        if not directive_id and not sequence:
            raise InvalidArgument("id", "name the directive by id or by sequence")
        if directive_id:
            try:
                directive_id = str(uuid.UUID(directive_id))
            except ValueError as e:
                raise InvalidArgument("id", "must be a UUID") from e

        async def attempt() -> DirectiveRecord | cas.Retry:
            seq = sequence
            if directive_id:
                idx = await self._store.get(directive_id_key(site_id, directive_id))
                if idx is None or not idx.value.isdigit():
                    raise NotFound(f"directive {directive_id!r} of site {site_id!r} not found")
                if seq and int(idx.value) != seq:
                    raise InvalidArgument("sequence", "does not match the directive named by id")
                seq = int(idx.value)
            kv = await self._store.get(directive_key(site_id, seq))
            if kv is None:
                raise NotFound(f"directive {seq} of site {site_id!r} not found")
            rec = defects.directive_or_placeholder(site_id, seq, kv.value)
            if rec.state != DirectiveState.PENDING:
                raise FailedPrecondition(
                    f"directive {seq} is {rec.state}: only a Pending directive can be cancelled"
                )
            why = reason[:512] or "cancelled"
            new = rec.replace(state=DirectiveState.CANCELLED, reason=why, completed_at=clock.now())
            details = {"id": rec.id, "sequence": str(seq), "kind": rec.kind}
            if await self._final(
                kv, new, Entry(actor, "directive.cancel", f"site/{site_id}", reason=why, details=details)
            ):
                return new
            return cas.RETRY

        return await cas.retry(self._store, attempt, policy=cas.QUEUE)

    async def complete(
        self, actor: str, site_id: str, directive_id: str, sequence: int, *, rejected: bool, reason: str = ""
    ) -> bool:
        """Record an ack or a reject. Returns False when it was already recorded (a duplicate)."""

        async def attempt() -> bool | cas.Retry:
            kv = await self._store.get(directive_key(site_id, sequence))
            if kv is None:
                raise NotFound(f"directive {sequence} of site {site_id!r} not found")
            rec = defects.directive_or_placeholder(site_id, sequence, kv.value)
            if rec.id != directive_id:
                raise FailedPrecondition("directive id does not match its sequence")
            # A cancelled directive the site had already been sent may still have been applied
            # there: what the site did is recorded (the cancel stays in the audit log).
            if rec.state not in (DirectiveState.PENDING, DirectiveState.CANCELLED):
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
            if await self._final(kv, new, entry):
                metrics.count_directive(rec.kind, "rejected" if rejected else "acked")
                return True
            return cas.RETRY

        return await cas.retry(self._store, attempt, policy=cas.QUEUE)
