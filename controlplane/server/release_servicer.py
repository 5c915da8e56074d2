"""ReleaseService: publishers, signed releases, placement plans and rollouts."""

from __future__ import annotations

from typing import Any, TypeAlias

import grpc

from controlplane.api.v1 import rollouts_pb2 as opb
from controlplane.api.v1 import rollouts_pb2_grpc as ogrpc
from controlplane.domain.rollouts import RolloutRecord
from controlplane.pki.identity import Identity
from controlplane.server import convert
from controlplane.server.rpc import authenticated
from controlplane.server.runtime import Runtime
from controlplane.services.publisher_trust import send_publishers
from controlplane.services.rollouts import spec_from_dict

Ctx: TypeAlias = grpc.aio.ServicerContext


def _gates_pb(gates: list[dict[str, Any]]) -> list[opb.GateMeasurement]:
    return [
        opb.GateMeasurement(
            name=g.get("name", ""),
            value=float(g.get("value", 0.0)),
            threshold=float(g.get("threshold", 0.0)),
            outcome=g.get("outcome", ""),
            detail=g.get("detail", ""),
            measured=bool(g.get("measured", False)),
        )
        for g in gates
    ]


def rollout_to_pb(r: RolloutRecord) -> opb.Rollout:
    waves = [
        opb.RolloutWave(
            name=w["name"],
            phase=w["phase"],
            sites=[
                opb.RolloutSite(
                    site=s["site"],
                    country=s["country"],
                    state=s["state"],
                    reason=s["reason"],
                    replicas=s["replicas"],
                    verified=bool(s.get("verified", False)),
                )
                for s in w["sites"]
            ],
            bake_until=convert.ts(w.get("bake_until", 0.0)),
            gate=w.get("gate", ""),
            started_at=convert.ts(w.get("window_start") or w.get("started_at", 0.0)),
            gates=_gates_pb(w.get("gates") or []),
            measurements=int(w.get("measurements", 0)),
            failures=int(w.get("failures", 0)),
            promoted=w.get("promoted", ""),
            next_measurement_at=convert.ts(
                w.get("next_check_at", 0.0) if w["phase"] in ("Progressing", "Baking") else 0.0
            ),
        )
        for w in r.waves
    ]
    return opb.Rollout(
        spec=spec_from_dict(r.spec),
        phase=r.phase,
        message=r.message,
        waves=waves,
        approved_countries=r.approved,
        pending_countries=[c for c in r.needs_approval if c not in r.approved],
        excluded=[
            opb.ExcludedSite(site=e["site"], country=e["country"], reasons=e["reasons"]) for e in r.excluded
        ],
        created_at=convert.ts(r.created_at),
        updated_at=convert.ts(r.updated_at),
        created_by=r.created_by,
    )


def _publisher(p: dict[str, Any]) -> opb.Publisher:
    import base64

    return opb.Publisher(
        name=p["name"],
        public_key=base64.b64decode(p["public_key"]),
        key_id=p["key_id"],
        added_at=convert.ts(p["added_at"]),
    )


class ReleaseServicer(ogrpc.ReleaseServiceServicer):
    def __init__(self, rt: Runtime) -> None:
        self.rt = rt
        self.trust_domain = rt.ca.trust_domain
        self.audit = rt.audit
        self.refusals = rt.refusals

    @authenticated("AddPublisher")
    async def AddPublisher(
        self, request: opb.AddPublisherRequest, context: Ctx, caller: Identity
    ) -> opb.AddPublisherResponse:
        p = await self.rt.releases.add_publisher(caller.spiffe_id, request.name, request.public_key)
        # Every site trusts the new set only once it has it: queued for each, signed.
        await send_publishers(self.rt.directives, self.rt.registry, self.rt.releases, caller.spiffe_id)
        return opb.AddPublisherResponse(publisher=_publisher(p))

    @authenticated("ListPublishers")
    async def ListPublishers(
        self, request: opb.ListPublishersRequest, context: Ctx, caller: Identity
    ) -> opb.ListPublishersResponse:
        return opb.ListPublishersResponse(
            publishers=[_publisher(p) for p in await self.rt.releases.publishers()]
        )

    @authenticated("CreateRelease")
    async def CreateRelease(
        self, request: opb.CreateReleaseRequest, context: Ctx, caller: Identity
    ) -> opb.CreateReleaseResponse:
        return opb.CreateReleaseResponse(
            signed=await self.rt.releases.create(caller.spiffe_id, request.signed)
        )

    @authenticated("GetRelease")
    async def GetRelease(
        self, request: opb.GetReleaseRequest, context: Ctx, caller: Identity
    ) -> opb.GetReleaseResponse:
        signed, created = await self.rt.releases.get(request.name)
        return opb.GetReleaseResponse(signed=signed, created_at=convert.ts(created))

    @authenticated("ListReleases")
    async def ListReleases(
        self, request: opb.ListReleasesRequest, context: Ctx, caller: Identity
    ) -> opb.ListReleasesResponse:
        return opb.ListReleasesResponse(releases=await self.rt.releases.list())

    @authenticated("PlanRollout")
    async def PlanRollout(
        self, request: opb.PlanRolloutRequest, context: Ctx, caller: Identity
    ) -> opb.PlanRolloutResponse:
        plan = await self.rt.rollouts.plan(request.spec)
        return opb.PlanRolloutResponse(
            selected=[
                opb.PlannedSite(
                    site=c.site, country=c.country, replicas=c.replicas, score=c.score, region=c.region
                )
                for c in plan.selected
            ],
            excluded=[
                opb.ExcludedSite(site=e.site, country=e.country, reasons=list(e.reasons))
                for e in plan.excluded
            ],
        )

    @authenticated("CreateRollout")
    async def CreateRollout(
        self, request: opb.CreateRolloutRequest, context: Ctx, caller: Identity
    ) -> opb.CreateRolloutResponse:
        return opb.CreateRolloutResponse(
            rollout=rollout_to_pb(await self.rt.rollouts.create(caller.spiffe_id, request.spec))
        )

    @authenticated("GetRollout")
    async def GetRollout(
        self, request: opb.GetRolloutRequest, context: Ctx, caller: Identity
    ) -> opb.GetRolloutResponse:
        return opb.GetRolloutResponse(rollout=rollout_to_pb(await self.rt.rollouts.get(request.name)))

    @authenticated("ListRollouts")
    async def ListRollouts(
        self, request: opb.ListRolloutsRequest, context: Ctx, caller: Identity
    ) -> opb.ListRolloutsResponse:
        return opb.ListRolloutsResponse(rollouts=[rollout_to_pb(r) for r in await self.rt.rollouts.list()])

    @authenticated("UpdateRollout")
    async def UpdateRollout(
        self, request: opb.UpdateRolloutRequest, context: Ctx, caller: Identity
    ) -> opb.UpdateRolloutResponse:
        rec = await self.rt.rollouts.act(
            caller.spiffe_id, request.name, request.action, request.reason[:512], request.wave
        )
        return opb.UpdateRolloutResponse(rollout=rollout_to_pb(rec))

    @authenticated("ApproveRollout")
    async def ApproveRollout(
        self, request: opb.ApproveRolloutRequest, context: Ctx, caller: Identity
    ) -> opb.ApproveRolloutResponse:
        rec = await self.rt.rollouts.approve(caller, request.name, request.country)
        return opb.ApproveRolloutResponse(rollout=rollout_to_pb(rec))

    @authenticated("DeleteRollout")
    async def DeleteRollout(
        self, request: opb.DeleteRolloutRequest, context: Ctx, caller: Identity
    ) -> opb.DeleteRolloutResponse:
        rec = await self.rt.rollouts.delete(caller.spiffe_id, request.name)
        return opb.DeleteRolloutResponse(rollout=rollout_to_pb(rec))

    @authenticated("DeleteRelease")
    async def DeleteRelease(
        self, request: opb.DeleteReleaseRequest, context: Ctx, caller: Identity
    ) -> opb.DeleteReleaseResponse:
        return opb.DeleteReleaseResponse(
            signed=await self.rt.rollouts.delete_release(caller.spiffe_id, request.name)
        )
