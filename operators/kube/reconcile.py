"""ModelDeployment -> apps/v1 Deployment + Service, and the ModelDeployment's status from them.

Every ModelDeployment in the federation namespaces is reconciled, federation-owned or local
(the operator can write nowhere else); local ones elsewhere are only reported upstream.
"""

from __future__ import annotations

import logging

import kopf

from operators.kube import workloads as wl
from operators.kube.kubeapi import DEPLOYMENTS, MODELDEPLOYMENTS, SERVICES, KubeError, Obj
from operators.kube.runtime import Runtime, announce
from operators.kube.settings import MODEL_LABEL

log = logging.getLogger(__name__)


def _classified(e: KubeError) -> kopf.TemporaryError | kopf.PermanentError:
    if e.temporary:
        return kopf.TemporaryError(str(e), delay=5)
    return kopf.PermanentError(f"the Kubernetes API refused the workload: {e}")


async def reconcile(runtime: Runtime, md: Obj) -> Obj:
    """Apply the Deployment and Service for ``md``; return the status it should show.

    A spec that cannot run and a deploy held for approval are statuses, not errors: retrying
    would change nothing until someone edits the object, which triggers this again."""
    spec = md.get("spec") or {}
    problem = wl.spec_problem(spec)
    if problem:
        announce(md, "InvalidSpec", problem, warning=True)
        return wl.status(md, wl.Observed(problem=problem))
    if wl.awaiting_approval(md, runtime.policy.require_local_approval):
        return wl.status(md, wl.Observed(held=True))
    ns = md["metadata"]["namespace"]
    deployment, service = wl.deployment(md, runtime.settings), wl.service(md, runtime.settings)
    # Owner references: deleting the ModelDeployment lets Kubernetes collect both.
    kopf.adopt([deployment, service], owner=md)  # type: ignore[arg-type]
    try:
        applied = await runtime.api.apply(DEPLOYMENTS, ns, deployment)
        await runtime.api.apply(SERVICES, ns, service)
    except KubeError as e:
        raise _classified(e)
    return wl.status(md, wl.Observed(ready_replicas=wl.revision_ready(md, applied)))


def _same(a: Obj, b: Obj) -> bool:
    keys = ("phase", "readyReplicas", "observedGeneration", "directiveId", "directiveSequence")
    conds = [(c.get("type"), c.get("status"), c.get("message")) for c in a.get("conditions") or []]
    return all(a.get(k) == b.get(k) for k in keys) and conds == [
        (c.get("type"), c.get("status"), c.get("message")) for c in b.get("conditions") or []
    ]


async def deployment_changed(runtime: Runtime, deployment: Obj) -> None:
    """A Deployment's readiness moved: carry it into its ModelDeployment's status (and from there
    upstream with the next heartbeat)."""
    meta = deployment.get("metadata") or {}
    name, ns = (meta.get("labels") or {}).get(MODEL_LABEL), meta.get("namespace")
    if not name or not ns:
        return
    try:
        md = await runtime.api.get(MODELDEPLOYMENTS, ns, name)
        if md is None:
            return
        if wl.spec_problem(md.get("spec") or {}) or wl.awaiting_approval(
            md, runtime.policy.require_local_approval
        ):
            return
        new = wl.status(md, wl.Observed(ready_replicas=wl.revision_ready(md, deployment)))
        if not _same(new, md.get("status") or {}):
            await runtime.api.patch(MODELDEPLOYMENTS, ns, name, {"status": new}, status=True)
    except KubeError as e:
        if e.status == 404:  # deleted meanwhile (undeployed): nothing to report on
            return
        raise _classified(e)
