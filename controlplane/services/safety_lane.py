"""The safety lane: signed halts and resumes, one per action for its whole scope, sent before
anything else on every link in scope.

Split from ``services/safety.py`` (which decides *what* takes effect) because this is the hot path
of a halt. Its cost per site is what a bare fan-out pays anyway plus one small write per ack:

- the directive is signed **once** and stored **once** (``lane/<seq>``), in the same transaction
  that makes the action effective; there is no per-site copy to sign, store or dispatch, so there
  is nothing to complete after a crash either;
- each replica keeps the lane in memory (``LaneCache``: loaded once, then fed by one watch), so a
  link reads no store to send a halt; the wire message is built once per directive and shared;
- acks are small ``acks/<action>/<site>`` records, committed in batches of up to ``ACK_BATCH``
  with one audit event per batch that names the sites (1,000 acks: ~10 transactions and ~10
  events, not 1,000 of each). Rejects are audited one by one, with the site as the actor.
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from controlplane.domain import safety as sd
from controlplane.domain.safety import ActionKind, DeliveryRecord, SafetyActionRecord, SafetyDirectiveRecord
from controlplane.errors import CompactedError, InvalidArgument, StargateError, Unavailable
from controlplane.pki.safety_key import SafetyKey
from controlplane.services import clock
from controlplane.services.audit import AuditLog, Entry
from controlplane.store import Compare, EventType, KeyValue, Op, Put, Store

log = logging.getLogger(__name__)

CAS_ATTEMPTS = 20
#: Ack writes plus audit events (one per action) per transaction: with the audit head, under the
#: audit log's 120 operations per transaction (etcd allows 128).
ACK_BATCH = 100
#: How long a link waits for its replica's first read of the lane before giving up (the site
#: reconnects, perhaps to another replica).
LOAD_WAIT_S = 5.0


@dataclass(eq=False)
class LaneEntry:
    record: SafetyDirectiveRecord
    scope: sd.Scope
    #: The wire form, built once by the server layer and shared by every link (see safety_servicer).
    wire: Any = None


@dataclass(eq=False)
class _PendingAck:
    action_id: str
    delivery: DeliveryRecord
    done: asyncio.Future[None]


@dataclass(eq=False)
class Subscriber:
    site_id: str
    country: str
    wake: Callable[[], None]


class LaneCache:
    """The safety lane as this replica last saw it, in sequence order.

    ``top`` is the highest sequence up to which the cache has every directive, so that a link never
    sends sequence 7 before 6 has arrived (a site would then refuse 6 as not rising).
    """

    def __init__(self) -> None:
        self._seqs: list[int] = []
        self._by_seq: dict[int, LaneEntry] = {}
        self.top = 0
        self.loaded = asyncio.Event()

    def get(self, sequence: int) -> LaneEntry | None:
        return self._by_seq.get(sequence)

    def add(self, rec: SafetyDirectiveRecord, *, snapshot: bool = False) -> LaneEntry | None:
        """Add a directive (None if known). ``snapshot``: it comes from a consistent read of the
        whole lane, so everything below it is known too."""
        if rec.safety_sequence in self._by_seq:
            return None
        try:
            scope = sd.parse_scope(rec.scope)
        except InvalidArgument:
            log.error("safety directive %s has a malformed scope %r; not sent", rec.id, rec.scope)
            return None
        entry = LaneEntry(rec, scope)
        self._by_seq[rec.safety_sequence] = entry
        bisect.insort(self._seqs, rec.safety_sequence)
        if snapshot:
            self.top = max(self.top, rec.safety_sequence)
        while self.top + 1 in self._by_seq:
            self.top += 1
        return entry

    def after(self, sequence: int, *, site_id: str, country: str, now: float) -> list[LaneEntry]:
        """Directives above ``sequence`` and up to ``top`` whose scope covers the site and that have
        not expired at ``now``, in order. An expired directive is not sent: the site would refuse
        it, and a site enrolled long after a halt would show up as refusing it; the halt's status
        says which sites it expired for (``Expired``), to be halted again."""
        out = []
        for seq in self._seqs[bisect.bisect_right(self._seqs, sequence) :]:
            if seq > self.top:
                break
            entry = self._by_seq[seq]
            if entry.record.expires_at >= now and entry.scope.covers(site_id=site_id, country=country):
                out.append(entry)
        return out


class SafetyLane:
    """The lane half of ``Safety`` (a mixin: it shares the service's store, audit log and key)."""

    _store: Store
    _audit: AuditLog
    key: SafetyKey
    lane: LaneCache
    _subscribers: set[Subscriber]
    _acks: list[_PendingAck]
    _ack_worker: asyncio.Task[None] | None
    #: Audit actor of batched ack events (the replica that recorded them; the sites are listed).
    ack_actor: str
    beacons_paused: bool

    # --- writing the lane (inside the transaction that makes an action effective) ---------------

    async def lane_seq(self) -> KeyValue | None:
        return await self._store.get(sd.LANE_SEQ)

    def lane_write(
        self, action: SafetyActionRecord, seq_kv: KeyValue | None
    ) -> tuple[list[Compare], list[Op]]:
        """The compare and writes that append ``action``'s signed directive to the lane, at the
        sequence after ``seq_kv`` (the compare fails if another directive took it meanwhile)."""
        seq = (int(seq_kv.value) if seq_kv is not None else 0) + 1
        rec = self.signed_directive(action, seq)
        compare = Compare.absent(sd.LANE_SEQ) if seq_kv is None else Compare.unchanged(seq_kv)
        ops: list[Op] = [Put(sd.LANE_SEQ, str(seq).encode()), Put(sd.lane_key(seq), rec.to_json())]
        return [compare], ops

    def signed_directive(self, action: SafetyActionRecord, seq: int) -> SafetyDirectiveRecord:
        now = clock.now()
        kind = "Halt" if action.kind == ActionKind.HALT else "Resume"
        payload: dict[str, Any] = {
            "halt_id": action.id if kind == "Halt" else action.related_id,
            "release": action.release,
            "scope": action.scope,
            "reason": action.reason,
            "approvers": list(action.approvals),
        }
        if kind == "Resume":
            payload["resume_id"] = action.id
        rec = SafetyDirectiveRecord(
            safety_sequence=seq,
            id=action.id,
            kind=kind,
            scope=action.scope,
            payload=payload,
            issued_at=now,
            expires_at=now + action.ttl_s,
            issuer=action.requested_by,
            key_id=self.key.key_id,
            signature="",
        )
        return rec.replace(signature=self.key.sign(signing_bytes(rec)).hex())

    # --- the lane, as links use it ------------------------------------------------------------------

    async def lane_after(self, sequence: int, *, site_id: str, country: str) -> list[LaneEntry]:
        """What a link in scope sends after ``sequence`` (from memory; waits for the first load)."""
        if not self.lane.loaded.is_set():
            try:
                await asyncio.wait_for(self.lane.loaded.wait(), LOAD_WAIT_S)
            except TimeoutError as e:
                raise Unavailable("the safety lane is not loaded yet") from e
        return self.lane.after(sequence, site_id=site_id, country=country, now=clock.now())

    def subscribe(self, site_id: str, country: str, wake: Callable[[], None]) -> Subscriber:
        """Call ``wake`` whenever a directive whose scope covers the site enters the lane (the link's
        cue to stop sending ordinary directives and send the safety lane first)."""
        sub = Subscriber(site_id, country, wake)
        self._subscribers.add(sub)
        return sub

    def unsubscribe(self, sub: Subscriber) -> None:
        self._subscribers.discard(sub)

    async def run_lane_watch(self, retry_delay: float = 0.5) -> None:
        """Load the lane, then follow it with one watch (per replica) and wake the links in scope."""
        while True:
            try:
                res = await self._store.range(sd.LANE)
                for kv in res.items:
                    if (rec := _parse(kv.key, kv.value)) is not None:
                        self.lane.add(rec, snapshot=True)
                self.lane.loaded.set()
                for sub in list(self._subscribers):
                    sub.wake()
                async for batch in self._store.watch(sd.LANE, start_revision=res.revision + 1):
                    scopes = [
                        entry.scope
                        for event in batch
                        if event.type is EventType.PUT
                        and (rec := _parse(event.kv.key, event.kv.value)) is not None
                        and (entry := self.lane.add(rec))
                    ]
                    if scopes:
                        for sub in list(self._subscribers):
                            if any(s.covers(site_id=sub.site_id, country=sub.country) for s in scopes):
                                sub.wake()
            except CompactedError:
                continue
            except StargateError as e:
                log.warning("safety lane watch interrupted (%s); retrying", e.public)
                await asyncio.sleep(retry_delay)

    # --- acks ---------------------------------------------------------------------------------------

    async def complete(
        self,
        actor: str,
        site_id: str,
        country: str,
        directive_id: str,
        sequence: int,
        *,
        rejected: bool,
        reason: str = "",
    ) -> bool:
        """Record a site's ack or reject of a lane directive; False if it names no directive in the
        lane that covers the site. Every reject is audited (a site refusing a halt is a signal),
        even when it changes nothing, and so is an ack that names no such directive (a confused or
        hostile site); a reject never overwrites an ack."""
        entry = self.lane.get(sequence)
        if entry is None:  # not in this replica's cache yet (or ever): ask the store
            kv = await self._store.get(sd.lane_key(sequence))
            rec = _parse(kv.key, kv.value) if kv is not None else None
            if rec is not None:
                with contextlib.suppress(InvalidArgument):
                    entry = LaneEntry(rec, sd.parse_scope(rec.scope))
        valid = (
            entry is not None
            and entry.record.id == directive_id
            and entry.scope.covers(site_id=site_id, country=country)
        )

        def audit(why: str = "") -> Entry:
            return Entry(
                actor,
                "safety.reject" if rejected else "safety.ack",
                f"site/{site_id}",
                "denied" if rejected or not valid else "success",
                why or reason[:512],
                {
                    "id": directive_id,
                    "safety_sequence": str(sequence),
                    "action_id": directive_id if valid else "",
                },
            )

        if not valid:
            await self._audit.record(audit("" if rejected else "no such safety directive for this site"))
            return False
        key = sd.ack_key(directive_id, site_id)
        delivery = DeliveryRecord(
            site_id, "Rejected" if rejected else "Acked", clock.now(), sequence, reason[:512]
        )
        if not rejected:
            await self._record_ack(directive_id, delivery)
            return True
        for _ in range(CAS_ATTEMPTS):
            kv = await self._store.get(key)
            if kv is not None and DeliveryRecord.from_json(kv.value).state == "Acked":
                await self._audit.record(audit())  # an ack is final; a later reject changes nothing
                return False
            compare = Compare.absent(key) if kv is None else Compare.unchanged(kv)
            result = await self._audit.commit([compare], [Put(key, delivery.to_json())], [audit()])
            if result.succeeded:
                return True
        return False

    async def _record_ack(self, action_id: str, delivery: DeliveryRecord) -> None:
        """Queue an ack for the next batch and wait until it is stored (group commit)."""
        pending = _PendingAck(action_id, delivery, asyncio.get_running_loop().create_future())
        self._acks.append(pending)
        if self._ack_worker is None or self._ack_worker.done():
            self._ack_worker = asyncio.create_task(self._drain_acks(), name="safety-acks")
        # No shield: the future is this ack's alone, and the worker skips futures already done
        # (a link that closes cancels only its own wait; its ack is still stored).
        await pending.done

    async def _drain_acks(self) -> None:
        while self._acks:
            # One write per key (a site may ack twice in a batch: outcomes are re-sent after a
            # reconnect, and etcd refuses a transaction that names a key twice), and writes plus
            # one audit event per action within ACK_BATCH.
            latest: dict[str, _PendingAck] = {}
            sites: dict[str, list[str]] = {}
            taken = 0
            for p in self._acks:
                key = sd.ack_key(p.action_id, p.delivery.site_id)
                grows = (key not in latest) + (p.action_id not in sites)
                if latest and len(latest) + len(sites) + grows > ACK_BATCH:
                    break
                if key not in latest:
                    sites.setdefault(p.action_id, []).append(p.delivery.site_id)
                latest[key] = p
                taken += 1
            batch, self._acks = self._acks[:taken], self._acks[taken:]
            entries = [
                Entry(
                    self.ack_actor,
                    "safety.ack",
                    f"safety/{action_id}",
                    details={"id": action_id, "count": str(len(names)), "sites": ",".join(names)},
                )
                for action_id, names in sites.items()
            ]
            ops: list[Op] = [Put(key, p.delivery.to_json()) for key, p in latest.items()]
            try:
                await self._audit.commit((), ops, entries)
            except Exception as e:  # the acks' links see the error (the site re-sends on reconnect)
                for p in batch:
                    if not p.done.done():
                        p.done.set_exception(e)
                continue
            for p in batch:
                if not p.done.done():
                    p.done.set_result(None)

    async def deliveries(self, action_id: str) -> dict[str, DeliveryRecord]:
        res = await self._store.range(sd.acks_prefix(action_id))
        return {d.site_id: d for d in (DeliveryRecord.from_json(kv.value) for kv in res.items)}

    def beacon(self, site_id: str, sequence: int) -> tuple[int, bytes] | None:
        """(time in ns, signature) of a beacon for ``site_id``, or None while beacons are paused."""
        if self.beacons_paused:
            return None
        time_ns = int(clock.now() * 1e9)
        data = sd.beacon_bytes(site_id=site_id, sequence=sequence, time_ns=time_ns, key_id=self.key.key_id)
        return time_ns, self.key.sign(data)


def _parse(key: str, raw: bytes) -> SafetyDirectiveRecord | None:
    """A lane record, or None for one this version cannot read (e.g. a per-site copy written
    before the scoped lane: it is skipped and logged, never sent, and never stops the watch)."""
    try:
        return SafetyDirectiveRecord.from_json(raw)
    except (TypeError, ValueError) as e:
        log.error("unreadable safety lane record %s skipped: %s", key, e)
        return None


def signing_bytes(rec: SafetyDirectiveRecord) -> bytes:
    return sd.directive_bytes(
        directive_id=rec.id,
        kind=rec.kind,
        safety_sequence=rec.safety_sequence,
        issued_at_ns=sd.ts_ns(rec.issued_at),
        expires_at_ns=sd.ts_ns(rec.expires_at),
        issuer=rec.issuer,
        key_id=rec.key_id,
        payload=sd.signed_payload(rec.kind, rec.payload),
    )
