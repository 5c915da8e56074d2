"""SiteService: enrollment, the site link, certificate renewal.

On the link every message must speak for the site named in the client certificate; a message for
another site is refused, audited, and ends the stream (a compromised site cannot act as another).
"""

from __future__ import annotations

import logging
import math
from collections.abc import AsyncIterator
from typing import Any, TypeAlias

import grpc

from controlplane.api import bounds
from controlplane.api.v1 import safety_pb2 as xpb
from controlplane.api.v1 import site_pb2 as spb
from controlplane.api.v1 import site_pb2_grpc as sgrpc
from controlplane.api.v1 import types_pb2 as tpb
from controlplane.domain.ratelimit import peer_host
from controlplane.errors import (
    InvalidArgument,
    PermissionDenied,
    ResourceExhausted,
    StargateError,
    Unavailable,
)
from controlplane.pki.identity import Identity
from controlplane.server import convert, inbound
from controlplane.server.auth import authorize, peer_address, peer_identity
from controlplane.server.link import LinkStream
from controlplane.server.rpc import MAX_REQUEST_BYTES, abort, anonymous, authenticated, refuse
from controlplane.server.runtime import Runtime
from controlplane.server.safety_link import report_incident
from controlplane.services import clock
from controlplane.services.enrollment import SiteFactsIn
from controlplane.services.publisher_trust import publisher_set, raw_keys

log = logging.getLogger(__name__)
Ctx: TypeAlias = grpc.aio.ServicerContext


def facts_in(facts: Any) -> SiteFactsIn:
    return SiteFactsIn(
        site_id=facts.site_id,
        country=facts.country,
        region=facts.region,
        labels=dict(facts.labels),
        capacity=convert.capacity_from_pb(facts.capacity),
        security_tier=facts.security_tier or 1,
        operator_version=facts.operator_version,
    )


class SiteServicer(sgrpc.SiteServiceServicer):
    def __init__(self, rt: Runtime) -> None:
        self.rt = rt
        self.trust_domain = rt.ca.trust_domain
        self.audit = rt.audit
        self.refusals = rt.refusals

    async def Enroll(self, request: spb.EnrollRequest, context: Ctx) -> spb.EnrollResponse:
        rt = self.rt
        peer = peer_address(context)
        host = peer_host(peer)
        now = clock.now()
        limited = not rt.enroll_limiter.allowed(host, now)
        if not limited:
            rt.enroll_limiter.take(host, now)  # charged up front: concurrent calls cannot all pass
        try:
            if limited:
                # Refused before any work: no store read, no CSR parse; counted, not audited each.
                wait = math.ceil(rt.enroll_limiter.retry_after(host, now))
                raise ResourceExhausted(f"too many failed enrollments from this address; retry in {wait} s")
            if request.ByteSize() > MAX_REQUEST_BYTES:
                raise ResourceExhausted(f"request larger than {MAX_REQUEST_BYTES} bytes")
            bounds.check(request)
            inbound.check_facts(request.facts)
        except StargateError as e:
            await rt.refusals.note(f"anonymous@{host}", "site.enroll", "site/?", e.public)
            await abort(context, e)
        try:
            issued = await rt.enrollment.enroll(peer, request.token, request.csr_pem, facts_in(request.facts))
        except grpc.aio.AbortError:
            raise
        except Exception as e:
            if not isinstance(e, StargateError) or isinstance(e, Unavailable):
                rt.enroll_limiter.refund(host, clock.now())  # an outage, not the peer's failure
            await abort(context, e)
            raise
        rt.enroll_limiter.refund(host, clock.now())
        return spb.EnrollResponse(
            certificate_pem=issued.certificate_pem.decode(),
            ca_bundle_pem=issued.ca_pem.decode(),
            not_after=convert.ts_dt(issued.not_after),
            safety_keys=[
                xpb.SafetyPublicKey(
                    key_id=self.rt.safety.key.key_id, public_key_pem=self.rt.safety.key.public_pem
                )
            ],
            directive_key=xpb.SafetyPublicKey(
                key_id=self.rt.directive_key.key_id, public_key_pem=self.rt.directive_key.public_pem
            ),
            publishers=[
                tpb.TrustedPublisher(name=name, public_key=key)
                for name, key in raw_keys(await publisher_set(self.rt.releases))
            ],
            log_vkey=self.rt.log_proofs.vkey,
            roster_chain=[r.to_json() for r in await rt.roster.chain()],
        )

    @authenticated("ReportIncident")
    async def ReportIncident(
        self, request: spb.ReportIncidentRequest, context: Ctx, caller: Identity
    ) -> spb.ReportIncidentResponse:
        await report_incident(self.rt, caller, request.incident)
        return spb.ReportIncidentResponse(recorded=True)

    @authenticated("RenewCertificate")
    async def RenewCertificate(
        self, request: spb.RenewCertificateRequest, context: Ctx, caller: Identity
    ) -> spb.RenewCertificateResponse:
        self._check_speaker(caller, request.site_id)
        issued = await self.rt.enrollment.renew(caller, request.csr_pem)
        return spb.RenewCertificateResponse(
            certificate_pem=issued.certificate_pem.decode(),
            ca_bundle_pem=issued.ca_pem.decode(),
            not_after=convert.ts_dt(issued.not_after),
        )

    @staticmethod
    def _check_speaker(caller: Identity, site_id: str) -> None:
        """Refuse a message that names another site than the certificate (callers audit it)."""
        if site_id != caller.name:
            raise PermissionDenied("message speaks for another site than the certificate")

    async def Connect(
        self, request_iterator: AsyncIterator[spb.ConnectRequest], context: Ctx
    ) -> AsyncIterator[spb.ConnectResponse]:
        actor = anonymous(context)
        try:
            caller = peer_identity(context, self.trust_domain)
            actor = caller.spiffe_id
            authorize(caller, "Connect")
            first = await anext(aiter(request_iterator), None)
            if first is None or not first.HasField("hello"):
                raise InvalidArgument("hello", "the first message on a link must be Hello")
            self._check_speaker(caller, first.hello.site_id)
            inbound.check_size(first, "hello")
            inbound.check_hello(first.hello)
        except grpc.aio.AbortError:
            raise
        except StargateError as e:
            if not isinstance(e, InvalidArgument):
                await refuse(self.refusals, actor, "Connect", e)
            await abort(context, e)
            return
        link = LinkStream(self.rt, caller)
        async for response in link.serve(first.hello, request_iterator, context):
            yield response
