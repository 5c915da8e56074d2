"""FederationService: the people's API. Behaviour lives in services; this maps wire <-> calls."""

from __future__ import annotations

import contextlib
import datetime as dt
from typing import TypeAlias

import grpc
from google.protobuf import json_format

from controlplane import __version__
from controlplane.api.directive_kinds import DEPLOY, UNDEPLOY
from controlplane.api.v1 import federation_pb2 as fpb
from controlplane.api.v1 import federation_pb2_grpc as fgrpc
from controlplane.domain.roster import SignedRoster
from controlplane.domain.validation import validate_dns_label
from controlplane.errors import InvalidArgument, NotFound, PermissionDenied, StargateError
from controlplane.pki.ca import USER_TTL
from controlplane.pki.identity import Identity, Role
from controlplane.server import convert
from controlplane.server.rpc import authenticated
from controlplane.server.runtime import Runtime
from controlplane.services.low_level_deploy import admit, release_payload
from controlplane.services.validation import deploy_payload

_ROLE_FROM_PB = {fpb.ROLE_ADMIN: Role.ADMIN, fpb.ROLE_STEWARD: Role.STEWARD, fpb.ROLE_AUDITOR: Role.AUDITOR}
_ROLE_TO_PB = {v: k for k, v in _ROLE_FROM_PB.items()} | {Role.SITE: fpb.ROLE_SITE}
Ctx: TypeAlias = grpc.aio.ServicerContext


class FederationServicer(fgrpc.FederationServiceServicer):
    def __init__(self, rt: Runtime) -> None:
        self.rt = rt
        self.trust_domain = rt.ca.trust_domain
        self.audit = rt.audit
        self.refusals = rt.refusals

    async def _site_pb(self, site_id: str) -> fpb.Site:
        site = await self.rt.registry.get(site_id)
        latest = await self.rt.liveness.merged()
        return convert.site_to_pb(site, latest.get(site_id, 0.0))

    @authenticated("CreateJoinToken")
    async def CreateJoinToken(
        self, request: fpb.CreateJoinTokenRequest, context: Ctx, caller: Identity
    ) -> fpb.CreateJoinTokenResponse:
        if request.ttl_seconds < 0:
            raise InvalidArgument("ttl_seconds", "must not be negative")
        ttl = dt.timedelta(seconds=request.ttl_seconds) if request.ttl_seconds else None
        token, rec = await self.rt.enrollment.create_token(
            caller.spiffe_id, request.site_id, request.country, ttl
        )
        return fpb.CreateJoinTokenResponse(
            token=token, site_id=rec.site_id, country=rec.country, expires_at=convert.ts(rec.expires_at)
        )

    @authenticated("ListSites")
    async def ListSites(
        self, request: fpb.ListSitesRequest, context: Ctx, caller: Identity
    ) -> fpb.ListSitesResponse:
        sites = await self.rt.registry.list(request.country)
        latest = await self.rt.liveness.merged()
        return fpb.ListSitesResponse(sites=[convert.site_to_pb(s, latest.get(s.site_id, 0.0)) for s in sites])

    @authenticated("GetSite")
    async def GetSite(
        self, request: fpb.GetSiteRequest, context: Ctx, caller: Identity
    ) -> fpb.GetSiteResponse:
        return fpb.GetSiteResponse(site=await self._site_pb(request.site_id))

    @authenticated("CordonSite")
    async def CordonSite(
        self, request: fpb.CordonSiteRequest, context: Ctx, caller: Identity
    ) -> fpb.CordonSiteResponse:
        await self.rt.registry.cordon(request.site_id, caller.spiffe_id, request.reason[:512], True)
        return fpb.CordonSiteResponse(site=await self._site_pb(request.site_id))

    @authenticated("UncordonSite")
    async def UncordonSite(
        self, request: fpb.UncordonSiteRequest, context: Ctx, caller: Identity
    ) -> fpb.UncordonSiteResponse:
        await self.rt.registry.cordon(request.site_id, caller.spiffe_id, "", False)
        return fpb.UncordonSiteResponse(site=await self._site_pb(request.site_id))

    def _ttl(self, ttl_seconds: int) -> float:
        if ttl_seconds < 0:
            raise InvalidArgument("ttl_seconds", "must not be negative")
        return float(ttl_seconds) if ttl_seconds else 24 * 3600.0

    @authenticated("Deploy")
    async def Deploy(self, request: fpb.DeployRequest, context: Ctx, caller: Identity) -> fpb.DeployResponse:
        validate_dns_label("site_id", request.site_id)
        given = json_format.MessageToDict(
            request.deploy, preserving_proto_field_name=True, always_print_fields_with_no_presence=True
        )
        payload = deploy_payload(await release_payload(self.rt.releases, request.release, given))
        await admit(self.rt.registry, self.rt.releases, request.site_id, request.release)
        rec = await self.rt.directives.issue(
            request.site_id,
            DEPLOY.name,
            payload,
            caller.spiffe_id,
            ttl_s=self._ttl(request.ttl_seconds),
            directive_id=request.request_id,
        )
        return fpb.DeployResponse(directive=convert.directive_to_pb(rec))

    @authenticated("Undeploy")
    async def Undeploy(
        self, request: fpb.UndeployRequest, context: Ctx, caller: Identity
    ) -> fpb.UndeployResponse:
        validate_dns_label("site_id", request.site_id)
        validate_dns_label("deployment_name", request.deployment_name)
        rec = await self.rt.directives.issue(
            request.site_id,
            UNDEPLOY.name,
            {"deployment_name": request.deployment_name},
            caller.spiffe_id,
            ttl_s=self._ttl(request.ttl_seconds),
            directive_id=request.request_id,
        )
        return fpb.UndeployResponse(directive=convert.directive_to_pb(rec))

    @authenticated("ListDirectives")
    async def ListDirectives(
        self, request: fpb.ListDirectivesRequest, context: Ctx, caller: Identity
    ) -> fpb.ListDirectivesResponse:
        site = await self.rt.registry.get(request.site_id)
        if caller.role is Role.STEWARD and caller.country != site.country:
            raise PermissionDenied("stewards may only read their own country's sites")
        recs = await self.rt.directives.list(request.site_id)
        return fpb.ListDirectivesResponse(directives=[convert.directive_record_to_pb(r) for r in recs])

    @authenticated("CancelDirective")
    async def CancelDirective(
        self, request: fpb.CancelDirectiveRequest, context: Ctx, caller: Identity
    ) -> fpb.CancelDirectiveResponse:
        await self.rt.registry.get(request.site_id)  # validates the id; NotFound for an unknown site
        rec = await self.rt.directives.cancel(
            caller.spiffe_id,
            request.site_id,
            directive_id=request.id,
            sequence=request.sequence,
            reason=request.reason,
        )
        return fpb.CancelDirectiveResponse(directive=convert.directive_record_to_pb(rec))

    @authenticated("IssueUserCertificate")
    async def IssueUserCertificate(
        self, request: fpb.IssueUserCertificateRequest, context: Ctx, caller: Identity
    ) -> fpb.IssueUserCertificateResponse:
        role = _ROLE_FROM_PB.get(request.role)
        if role is None:
            raise InvalidArgument("role", "must be admin, steward or auditor")
        if request.ttl_seconds < 0:
            raise InvalidArgument("ttl_seconds", "must not be negative")
        ttl = dt.timedelta(seconds=request.ttl_seconds) if request.ttl_seconds else USER_TTL
        issued = await self.rt.enrollment.issue_user(
            caller.spiffe_id,
            request.name,
            role,
            request.country,
            request.csr_pem,
            ttl,
            roster=await self.rt.roster.current(),
            csr_signature=bytes(request.csr_signature),
        )
        return fpb.IssueUserCertificateResponse(
            certificate_pem=issued.certificate_pem.decode(),
            ca_bundle_pem=issued.ca_pem.decode(),
            not_after=convert.ts_dt(issued.not_after),
        )

    @authenticated("GetRoster")
    async def GetRoster(
        self, request: fpb.GetRosterRequest, context: Ctx, caller: Identity
    ) -> fpb.GetRosterResponse:
        chain = await self.rt.roster.chain()
        if not chain:
            raise NotFound("this federation has no roster (run `stargate-controlplane init`)")
        current = chain[-1].roster
        return fpb.GetRosterResponse(
            chain=[c.to_json() for c in chain], version=current.version, hash=current.hash()
        )

    @authenticated("ApplyRoster")
    async def ApplyRoster(
        self, request: fpb.ApplyRosterRequest, context: Ctx, caller: Identity
    ) -> fpb.ApplyRosterResponse:
        applied = await self.rt.roster.apply(caller.spiffe_id, SignedRoster.from_json(request.roster))
        return fpb.ApplyRosterResponse(version=applied.version, hash=applied.hash())

    @authenticated("ListAuditEvents")
    async def ListAuditEvents(
        self, request: fpb.ListAuditEventsRequest, context: Ctx, caller: Identity
    ) -> fpb.ListAuditEventsResponse:
        page, verified = await self.rt.audit.page(request.after_sequence, request.limit or 1000)
        return fpb.ListAuditEventsResponse(
            events=[convert.audit_to_pb(e, raw) for e, raw in page], chain_verified=verified
        )

    @authenticated("GetStatus")
    async def GetStatus(
        self, request: fpb.GetStatusRequest, context: Ctx, caller: Identity
    ) -> fpb.GetStatusResponse:
        status = await self.rt.status()
        # Status must answer during a store outage (it is how people see one): the roster this
        # replica last read, then.
        chain = self.rt.roster.last
        if status.healthy:
            with contextlib.suppress(StargateError):
                chain = await self.rt.roster.chain()
        roster = chain[-1].roster if chain else None  # a PKI directory made before rosters: none
        return fpb.GetStatusResponse(
            leader=status.leader,
            replicas=[
                fpb.Replica(
                    id=r.replica_id,
                    leader=r.replica_id == status.leader,
                    address=r.address,
                    connected_sites=n,
                )
                for r, n in status.replicas
            ],
            store=fpb.StoreStatus(
                kind=self.rt.store.kind, endpoints=list(self.rt.store.endpoints), healthy=status.healthy
            ),
            replica_id=self.rt.replica_id,
            version=__version__,
            enroll_address=self.rt.enroll_address,
            persistent=self.rt.store.persistent,
            roster_version=roster.version if roster else 0,
            roster_hash=roster.hash() if roster else "",
            single_admin=roster.single_admin if roster else True,
        )

    @authenticated("WhoAmI")
    async def WhoAmI(self, request: fpb.WhoAmIRequest, context: Ctx, caller: Identity) -> fpb.WhoAmIResponse:
        return fpb.WhoAmIResponse(
            identity=caller.spiffe_id,
            role=_ROLE_TO_PB.get(caller.role, fpb.ROLE_UNSPECIFIED),
            country=caller.country,
        )
