"""The federation's end of one site link: what a ``Connect`` stream does once the site is known.

Directives go out in sequence (the safety half, server/safety_link.py, first), with Deploys' log
proofs (server/log_link.py); what the site says comes in through the API edge
(server/inbound.py) and must speak for the site named in its certificate.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Any, TypeAlias

import grpc

from controlplane.api.v1 import site_pb2 as spb
from controlplane.domain import defects
from controlplane.domain.records import UNDELIVERED, DirectiveRecord
from controlplane.domain.site_input import clean_text
from controlplane.errors import (
    FailedPrecondition,
    InvalidArgument,
    InvalidRequest,
    NotFound,
    PermissionDenied,
    ResourceExhausted,
    StargateError,
    Unavailable,
)
from controlplane.pki.identity import Identity
from controlplane.server import convert, inbound
from controlplane.server.log_link import LogLink
from controlplane.server.rpc import abort, refuse
from controlplane.server.runtime import Runtime
from controlplane.server.safety_link import SafetyLink
from controlplane.services import clock
from controlplane.telemetry import logs, metrics

log = logging.getLogger(__name__)
Ctx: TypeAlias = grpc.aio.ServicerContext
#: Audit actor of a link marking a directive it cannot send Failed (the replica id is appended).
LINK_ACTOR = "controller/link"
#: Directives read from the store per turn of a link's send loop.
BATCH = 256


class LinkStream:
    """One site's stream: receives heartbeats/acks, sends directives in order."""

    def __init__(self, rt: Runtime, caller: Identity) -> None:
        self.rt = rt
        self.caller = caller
        self.site_id = caller.name
        #: Why the reader ended the link, reported to the site as the stream's status.
        self.error: StargateError | None = None
        #: The safety lane and beacons of this link (controlplane/server/safety_servicer.py).
        self.safety: SafetyLink | None = None
        #: The transparency-log half of this link (controlplane/server/log_link.py).
        self.log: LogLink | None = None

    async def serve(
        self, hello: spb.Hello, requests: AsyncIterator[spb.ConnectRequest], context: Ctx
    ) -> AsyncIterator[spb.ConnectResponse]:
        rt = self.rt
        logs.bind(site=self.site_id)  # this stream's task: every line it logs names the site
        session = rt.links.attach(self.site_id)
        rt.liveness.seen(self.site_id)
        try:
            facts = hello.facts if hello.HasField("facts") else None
            if facts is not None:
                try:
                    inbound.check_facts(facts, "hello.facts.")
                except StargateError as e:  # not stored; the link and its directives go on
                    await self._refused("hello", e)
                    facts = None
            try:
                await rt.registry.mark_ready(self.site_id, self.caller.spiffe_id, clock.now())
                await rt.site_facts(self.site_id, facts=facts, last_applied=hello.last_applied_sequence)
            except StargateError as e:
                # E.g. the store is unavailable: a status the site retries (UNAVAILABLE), not an
                # unexpected exception, which gRPC would report as UNKNOWN.
                log.info("link of %s refused: %s", self.site_id, e.public)
                await abort(context, e)
            yield spb.ConnectResponse(
                welcome=spb.Welcome(
                    replica_id=rt.replica_id,
                    heartbeat_interval_seconds=rt.heartbeat_interval,
                    server_time=convert.ts(clock.now()),
                )
            )
            safety = self.safety = SafetyLink(
                rt, self.caller, hello, session, lambda e: self._lost(session, e)
            )
            self.log = LogLink(rt.log_proofs, self.site_id, hello, session, lambda: rt.deploy_proof_wait)
            reader = asyncio.create_task(self._read(requests, context, session))
            last_sent = hello.last_applied_sequence
            try:
                while not session.closed.is_set():
                    session.wake.clear()
                    try:
                        # The safety lane (signed halts/resumes) and the beacon go before anything else.
                        ahead = await safety.outgoing()
                        due, session.directives_due = session.directives_due, False
                        recs = await rt.directives.after(self.site_id, last_sent, BATCH) if due else []
                        if len(recs) == BATCH:
                            session.directives_due = True  # a full batch: read on after it
                            session.wake.set()
                    except StargateError as e:
                        self.error = e  # store unavailable: end the link; the site reconnects
                        break
                    for msg in [*ahead, *self.log.take_replies()]:
                        if msg.HasField("beacon"):
                            await self.log.on_beacon(msg.beacon)  # the newest checkpoint
                        yield msg
                    for rec in recs:
                        if safety.urgent.is_set():
                            session.directives_due = True  # the rest goes after the halt
                            break  # a halt was queued meanwhile: send it before the rest
                        try:
                            out = await self._sendable(rec)
                            if out is not None and not await self.log.attach(rec, out):
                                session.directives_due = True  # held for its proof's checkpoint
                                break
                        except StargateError as e:
                            self.error = e  # the Failed mark was not stored: the site reconnects
                            break
                        if out is not None:
                            metrics.count_directive(rec.kind, "sent")
                            yield out
                        last_sent = rec.sequence
                    if self.error is not None:
                        break
                    if not session.wake.is_set() and not safety.urgent.is_set():
                        await session.wake.wait()
            finally:
                self.log.close()
                await safety.close()
                reader.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await reader
            if self.error is not None:
                await abort(context, self.error)
        finally:
            rt.links.detach(session)
            rt.liveness.drop(self.site_id)

    async def _sendable(self, rec: DirectiveRecord) -> spb.ConnectResponse | None:
        """The wire message of ``rec``, or None when it is not to be sent: cancelled or failed, or
        unusable now - then it is marked Failed with the reason, and the queue goes on after it (one
        bad record must never stop every directive behind it)."""
        actor = f"{LINK_ACTOR}@{self.rt.replica_id}"
        if isinstance(rec, defects.UnreadableDirective):
            await self.rt.directives.fail(actor, self.site_id, rec.sequence, rec.reason)
            return None
        if rec.state in UNDELIVERED:
            return None
        try:
            return spb.ConnectResponse(directive=convert.directive_to_pb(rec))
        except Exception as e:  # whatever the record holds that the wire cannot carry
            why = f"cannot be sent: {type(e).__name__}: {str(e)[:200]}"
            await self.rt.directives.fail(actor, self.site_id, rec.sequence, why)
            return None

    async def _refused(self, which: str, error: StargateError) -> None:
        """A message from this site that was not accepted: audited per site and window."""
        await self.rt.refusals.note(
            self.caller.spiffe_id, "link.refused", f"site/{self.site_id}", f"{which}: {error.public}"
        )

    def _lost(self, session: Any, error: Exception) -> None:
        """An ack from this site was not stored (e.g. the store is unavailable): end the link with
        UNAVAILABLE; the site reconnects and re-sends its recent outcomes."""
        if self.error is None:
            self.error = error if isinstance(error, StargateError) else Unavailable("an ack was not stored")
        session.close()

    async def _read(self, requests: AsyncIterator[spb.ConnectRequest], context: Ctx, session: Any) -> None:
        try:
            async for msg in requests:
                try:
                    await self._handle(msg)
                except (InvalidRequest, NotFound, FailedPrecondition, ResourceExhausted) as e:
                    # Refused and audited (per site and window); the link and its directives go on.
                    await self._refused(msg.WhichOneof("message") or "message", e)
        except StargateError as e:
            self.error = e
            if isinstance(e, PermissionDenied):
                await refuse(self.rt.refusals, self.caller.spiffe_id, "Connect", e)
            log.info("link of %s closed: %s", self.site_id, e.public)
        except (asyncio.CancelledError, grpc.aio.AioRpcError):
            pass
        finally:
            session.close()

    async def _handle(self, msg: spb.ConnectRequest) -> None:
        which = msg.WhichOneof("message")
        body = getattr(msg, which) if which else None
        if body is None or which == "hello":
            raise InvalidArgument("message", "expected heartbeat, ack or reject after hello")
        if body.site_id != self.site_id:
            raise PermissionDenied("message speaks for another site than the certificate")
        inbound.check_message(which, body)
        rt = self.rt
        rt.liveness.seen(self.site_id)
        if which == "log_proof_request" and self.log is not None:
            self.log.request(body)
            return
        if self.safety is not None and await self.safety.handle(which, body):
            return  # safety acks/rejects, incidents, local halts
        if which == "heartbeat":
            try:
                await rt.site_facts(self.site_id, heartbeat=body, last_applied=body.last_applied_sequence)
            except Unavailable as e:
                # Facts are refreshed by every heartbeat: keep the link (and the site's liveness)
                # through a store outage instead of dropping it; the next heartbeat writes them.
                log.info("facts of %s not stored: %s", self.site_id, e.public)
        elif which in ("ack", "reject"):
            await rt.directives.complete(
                self.caller.spiffe_id,
                self.site_id,
                body.directive_id,
                body.sequence,
                rejected=which == "reject",
                reason=clean_text(getattr(body, "reason", "")),
            )
