"""The safety score of a ModelDeployment: a site-run evaluation Job whose one number comes back in
its container's termination message.

The site chooses the evaluation (SitePolicy ``safetyEvaluation: {image, command, args,
deadlineSeconds}``); the operator starts one Job per deployment and artifact digest once the new
revision is ready, reads ``state.terminated.message`` of its pod (a number 0..1, e.g. ``0.93``),
and records it on the Job (annotation) so that an operator restart reads it again. Whatever the
evaluation looked at stays at the site: only the score is reported.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from operators.kube.settings import GROUP, MANAGED_BY, MODEL_LABEL, OPERATOR

Obj = dict[str, Any]
SCORE = f"{GROUP}/safety-score"
DIGEST = f"{GROUP}/digest"


@dataclass(frozen=True)
class SafetyEvaluation:
    image: str
    command: tuple[str, ...] = ()
    args: tuple[str, ...] = ()
    deadline_seconds: int = 1800


def job_name(md_name: str, digest: str) -> str:
    """One Job per deployment and digest, within the 63 characters a Job name may use here."""
    return f"{md_name[:42]}-safety-{digest.removeprefix('sha256:')[:12]}"


def job(md: Obj, evaluation: SafetyEvaluation, runtime_port: int) -> Obj:
    meta, spec = md["metadata"], md.get("spec") or {}
    name, ns, digest = meta["name"], meta["namespace"], str(spec.get("digest", ""))
    labels = {MANAGED_BY: OPERATOR, MODEL_LABEL: name}
    container: Obj = {
        "name": "evaluate",
        "image": evaluation.image,
        "env": [
            {"name": "MODEL_NAME", "value": str(spec.get("model", ""))},
            {"name": "MODEL_VERSION", "value": str(spec.get("version", ""))},
            {"name": "MODEL_DIGEST", "value": digest},
            # The deployment's Service (workloads.service): the evaluation talks to the model there.
            {"name": "MODEL_ENDPOINT", "value": f"http://{name}.{ns}.svc:80"},
        ],
        # The score is the whole termination message (Kubernetes keeps at most 4 KiB of it).
        "terminationMessagePolicy": "File",
    }
    if evaluation.command:
        container["command"] = list(evaluation.command)
    if evaluation.args:
        container["args"] = list(evaluation.args)
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {
            "name": job_name(name, digest),
            "labels": labels,
            "annotations": {DIGEST: digest},
        },
        "spec": {
            "backoffLimit": 0,
            "activeDeadlineSeconds": evaluation.deadline_seconds,
            "template": {
                "metadata": {"labels": labels},
                "spec": {"restartPolicy": "Never", "containers": [container]},
            },
        },
    }


def score_of_message(text: str) -> float | None:
    """The score a termination message carries: one number 0..1; anything else is no score."""
    try:
        value = float(text.strip())
    except ValueError:
        return None
    return value if math.isfinite(value) and 0.0 <= value <= 1.0 else None


def terminated(pod: Obj) -> tuple[int, str] | None:
    """(exit code, message) of the evaluation container once it terminated, else None."""
    for cs in (pod.get("status") or {}).get("containerStatuses") or []:
        t = (cs.get("state") or {}).get("terminated")
        if isinstance(t, dict):
            return int(t.get("exitCode", 1)), str(t.get("message", ""))
    return None


def recorded(job_obj: Obj) -> float | None:
    """The score recorded on a Job by an earlier read."""
    raw = ((job_obj.get("metadata") or {}).get("annotations") or {}).get(SCORE)
    return score_of_message(raw) if isinstance(raw, str) else None
