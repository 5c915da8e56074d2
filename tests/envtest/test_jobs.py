"""Datasets and localisation jobs against a real kube-apiserver, as the chart's ServiceAccount.

The chart's RBAC (rendered with helm-python-sdk) is applied and the site backend's job methods
(operators/kube/jobrunner.py) run with a real token of the operator's ServiceAccount (the
TokenRequest API): the server validates the Job and the NetworkPolicy the site writes, enforces
least privilege, and deletes a Job with its pods' propagation (Background; batch/v1's default is
to orphan them). No controller-manager runs here, so the test writes the Job's status as the Job
controller would.
"""

from __future__ import annotations

import dataclasses
import json
import urllib.error
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import kopf
import pytest

from controlplane.domain.jobs import JobPhase, JobProgress, JobRun
from operators.agent.backend import Refused
from operators.agent.policy import LocalPolicy
from operators.kube import jobs
from operators.kube.backend import KubernetesBackend
from operators.kube.kubeapi import DATASETS, JOBS, PVCS, SECRETS, KubeAPI, KubeError
from operators.kube.settings import Settings
from operators.kube.state import KubeRecord
from tests.support.charts import render
from tests.support.envtest import ApiServer

CHART = Path(__file__).resolve().parents[2] / "charts" / "stargate-site"
OPERATOR_NS, JOBS_NS = "stargate-jobs", "jobs-fr"  # apart from the other modules' objects
SA = "t-stargate-site"  # the chart's ServiceAccount for release name "t"
GVP = "/apis/federation.stargate.io/v1alpha1"
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


def get(api: ApiServer, path: str) -> dict[str, Any] | None:
    try:
        return api.request("GET", path)  # type: ignore[no-any-return]
    except urllib.error.HTTPError as e:
        if e.code == 404:
            return None
        raise


def merge(api: ApiServer, path: str, body: dict[str, Any]) -> None:
    api.request("PATCH", path, body, "application/merge-patch+json")


def dataset(name: str, country: str) -> dict[str, Any]:
    return {
        "apiVersion": "federation.stargate.io/v1alpha1",
        "kind": "Dataset",
        "metadata": {"name": name, "namespace": JOBS_NS},
        "spec": {
            "jurisdiction": country,
            "classification": "personal",
            "languages": ["fr"],
            "purposes": ["fine-tune", "evaluate"],
            "storage": {"claimName": f"{name}-corpus"},
            "steward": "dpo@fr-par-1.example",
            "sizeBytes": 5 << 30,
        },
    }


@pytest.fixture
async def site(apiserver: ApiServer) -> AsyncIterator[KubernetesBackend]:
    """The cluster as the chart leaves it (CRDs, namespaces, the operator's ServiceAccount and
    RBAC for one federation namespace), the site's data (a claim, two Datasets), and the
    backend logged in with the ServiceAccount's token."""
    api = apiserver
    api.kubectl("apply", "-f", str(CHART / "crds" / "datasets.federation.stargate.io.yaml"))
    api.kubectl("wait", "--for=condition=Established", "--timeout=30s", "crd/datasets.federation.stargate.io")
    for ns in (OPERATOR_NS, JOBS_NS):
        api.kubectl("create", "namespace", ns, check=False)
    objs = render("stargate-site", {"federationNamespaces": [JOBS_NS]}, namespace=OPERATOR_NS)
    rbac = [
        o
        for o in objs
        if o["kind"] == "ServiceAccount"
        or (o["kind"] in ("Role", "RoleBinding") and o["metadata"]["namespace"] == JOBS_NS)
    ]
    assert {o["kind"] for o in rbac} == {"ServiceAccount", "Role", "RoleBinding"}
    api.kubectl("apply", "-f", "-", stdin=json.dumps({"apiVersion": "v1", "kind": "List", "items": rbac}))
    claim = {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": {"name": "fr-news-corpus", "namespace": JOBS_NS},
        "spec": {"accessModes": ["ReadOnlyMany"], "resources": {"requests": {"storage": "1Gi"}}},
    }
    docs = [claim, dataset("fr-news", "FR"), dataset("de-news", "DE")]
    # Through kubectl's and the server's validation: the shipped CRD accepts them as written.
    api.kubectl("apply", "-f", "-", stdin=json.dumps({"apiVersion": "v1", "kind": "List", "items": docs}))
    token = api.request(
        "POST",
        f"/api/v1/namespaces/{OPERATOR_NS}/serviceaccounts/{SA}/token",
        {
            "apiVersion": "authentication.k8s.io/v1",
            "kind": "TokenRequest",
            "spec": {"expirationSeconds": 3600},
        },
    )["status"]["token"]
    info = kopf.ConnectionInfo(server=api.url, ca_path=str(api.pki.files["ca.crt"]), token=token)
    kube = KubeAPI(info)
    settings = Settings(namespace=OPERATOR_NS, federation_namespaces=(JOBS_NS,))
    backend = KubernetesBackend(
        kube, settings, KubeRecord(kube, OPERATOR_NS, "unused"), lambda: LocalPolicy(), country=lambda: "FR"
    )
    try:
        yield backend
    finally:
        await kube.close()
        for kind in ("jobs", "networkpolicies", "datasets", "pods"):
            api.kubectl("delete", kind, "--all", "-n", JOBS_NS, "--wait=false", check=False)


async def test_job_and_fence_on_a_real_api_server_with_the_charts_least_privilege(
    apiserver: ApiServer, site: KubernetesBackend
) -> None:
    api, backend = apiserver, site
    # The Datasets: only the one in the site's country is offered; the other is refused in its
    # status (written with the ServiceAccount's datasets/status permission).
    offered = await backend.datasets()
    assert [d.summary.name for d in offered] == ["fr-news"]
    de = get(api, f"{GVP}/namespaces/{JOBS_NS}/datasets/de-news") or {}
    assert de["status"]["phase"] == "Refused", de
    assert "jurisdiction DE is not this site's country FR" in de["status"]["reason"]
    fr = get(api, f"{GVP}/namespaces/{JOBS_NS}/datasets/fr-news") or {}
    assert fr["status"] == {"phase": "Offered", "observedGeneration": 1}, fr

    (d,) = offered
    await backend.start_job(RUN, d)
    job_path = f"/apis/batch/v1/namespaces/{JOBS_NS}/jobs/{RUN.job_id}"
    np_path = f"/apis/networking.k8s.io/v1/namespaces/{JOBS_NS}/networkpolicies/{RUN.job_id}"
    job, fence = get(api, job_path), get(api, np_path)
    assert job is not None and fence is not None
    pod = job["spec"]["template"]["spec"]
    assert pod["volumes"][0]["persistentVolumeClaim"] == {"claimName": "fr-news-corpus", "readOnly": True}
    mount = pod["containers"][0]["volumeMounts"][0]
    assert mount["mountPath"] == "/data" and mount["readOnly"] is True
    assert pod["containers"][0]["resources"]["limits"] == {"nvidia.com/gpu": "8"}
    assert pod["automountServiceAccountToken"] is False and pod["restartPolicy"] == "Never"
    assert job["spec"]["activeDeadlineSeconds"] == 43200 and job["spec"]["backoffLimit"] == 0
    # The fence as the server stored it: the Job's pods, no egress rule, no ingress rule.
    pod_labels = job["spec"]["template"]["metadata"]["labels"]
    selected = fence["spec"]["podSelector"]["matchLabels"]
    assert selected and all(pod_labels[k] == v for k, v in selected.items())
    assert sorted(fence["spec"]["policyTypes"]) == ["Egress", "Ingress"]
    assert not fence["spec"].get("egress") and not fence["spec"].get("ingress")
    (ref,) = fence["metadata"]["ownerReferences"]
    assert (ref["kind"], ref["uid"]) == ("Job", job["metadata"]["uid"])

    # Idempotent: a second start changes nothing.
    versions = (job["metadata"]["resourceVersion"], fence["metadata"]["resourceVersion"])
    await backend.start_job(RUN, d)
    assert (
        (get(api, job_path) or {})["metadata"]["resourceVersion"],
        (get(api, np_path) or {})["metadata"]["resourceVersion"],
    ) == versions

    # Progress from the status the Job controller would write, plus the progress annotation.
    assert await backend.job_progress() == [JobProgress(RUN.job_id, JobPhase.ADMITTED)]
    merge(api, job_path + "/status", {"status": {"active": 1, "startTime": "2026-01-01T00:00:00Z"}})
    note = {"step": 40, "loss": 1.9, "evalScore": 0.42, "samples": ["Marie Curie, 36 quai de Béthune"]}
    merge(
        api,
        job_path,
        {"metadata": {"annotations": {jobs.PROGRESS: json.dumps(note), jobs.OUTPUT_DIGEST: DIGEST}}},
    )
    assert await backend.job_progress() == [
        JobProgress(RUN.job_id, JobPhase.RUNNING, step=40, loss=1.9, eval_score=0.42)
    ]
    done = {
        "active": 0,
        "succeeded": 1,
        "completionTime": "2026-01-01T01:00:00Z",
        "conditions": [
            {"type": "Complete", "status": "True", "lastProbeTime": "2026-01-01T01:00:00Z",
             "lastTransitionTime": "2026-01-01T01:00:00Z"},
        ],
    }  # fmt: skip
    # The trainer's own channel: its pod's termination message (the annotation gone, as if only
    # the pod had reported), written as the kubelet would, then recorded on the Job by the site.
    merge(api, job_path, {"metadata": {"annotations": {jobs.PROGRESS: None, jobs.OUTPUT_DIGEST: None}}})
    pod_name = f"{RUN.job_id}-x7k2p"
    template = job["spec"]["template"]
    pod_body = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": pod_name, "namespace": JOBS_NS, "labels": template["metadata"]["labels"]},
        "spec": template["spec"],
    }
    api.request("POST", f"/api/v1/namespaces/{JOBS_NS}/pods", pod_body)
    message = json.dumps({"step": 300, "loss": 0.41, "evalScore": 0.77, "outputDigest": DIGEST, "rows": 9})
    times = {"startedAt": "2026-01-01T00:00:00Z", "finishedAt": "2026-01-01T01:00:00Z"}
    terminated = {"exitCode": 0, "message": message, "reason": "Completed", **times}
    trainer = {"name": "trainer", "image": RUN.image, "imageID": "", "ready": False, "restartCount": 0}
    ended = {"phase": "Succeeded", "containerStatuses": [{**trainer, "state": {"terminated": terminated}}]}
    merge(api, f"/api/v1/namespaces/{JOBS_NS}/pods/{pod_name}/status", {"status": ended})
    merge(api, job_path + "/status", {"status": done})
    assert await backend.job_progress() == [
        JobProgress(
            RUN.job_id, JobPhase.SUCCEEDED, step=300, loss=0.41, eval_score=0.77, output_digest=DIGEST
        )
    ]
    recorded = (get(api, job_path) or {})["metadata"]["annotations"]
    assert recorded[jobs.OUTPUT_DIGEST] == DIGEST and "rows" not in recorded[jobs.PROGRESS]

    # Least privilege: what the operator has no business doing, the server refuses.
    kube = backend.api
    forbidden = {
        "read Secrets in the job namespace": lambda: kube.list(SECRETS, JOBS_NS),
        "start a Job outside the federation namespaces": lambda: kube.create(
            JOBS, "default", {"metadata": {"name": "x"}}
        ),
        "change a Dataset's spec": lambda: kube.patch(
            DATASETS, JOBS_NS, "fr-news", {"spec": {"steward": "x"}}
        ),
        "delete a claim": lambda: kube.delete(PVCS, JOBS_NS, "fr-news-corpus"),
    }
    for what, call in forbidden.items():
        with pytest.raises(KubeError) as e:
            await call()
        assert e.value.status == 403, what

    # Cancel: the Job (propagation Background: gone at once, its pods collected) and its fence.
    await backend.cancel_job(RUN.job_id)
    assert get(api, job_path) is None and get(api, np_path) is None
    assert await backend.job_progress() == [JobProgress(RUN.job_id, JobPhase.CANCELLED, reason="cancelled")]


async def test_without_background_propagation_a_deleted_job_would_linger(apiserver: ApiServer) -> None:
    """Why cancel_job names the propagation: batch/v1 orphans a Job's pods by default, which
    leaves the Job itself behind until the garbage collector (here: none) clears it."""
    apiserver.kubectl("create", "namespace", JOBS_NS, check=False)
    body = {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": "orphaning", "namespace": JOBS_NS},
        "spec": {
            "template": {
                "spec": {"restartPolicy": "Never", "containers": [{"name": "c", "image": "busybox"}]}
            }
        },
    }
    apiserver.request("POST", f"/apis/batch/v1/namespaces/{JOBS_NS}/jobs", body)
    apiserver.request("DELETE", f"/apis/batch/v1/namespaces/{JOBS_NS}/jobs/orphaning")
    left = get(apiserver, f"/apis/batch/v1/namespaces/{JOBS_NS}/jobs/orphaning")
    assert left is not None and "orphan" in left["metadata"].get("finalizers", []), left
    merge(
        apiserver, f"/apis/batch/v1/namespaces/{JOBS_NS}/jobs/orphaning", {"metadata": {"finalizers": None}}
    )


async def test_a_run_for_a_refused_dataset_writes_nothing(
    apiserver: ApiServer, site: KubernetesBackend
) -> None:
    (d,) = await site.datasets()
    de = dataclasses.replace(d, summary=dataclasses.replace(d.summary, name="de-news", jurisdiction="DE"))
    with pytest.raises(Refused, match="refused at this site: jurisdiction DE"):
        await site.start_job(dataclasses.replace(RUN, job_id="j-de", dataset="de-news"), de)
    assert get(apiserver, f"/apis/batch/v1/namespaces/{JOBS_NS}/jobs/j-de") is None
    assert get(apiserver, f"/apis/networking.k8s.io/v1/namespaces/{JOBS_NS}/networkpolicies/j-de") is None
