"""The site's pure rules for datasets and localisation jobs (operators/kube/datasets.py, jobs.py):
which Dataset objects are offered, the Job and NetworkPolicy a run becomes, and what of a Job's
status and annotations may go upstream. Tables; no I/O."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import fields
from typing import Any

import pytest

from controlplane.domain.datasets import Classification, Dataset, DatasetSummary, Purpose, SizeBucket
from controlplane.domain.jobs import JobPhase, JobProgress, JobRun
from operators.kube import datasets as ds
from operators.kube import jobs
from operators.kube.settings import Settings

DIGEST = "sha256:" + "ab" * 32
IMAGE = "registry.example/trainer@sha256:" + "cd" * 32


def dataset_obj(name: str = "fr-news", ns: str = "ai-workloads", **spec: Any) -> dict[str, Any]:
    base = {
        "jurisdiction": "FR",
        "classification": "personal",
        "languages": ["fr"],
        "purposes": ["fine-tune", "evaluate"],
        "storage": {"claimName": "fr-news-corpus"},
        "steward": "dpo@example.fr",
        "sizeBytes": 5 << 30,
    }
    base.update(spec)
    return {"metadata": {"name": name, "namespace": ns, "generation": 1}, "spec": base}


def test_a_dataset_object_parses_to_the_domain_and_only_the_bucket_of_its_size() -> None:
    d = ds.parse(dataset_obj())
    assert d == Dataset(
        summary=DatasetSummary(
            name="fr-news",
            jurisdiction="FR",
            classification=Classification.PERSONAL,
            languages=("fr",),
            purposes=(Purpose.FINE_TUNE, Purpose.EVALUATE),
            size=SizeBucket.MEDIUM,
        ),
        claim="fr-news-corpus",
        steward="dpo@example.fr",
    )
    # The bucket when no size in bytes is given.
    spec = dataset_obj()["spec"]
    del spec["sizeBytes"]
    assert ds.parse({"metadata": {"name": "x"}, "spec": {**spec, "size": "xlarge"}}).summary.size == "xlarge"


@pytest.mark.parametrize(
    ("spec", "field"),
    [
        ({"jurisdiction": "France"}, "spec.jurisdiction"),
        ({"jurisdiction": "XX"}, "spec.jurisdiction"),
        ({"classification": "secret"}, "spec.classification"),
        ({"languages": []}, "spec.languages"),
        ({"languages": ["fr_FR"]}, "spec.languages[0]"),
        ({"purposes": ["export"]}, "spec.purposes[0]"),
        ({"storage": {}}, "spec.storage.claimName"),
        ({"storage": "fr-news"}, "spec.storage.claimName"),
        ({"storage": {"claimName": "../etc"}}, "spec.storage.claimName"),
        ({"sizeBytes": -1}, "spec.sizeBytes"),
        ({"sizeBytes": True}, "spec.sizeBytes"),
        ({"sizeBytes": None}, "spec.sizeBytes"),  # neither sizeBytes nor size
        ({"steward": "x" * 255}, "spec.steward"),
    ],
)
def test_a_bad_dataset_is_refused_naming_the_field(spec: dict[str, Any], field: str) -> None:
    (v,) = ds.judge([dataset_obj(**spec)], "FR", ["ai-workloads"])
    assert v.phase == ds.DatasetPhase.REFUSED and v.dataset is None
    assert v.reason.startswith(f"{field}:"), v.reason


def test_offered_only_in_the_sites_country_in_a_federation_namespace_and_by_a_unique_name() -> None:
    objs = [
        dataset_obj("fr-news"),
        dataset_obj("de-news", jurisdiction="DE"),
        dataset_obj("elsewhere", ns="research"),
        dataset_obj("twice"),
        dataset_obj("twice", ns="ai-batch"),
    ]
    verdicts = {(v.namespace, v.name): v for v in ds.judge(objs, "FR", ["ai-workloads", "ai-batch"])}
    assert verdicts["ai-workloads", "fr-news"].phase == ds.DatasetPhase.OFFERED
    de = verdicts["ai-workloads", "de-news"]
    assert de.phase == ds.DatasetPhase.REFUSED and de.dataset is None
    assert de.reason == Dataset(ds.parse(objs[1]).summary).refusal("FR")
    assert "jurisdiction DE is not this site's country FR" in de.reason
    assert (
        "namespace research is not one the federation may write to"
        in verdicts["research", "elsewhere"].reason
    )
    for ns in ("ai-workloads", "ai-batch"):
        assert verdicts[ns, "twice"].phase == ds.DatasetPhase.REFUSED
        assert "also used in namespace" in verdicts[ns, "twice"].reason
    # The same Dataset at a German site: the French one is refused there.
    (fr_at_de,) = ds.judge([objs[0]], "DE", ["ai-workloads"])
    assert fr_at_de.phase == ds.DatasetPhase.REFUSED


def test_status_is_written_only_when_it_changes_and_an_offered_one_has_no_reason() -> None:
    obj = dataset_obj()
    (v,) = ds.judge([obj], "FR", ["ai-workloads"])
    want = ds.status(v, obj)
    assert want == {"phase": "Offered", "reason": None, "observedGeneration": 1}
    assert ds.status(v, {**obj, "status": {"phase": "Offered", "observedGeneration": 1}}) is None
    refused = ds.Verdict("ai-workloads", "fr-news", ds.DatasetPhase.REFUSED, "r")
    assert ds.status(refused, {**obj, "status": {"phase": "Offered", "observedGeneration": 1}}) == {
        "phase": "Refused",
        "reason": "r",
        "observedGeneration": 1,
    }


RUN = JobRun(
    job_id="atlas-fr-news-fr-par-1",
    job="atlas-fr-news",
    dataset="fr-news",
    purpose="fine-tune",
    image=IMAGE,
    command=("train", "--epochs", "1"),
    accelerator="h100",
    accelerators=8,
    max_hours=12,
    base_model="atlas",
    base_digest=DIGEST,
)
DATASET = ds.parse(dataset_obj())


def test_the_job_mounts_the_claim_read_only_limits_accelerators_and_never_retries() -> None:
    job = jobs.job(RUN, DATASET, "ai-workloads", Settings())
    assert (job["apiVersion"], job["kind"]) == ("batch/v1", "Job")
    meta, spec = job["metadata"], job["spec"]
    assert meta["name"] == RUN.job_id and meta["namespace"] == "ai-workloads"
    assert meta["labels"][jobs.JOB_ID] == RUN.job_id and meta["annotations"][jobs.JOB_ID] == RUN.job_id
    assert spec["backoffLimit"] == 0 and spec["activeDeadlineSeconds"] == 12 * 3600
    pod = spec["template"]["spec"]
    assert spec["template"]["metadata"]["labels"][jobs.JOB_ID] == RUN.job_id
    assert pod["restartPolicy"] == "Never" and pod["automountServiceAccountToken"] is False
    (volume,) = pod["volumes"]
    assert volume == {
        "name": "data",
        "persistentVolumeClaim": {"claimName": "fr-news-corpus", "readOnly": True},
    }
    (c,) = pod["containers"]
    assert c["image"] == IMAGE and c["command"] == ["train", "--epochs", "1"]
    assert c["volumeMounts"] == [{"name": "data", "mountPath": "/data", "readOnly": True}]
    assert c["resources"]["limits"] == {"nvidia.com/gpu": "8"} == c["resources"]["requests"]
    assert c["securityContext"]["allowPrivilegeEscalation"] is False
    assert pod["nodeSelector"] == {"federation.stargate.io/accelerator": "h100"}
    env = {e["name"]: e["value"] for e in c["env"]}
    assert env["DATA_DIR"] == "/data" and env["DATASET"] == "fr-news" and "OUTPUT_DIR" not in env
    # The steward's contact never reaches the job: it is the site's, not the trainer's.
    assert "dpo@example.fr" not in json.dumps(job)


@pytest.mark.parametrize(
    ("changes", "settings", "check"),
    [
        (
            {"accelerators": 0, "accelerator": ""},
            Settings(),
            lambda p, c, s: "resources" not in c and "nodeSelector" not in p,
        ),
        ({"max_hours": 0}, Settings(), lambda p, c, s: "activeDeadlineSeconds" not in s),
        ({"max_hours": 0.0001}, Settings(), lambda p, c, s: s["activeDeadlineSeconds"] == 1),
        ({"command": ()}, Settings(), lambda p, c, s: "command" not in c),
        (
            {},
            Settings(accelerator_resource="amd.com/gpu"),
            lambda p, c, s: c["resources"]["limits"] == {"amd.com/gpu": "8"},
        ),
        (
            {},
            Settings(job_output_claim="artifacts"),
            lambda p, c, s: (
                p["volumes"][1]["persistentVolumeClaim"] == {"claimName": "artifacts"}
                and c["volumeMounts"][1] == {"name": "output", "mountPath": "/output"}
            ),
        ),
    ],
)
def test_job_shape_by_run_and_settings(changes: dict[str, Any], settings: Settings, check: Any) -> None:
    run = dataclasses.replace(RUN, **changes)
    spec = jobs.job(run, DATASET, "ai-workloads", settings)["spec"]
    pod = spec["template"]["spec"]
    assert check(pod, pod["containers"][0], spec)
    assert pod["volumes"][0]["persistentVolumeClaim"]["readOnly"] is True


def test_the_network_policy_selects_the_jobs_pods_and_allows_nothing_in_or_out() -> None:
    job = jobs.job(RUN, DATASET, "ai-workloads", Settings())
    np = jobs.network_policy(RUN, "ai-workloads")
    assert (np["apiVersion"], np["kind"]) == ("networking.k8s.io/v1", "NetworkPolicy")
    assert np["metadata"]["name"] == job["metadata"]["name"]
    selected = np["spec"]["podSelector"]["matchLabels"]
    pod_labels = job["spec"]["template"]["metadata"]["labels"]
    assert selected and all(pod_labels[k] == v for k, v in selected.items())
    assert np["spec"]["policyTypes"] == ["Ingress", "Egress"]
    assert "egress" not in np["spec"] and "ingress" not in np["spec"]  # no rule: nothing allowed
    assert jobs.owner({"metadata": {"name": "j", "uid": "u"}}) == {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "name": "j",
        "uid": "u",
    }


@pytest.mark.parametrize(
    ("job_id", "expected"),
    [
        ("atlas-fr-par-1", "atlas-fr-par-1"),
        ("0d3f7c1e-4b6a-4e0f-9a51-1d2c3b4a5f60", "0d3f7c1e-4b6a-4e0f-9a51-1d2c3b4a5f60"),
        ("Atlas/FR@par_1", None),
        ("a" * 64, None),
        ("../../x", None),
    ],
)
def test_job_names_are_dns_labels_unique_per_id(job_id: str, expected: str | None) -> None:
    name = jobs.job_name(job_id)
    assert len(name) <= 63 and jobs._DNS_LABEL.fullmatch(name), name
    if expected is not None:
        assert name == expected
    else:
        assert name != jobs.job_name(job_id + "x")


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"job_id": ""}, "job_id"),
        ({"job_id": "x" * 254}, "job_id"),
        ({"image": ""}, "image"),
        ({"image": "evil image"}, "image"),
        ({"accelerators": -1}, "accelerators"),
        ({"max_hours": float("nan")}, "max_hours"),
        ({"max_hours": -1.0}, "max_hours"),
    ],
)
def test_a_run_the_site_cannot_express_is_refused_naming_the_field(
    changes: dict[str, Any], field: str
) -> None:
    assert jobs.problem(dataclasses.replace(RUN, **changes)).startswith(f"{field}:")
    assert jobs.problem(RUN) == ""


@pytest.mark.parametrize(
    ("asked", "site_max", "deadline"),
    [(12, 0, 12), (12, 2, 2), (1, 2, 1), (0, 2, 2), (0, 0, 0), (2, 2, 2)],
)
def test_the_sites_max_hours_bound_every_deadline(asked: float, site_max: float, deadline: float) -> None:
    assert jobs.bounded(dataclasses.replace(RUN, max_hours=asked), site_max).max_hours == deadline


@pytest.mark.parametrize(
    ("status", "phase", "reason"),
    [
        ({}, JobPhase.ADMITTED, ""),
        ({"active": 1}, JobPhase.RUNNING, ""),
        ({"succeeded": 1}, JobPhase.SUCCEEDED, ""),
        ({"failed": 1}, JobPhase.FAILED, "PodFailed"),
        ({"conditions": [{"type": "Complete", "status": "True"}], "succeeded": 1}, JobPhase.SUCCEEDED, ""),
        (
            {"conditions": [{"type": "Failed", "status": "True", "reason": "DeadlineExceeded"}], "active": 1},
            JobPhase.FAILED,
            "DeadlineExceeded",
        ),
        # A reason is one word: a controller's (or anyone's) free text never goes upstream.
        (
            {"conditions": [{"type": "Failed", "status": "True", "reason": "leak: /data/x"}]},
            JobPhase.FAILED,
            "Failed",
        ),
        ({"conditions": [{"type": "Failed", "status": "False"}], "active": 1}, JobPhase.RUNNING, ""),
        ({"active": True}, JobPhase.ADMITTED, ""),
    ],
)
def test_phase_from_the_jobs_status(status: dict[str, Any], phase: JobPhase, reason: str) -> None:
    assert jobs.phase({"status": status}) == (phase, reason)


IDLE = JobProgress("the-run", JobPhase.RUNNING)  # running, nothing measured (or nothing valid)


def job_with(annotations: dict[str, str], **status: Any) -> dict[str, Any]:
    meta = {"name": "n", "annotations": {jobs.JOB_ID: "the-run", **annotations}}
    return {"metadata": meta, "status": status}


@pytest.mark.parametrize(
    ("annotations", "status", "expected"),
    [
        (
            {jobs.PROGRESS: '{"step": 120, "loss": 1.25, "evalScore": 0.8}'},
            {"active": 1},
            JobProgress("the-run", JobPhase.RUNNING, step=120, loss=1.25, eval_score=0.8),
        ),
        (
            {jobs.PROGRESS: '{"step": 9, "loss": 0.5}', jobs.OUTPUT_DIGEST: DIGEST},
            {"succeeded": 1},
            JobProgress("the-run", JobPhase.SUCCEEDED, step=9, loss=0.5, output_digest=DIGEST),
        ),
        # The digest only with success; hostile or broken values are dropped, never passed on.
        ({jobs.OUTPUT_DIGEST: DIGEST}, {"active": 1}, IDLE),
        ({jobs.OUTPUT_DIGEST: "sha256:xyz"}, {"succeeded": 1}, JobProgress("the-run", JobPhase.SUCCEEDED)),
        (
            {jobs.PROGRESS: '{"step": -1, "loss": "NaN", "evalScore": 1e999, "sample": "J. Dupont"}'},
            {"active": 1},
            IDLE,
        ),
        ({jobs.PROGRESS: "[1, 2]"}, {"active": 1}, IDLE),
        ({jobs.PROGRESS: "{" * 10}, {"active": 1}, IDLE),
        ({jobs.PROGRESS: json.dumps({"step": 1, "pad": "x" * 5000})}, {"active": 1}, IDLE),
        ({jobs.PROGRESS: '{"step": true, "loss": false}'}, {"active": 1}, IDLE),
    ],
)
def test_progress_reports_only_the_aggregates(
    annotations: dict[str, str], status: dict[str, Any], expected: JobProgress
) -> None:
    got = jobs.progress(job_with(annotations, **status))
    assert got == expected
    # Nothing but the JobProgress fields exists to be reported; variant is the federation's.
    assert {f.name for f in fields(got)} == {
        "job_id", "phase", "step", "loss", "eval_score", "reason", "output_digest", "variant",
    }  # fmt: skip
    assert got.variant == {}


def test_a_trainers_termination_message_is_recorded_as_the_annotations() -> None:
    message = json.dumps({"step": 300, "loss": 0.41, "evalScore": 0.77, "outputDigest": DIGEST, "rows": 99})
    record = jobs.recorded(message)
    assert record == {
        jobs.PROGRESS: json.dumps({"evalScore": 0.77, "loss": 0.41, "step": 300}, sort_keys=True),
        jobs.OUTPUT_DIGEST: DIGEST,
    }
    got = jobs.progress(job_with(record, succeeded=1))
    assert (got.step, got.loss, got.eval_score, got.output_digest) == (300, 0.41, 0.77, DIGEST)
    assert jobs.recorded("training done") is None and jobs.recorded('{"rows": 99}') is None
