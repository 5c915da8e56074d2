"""JobService: datasets (summaries only) and localisation jobs."""

from __future__ import annotations

from typing import TypeAlias

import grpc
from google.protobuf import json_format

from controlplane.api.v1 import jobs_pb2 as jpb
from controlplane.api.v1 import jobs_pb2_grpc as jgrpc
from controlplane.api.v1 import rollouts_pb2 as opb
from controlplane.api.v1 import types_pb2 as tpb
from controlplane.domain.job_records import JobRecord
from controlplane.pki.identity import Identity
from controlplane.server import convert
from controlplane.server.rpc import authenticated
from controlplane.server.runtime import Runtime

Ctx: TypeAlias = grpc.aio.ServicerContext
#: Datasets one ListDatasets answer lists (~250 bytes each: ~2.5 MB).
MAX_LISTED = 10_000
_STATUS = {
    "Pending": tpb.SITE_STATUS_PENDING,
    "Ready": tpb.SITE_STATUS_READY,
    "Unreachable": tpb.SITE_STATUS_UNREACHABLE,
    "Cordoned": tpb.SITE_STATUS_CORDONED,
}


def job_to_pb(r: JobRecord) -> jpb.Job:
    spec = json_format.ParseDict(r.spec, jpb.LocalizationJobSpec(), ignore_unknown_fields=True)
    p = r.progress
    excluded = [
        opb.ExcludedSite(site=e["site"], country=e["country"], reasons=e["reasons"]) for e in r.excluded
    ]
    if r.excluded_more:
        excluded.append(opb.ExcludedSite(site="...", reasons=[f"{r.excluded_more} more sites not listed"]))
    return jpb.Job(
        spec=spec,
        phase=r.phase,
        message=r.message,
        sites=r.sites,
        dataset_country=r.dataset_country,
        dataset=r.dataset,
        approved_countries=r.approved,
        pending_countries=[c for c in r.needs_approval if c not in r.approved],
        excluded=excluded,
        progress=jpb.JobProgressView(
            step=int(p.get("step", 0)),
            loss=float(p.get("loss", -1.0)),
            eval_score=float(p.get("eval_score", -1.0)),
            output_digest=str(p.get("output_digest", "")),
        ),
        created_at=convert.ts(r.created_at),
        updated_at=convert.ts(r.updated_at),
        created_by=r.created_by,
        variant=r.variant,
        job_id=r.job_id,
    )


class JobServicer(jgrpc.JobServiceServicer):
    def __init__(self, rt: Runtime) -> None:
        self.rt = rt
        self.trust_domain = rt.ca.trust_domain
        self.refusals = rt.refusals

    @authenticated("ListDatasets")
    async def ListDatasets(
        self, request: jpb.ListDatasetsRequest, context: Ctx, caller: Identity
    ) -> jpb.ListDatasetsResponse:
        found = await self.rt.jobs.list_datasets(request.country, request.language)
        # 256 per site at 10,000 sites would be ~400 MB: one answer stays within gRPC's 4 MiB.
        found, more = found[:MAX_LISTED], max(0, len(found) - MAX_LISTED)
        return jpb.ListDatasetsResponse(
            more=more,
            datasets=[
                jpb.SiteDataset(
                    site_id=s.site_id,
                    country=s.country,
                    site_status=_STATUS.get(s.shown_status, tpb.SITE_STATUS_UNSPECIFIED),
                    dataset=json_format.ParseDict(d, tpb.DatasetSummary(), ignore_unknown_fields=True),
                )
                for s, d in found
            ],
        )

    @authenticated("CreateJob")
    async def CreateJob(
        self, request: jpb.CreateJobRequest, context: Ctx, caller: Identity
    ) -> jpb.CreateJobResponse:
        return jpb.CreateJobResponse(job=job_to_pb(await self.rt.jobs.create(caller.spiffe_id, request.spec)))

    @authenticated("GetJob")
    async def GetJob(self, request: jpb.GetJobRequest, context: Ctx, caller: Identity) -> jpb.GetJobResponse:
        return jpb.GetJobResponse(job=job_to_pb(await self.rt.jobs.get(request.name)))

    @authenticated("ListJobs")
    async def ListJobs(
        self, request: jpb.ListJobsRequest, context: Ctx, caller: Identity
    ) -> jpb.ListJobsResponse:
        return jpb.ListJobsResponse(jobs=[job_to_pb(r) for r in await self.rt.jobs.list()])

    @authenticated("ApproveJob")
    async def ApproveJob(
        self, request: jpb.ApproveJobRequest, context: Ctx, caller: Identity
    ) -> jpb.ApproveJobResponse:
        return jpb.ApproveJobResponse(
            job=job_to_pb(await self.rt.jobs.approve(caller, request.name, request.country))
        )

    @authenticated("CancelJob")
    async def CancelJob(
        self, request: jpb.CancelJobRequest, context: Ctx, caller: Identity
    ) -> jpb.CancelJobResponse:
        rec = await self.rt.jobs.cancel(caller.spiffe_id, request.name, request.reason)
        return jpb.CancelJobResponse(job=job_to_pb(rec))

    @authenticated("ApproveVariantExport")
    async def ApproveVariantExport(
        self, request: jpb.ApproveVariantExportRequest, context: Ctx, caller: Identity
    ) -> jpb.ApproveVariantExportResponse:
        country, rules = await self.rt.jobs.approve_variant_export(
            caller, request.release, list(request.allow_countries), request.reason
        )
        return jpb.ApproveVariantExportResponse(country=country, approved_exports=rules)
