"""Issue 15 across both halves: a LocalizationJob created at a real federation reaches a site run by
the real Kubernetes site operator (kopf, against the Kubernetes emulator), which holds the data as
a Dataset custom resource. The federation hears only the Dataset's summary, places the job there,
and after the French steward's consent the site makes a batch/v1 Job with the dataset's claim
mounted read-only and a NetworkPolicy closing its pods; a cancel removes both."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from controlplane.api.v1 import jobs_pb2 as jpb
from controlplane.domain.jobs import JobPhase
from controlplane.pki.identity import Role
from tests.integration.test_site_operator_jobs import DATASETS, NETPOLS, PVCS, dataset, pvc
from tests.integration.test_site_operator_kit import JOBS, WORKLOADS, Site, site
from tests.support.federation import Federation
from tests.support.job_world import JobWorld, job_spec
from tests.support.requests import register_release
from tests.support.wait import until


@pytest.fixture
async def fr(fed: Federation) -> AsyncIterator[Site]:
    async with site(fed, "fr-par-1", "FR") as s:
        await until(lambda: s.link_status().get("connected"), 15, "fr-par-1 connected")
        yield s


def _claims(job: dict[str, Any]) -> list[dict[str, Any]]:
    pod = job["spec"]["template"]["spec"]
    return [v["persistentVolumeClaim"] for v in pod["volumes"] if "persistentVolumeClaim" in v]


async def test_a_federation_job_becomes_a_kubernetes_job_next_to_the_data(
    fed: Federation, fr: Site, tmp_path: Path
) -> None:
    await fr.emulator.create(DATASETS, dataset("fr-news"))
    await fr.emulator.create(DATASETS, dataset("de-news", country="DE", languages=["de"]))
    world = JobWorld(fed, tmp_path)
    world.admin = fed.client()
    try:
        await register_release(world.admin, "atlas-1.2.0")

        async def reported() -> list[Any]:
            return list((await world.admin.call("ListDatasets", jpb.ListDatasetsRequest())).datasets)

        listed = await until(reported, 20, "the site's dataset summaries")
        # Only the summary of the one under the site's own law; never its claim or steward.
        assert [(d.site_id, d.dataset.name, d.dataset.size) for d in listed] == [
            ("fr-par-1", "fr-news", "large")
        ]
        async with world.person("claire", Role.STEWARD, "FR") as steward:
            # First without the data's claim at the site: the site itself vetoes, the job is Refused.
            first = job_spec("no-claim", dataset_name="fr-news", accelerators=0)
            await world.admin.call("CreateJob", jpb.CreateJobRequest(spec=first))
            await steward.call("ApproveJob", jpb.ApproveJobRequest(name="no-claim", country="FR"))
            refused = await world.wait_job("no-claim", JobPhase.REFUSED, 20)
            assert "its claim fr-news-corpus does not exist" in refused.message, refused.message
            assert not fr.objects(JOBS, WORKLOADS)
            await fr.emulator.create(PVCS, pvc("fr-news-corpus"), WORKLOADS)
            spec = job_spec(dataset_name="fr-news", accelerators=0)
            job = (await world.admin.call("CreateJob", jpb.CreateJobRequest(spec=spec))).job
            assert (job.phase, list(job.sites)) == (JobPhase.WAITING_FOR_APPROVAL, ["fr-par-1"])
            await steward.call("ApproveJob", jpb.ApproveJobRequest(name=job.spec.name, country="FR"))
        jobs = await until(lambda: fr.objects(JOBS, WORKLOADS), 20, "the batch/v1 Job at the site")
        assert _claims(jobs[0])[0] == {"claimName": "fr-news-corpus", "readOnly": True}
        (netpol,) = await until(lambda: fr.objects(NETPOLS, WORKLOADS), 10, "the NetworkPolicy")
        assert "Egress" in netpol["spec"]["policyTypes"] and not netpol["spec"].get("egress")
        admitted = await world.job(job.spec.name)
        assert admitted.phase in (JobPhase.ADMITTED, JobPhase.RUNNING) and list(admitted.sites) == [
            "fr-par-1"
        ]
        await world.admin.call("CancelJob", jpb.CancelJobRequest(name=job.spec.name, reason="test"))
        await until(
            lambda: not fr.objects(JOBS, WORKLOADS) and not fr.objects(NETPOLS, WORKLOADS), 20, "both removed"
        )
    finally:
        await world.close()
