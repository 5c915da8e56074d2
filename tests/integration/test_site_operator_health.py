"""A Kubernetes site measures health for real (kube emulator + the real kopf operator + a real
control plane): readiness of the revision that carries the release, error rate and p95 latency
scraped from the pods' /metrics (a real prometheus_client model-server stand-in), and a safety score
from an evaluation Job's termination message - all reported upstream as aggregates."""

from __future__ import annotations

import asyncio
from typing import Any

from controlplane.api.v1 import federation_pb2 as fpb
from controlplane.api.v1 import types_pb2 as tpb
from operators.kube.safety_eval import SCORE, job_name
from operators.kube.settings import MODEL_LABEL
from tests.integration.test_site_operator import deploy, phase
from tests.integration.test_site_operator_kit import (
    DIGEST,
    JOBS,
    MD,
    PODS,
    WORKLOADS,
    FakeKubelet,
    Site,
    site,
)
from tests.support.federation import Federation
from tests.support.model_server import ModelServer
from tests.support.requests import deploy as send_deploy
from tests.support.wait import until

V2 = "sha256:" + "cd" * 32


async def upstream(fed: Federation, site_id: str, name: str = "atlas") -> tpb.DeploymentStatus | None:
    async with fed.client() as c:
        s = (await c.call("GetSite", fpb.GetSiteRequest(site_id=site_id))).site
    return next((d for d in s.deployments if d.name == name), None)


def measured(d: tpb.DeploymentStatus | None) -> set[int]:
    return set(d.measured) if d is not None else set()


async def pod(s: Site, name: str, digest: str, **status: Any) -> None:
    """What the kubelet would create for the Deployment: a pod of its revision, on 127.0.0.1."""
    body = {
        "metadata": {"name": name, "labels": {MODEL_LABEL: "atlas"}},
        "spec": {"containers": [{"name": "model", "env": [{"name": "MODEL_DIGEST", "value": digest}]}]},
        "status": {"phase": "Running", "podIP": "127.0.0.1", **status},
    }
    await s.emulator.create(PODS, body, WORKLOADS)
    # The emulator drops status on create, as a real API server does: set it as the kubelet would.
    await s.http(
        "PATCH", f"/api/v1/namespaces/{WORKLOADS}/pods/{name}/status", {"status": body["status"]}, merge=True
    )


async def test_readiness_is_the_new_revisions_not_the_previous_ones(fed: Federation) -> None:
    async with site(fed, "fr-par-1", "FR") as fr, FakeKubelet([fr]) as kubelet:
        await until(lambda: fr.link_status().get("connected"), 15, "connected")
        async with fed.client() as c:
            await send_deploy(c, deploy("fr-par-1", "atlas", replicas=2))
        await until(lambda: phase(fr, "atlas") == "Running", 10, "v1 running")
        kubelet.paused = True  # the Deployment controller has not caught up with the new template
        async with fed.client() as c:
            req = deploy("fr-par-1", "atlas", replicas=2)
            req.deploy.version, req.deploy.digest = "2.0", V2
            await send_deploy(c, req)

        async def v2_reported() -> tpb.DeploymentStatus | None:
            d = await upstream(fed, "fr-par-1")
            return d if d is not None and d.digest == V2 else None

        d = await until(v2_reported, 10, "v2 reported upstream")
        for _ in range(10):  # the old revision's 2 ready replicas never count for v2
            d = await upstream(fed, "fr-par-1")
            assert d is not None and d.digest == V2 and d.ready_replicas == 0 and d.phase != "Running", d
            await asyncio.sleep(0.1)
        kubelet.paused = False

        async def v2_ready() -> bool:
            d = await upstream(fed, "fr-par-1")
            return d is not None and d.digest == V2 and d.ready_replicas == 2

        await until(v2_ready, 10, "v2 ready upstream")


async def test_error_rate_and_p95_scraped_from_the_pods(fed: Federation) -> None:
    with ModelServer(error_rate=0.1) as server:
        policy = {"metrics": {"scrapePort": server.port}}
        async with site(fed, "fr-par-1", "FR", policy=policy) as fr, FakeKubelet([fr]):
            await until(lambda: fr.link_status().get("connected"), 15, "connected")
            async with fed.client() as c:
                await send_deploy(c, deploy("fr-par-1", "atlas"))
            await until(lambda: phase(fr, "atlas") == "Running", 10, "running")
            d = await upstream(fed, "fr-par-1")
            assert d is not None and not measured(d), d  # no pod scraped yet: not measured, not 0
            await pod(fr, "atlas-1", DIGEST)
            await pod(fr, "atlas-old", "sha256:" + "00" * 32)  # another revision's pod: not scraped

            async def scraped() -> tpb.DeploymentStatus | None:
                d = await upstream(fed, "fr-par-1")
                return d if tpb.HEALTH_METRIC_ERROR_RATE in measured(d) else None

            d = await until(scraped, 15, "error rate measured upstream")
            assert abs(d.error_rate - 0.1) <= 0.04, d
            assert tpb.HEALTH_METRIC_LATENCY_P95 in measured(d) and 400 <= d.latency_p95_ms <= 1000, d
            assert tpb.HEALTH_METRIC_SAFETY_SCORE not in measured(d)  # no evaluation configured


async def test_safety_score_from_the_evaluation_jobs_termination_message(fed: Federation) -> None:
    policy = {"safetyEvaluation": {"image": "registry.site/eval:1", "args": ["--suite", "eu"]}}
    async with site(fed, "de-fra-1", "DE", policy=policy) as de, FakeKubelet([de]):
        await until(lambda: de.link_status().get("connected"), 15, "connected")
        async with fed.client() as c:
            await send_deploy(c, deploy("de-fra-1", "atlas"))
        name = job_name("atlas", DIGEST)
        job = await until(lambda: de.get(JOBS, WORKLOADS, name), 10, "the evaluation Job")
        assert job["spec"]["template"]["spec"]["containers"][0]["image"] == "registry.site/eval:1"
        await asyncio.sleep(0.5)
        assert tpb.HEALTH_METRIC_SAFETY_SCORE not in measured(
            await upstream(fed, "de-fra-1")
        )  # still running
        done = {
            "containerStatuses": [
                {"name": "evaluate", "state": {"terminated": {"exitCode": 0, "message": "0.42"}}}
            ]
        }
        body = {
            "metadata": {"name": f"{name}-x", "labels": {"job-name": name}},
            "spec": {"containers": [{"name": "evaluate"}]},
        }
        await de.emulator.create(PODS, body, WORKLOADS)
        await de.http(
            "PATCH", f"/api/v1/namespaces/{WORKLOADS}/pods/{name}-x/status", {"status": done}, merge=True
        )

        async def scored() -> tpb.DeploymentStatus | None:
            d = await upstream(fed, "de-fra-1")
            return d if tpb.HEALTH_METRIC_SAFETY_SCORE in measured(d) else None

        d = await until(scored, 10, "safety score upstream")
        assert abs(d.safety_score - 0.42) < 1e-6
        annotations = de.get(JOBS, WORKLOADS, name)["metadata"]["annotations"]  # type: ignore[index]
        assert annotations[SCORE] == "0.42"  # recorded at the site, read again after a restart
        assert de.get(MD, WORKLOADS, "atlas") is not None
