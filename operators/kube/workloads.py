"""Pure translations: Deploy payload <-> ModelDeployment, ModelDeployment -> Deployment + Service,
and the ModelDeployment's status. No I/O here, so every rule is unit-testable."""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from typing import Any

from operators.agent.backend import Workload
from operators.kube.settings import (
    APPROVED,
    DIRECTIVE_ID,
    DIRECTIVE_SEQUENCE,
    GROUP,
    MANAGED_BY,
    MODEL_LABEL,
    OPERATOR,
    VERSION,
    Settings,
)

Obj = dict[str, Any]
#: Deploy payload field -> ModelDeployment spec field. The federation owns these on its objects;
#: ``halted`` is not among them: a site may halt a federation workload, and a redeploy keeps that.
FIELDS = {
    "model": "model",
    "version": "version",
    "digest": "digest",
    "replicas": "replicas",
    "accelerator": "accelerator",
    "accelerators_per_replica": "acceleratorsPerReplica",
    "locale": "locale",
    "release": "release",
    "risk_tier": "riskTier",
}
_DIGEST = re.compile(r"sha256:[0-9a-f]{64}")
_DNS_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?")


def now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def owned_spec(payload: dict[str, Any]) -> Obj:
    """The federation-owned part of a ModelDeployment spec, from a Deploy payload. Empty strings
    and a zero risk tier are left out (absent on the CRD, 0/"" on the wire)."""
    spec: Obj = {}
    for src, dst in FIELDS.items():
        value = payload.get(src)
        if value in (None, "") or (dst == "riskTier" and not value):
            continue
        spec[dst] = int(value) if dst in ("replicas", "acceleratorsPerReplica", "riskTier") else value
    spec.setdefault("replicas", 0)
    return spec


def model_deployment(name: str, namespace: str, payload: dict[str, Any]) -> Obj:
    annotations = {}
    if payload.get("directive_id"):
        annotations = {
            DIRECTIVE_ID: str(payload["directive_id"]),
            DIRECTIVE_SEQUENCE: str(payload.get("directive_sequence", "")),
        }
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "ModelDeployment",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": {MANAGED_BY: OPERATOR},
            "annotations": annotations,
        },
        "spec": {**owned_spec(payload), "source": "federation"},
    }


def drifted(md: Obj, payload: dict[str, Any]) -> bool:
    """Whether a federation-owned ModelDeployment's owned fields differ from the last Deploy."""
    want, have = owned_spec(payload), md.get("spec") or {}
    return any(have.get(k) != want.get(k) for k in FIELDS.values() if k in want or k in have)


def spec_problem(spec: Obj) -> str:
    """Why a ModelDeployment spec cannot run ("" if it can). The CRD validates the same on a real
    API server; this guards against objects written around it (and the schema-less emulator)."""
    for key in ("model", "version"):
        if not isinstance(spec.get(key), str) or not spec.get(key):
            return f"spec.{key}: required"
    if not isinstance(spec.get("digest"), str) or not _DIGEST.fullmatch(spec["digest"]):
        return "spec.digest: must be sha256:<64 hex digits>"
    for key in ("replicas", "acceleratorsPerReplica"):
        value = spec.get(key, 0)
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            return f"spec.{key}: must be a non-negative integer"
    if spec.get("source", "local") not in ("local", "federation"):
        return "spec.source: must be local or federation"
    return ""


def awaiting_approval(md: Obj, require_local_approval: bool) -> bool:
    meta, spec = md.get("metadata") or {}, md.get("spec") or {}
    approved = (meta.get("annotations") or {}).get(APPROVED) == "true"
    return require_local_approval and spec.get("source") == "federation" and not approved


def selector(md: Obj) -> dict[str, str]:
    return {MODEL_LABEL: md["metadata"]["name"]}


def deployment(md: Obj, settings: Settings) -> Obj:
    """The apps/v1 Deployment serving a ModelDeployment. The image and runtime are the site's
    (operator settings); the federation only names the model, version and digest it should load."""
    spec, name = md["spec"], md["metadata"]["name"]
    labels = {MANAGED_BY: OPERATOR, **selector(md)}
    container: Obj = {
        "name": "model",
        "image": settings.runtime_image,
        "env": [
            {"name": "MODEL_NAME", "value": spec["model"]},
            {"name": "MODEL_VERSION", "value": spec["version"]},
            {"name": "MODEL_DIGEST", "value": spec["digest"]},
            {"name": "MODEL_LOCALE", "value": spec.get("locale", "")},
        ],
        "ports": [{"name": "http", "containerPort": settings.runtime_port}],
    }
    if spec.get("accelerator") and spec.get("acceleratorsPerReplica"):
        # The device plugin's resource (e.g. nvidia.com/gpu) is the site's setting; the accelerator
        # type selects nodes through the label the site puts on them.
        count = str(spec["acceleratorsPerReplica"])
        container["resources"] = {"limits": {settings.accelerator_resource: count}}
    pod: Obj = {"containers": [container]}
    if spec.get("accelerator") and settings.accelerator_label:
        pod["nodeSelector"] = {settings.accelerator_label: spec["accelerator"]}
    if settings.runtime_class:
        pod["runtimeClassName"] = settings.runtime_class
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "labels": labels},
        "spec": {
            "replicas": 0 if spec.get("halted") else int(spec.get("replicas", 1)),
            "selector": {"matchLabels": selector(md)},
            "template": {"metadata": {"labels": labels}, "spec": pod},
        },
    }


def service(md: Obj, settings: Settings) -> Obj:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": md["metadata"]["name"], "labels": {MANAGED_BY: OPERATOR, **selector(md)}},
        "spec": {
            "selector": selector(md),
            "ports": [{"name": "http", "port": 80, "targetPort": settings.runtime_port}],
        },
    }


def condition(kind: str, ok: bool, reason: str, message: str, previous: list[Obj] | None) -> Obj:
    """A standard condition that keeps its lastTransitionTime while its status does not change."""
    status = "True" if ok else "False"
    old = next((c for c in previous or [] if c.get("type") == kind), None)
    since = old["lastTransitionTime"] if old and old.get("status") == status else now()
    return {"type": kind, "status": status, "reason": reason, "message": message, "lastTransitionTime": since}


def revision_ready(md: Obj, deployment: Obj) -> int:
    """Ready replicas of the Deployment revision that carries ``md``'s current version and digest.

    As ``kubectl rollout status`` reads a Deployment: the Deployment controller must have observed
    its latest generation (``status.observedGeneration``), the pod template must carry this
    version and digest (a Deployment not yet updated still describes the previous release), and
    only pods of the new revision count: during a rolling update ``readyReplicas`` includes old
    pods still serving the previous release, so at most ``readyReplicas - (replicas - updated)``."""
    meta, spec, st = (
        deployment.get("metadata") or {},
        deployment.get("spec") or {},
        deployment.get("status") or {},
    )
    want = md.get("spec") or {}

    def num(v: Any) -> int:
        return v if isinstance(v, int) and not isinstance(v, bool) else 0

    if num(st.get("observedGeneration")) < num(meta.get("generation")):
        return 0
    containers = ((spec.get("template") or {}).get("spec") or {}).get("containers") or [{}]
    env = {e.get("name"): e.get("value") for e in containers[0].get("env") or []}
    if env.get("MODEL_DIGEST") != want.get("digest") or env.get("MODEL_VERSION") != want.get("version"):
        return 0
    updated, total, ready = (
        num(st.get("updatedReplicas")),
        num(st.get("replicas")),
        num(st.get("readyReplicas")),
    )
    return max(0, min(updated, ready - max(0, total - updated)))


@dataclass(frozen=True)
class Observed:
    """What the site sees of a ModelDeployment's workload."""

    ready_replicas: int = 0
    problem: str = ""  # a spec that cannot run
    held: bool = False  # awaiting local approval


def status(md: Obj, seen: Observed) -> Obj:
    spec, meta = md.get("spec") or {}, md.get("metadata") or {}
    previous = (md.get("status") or {}).get("conditions")
    replicas = spec.get("replicas", 1) if isinstance(spec.get("replicas", 1), int) else 0
    if seen.problem:
        phase, ready = "Failed", condition("Ready", False, "InvalidSpec", seen.problem, previous)
    elif spec.get("halted"):
        phase, ready = "Halted", condition("Ready", False, "Halted", "halted: scaled to zero", previous)
    elif seen.held:
        message = f"held until a site operator sets the annotation {APPROVED}=true"
        phase, ready = "Pending", condition("Ready", False, "AwaitingApproval", message, previous)
    elif seen.ready_replicas >= replicas:
        message = f"{seen.ready_replicas}/{replicas} replicas ready"
        phase, ready = "Running", condition("Ready", True, "ReplicasReady", message, previous)
    else:
        message = f"{seen.ready_replicas}/{replicas} replicas ready"
        phase, ready = "Progressing", condition("Ready", False, "ReplicasNotReady", message, previous)
    out: Obj = {
        "phase": phase,
        "readyReplicas": 0 if seen.problem or seen.held else seen.ready_replicas,
        "observedGeneration": meta.get("generation", 0),
        "conditions": [ready],
    }
    annotations = meta.get("annotations") or {}
    if annotations.get(DIRECTIVE_ID):
        out["directiveId"] = annotations[DIRECTIVE_ID]
        if str(annotations.get(DIRECTIVE_SEQUENCE, "")).isdigit():
            out["directiveSequence"] = int(annotations[DIRECTIVE_SEQUENCE])
    return out


@dataclass
class ReportedWorkload(Workload):
    """A workload as the site reports it: the phase comes from the ModelDeployment's status
    (Pending, Failed, … are not derivable from replica counts)."""

    reported_phase: str = ""

    @property
    def phase(self) -> str:
        return self.reported_phase or super().phase


def workload(md: Obj) -> ReportedWorkload:
    spec, st = md.get("spec") or {}, md.get("status") or {}

    def num(v: Any) -> int:
        return v if isinstance(v, int) and not isinstance(v, bool) else 0

    # A status computed for an older spec (before the operator saw an edit) says nothing about
    # the current one: not ready until it is recomputed.
    current = num(st.get("observedGeneration")) == num((md.get("metadata") or {}).get("generation"))
    return ReportedWorkload(
        name=md["metadata"]["name"],
        model=str(spec.get("model", "")),
        version=str(spec.get("version", "")),
        digest=str(spec.get("digest", "")),
        replicas=num(spec.get("replicas", 1)),
        accelerator=str(spec.get("accelerator", "")),
        accelerators_per_replica=num(spec.get("acceleratorsPerReplica", 0)),
        locale=str(spec.get("locale", "")),
        release=str(spec.get("release", "")),
        risk_tier=num(spec.get("riskTier", 0)),
        source="federation" if spec.get("source") == "federation" else "local",
        halted=bool(spec.get("halted", False)),
        ready_replicas=num(st.get("readyReplicas", 0)) if current else 0,
        reported_phase=str(st.get("phase", "") or "Pending") if current else "Progressing",
    )
