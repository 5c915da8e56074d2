"""The safety half of each site link, and the wire form of the safety lane.

``SafetyLink`` is what a ``LinkStream`` (server/link.py) asks, on every turn of its send loop,
*before* it sends any ordinary directive: the site's pending safety-lane directives (Halt, Resume;
signed) and, when due, a signed liveness beacon. Its ``urgent`` event is set by the replica's
safety-lane watch as soon as a safety directive is queued for the site, so that a link in the
middle of a batch of ordinary directives stops and sends the halt first.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Callable
from typing import Any

from controlplane.api import directive_kinds
from controlplane.api.v1 import safety_pb2 as xpb
from controlplane.api.v1 import site_pb2 as spb
from controlplane.api.v1 import types_pb2 as tpb
from controlplane.domain.safety import SafetyDirectiveRecord
from controlplane.errors import PermissionDenied
from controlplane.pki.identity import Identity
from controlplane.server import convert
from controlplane.server.runtime import Runtime
from controlplane.services.safety_lane import LaneEntry
from controlplane.telemetry import metrics

log = logging.getLogger(__name__)


def approvals_pb(items: list[dict[str, str]]) -> list[xpb.PersonApproval]:
    return [xpb.PersonApproval(person=a["person"], signature=bytes.fromhex(a["signature"])) for a in items]


def safety_directive_to_pb(rec: SafetyDirectiveRecord) -> tpb.Directive:
    kind = directive_kinds.get(rec.kind)  # Halt or Resume: a stored record of another is a defect
    d = tpb.Directive(
        sequence=0,
        safety_sequence=rec.safety_sequence,
        id=rec.id,
        kind=kind.number,
        issued_at=convert.ts(rec.issued_at),
        expires_at=convert.ts(rec.expires_at),
        issuer=rec.issuer,
        key_id=rec.key_id,
        signature=bytes.fromhex(rec.signature),
        approvals=approvals_pb(rec.approvals),
    )
    p = rec.payload
    kind.fill(
        d,
        {
            "halt_id": p["halt_id"],
            "release": p["release"],
            "scope": p["scope"],
            "reason": p["reason"],
            "approvers": p.get("approvers", []),
            "model": p.get("model", ""),
            "digest": p.get("digest", ""),
            "resume_id": p.get("resume_id", ""),  # a Resume's own id (the Halt payload has none)
        },
    )
    return d


def lane_message(entry: LaneEntry) -> spb.ConnectResponse:
    """The wire message of a lane directive, built once and shared by every link in its scope."""
    if entry.wire is None:
        entry.wire = spb.ConnectResponse(directive=safety_directive_to_pb(entry.record))
    return entry.wire  # type: ignore[no-any-return]


async def report_incident(rt: Runtime, caller: Identity, incident: xpb.IncidentReport) -> None:
    """An incident from a site (over the link or SiteService.ReportIncident), as itself only."""
    if incident.site_id != caller.name:
        raise PermissionDenied("message speaks for another site than the certificate")
    observed = incident.observed_at.ToNanoseconds() / 1e9 if incident.HasField("observed_at") else 0.0
    await rt.incidents.report_incident(
        caller.spiffe_id,
        caller.name,
        incident.release,
        int(incident.severity),
        incident.category,
        int(incident.count),
        observed,
    )


class SafetyLink:
    """The safety half of one site link (see the module docstring)."""

    def __init__(
        self, rt: Runtime, caller: Identity, hello: spb.Hello, session: Any, lost: Callable[[Exception], None]
    ) -> None:
        self.rt = rt
        #: Called when an ack this link passed on could not be stored (it ends the link).
        self._lost = lost
        self.caller = caller
        self.site_id = caller.name
        #: From the certificate: which country-scoped directives cover this site.
        self.country = caller.country
        self.last_sent = hello.last_safety_sequence
        self.urgent = asyncio.Event()
        self.urgent.set()  # the lane is read before anything else on a new link
        self._session = session
        self._sub = rt.safety.subscribe(self.site_id, self.country, self._wake)
        self._beacon_seq = 0
        self._beacon_due = True
        #: Hash of the roster version last sent on this link ("": none yet; the first pass sends it).
        self._roster_sent = ""
        self._ticker = asyncio.create_task(self._tick(), name=f"beacon-{self.site_id}")

    def _wake(self) -> None:
        """A directive for this site entered the lane: interrupt ordinary sends, wake the loop."""
        self.urgent.set()
        self._session.wake.set()

    async def _tick(self) -> None:
        interval = self.rt.safety.settings.beacon_interval
        while True:
            # Jittered, and only downward (a site's tolerance counts from its last beacon): links
            # that all opened at once (a replica restart) drift apart instead of signing 1,000
            # beacons in one burst.
            await asyncio.sleep(interval * random.uniform(0.8, 1.0))
            self._beacon_due = True
            self._session.wake.set()

    async def outgoing(self) -> list[spb.ConnectResponse]:
        """Safety directives the site has not been sent yet, then a beacon when one is due."""
        self.urgent.clear()
        lane = self.rt.safety
        entries = await lane.lane_after(self.last_sent, site_id=self.site_id, country=self.country)
        out = []
        current, chain = await self.rt.roster.wire_chain()
        if current != self._roster_sent:  # before the lane: a Resume is checked against it
            self._roster_sent = current
            out.append(spb.ConnectResponse(roster=spb.RosterUpdate(chain=chain)))
        for e in entries:
            try:
                out.append(self._for_this_site(lane_message(e)))
                metrics.count_directive(e.record.kind, "sent")
            except Exception:  # checked when read (domain/defects.py); never stop the link for one
                log.exception("safety directive %s cannot be sent; skipped", e.record.safety_sequence)
        # Past everything looked at, sent or not in scope (after() stops at the cache's top).
        self.last_sent = max(self.last_sent, lane.lane.top)
        if self._beacon_due:
            self._beacon_due = False
            self._beacon_seq += 1
            signed = self.rt.safety.beacon(self.site_id, self._beacon_seq)
            if signed is not None:
                time_ns, sig = signed
                t = convert.ts(0)
                t.FromNanoseconds(time_ns)
                out.append(
                    spb.ConnectResponse(
                        beacon=xpb.Beacon(
                            site_id=self.site_id,
                            sequence=self._beacon_seq,
                            time=t,
                            key_id=self.rt.safety.key.key_id,
                            signature=sig,
                        )
                    )
                )
        return out

    def _for_this_site(self, shared: spb.ConnectResponse) -> spb.ConnectResponse:
        """The lane directive (built once, signed once with the safety key for its whole scope)
        with this site's directive-key signature: ~70 us per site (copy and sign)."""
        d = tpb.Directive()
        d.CopyFrom(shared.directive)
        self.rt.directive_key.sign(self.site_id, d)
        return spb.ConnectResponse(directive=d)

    async def handle(self, which: str, body: Any) -> bool:
        """Handle a site message that belongs to safety; False when it is not one."""
        rt = self.rt
        if which in ("ack", "reject") and body.safety_sequence:
            await rt.safety.complete(
                self.caller.spiffe_id,
                self.site_id,
                self.country,
                body.directive_id,
                body.safety_sequence,
                rejected=which == "reject",
                reason=getattr(body, "reason", ""),
                lost=self._lost,
            )
            return True
        if which == "incident":
            await report_incident(rt, self.caller, body)
            return True
        if which == "local_halt":
            halted_at = body.halted_at.ToNanoseconds() / 1e9 if body.HasField("halted_at") else 0.0
            await rt.incidents.local_halt(
                self.caller.spiffe_id,
                self.site_id,
                int(body.risk_tier),
                list(body.releases)[:256],
                halted_at,
                float(body.tolerance_seconds),
            )
            return True
        return False

    async def close(self) -> None:
        self._ticker.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._ticker
        self.rt.safety.unsubscribe(self._sub)
