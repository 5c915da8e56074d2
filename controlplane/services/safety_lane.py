"""The safety lane: signed halts and resumes, one per action for its whole scope, sent before
anything else on every link in scope.

Split from ``services/safety.py`` (which decides *what* takes effect) because this is the hot path
of a halt. Its cost per site is what a bare fan-out pays anyway plus one small write per ack:

- the directive is signed **once** and stored **once** (``lane/<seq>``), in the same transaction
  that makes the action effective; there is no per-site copy to sign, store or dispatch, so there
  is nothing to complete after a crash either;
- each replica keeps the lane in memory (``LaneCache``: loaded once, then fed by one watch), so a
  link reads no store to send a halt; the wire message is built once per directive and shared;
- acks are group-committed: per transaction, one ``acks/<action>/~<batch>`` record and one audit
  event per action, each naming its sites (1,000 acks: a few writes, not 1,000), and a link's
  reader does not wait for the store (a lost batch ends the link; the site re-sends). Rejects are
  stored and audited one by one, with the site as the actor.
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from controlplane.domain import defects
from controlplane.domain import safety as sd
from controlplane.domain.safety import ActionKind, DeliveryRecord, SafetyActionRecord, SafetyDirectiveRecord
from controlplane.errors import CompactedError, InvalidArgument, StargateError, Unavailable
from controlplane.pki.safety_key import SafetyKey
from controlplane.services import clock
from controlplane.services.audit import AuditLog, Entry
from controlplane.store import Compare, EventType, KeyValue, Op, Put, Store
from controlplane.telemetry import metrics

log = logging.getLogger(__name__)

#: Actions per ack transaction: a batch record and an audit event each, plus the audit head, under
#: the audit log's 120 operations per transaction (etcd allows 128).
ACK_BATCH_ACTIONS = 50
#: Sites per ack transaction: at most ~64 KB of site names (ids of up to 63 characters) in the
#: records and as many in the audit events (etcd takes 1.5 MiB per request). One ack transaction is
#: in flight per replica at a time (one worker), so the audit log's grouping cannot stack them.
ACK_BATCH_SITES = 1000
#: How long a link waits for its replica's first read of the lane before giving up (the site
#: reconnects, perhaps to another replica).
LOAD_WAIT_S = 5.0


@dataclass(eq=False)
class LaneEntry:
    record: SafetyDirectiveRecord
    scope: sd.Scope
    #: The wire form, built once by the server layer and shared by every link (see server/safety_link.py).
    wire: Any = None


@dataclass(eq=False)
class _PendingAck:
    action_id: str
    site_id: str
    sequence: int
    done: asyncio.Future[None] | None
    lost: Callable[[Exception], None] | None


@dataclass(eq=False)
class Subscriber:
    site_id: str
    country: str
    wake: Callable[[], None]


class LaneCache:
    """The safety lane as this replica last saw it, in sequence order.

    ``top`` is the highest sequence up to which the cache has every directive, so that a link never
    sends sequence 7 before 6 has arrived (a site would then refuse 6 as not rising). A sequence
    whose record cannot be sent (unreadable, or a malformed scope) still counts as arrived: one bad
    record must not hold back every directive after it.
    """

    def __init__(self) -> None:
        self._seqs: list[int] = []
        self._by_seq: dict[int, LaneEntry | None] = {}
        self.top = 0
        self.loaded = asyncio.Event()

    def get(self, sequence: int) -> LaneEntry | None:
        return self._by_seq.get(sequence)

    def add(self, rec: SafetyDirectiveRecord, *, snapshot: bool = False) -> list[LaneEntry]:
        """Add a directive (a repeat is ignored) and return the entries it made sendable: those
        between the old ``top`` and the new one. ``snapshot``: it comes from a consistent read of
        the whole lane, so everything below it is known too."""
        if rec.safety_sequence in self._by_seq:
            return []
        entry: LaneEntry | None = None
        try:
            entry = LaneEntry(rec, sd.parse_scope(rec.scope))
        except InvalidArgument:
            log.error("safety directive %s has a malformed scope %r; not sent", rec.id, rec.scope)
        return self._arrived(rec.safety_sequence, entry, snapshot)

    def skip(self, sequence: int, *, snapshot: bool = False) -> list[LaneEntry]:
        """A sequence whose record this version cannot read: never sent, but no longer a gap."""
        return [] if sequence in self._by_seq else self._arrived(sequence, None, snapshot)

    def _arrived(self, seq: int, entry: LaneEntry | None, snapshot: bool) -> list[LaneEntry]:
        self._by_seq[seq] = entry
        if entry is not None:
            bisect.insort(self._seqs, seq)
        old = self.top
        if snapshot:
            self.top = max(self.top, seq)
        while self.top + 1 in self._by_seq:
            self.top += 1
        if self.top == old:
            return []
        return [e for s in range(old + 1, self.top + 1) if (e := self._by_seq.get(s)) is not None]

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
            if (
                entry is not None
                and entry.record.expires_at >= now
                and entry.scope.covers(site_id=site_id, country=country)
            ):
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
    ) -> tuple[SafetyDirectiveRecord, list[Compare], list[Op]]:
        """The signed directive of ``action`` at the sequence after ``seq_kv``, and the compare and
        writes that append it to the lane (the compare fails if another directive took it
        meanwhile)."""
        seq = (int(seq_kv.value) if seq_kv is not None else 0) + 1
        rec = self.signed_directive(action, seq)
        compare = Compare.absent(sd.LANE_SEQ) if seq_kv is None else Compare.unchanged(seq_kv)
        ops: list[Op] = [Put(sd.LANE_SEQ, str(seq).encode()), Put(sd.lane_key(seq), rec.to_json())]
        return rec, [compare], ops

    def signed_directive(self, action: SafetyActionRecord, seq: int) -> SafetyDirectiveRecord:
        now = clock.now()
        kind = "Halt" if action.kind == ActionKind.HALT else "Resume"
        payload: dict[str, Any] = {
            "halt_id": action.id if kind == "Halt" else action.related_id,
            "release": action.release,
            "scope": action.scope,
            "reason": action.reason,
            "approvers": list(action.approvals),
            "model": action.model,
            "digest": action.digest,
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
            approvals=list(action.signed_approvals),
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
                    if (seq := _sequence(kv.key)) is None:
                        continue
                    if (rec := _parse(seq, kv.key, kv.value)) is not None:
                        self.lane.add(rec, snapshot=True)
                    else:
                        self.lane.skip(seq, snapshot=True)
                self.lane.loaded.set()
                for sub in list(self._subscribers):
                    sub.wake()
                async for batch in self._store.watch(sd.LANE, start_revision=res.revision + 1):
                    sendable: list[LaneEntry] = []
                    for event in batch:
                        if event.type is not EventType.PUT or (seq := _sequence(event.kv.key)) is None:
                            continue
                        if (rec := _parse(seq, event.kv.key, event.kv.value)) is not None:
                            sendable += self.lane.add(rec)
                        else:
                            sendable += self.lane.skip(seq)
                    self._wake([e.scope for e in sendable])
            except CompactedError:
                continue
            except StargateError as e:
                log.warning("safety lane watch interrupted (%s); retrying", e.public)
                await asyncio.sleep(retry_delay)

    def publish(self, rec: SafetyDirectiveRecord) -> None:
        """A directive this replica has just committed: into its lane cache now, without waiting
        for the watch to bring it back (an etcd round trip, then the parse). The watch's copy is then
        a repeat. It is sent only once everything below it has arrived, as from the watch."""
        self._wake([e.scope for e in self.lane.add(rec)])

    def _wake(self, scopes: list[sd.Scope]) -> None:
        if scopes:
            for sub in list(self._subscribers):
                if any(s.covers(site_id=sub.site_id, country=sub.country) for s in scopes):
                    sub.wake()

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
        lost: Callable[[Exception], None] | None = None,
    ) -> bool:
        """Record a site's ack or reject of a lane directive; False if it names no directive in the
        lane that covers the site. Every reject is audited (a site refusing a halt is a signal),
        even when it changes nothing, and so is an ack that names no such directive (a confused or
        hostile site); an ack wins over a reject.

        Acks are stored in batches. Without ``lost`` an ack returns once stored; with it, an ack
        returns once queued, and ``lost(error)`` is called if its batch cannot be stored (a link
        passes it: its reader goes on without waiting for the store, and on a loss it ends the
        link, so that the site re-sends its outcomes on the next one)."""
        entry = self.lane.get(sequence)
        if entry is None:  # not in this replica's cache yet (or ever): ask the store
            kv = await self._store.get(sd.lane_key(sequence))
            rec = _parse(sequence, kv.key, kv.value) if kv is not None else None
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
        assert entry is not None  # valid
        metrics.count_directive(entry.record.kind, "rejected" if rejected else "acked")
        if not rejected:
            await self._record_ack(directive_id, site_id, sequence, lost)
            if entry.record.kind == "Halt":  # the ack is queued or stored: the site has halted
                metrics.HALT_LATENCY.observe(max(0.0, clock.now() - entry.record.issued_at))
            return True
        if (d := (await self.deliveries(directive_id)).get(site_id)) is not None and d.state == "Acked":
            await self._audit.record(audit())  # an ack is final; a later reject changes nothing
            return False
        # No compare: if the site's ack is stored meanwhile, it wins over this record anyway.
        delivery = DeliveryRecord(site_id, "Rejected", clock.now(), sequence, reason[:512])
        await self._audit.commit((), [Put(sd.ack_key(directive_id, site_id), delivery.to_json())], [audit()])
        return True

    async def _record_ack(
        self, action_id: str, site_id: str, sequence: int, lost: Callable[[Exception], None] | None
    ) -> None:
        """Queue an ack for the next batch (group commit). Without ``lost``, wait until it is
        stored; with it, return at once and call ``lost`` if its batch fails."""
        done = asyncio.get_running_loop().create_future() if lost is None else None
        self._acks.append(_PendingAck(action_id, site_id, sequence, done, lost))
        if self._ack_worker is None or self._ack_worker.done():
            self._ack_worker = asyncio.create_task(self._drain_acks(), name="safety-acks")
        if done is not None:
            # No shield: the future is this ack's alone, and the worker skips futures already done
            # (a link that closes cancels only its own wait; its ack is still stored).
            await done

    async def _drain_acks(self) -> None:
        while self._acks:
            # Per action, one batch record and one audit event naming its sites (a site may ack
            # twice in a batch: outcomes are re-sent after a reconnect), within etcd's 128
            # operations and a modest transaction size.
            sites: dict[str, dict[str, int]] = {}
            taken = count = 0
            for p in self._acks:
                if (p.action_id not in sites and len(sites) == ACK_BATCH_ACTIONS) or count == ACK_BATCH_SITES:
                    break
                named = sites.setdefault(p.action_id, {})
                count += p.site_id not in named
                named[p.site_id] = p.sequence
                taken += 1
            batch, self._acks = self._acks[:taken], self._acks[taken:]
            now = clock.now()
            ops: list[Op] = []
            entries = []
            for action_id, named in sites.items():
                names = sorted(named)
                record = sd.AckBatchRecord(names, now, max(named.values()))
                ops.append(Put(sd.ack_batch_key(action_id, uuid.uuid4().hex), record.to_json()))
                entries.append(
                    Entry(
                        self.ack_actor,
                        "safety.ack",
                        f"safety/{action_id}",
                        details={"id": action_id, "count": str(len(names)), "sites": ",".join(names)},
                    )
                )
            try:
                await self._audit.commit((), ops, entries)
            except Exception as e:  # the acks' links hear of it (the site re-sends on reconnect)
                for p in batch:
                    if p.lost is not None:
                        p.lost(e)
                    elif p.done is not None and not p.done.done():
                        p.done.set_exception(e)
                continue
            for p in batch:
                if p.done is not None and not p.done.done():
                    p.done.set_result(None)

    async def deliveries(self, action_id: str) -> dict[str, DeliveryRecord]:
        res = await self._store.range(sd.acks_prefix(action_id))
        return sd.deliveries_from((kv.key, kv.value) for kv in res.items)

    def beacon(self, site_id: str, sequence: int) -> tuple[int, bytes] | None:
        """(time in ns, signature) of a beacon for ``site_id``, or None while beacons are paused."""
        if self.beacons_paused:
            return None
        time_ns = int(clock.now() * 1e9)
        data = sd.beacon_bytes(site_id=site_id, sequence=sequence, time_ns=time_ns, key_id=self.key.key_id)
        return time_ns, self.key.sign(data)


def _sequence(key: str) -> int | None:
    """The sequence a lane key names (``lane/<seq:020d>``), or None for a key of another layout
    (ignored: it is no sequence of the lane, so it can neither fill nor hold one)."""
    tail = key.removeprefix(sd.LANE)
    if len(tail) == 20 and tail.isdigit() and tail.isascii():
        return int(tail)
    log.error("key %s is not a safety lane key; ignored", key[:200])
    return None


def _parse(sequence: int, key: str, raw: bytes) -> SafetyDirectiveRecord | None:
    """The lane record at ``sequence``, or None for one that cannot be sent whatever its defect
    (unreadable, another sequence than its key, missing or mistyped fields, a bad scope or signature,
    a per-site copy written before the scoped lane): it is logged and skipped, never sent, and is
    no gap either, so it never holds back the directives after it nor stops the watch."""
    try:
        return defects.lane_directive(sequence, raw)
    except defects.Defect as e:
        log.error("unusable safety lane record %s skipped: %s", key, e)
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
