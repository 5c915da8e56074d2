"""A localisation job as Kubernetes objects, and its progress read back (pure; I/O in jobrunner.py).

One run = a ``batch/v1`` Job in the dataset's namespace (a pod mounts a claim only in its own
namespace) with the dataset's PersistentVolumeClaim mounted read-only at /data, plus a
``networking.k8s.io/v1`` NetworkPolicy selecting the Job's pods with no egress rule (nothing
leaves: no DNS, no registry, no Kubernetes API) and no ingress rule (nothing can connect in and
read the data out through the replies, which an egress-only policy would let through).

The progress convention (docs/site-operator.md "Datasets and jobs"): the Job's annotation
``stargate.io/progress`` holds one JSON object ``{"step": int, "loss": float, "evalScore": float}``
and ``stargate.io/output-digest`` the trained artifact's ``sha256:<hex>``. The trainer cannot
write them itself (its pods have no egress and no API token): it writes the same JSON, with
``"outputDigest"``, to its termination message (/dev/termination-log, at most 4 KiB), which the
operator copies onto the Job when the pod ends; a site's own monitoring may set the annotation
while the job runs. Only those four values go upstream, each checked; anything else is ignored.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import re
from dataclasses import dataclass
from typing import Any

from controlplane.domain.datasets import Dataset
from controlplane.domain.jobs import JobPhase, JobProgress, JobRun
from operators.kube.settings import MANAGED_BY, OPERATOR, Settings

Obj = dict[str, Any]
JOB_ID = "stargate.io/job-id"
PROGRESS = "stargate.io/progress"
OUTPUT_DIGEST = "stargate.io/output-digest"
DATASET = "stargate.io/dataset"
DATA_DIR = "/data"
OUTPUT_DIR = "/output"
#: What the operator reads of an annotation or a termination message (Kubernetes keeps 4 KiB).
MAX_PROGRESS = 4096
MAX_JOB_ID = 253
_DNS_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?")
_DIGEST = re.compile(r"sha256:[0-9a-f]{64}")


def job_name(job_id: str) -> str:
    """The Job's (and NetworkPolicy's) name: the id itself when it is a DNS label, else a readable
    prefix and 16 hex of its hash (unique, and 63 characters at most: the Job controller puts the
    name in a pod label, whose values are limited to 63)."""
    if _DNS_LABEL.fullmatch(job_id):
        return job_id
    readable = re.sub(r"[^a-z0-9-]+", "-", job_id.lower()).strip("-")[:40].strip("-") or "job"
    return f"{readable}-{hashlib.sha256(job_id.encode()).hexdigest()[:16]}"


def problem(run: JobRun) -> str:
    """Why the site cannot express ``run`` as a Job ("" if it can); names the field."""
    if not run.job_id or len(run.job_id) > MAX_JOB_ID:
        return f"job_id: must be 1 to {MAX_JOB_ID} characters"
    if not run.image or len(run.image) > 1024 or any(c.isspace() for c in run.image):
        return "image: must be an image reference (no spaces, at most 1024 characters)"
    if not all(isinstance(a, str) for a in run.command) or len(run.command) > 256:
        return "command: must be at most 256 strings"
    if run.accelerators < 0:
        return "accelerators: must not be negative"
    if not math.isfinite(run.max_hours) or run.max_hours < 0:
        return "max_hours: must be a non-negative number"
    return ""


def bounded(run: JobRun, max_hours: float) -> JobRun:
    """``run`` with its deadline within the site's ``jobs.maxHours`` (0: no limit): Kubernetes
    itself then ends a run that outlives what the site allows, whatever the directive said."""
    if max_hours > 0 and not 0 < run.max_hours <= max_hours:
        return dataclasses.replace(run, max_hours=max_hours)
    return run


def selector(run: JobRun) -> dict[str, str]:
    return {JOB_ID: job_name(run.job_id)}


def job(run: JobRun, dataset: Dataset, namespace: str, settings: Settings) -> Obj:
    """The batch/v1 Job running ``run`` next to ``dataset`` (whose claim is in ``namespace``)."""
    name, labels = job_name(run.job_id), {MANAGED_BY: OPERATOR, **selector(run)}
    env = {
        "JOB_ID": run.job_id,
        "DATASET": dataset.summary.name,
        "PURPOSE": run.purpose,
        "DATA_DIR": DATA_DIR,
        "BASE_MODEL": run.base_model,
        "BASE_DIGEST": run.base_digest,
        "OUTPUT_NAME": run.output_name,
        "OUTPUT_VERSION": run.output_version,
    }
    mounts: list[Obj] = [{"name": "data", "mountPath": DATA_DIR, "readOnly": True}]
    volumes: list[Obj] = [
        {"name": "data", "persistentVolumeClaim": {"claimName": dataset.claim, "readOnly": True}}
    ]
    if settings.job_output_claim:  # the site's artifact store: the trained model stays here
        env["OUTPUT_DIR"] = OUTPUT_DIR
        mounts.append({"name": "output", "mountPath": OUTPUT_DIR})
        volumes.append({"name": "output", "persistentVolumeClaim": {"claimName": settings.job_output_claim}})
    container: Obj = {
        "name": "trainer",
        "image": run.image,
        "env": [{"name": k, "value": v} for k, v in env.items() if v],
        "volumeMounts": mounts,
        # The trainer's one way to report: its termination message (see the module docstring).
        "terminationMessagePolicy": "File",
        "securityContext": {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}},
    }
    if run.command:
        container["command"] = list(run.command)
    pod: Obj = {
        "restartPolicy": "Never",
        # No API credential in the pod and no Service addresses in its environment: it has
        # nothing to talk to (the NetworkPolicy denies it anyway, where the network enforces it).
        "automountServiceAccountToken": False,
        "enableServiceLinks": False,
        "containers": [container],
        "volumes": volumes,
    }
    if run.accelerators > 0:
        count = str(run.accelerators)
        container["resources"] = {
            "limits": {settings.accelerator_resource: count},
            "requests": {settings.accelerator_resource: count},
        }
    if run.accelerator and settings.accelerator_label:
        pod["nodeSelector"] = {settings.accelerator_label: run.accelerator}
    spec: Obj = {
        "backoffLimit": 0,  # a failed run is reported failed, not retried on the same data
        "template": {"metadata": {"labels": labels}, "spec": pod},
    }
    if run.max_hours > 0:
        spec["activeDeadlineSeconds"] = max(1, math.ceil(run.max_hours * 3600))
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": labels,
            "annotations": {JOB_ID: run.job_id, DATASET: dataset.summary.name},
        },
        "spec": spec,
    }


def network_policy(run: JobRun, namespace: str) -> Obj:
    """Deny all egress (and ingress) of the Job's pods. Created before the Job, so that no pod of
    it ever runs unfenced; owned by the Job once it exists (``owner``)."""
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {
            "name": job_name(run.job_id),
            "namespace": namespace,
            "labels": {MANAGED_BY: OPERATOR, **selector(run)},
        },
        "spec": {"podSelector": {"matchLabels": selector(run)}, "policyTypes": ["Ingress", "Egress"]},
    }


def owner(job_obj: Obj) -> Obj:
    """The ownerReference that makes Kubernetes delete a NetworkPolicy with its Job."""
    meta = job_obj["metadata"]
    return {"apiVersion": "batch/v1", "kind": "Job", "name": meta["name"], "uid": meta["uid"]}


def _num(v: Any) -> int:
    return v if isinstance(v, int) and not isinstance(v, bool) else 0


def phase(job_obj: Obj) -> tuple[JobPhase, str]:
    """The run's phase from the Job's status, and a reason for a failure (a condition's reason:
    one CamelCase word such as DeadlineExceeded, never the controller's message)."""
    st = job_obj.get("status") or {}
    for c in st.get("conditions") or []:
        if c.get("status") == "True" and c.get("type") == "Complete":
            return JobPhase.SUCCEEDED, ""
        if c.get("status") == "True" and c.get("type") == "Failed":
            return JobPhase.FAILED, _word(c.get("reason")) or "Failed"
    if _num(st.get("succeeded")) > 0:
        return JobPhase.SUCCEEDED, ""
    if _num(st.get("failed")) > 0:
        return JobPhase.FAILED, "PodFailed"
    if _num(st.get("active")) > 0:
        return JobPhase.RUNNING, ""
    return JobPhase.ADMITTED, ""  # created, no pod yet (scheduling, pulling)


def _word(value: Any) -> str:
    return value if isinstance(value, str) and re.fullmatch(r"[A-Za-z][A-Za-z0-9]{0,63}", value) else ""


@dataclass(frozen=True)
class Aggregates:
    step: int = 0
    loss: float | None = None
    eval_score: float | None = None
    output_digest: str = ""


def aggregates(text: Any) -> Aggregates:
    """The four aggregates a progress JSON carries; a value of the wrong type or out of range is
    dropped (never passed on), and so is everything else in the object."""
    if not isinstance(text, str) or len(text) > MAX_PROGRESS:
        return Aggregates()
    try:
        raw = json.loads(text)
    except ValueError:
        return Aggregates()
    if not isinstance(raw, dict):
        return Aggregates()

    def finite(v: Any) -> float | None:
        ok = isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)
        return float(v) if ok else None

    step = raw.get("step")
    digest = raw.get("outputDigest")
    return Aggregates(
        step=step if isinstance(step, int) and not isinstance(step, bool) and 0 <= step < 2**53 else 0,
        loss=finite(raw.get("loss")),
        eval_score=finite(raw.get("evalScore")),
        output_digest=digest if isinstance(digest, str) and _DIGEST.fullmatch(digest) else "",
    )


def progress(job_obj: Obj) -> JobProgress:
    """What the site reports of one Job: phase, step, loss, eval score, reason, digest."""
    annotations = (job_obj.get("metadata") or {}).get("annotations") or {}
    ph, reason = phase(job_obj)
    agg = aggregates(annotations.get(PROGRESS))
    digest = annotations.get(OUTPUT_DIGEST)
    digest = digest if isinstance(digest, str) and _DIGEST.fullmatch(digest) else agg.output_digest
    return JobProgress(
        job_id=str(annotations.get(JOB_ID) or job_obj["metadata"]["name"]),
        phase=ph,
        step=agg.step,
        loss=agg.loss,
        eval_score=agg.eval_score,
        reason=reason,
        output_digest=digest if ph == JobPhase.SUCCEEDED else "",
    )


def recorded(pod_message: str) -> Obj | None:
    """The Job annotations that record a terminated trainer's message (None: nothing to record)."""
    agg = aggregates(pod_message)
    if agg == Aggregates():
        return None
    out: Obj = {
        PROGRESS: json.dumps(
            {
                k: v
                for k, v in (("step", agg.step), ("loss", agg.loss), ("evalScore", agg.eval_score))
                if v is not None
            },
            sort_keys=True,
        )
    }
    if agg.output_digest:
        out[OUTPUT_DIGEST] = agg.output_digest
    return out
