"""The safety lane: per-site, signed copies of halts and resumes, sent before anything else.

Split from ``services/safety.py`` (which decides *what* takes effect) because this is the hot path of
a halt: dispatching a signed copy to every site in scope, handing copies to links, recording acks.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from controlplane.domain import safety as sd
from controlplane.domain.safety import ActionKind, SafetyActionRecord, SafetyDirectiveRecord
from controlplane.errors import CompactedError, Conflict, NotLeader, StargateError
from controlplane.pki.safety_key import SafetyKey
from controlplane.services import clock
from controlplane.services.audit import AuditLog, Entry
from controlplane.store import Compare, EventType, Op, Put, Store

log = logging.getLogger(__name__)

#: Sites per dispatch transaction: 3 ops and 2 compares each stays under etcd's 128 ops per txn.
DISPATCH_BATCH = 32
CAS_ATTEMPTS = 20
#: Namespace of derived ids (copies, automatic and local halts): the same inputs, the same id.
NAMESPACE = uuid.UUID("9d1c6f0e-5b7a-4b8e-9f7e-2f6a7c3d1e55")


def copy_id(action_id: str, site_id: str) -> str:
    """The id of an action's directive for one site: derived, so a re-dispatch cannot duplicate it."""
    return str(uuid.uuid5(NAMESPACE, f"{action_id}/{site_id}"))


def _index_key(action_id: str, site_id: str) -> str:
    return f"{sd.SAFETY}laneidx/{action_id}/{site_id}"


@dataclass
class _Subscribers:
    events: dict[str, set[asyncio.Event]] = field(default_factory=dict)


class SafetyLane:
    """The lane half of ``Safety`` (a mixin: it shares the service's store, audit log and key)."""

    _store: Store
    _audit: AuditLog
    key: SafetyKey
    _subs: _Subscribers
    _dispatched: set[str]
    beacons_paused: bool

    async def dispatch(self, action: SafetyActionRecord, *, fence: Sequence[Compare] = ()) -> int:
        """Queue a signed copy of ``action`` in the safety lane of each target that lacks one.
        Idempotent; returns how many copies were queued now."""
        queued = 0
        prefix = _index_key(action.id, "")
        done = {kv.key[len(prefix) :] for kv in (await self._store.range(prefix)).items}
        pending = [s for s in action.targets if s not in done]
        # One range for every site's lane sequence instead of a read per site (1,000 sites: ~1,000
        # fewer round trips); a sequence that moved meanwhile fails its compare and is re-read.
        seqs = {kv.key[len(sd.LANE_SEQ) :]: kv for kv in (await self._store.range(sd.LANE_SEQ)).items}
        for start in range(0, len(pending), DISPATCH_BATCH):
            batch = pending[start : start + DISPATCH_BATCH]
            for attempt in range(CAS_ATTEMPTS):
                compares: list[Compare] = [*fence]
                ops: list[Op] = []
                todo = []
                for site in batch:
                    if attempt and await self._store.get(_index_key(action.id, site)) is not None:
                        continue  # another pass queued it meanwhile
                    seq_kv = await self._store.get(sd.lane_seq_key(site)) if attempt else seqs.get(site)
                    seq = (int(seq_kv.value) if seq_kv else 0) + 1
                    rec = self._signed_copy(action, site, seq)
                    compares += [
                        Compare.absent(_index_key(action.id, site)),
                        Compare.absent(sd.lane_seq_key(site))
                        if seq_kv is None
                        else Compare.unchanged(seq_kv),
                    ]
                    ops += [
                        Put(sd.lane_seq_key(site), str(seq).encode()),
                        Put(sd.lane_key(site, seq), rec.to_json()),
                        Put(_index_key(action.id, site), str(seq).encode()),
                    ]
                    todo.append(site)
                if not todo:
                    break
                entry = Entry(
                    action.requested_by,
                    "safety.dispatch",
                    f"safety/{action.id}",
                    details={"kind": action.kind, "sites": ",".join(todo)},
                )
                result = await self._audit.commit(compares, ops, [entry])
                if result.succeeded:
                    queued += len(todo)
                    break
                if fence and not await self._store.holds(fence):
                    raise NotLeader()
            else:
                raise Conflict()
        self._dispatched.add(action.id)
        return queued

    def _signed_copy(self, action: SafetyActionRecord, site: str, seq: int) -> SafetyDirectiveRecord:
        now = clock.now()
        kind = "Halt" if action.kind == ActionKind.HALT else "Resume"
        if kind == "Halt":
            payload = {
                "halt_id": action.id,
                "release": action.release,
                "scope": action.scope,
                "reason": action.reason,
                "site_id": site,
                "approvers": list(action.approvals),
            }
        else:
            payload = {
                "halt_id": action.related_id,
                "release": action.release,
                "reason": action.reason,
                "site_id": site,
                "approvers": list(action.approvals),
                "resume_id": action.id,
            }
        rec = SafetyDirectiveRecord(
            site_id=site,
            safety_sequence=seq,
            id=copy_id(action.id, site),
            kind=kind,
            action_id=action.id,
            payload=payload,
            issued_at=now,
            expires_at=now + action.ttl_s,
            issuer=action.requested_by,
            key_id=self.key.key_id,
            signature="",
        )
        return rec.replace(signature=self.key.sign(signing_bytes(rec)).hex())

    # --- the lane, as links use it ------------------------------------------------------------------------

    async def lane_after(self, site_id: str, sequence: int, limit: int = 256) -> list[SafetyDirectiveRecord]:
        res = await self._store.range(
            sd.lane_prefix(site_id), start=sd.lane_key(site_id, sequence + 1), limit=limit
        )
        return [SafetyDirectiveRecord.from_json(kv.value) for kv in res.items]

    async def complete(
        self, actor: str, site_id: str, directive_id: str, sequence: int, *, rejected: bool, reason: str = ""
    ) -> bool:
        """Record a site's ack or reject of a safety directive. Every reject is audited (a site
        refusing a halt is a signal), even when the copy was already completed."""
        for _ in range(CAS_ATTEMPTS):
            kv = await self._store.get(sd.lane_key(site_id, sequence))
            rec = SafetyDirectiveRecord.from_json(kv.value) if kv is not None else None
            action = "safety.reject" if rejected else "safety.ack"
            entry = Entry(
                actor,
                action,
                f"site/{site_id}",
                "denied" if rejected else "success",
                reason[:512],
                {
                    "id": directive_id,
                    "safety_sequence": str(sequence),
                    "action_id": rec.action_id if rec and rec.id == directive_id else "",
                },
            )
            if kv is None or rec is None or rec.id != directive_id or rec.state != "Pending":
                if rejected:
                    await self._audit.record(entry)
                return False
            new = rec.replace(
                state="Rejected" if rejected else "Acked", reason=reason[:512], completed_at=clock.now()
            )
            result = await self._audit.commit([Compare.unchanged(kv)], [Put(kv.key, new.to_json())], [entry])
            if result.succeeded:
                return True
        raise Conflict()

    def subscribe(self, site_id: str) -> asyncio.Event:
        """An event set whenever a safety directive is queued for ``site_id`` (the link's cue to
        stop sending ordinary directives and send the safety lane first)."""
        ev = asyncio.Event()
        self._subs.events.setdefault(site_id, set()).add(ev)
        return ev

    def unsubscribe(self, site_id: str, ev: asyncio.Event) -> None:
        evs = self._subs.events.get(site_id)
        if evs is not None:
            evs.discard(ev)
            if not evs:
                del self._subs.events[site_id]

    async def run_lane_watch(self, wake: Callable[[str], None], retry_delay: float = 0.5) -> None:
        """Watch the safety lane; mark the site urgent and wake its link (one watch per replica)."""
        while True:
            try:
                start = await self._store.current_revision() + 1
                for site, evs in list(self._subs.events.items()):
                    for ev in evs:
                        ev.set()
                    wake(site)
                async for batch in self._store.watch(sd.LANE, start_revision=start):
                    for event in batch:
                        if event.type is EventType.PUT and event.kv.version == 1:
                            site = event.kv.key[len(sd.LANE) :].split("/", 1)[0]
                            for ev in self._subs.events.get(site, ()):
                                ev.set()
                            wake(site)
            except CompactedError:
                continue
            except StargateError as e:
                log.warning("safety lane watch interrupted (%s); retrying", e.public)
                await asyncio.sleep(retry_delay)

    def beacon(self, site_id: str, sequence: int) -> tuple[int, bytes] | None:
        """(time in ns, signature) of a beacon for ``site_id``, or None while beacons are paused."""
        if self.beacons_paused:
            return None
        time_ns = int(clock.now() * 1e9)
        data = sd.beacon_bytes(site_id=site_id, sequence=sequence, time_ns=time_ns, key_id=self.key.key_id)
        return time_ns, self.key.sign(data)


def signing_bytes(rec: SafetyDirectiveRecord) -> bytes:
    return sd.directive_bytes(
        directive_id=rec.id,
        kind=rec.kind,
        site_id=rec.site_id,
        safety_sequence=rec.safety_sequence,
        issued_at_ns=sd.ts_ns(rec.issued_at),
        expires_at_ns=sd.ts_ns(rec.expires_at),
        issuer=rec.issuer,
        key_id=rec.key_id,
        payload=sd.signed_payload(rec.kind, rec.payload),
    )
