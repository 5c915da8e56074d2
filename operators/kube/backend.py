"""KubernetesBackend: directives take effect as federation-owned ModelDeployments (and
localisation jobs as batch/v1 Jobs next to the site's Datasets: jobrunner.py).

The backend writes only ModelDeployments (the kopf handlers turn them into Deployments and
Services), only in the federation namespaces the operator's settings and the SitePolicy both
allow, and never one whose ``spec.source`` is ``local``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from controlplane.domain.datasets import Dataset
from controlplane.domain.jobs import JobProgress, JobRun
from operators.agent.backend import Refused, Workload, WorkloadBackend, runs
from operators.agent.policy import LocalPolicy
from operators.kube import workloads as wl
from operators.kube.health import HealthMonitor
from operators.kube.jobrunner import JobRunner
from operators.kube.kubeapi import DEPLOYMENTS, MODELDEPLOYMENTS, SERVICES, KubeAPI, KubeError, Obj
from operators.kube.settings import Settings
from operators.kube.state import KubeRecord

log = logging.getLogger(__name__)

#: (object, reason, message) -> a Kubernetes Event about it (kopf.info in the operator).
Announce = Callable[[Obj, str, str], None]


class KubernetesBackend(WorkloadBackend):
    def __init__(
        self,
        api: KubeAPI,
        settings: Settings,
        record: KubeRecord,
        policy: Callable[[], LocalPolicy],
        announce: Announce | None = None,
        health: HealthMonitor | None = None,
        country: Callable[[], str] = lambda: "",
    ) -> None:
        self.api, self.settings, self.record, self.policy = api, settings, record, policy
        self.announce = announce or (lambda obj, reason, message: None)
        self.health = health
        self._last_seen: list[Workload] = []
        # Directives and the restorer both write ModelDeployments and the desired state: one at a
        # time, or a restore could race a deploy that has recorded but not yet created its object.
        self._lock = asyncio.Lock()
        #: Datasets and localisation jobs (jobrunner.py), in the namespaces the policy allows.
        self.jobs = JobRunner(api, settings, policy, country, self.announce)

    def namespaces(self) -> list[str]:
        return self.policy().allowed_namespaces(self.settings.federation_namespaces)

    async def _find(self, name: str) -> Obj | None:
        """The ModelDeployment the federation means by ``name``: a local one of that name anywhere
        (names are what the heartbeat reports, so a local name is taken site-wide), else the
        federation-owned one in a federation namespace."""
        found = await self.api.list(MODELDEPLOYMENTS, fields=f"metadata.name={name}")
        for md in found:
            if (md.get("spec") or {}).get("source") != "federation":
                return md
        for md in found:
            if md["metadata"].get("namespace") in self.settings.federation_namespaces:
                return md
        return None

    @staticmethod
    def _refusal(e: KubeError, what: str) -> Exception:
        """A permanent API answer (forbidden, invalid) becomes a Reject with the reason; anything
        temporary propagates, ends the stream, and the directive is re-delivered after reconnect."""
        if e.temporary:
            return e
        return Refused(f"site: the Kubernetes API refused {what} ({e.status}): {e.message[:300]}")

    async def deploy(self, payload: dict[str, Any]) -> None:
        async with self._lock:
            await self._deploy(payload)

    async def _deploy(self, payload: dict[str, Any]) -> None:
        name = str(payload["deployment_name"])
        allowed = self.namespaces()
        if not allowed:
            raise Refused(
                "policy: no namespace the federation may write to "
                f"(operator: {list(self.settings.federation_namespaces)}; SitePolicy.federationNamespaces "
                f"{sorted(self.policy().federation_namespaces)})"
            )
        try:
            existing = await self._find(name)
        except KubeError as e:
            raise self._refusal(e, f"reading ModelDeployment {name}")
        if existing is not None and (existing.get("spec") or {}).get("source") != "federation":
            raise Refused(f"a local workload named {name!r} exists; the federation may not change it")
        ns = existing["metadata"]["namespace"] if existing is not None else allowed[0]
        if ns not in allowed:
            raise Refused(
                f"policy: {name!r} is in namespace {ns}, which the federation may no longer write to"
            )
        previous = self.record.desired.get(name)
        self.record.set_desired(name, {**payload, "namespace": ns})
        await self.record.flush()  # before the write: a restart can then restore what was asked
        body = wl.model_deployment(name, ns, payload)
        try:
            if existing is None:
                body["spec"]["halted"] = False
                await self.api.create(MODELDEPLOYMENTS, ns, body)
            else:
                # Merge patch of the owned fields only: keeps a site's `halted` and its annotations,
                # unless the artifact changes (a halt stops an artifact, not a name).
                patch = {"metadata": {"annotations": body["metadata"]["annotations"]}, "spec": body["spec"]}
                old = existing.get("spec") or {}
                if (old.get("model"), old.get("digest")) != (payload.get("model"), payload.get("digest")):
                    patch["spec"]["halted"] = False
                for key in set(wl.FIELDS.values()) - set(body["spec"]):
                    patch["spec"][key] = None  # a field the new payload leaves empty is removed
                await self.api.patch(MODELDEPLOYMENTS, ns, name, patch)
        except KubeError as e:
            err = self._refusal(e, f"ModelDeployment {ns}/{name}")
            if isinstance(err, Refused):  # nothing was written: do not restore it later either
                self.record.set_desired(name, previous)
                await self.record.flush()
            raise err

    async def undeploy(self, name: str) -> None:
        async with self._lock:
            await self._undeploy(name)

    async def _undeploy(self, name: str) -> None:
        try:
            existing = await self._find(name)
            if existing is not None and (existing.get("spec") or {}).get("source") != "federation":
                raise Refused(f"a local workload named {name!r} exists; the federation may not remove it")
            previous = self.record.desired.get(name)
            self.record.set_desired(name, None)
            await self.record.flush()
            ns = existing["metadata"]["namespace"] if existing else (previous or {}).get("namespace")
            if ns:
                # Owner references let Kubernetes collect the Deployment and Service; deleting them
                # here too makes the removal immediate and independent of garbage collection.
                for res in (MODELDEPLOYMENTS, DEPLOYMENTS, SERVICES):
                    await self.api.delete(res, ns, name)
        except KubeError as e:
            raise self._refusal(e, f"removing {name}")

    async def halt(self, release: str, *, model: str = "", digest: str = "") -> list[str]:
        return await self._set_halted(release, True, model, digest)

    async def resume(self, release: str, *, model: str = "", digest: str = "") -> list[str]:
        return await self._set_halted(release, False, model, digest)

    async def _set_halted(self, release: str, halted: bool, model: str, digest: str) -> list[str]:
        """Halt (scale to zero, keep the object) or resume the federation-owned ModelDeployments of
        the artifact ``model``/``digest`` (or, without one, of ``release``); the reconcile handler
        scales their Deployments. Local ones are never touched."""
        names = []
        async with self._lock:
            try:
                for ns in self.settings.federation_namespaces:
                    for md in await self.api.list(MODELDEPLOYMENTS, ns):
                        spec = md.get("spec") or {}
                        if spec.get("source") != "federation" or not runs(
                            spec.get("release"), spec.get("model"), spec.get("digest"), release, model, digest
                        ):
                            continue
                        if bool(spec.get("halted")) != halted:
                            await self.api.patch(
                                MODELDEPLOYMENTS, ns, md["metadata"]["name"], {"spec": {"halted": halted}}
                            )
                        names.append(md["metadata"]["name"])
            except KubeError as e:
                raise self._refusal(e, f"{'halting' if halted else 'resuming'} release {release}")
        return sorted(names)

    async def workloads(self) -> list[Workload]:
        """Every ModelDeployment in the cluster, federation-owned and local (reported, metadata
        only). On an API failure the last answer is reported: heartbeats must not stop."""
        try:
            items = await self.api.list(MODELDEPLOYMENTS)
        except KubeError as e:
            log.warning("listing ModelDeployments failed, reporting the last known: %s", e)
            return list(self._last_seen)
        self._last_seen = [wl.workload(md) for md in sorted(items, key=lambda m: m["metadata"]["name"])]
        if self.health is not None:
            self.health.apply(self._last_seen)
        return list(self._last_seen)

    async def restore(self) -> list[str]:
        """Put back federation-owned ModelDeployments deleted or edited by hand, as the federation
        last asked (the site acked that; the site's ways to say no are `halted`, SitePolicy, or
        asking the federation to undeploy). Returns the names restored."""
        async with self._lock:
            return await self._restore()

    async def _restore(self) -> list[str]:
        restored = []
        for name, payload in sorted(self.record.desired.items()):
            ns = str(payload.get("namespace", ""))
            md = await self.api.get(MODELDEPLOYMENTS, ns, name)
            if md is None:
                body = wl.model_deployment(name, ns, payload)
                body["spec"]["halted"] = False
                md = await self.api.create(MODELDEPLOYMENTS, ns, body)
                self.announce(md, "Restored", "federation-owned ModelDeployment was deleted; restored")
            elif (md.get("spec") or {}).get("source") == "federation" and wl.drifted(md, payload):
                patch: dict[str, Any] = {"spec": wl.owned_spec(payload)}
                for key in set(wl.FIELDS.values()) - set(patch["spec"]):
                    patch["spec"][key] = None
                md = await self.api.patch(MODELDEPLOYMENTS, ns, name, patch)
                self.announce(
                    md, "Restored", "federation-owned fields were edited; restored to the last Deploy"
                )
            else:
                continue
            restored.append(name)
            log.info("restored federation-owned ModelDeployment %s/%s", ns, name)
        return restored

    # --- localisation jobs: Dataset custom resources, batch/v1 Jobs fenced by a NetworkPolicy ----

    async def datasets(self) -> list[Dataset]:
        return await self.jobs.datasets()

    async def start_job(self, run: JobRun, dataset: Dataset) -> None:
        await self.jobs.start_job(run, dataset)

    async def cancel_job(self, job_id: str) -> None:
        await self.jobs.cancel_job(job_id)

    async def job_progress(self) -> list[JobProgress]:
        return await self.jobs.job_progress()
