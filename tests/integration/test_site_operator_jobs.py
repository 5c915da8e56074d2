"""Datasets and localisation jobs at a Kubernetes site (operators/kube/jobrunner.py), against the
Kubernetes emulator with the real site operator (kopf) enrolled in a real control plane.

The operator judges every Dataset and writes its status (Offered, or Refused with the reason: a
dataset under another country's law is refused at the site and never offered). The backend's job
methods - what the agent's RunJob and CancelJob handlers call - make a batch/v1 Job with the
claim mounted read-only plus a NetworkPolicy denying all traffic of its pods, idempotently; read
progress back as aggregates only; and cancel both. The emulator runs no Job controller: the test
writes Job status and a terminated pod as the controller and kubelet would.
(tests/envtest/test_jobs.py does the same against a real kube-apiserver, as the chart's
ServiceAccount.)
"""

from __future__ import annotations

import dataclasses
import json
import logging
import threading
from collections.abc import AsyncIterator
from typing import Any

import kmock
import kopf
import pytest

from controlplane.domain.datasets import Dataset
from controlplane.domain.jobs import JobPhase, JobProgress, JobRun
from operators.agent.backend import Refused
from operators.agent.policy import JobsPolicy, LocalPolicy
from operators.kube import jobs
from operators.kube.backend import KubernetesBackend
from operators.kube.datasets import parse as parse_dataset
from operators.kube.kubeapi import KubeAPI
from operators.kube.state import KubeRecord
from tests.integration.test_site_operator_kit import (
    GV,
    JOBS,
    NS,
    PODS,
    SETTINGS,
    WORKLOADS,
    Site,
    site,
)
from tests.support.federation import Federation
from tests.support.wait import until

DATASETS = kmock.resource("federation.stargate.io", "v1alpha1", "datasets")
NETPOLS = kmock.resource("networking.k8s.io", "v1", "networkpolicies")
PVCS = kmock.resource("", "v1", "persistentvolumeclaims")
DIGEST = "sha256:" + "ef" * 32
RUN = JobRun(
    job_id="atlas-fr-news-fr-par-1",
    job="atlas-fr-news",
    dataset="fr-news",
    purpose="fine-tune",
    image="registry.example/trainer@sha256:" + "cd" * 32,
    command=("train", "--epochs", "1"),
    accelerator="h100",
    accelerators=8,
    max_hours=12,
)


def dataset(name: str, country: str = "FR", namespace: str = WORKLOADS, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": GV,
        "kind": "Dataset",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "jurisdiction": country,
            "classification": "personal",
            "languages": ["fr"],
            "purposes": ["fine-tune"],
            "storage": {"claimName": f"{name}-corpus"},
            "steward": "dpo@fr-par-1.example",
            "sizeBytes": 3 << 40,
            **spec,
        },
    }


def pvc(name: str) -> dict[str, Any]:
    spec = {"accessModes": ["ReadOnlyMany"], "resources": {"requests": {"storage": "1Gi"}}}
    return {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": name}, "spec": spec}


@pytest.fixture
async def fr(fed: Federation) -> AsyncIterator[Site]:
    async with site(fed, "fr-par-1", "FR") as s:
        await until(lambda: s.link_status().get("connected"), 15, "fr-par-1 connected")
        yield s


@pytest.fixture
async def backend(fr: Site) -> AsyncIterator[KubernetesBackend]:
    """The site's backend in the test's loop (the operator's own lives in its kopf thread), as
    the agent's job handlers would call it: same API, settings and country."""
    api = KubeAPI(kopf.ConnectionInfo(server=fr.url, insecure=True))
    b = KubernetesBackend(
        api, SETTINGS, KubeRecord(api, NS, "unused"), lambda: LocalPolicy(), country=lambda: "FR"
    )
    try:
        yield b
    finally:
        await api.close()


def status_of(s: Site, name: str, namespace: str = WORKLOADS) -> dict[str, Any]:
    return (s.get(DATASETS, namespace, name) or {}).get("status") or {}


async def test_a_dataset_in_another_country_is_refused_at_the_site_and_never_offered(
    fr: Site, backend: KubernetesBackend
) -> None:
    await fr.emulator.create(DATASETS, dataset("fr-news"))
    await fr.emulator.create(DATASETS, dataset("de-news", country="DE", languages=["de"]))
    await fr.emulator.create(DATASETS, dataset("fr-research", namespace="research"))
    # The running operator judges them (kopf's event handler on Datasets) and says so in status.
    await until(lambda: status_of(fr, "de-news").get("phase") == "Refused", 10, "de-news refused")
    await until(lambda: status_of(fr, "fr-news").get("phase") == "Offered", 10, "fr-news offered")
    refused = status_of(fr, "de-news")
    assert "jurisdiction DE is not this site's country FR" in refused["reason"], refused
    assert "reason" not in status_of(fr, "fr-news")
    # Outside the federation namespaces the operator neither reads nor writes (no RBAC there).
    assert status_of(fr, "fr-research", "research") == {}
    # kopf posts events from its own queue, after the status patch: wait for it.
    warned = await until(lambda: fr.events("DatasetRefused"), 10, "the DatasetRefused event")
    assert "jurisdiction DE" in warned[0]["message"], warned

    offered = await backend.datasets()
    assert [d.summary.name for d in offered] == ["fr-news"]
    (d,) = offered
    assert (d.claim, d.steward) == ("fr-news-corpus", "dpo@fr-par-1.example")
    assert d.summary.to_dict() == {
        "name": "fr-news",
        "jurisdiction": "FR",
        "classification": "personal",
        "languages": ["fr"],
        "purposes": ["fine-tune"],
        "size": "large",  # 3 TiB: the bucket, never the bytes
    }
    # A run sent for the refused one is refused too, whatever the directive carries.
    de = Dataset(dataclasses.replace(d.summary, name="de-news", jurisdiction="DE"), claim="de-news-corpus")
    with pytest.raises(Refused, match="de-news: refused at this site: jurisdiction DE"):
        await backend.start_job(dataclasses.replace(RUN, job_id="j-de", dataset="de-news"), de)
    assert not fr.objects(JOBS) and not fr.objects(NETPOLS)

    # Fixing the jurisdiction in the site's own object makes it offered (re-judged on the event).
    await fr.http(
        "PATCH",
        f"/apis/{GV}/namespaces/{WORKLOADS}/datasets/de-news",
        {"spec": {"jurisdiction": "FR"}},
        merge=True,
    )
    await until(lambda: status_of(fr, "de-news").get("phase") == "Offered", 10, "de-news offered")
    assert "reason" not in status_of(fr, "de-news")


async def test_start_is_fenced_idempotent_reports_aggregates_and_cancel_removes_both(
    fr: Site, backend: KubernetesBackend
) -> None:
    await fr.emulator.create(DATASETS, dataset("fr-news", purposes=["fine-tune"]))
    (d,) = await until(backend.datasets, 10, "fr-news offered")

    # No claim yet: refused, and nothing is written.
    with pytest.raises(Refused, match="claim fr-news-corpus does not exist"):
        await backend.start_job(RUN, d)
    assert not fr.objects(JOBS) and not fr.objects(NETPOLS)
    await fr.emulator.create(PVCS, pvc("fr-news-corpus"), WORKLOADS)
    # A purpose the Dataset does not allow: refused at the site.
    with pytest.raises(Refused, match="purpose 'evaluate' is not one it allows"):
        await backend.start_job(dataclasses.replace(RUN, purpose="evaluate"), d)

    await backend.start_job(RUN, d)
    (job,) = fr.objects(JOBS, WORKLOADS)
    (fence,) = fr.objects(NETPOLS, WORKLOADS)
    pod = job["spec"]["template"]["spec"]
    (volume,) = pod["volumes"]
    assert volume["persistentVolumeClaim"] == {"claimName": "fr-news-corpus", "readOnly": True}
    assert pod["containers"][0]["volumeMounts"] == [{"name": "data", "mountPath": "/data", "readOnly": True}]
    assert pod["containers"][0]["resources"]["limits"] == {"nvidia.com/gpu": "8"}
    assert job["spec"]["activeDeadlineSeconds"] == 12 * 3600 and job["spec"]["backoffLimit"] == 0
    assert job["metadata"]["labels"][jobs.JOB_ID] == RUN.job_id
    # The fence: selects exactly the Job's pods, no egress (nor ingress) rule, owned by the Job.
    sel = fence["spec"]["podSelector"]["matchLabels"]
    assert sel and all(job["spec"]["template"]["metadata"]["labels"][k] == v for k, v in sel.items())
    assert "Egress" in fence["spec"]["policyTypes"] and not fence["spec"].get("egress")
    assert "Ingress" in fence["spec"]["policyTypes"] and not fence["spec"].get("ingress")
    (ref,) = fence["metadata"]["ownerReferences"]
    assert (ref["kind"], ref["name"], ref["uid"]) == ("Job", job["metadata"]["name"], job["metadata"]["uid"])

    # A second start (a re-delivery, an operator restart) is a no-op.
    versions = (job["metadata"]["resourceVersion"], fence["metadata"]["resourceVersion"])
    await backend.start_job(RUN, d)
    (job,) = fr.objects(JOBS, WORKLOADS)
    (fence,) = fr.objects(NETPOLS, WORKLOADS)
    assert (job["metadata"]["resourceVersion"], fence["metadata"]["resourceVersion"]) == versions
    # ... except that a fence loosened by hand is put back.
    path = f"/apis/networking.k8s.io/v1/namespaces/{WORKLOADS}/networkpolicies/{RUN.job_id}"
    await fr.http("PATCH", path, {"spec": {"egress": [{}]}}, merge=True)  # [{}]: allow all egress
    await backend.start_job(RUN, d)
    assert not fr.get(NETPOLS, WORKLOADS, RUN.job_id)["spec"].get("egress")  # type: ignore[index]

    # Progress: the Job's status and the progress annotation, aggregates only.
    assert await backend.job_progress() == [JobProgress(RUN.job_id, JobPhase.ADMITTED)]
    job_path = f"/apis/batch/v1/namespaces/{WORKLOADS}/jobs/{RUN.job_id}"
    await fr.http("PATCH", job_path + "/status", {"status": {"active": 1}}, merge=True)
    note = {"step": 40, "loss": 1.9, "evalScore": 0.42, "sample": "Marie Curie, 36 quai de Béthune"}
    await fr.http(
        "PATCH", job_path, {"metadata": {"annotations": {jobs.PROGRESS: json.dumps(note)}}}, merge=True
    )
    (p,) = await backend.job_progress()
    assert p == JobProgress(RUN.job_id, JobPhase.RUNNING, step=40, loss=1.9, eval_score=0.42)
    assert "Marie" not in repr(p)

    # It ends: the trainer's termination message (its only channel out) lands on the Job.
    await fr.http(
        "PATCH", job_path, {"metadata": {"annotations": {jobs.PROGRESS: None}}}, merge=True
    )  # as if only the pod had reported
    message = json.dumps({"step": 300, "loss": 0.41, "evalScore": 0.77, "outputDigest": DIGEST, "rows": 9})
    pod_name = f"{RUN.job_id}-x7k2p"
    await fr.emulator.create(
        PODS, {"metadata": {"name": pod_name, "labels": {jobs.JOB_ID: RUN.job_id}}}, WORKLOADS
    )
    ended = {"containerStatuses": [{"state": {"terminated": {"exitCode": 0, "message": message}}}]}
    pod_path = f"/api/v1/namespaces/{WORKLOADS}/pods/{pod_name}/status"
    await fr.http("PATCH", pod_path, {"status": ended}, merge=True)  # as the kubelet would
    await fr.http("PATCH", job_path + "/status", {"status": {"active": 0, "succeeded": 1}}, merge=True)
    (p,) = await backend.job_progress()
    assert p == JobProgress(
        RUN.job_id, JobPhase.SUCCEEDED, step=300, loss=0.41, eval_score=0.77, output_digest=DIGEST
    )
    annotations = fr.get(JOBS, WORKLOADS, RUN.job_id)["metadata"]["annotations"]  # type: ignore[index]
    assert annotations[jobs.OUTPUT_DIGEST] == DIGEST and "rows" not in annotations[jobs.PROGRESS]

    # Cancel: the Job and its fence go; the run is reported Cancelled; a second cancel is harmless.
    await backend.cancel_job(RUN.job_id)
    assert not fr.objects(JOBS, WORKLOADS) and not fr.objects(NETPOLS, WORKLOADS)
    await backend.cancel_job(RUN.job_id)
    assert await backend.job_progress() == [JobProgress(RUN.job_id, JobPhase.CANCELLED, reason="cancelled")]


async def test_a_job_deleted_at_the_site_is_reported_failed_and_a_foreign_job_is_not_touched(
    fr: Site, backend: KubernetesBackend
) -> None:
    await fr.emulator.create(DATASETS, dataset("fr-news"))
    await fr.emulator.create(PVCS, pvc("fr-news-corpus"), WORKLOADS)
    (d,) = await until(backend.datasets, 10, "fr-news offered")
    await backend.start_job(RUN, d)
    await fr.http("DELETE", f"/apis/batch/v1/namespaces/{WORKLOADS}/jobs/{RUN.job_id}")
    (p,) = await backend.job_progress()
    assert (p.job_id, p.phase, p.reason) == (RUN.job_id, JobPhase.FAILED, "DeletedAtSite")

    # A Job of that name that is not this run's (a site's own): neither adopted nor deleted.
    other = dataclasses.replace(RUN, job_id="their-job")
    await fr.emulator.create(
        JOBS, {"metadata": {"name": "their-job", "labels": {"team": "research"}}, "spec": {}}, WORKLOADS
    )
    with pytest.raises(Refused, match="exists and is not the run their-job"):
        await backend.start_job(other, d)
    with pytest.raises(Refused, match="exists and is not the run their-job"):
        await backend.cancel_job("their-job")
    assert fr.get(JOBS, WORKLOADS, "their-job") is not None
    assert [o["metadata"]["name"] for o in fr.objects(NETPOLS, WORKLOADS)] == [RUN.job_id]

    # A NetworkPolicy of the site's own with a run's name: never rewritten, and no Job unfenced.
    theirs = {"metadata": {"name": "fenced-run"}, "spec": {"podSelector": {}, "policyTypes": ["Ingress"]}}
    await fr.emulator.create(NETPOLS, theirs, WORKLOADS)
    with pytest.raises(Refused, match="NetworkPolicy named fenced-run exists and is not the fence"):
        await backend.start_job(dataclasses.replace(RUN, job_id="fenced-run"), d)
    assert fr.get(JOBS, WORKLOADS, "fenced-run") is None
    assert fr.get(NETPOLS, WORKLOADS, "fenced-run")["spec"] == theirs["spec"]  # type: ignore[index]

    # The run started again after its Job was deleted (nothing collects here): the fence left
    # behind is owned by the new Job, not the gone one (whose absence would have the garbage
    # collector delete the fence under the running Job).
    await backend.start_job(RUN, d)
    job = fr.get(JOBS, WORKLOADS, RUN.job_id)
    (ref,) = fr.get(NETPOLS, WORKLOADS, RUN.job_id)["metadata"]["ownerReferences"]  # type: ignore[index]
    assert job is not None and ref["uid"] == job["metadata"]["uid"]


async def test_the_sites_max_hours_bound_the_deadline_and_a_finished_job_cleaned_up_stays_finished(
    fr: Site, backend: KubernetesBackend
) -> None:
    await fr.emulator.create(DATASETS, dataset("fr-news"))
    await fr.emulator.create(PVCS, pvc("fr-news-corpus"), WORKLOADS)
    (d,) = await until(backend.datasets, 10, "fr-news offered")
    backend.jobs.policy = lambda: LocalPolicy(jobs=JobsPolicy(max_hours=2))
    await backend.start_job(RUN, d)  # it asks for 12 h
    assert fr.get(JOBS, WORKLOADS, RUN.job_id)["spec"]["activeDeadlineSeconds"] == 7200  # type: ignore[index]
    job_path = f"/apis/batch/v1/namespaces/{WORKLOADS}/jobs/{RUN.job_id}"
    await fr.http("PATCH", job_path + "/status", {"status": {"succeeded": 1}}, merge=True)
    assert [p.phase for p in await backend.job_progress()] == [JobPhase.SUCCEEDED]
    await fr.http("DELETE", job_path)  # the site's clean-up
    assert [(p.phase, p.reason) for p in await backend.job_progress()] == [(JobPhase.SUCCEEDED, "")]


async def test_a_site_without_the_dataset_crd_offers_nothing_and_refuses_runs(
    fr: Site, backend: KubernetesBackend, caplog: pytest.LogCaptureFixture
) -> None:
    # As after a `helm upgrade` from a chart without it (Helm installs no new CRDs on upgrade).
    caplog.set_level(logging.INFO, logger="operators.kube.jobrunner")
    await fr.http(
        "DELETE", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions/datasets.federation.stargate.io"
    )
    assert await backend.datasets() == [] and await backend.datasets() == []
    # The operator's own backend (in its kopf thread) may say it too: count this backend's.
    here = threading.get_ident()
    said = [r for r in caplog.records if "no Dataset resource" in r.getMessage() and r.thread == here]
    assert len(said) == 1, said  # once, not every heartbeat
    d = parse_dataset(dataset("fr-news"))
    with pytest.raises(Refused, match="no such Dataset"):
        await backend.start_job(RUN, d)
    assert await backend.job_progress() == []


async def test_any_job_id_maps_to_one_job_and_other_operator_jobs_are_not_runs(
    fr: Site, backend: KubernetesBackend
) -> None:
    await fr.emulator.create(DATASETS, dataset("fr-news"))
    await fr.emulator.create(PVCS, pvc("fr-news-corpus"), WORKLOADS)
    (d,) = await until(backend.datasets, 10, "fr-news offered")
    odd = dataclasses.replace(RUN, job_id="Atlas.FR/news@fr-par-1")  # not a DNS label
    await backend.start_job(odd, d)
    await backend.start_job(odd, d)
    (job,) = fr.objects(JOBS, WORKLOADS)
    name = job["metadata"]["name"]
    assert name == jobs.job_name(odd.job_id) and name.startswith("atlas-fr-news-fr-par-1-")
    assert [n["metadata"]["name"] for n in fr.objects(NETPOLS, WORKLOADS)] == [name]
    # A Job the operator made for something else (the safety evaluation) is not a run.
    safety = {
        "metadata": {
            "name": "atlas-safety-abc",
            "labels": {"app.kubernetes.io/managed-by": "stargate-site-operator"},
        }
    }
    await fr.emulator.create(JOBS, {**safety, "spec": {}}, WORKLOADS)
    assert [(p.job_id, p.phase) for p in await backend.job_progress()] == [(odd.job_id, JobPhase.ADMITTED)]
    await backend.cancel_job(odd.job_id)
    assert [j["metadata"]["name"] for j in fr.objects(JOBS, WORKLOADS)] == ["atlas-safety-abc"]
    assert not fr.objects(NETPOLS, WORKLOADS)
