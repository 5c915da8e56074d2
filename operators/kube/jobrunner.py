"""The site's datasets and localisation jobs over the Kubernetes API (the I/O around the pure
rules of datasets.py and jobs.py); KubernetesBackend delegates its job methods here.

Only federation namespaces are read and written (the chart's RBAC allows nothing else). A Job is
started only next to a Dataset this site offers (re-judged at start: the site's word, not the
directive's), of a purpose the Dataset allows, with its claim present; its NetworkPolicy exists
before the Job does. Every method is idempotent on the job id.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Callable

from controlplane.domain.datasets import Dataset
from controlplane.domain.jobs import JobPhase, JobProgress, JobRun
from operators.agent.backend import Refused
from operators.agent.policy import LocalPolicy
from operators.kube import datasets as ds
from operators.kube import jobs
from operators.kube.kubeapi import DATASETS, JOBS, NETWORKPOLICIES, PODS, PVCS, KubeAPI, KubeError, Obj
from operators.kube.safety_eval import terminated
from operators.kube.settings import MANAGED_BY, OPERATOR, Settings

log = logging.getLogger(__name__)
#: Cancelled or vanished runs remembered (in memory) to report their end: the federation sees it
#: within a heartbeat or two, so a few hundred cover any realistic rate of cancels.
REMEMBER = 256
Announce = Callable[[Obj, str, str], None]


def _refusal(e: KubeError, what: str) -> Exception:
    """A permanent API answer becomes a Reject with the reason; a temporary one propagates (the
    directive is re-delivered after reconnect)."""
    if e.temporary:
        return e
    return Refused(f"site: the Kubernetes API refused {what} ({e.status}): {e.message[:300]}")


class JobRunner:
    def __init__(
        self,
        api: KubeAPI,
        settings: Settings,
        policy: Callable[[], LocalPolicy],
        country: Callable[[], str],
        announce: Announce | None = None,
    ) -> None:
        self.api, self.settings, self.policy, self.country = api, settings, policy, country
        self.announce = announce or (lambda obj, reason, message: None)
        self._offered: list[Dataset] = []
        self._progress: list[JobProgress] = []
        self._started: OrderedDict[str, None] = OrderedDict()  # job ids this process started
        self._ended: OrderedDict[str, JobProgress] = OrderedDict()  # cancelled or deleted at the site
        self._last: dict[str, JobProgress] = {}  # the last progress read of each started run
        self._no_crd = False

    def namespaces(self) -> list[str]:
        """Where jobs may go now: the operator's namespaces the SitePolicy allows."""
        return self.policy().allowed_namespaces(self.settings.federation_namespaces)

    # --- datasets -----------------------------------------------------------------------------

    async def verdicts(self) -> list[ds.Verdict]:
        """Judge every Dataset in the federation namespaces and write each one's status. Nothing
        before the site knows its country (the FederationLink's): no verdict without it."""
        country = self.country()
        if not country:
            return []
        objs: list[Obj] = []
        for ns in self.settings.federation_namespaces:
            objs += await self.api.list(DATASETS, ns)
        verdicts = ds.judge(objs, country, self.namespaces())
        by_key = {(o["metadata"].get("namespace", ""), o["metadata"]["name"]): o for o in objs}
        for v in verdicts:
            obj = by_key[(v.namespace, v.name)]
            status = ds.status(v, obj)
            if status is None:
                continue
            try:
                await self.api.patch(DATASETS, v.namespace, v.name, {"status": status}, status=True)
            except KubeError as e:  # the next pass writes it
                log.warning("Dataset %s/%s: status not written: %s", v.namespace, v.name, e)
                continue
            if v.phase == ds.DatasetPhase.REFUSED:
                log.warning("Dataset %s/%s refused: %s", v.namespace, v.name, v.reason)
                self.announce(obj, "DatasetRefused", v.reason)
        return verdicts

    async def datasets(self) -> list[Dataset]:
        """The datasets offered; on an API failure the last answer (heartbeats must not stop)."""
        try:
            verdicts = await self.verdicts()
        except KubeError as e:
            if e.status == 404:  # no Dataset CRD (helm upgrade installs no new CRDs): none offered
                if not self._no_crd:
                    log.info(
                        "no Dataset resource at this site (apply the chart's crds/): no datasets offered"
                    )
                self._no_crd = True
                return []
            log.warning("listing Datasets failed, reporting the last known: %s", e)
            return list(self._offered)
        self._no_crd = False
        self._offered = [v.dataset for v in verdicts if v.dataset is not None]
        return list(self._offered)

    # --- jobs -----------------------------------------------------------------------------------

    async def start_job(self, run: JobRun, dataset: Dataset) -> None:
        if problem := jobs.problem(run):
            raise Refused(f"site: {problem}")
        name = dataset.summary.name
        try:
            verdicts = await self.verdicts()
        except KubeError as e:
            if e.status != 404:  # 404: no Dataset CRD at this site, so no such Dataset
                raise _refusal(e, f"reading Dataset {name}")
            verdicts = []
        verdict = next((v for v in verdicts if v.name == name), None)
        if verdict is None:
            raise Refused(f"dataset {name}: no such Dataset at this site")
        held = verdict.dataset
        if held is None:
            raise Refused(f"dataset {name}: refused at this site: {verdict.reason}")
        if run.purpose not in {str(p) for p in held.summary.purposes}:
            allowed = ", ".join(str(p) for p in held.summary.purposes)
            raise Refused(f"dataset {name}: purpose {run.purpose[:40]!r} is not one it allows ({allowed})")
        run = jobs.bounded(run, self.policy().jobs.max_hours)
        ns, job_name = verdict.namespace, jobs.job_name(run.job_id)
        try:
            existing = await self.api.get(JOBS, ns, job_name)
            if existing is not None:
                self._own(existing, run.job_id)
                await self._fence(run, ns, existing)  # a restart between the two writes
                self._started[run.job_id] = None
                return
            if await self.api.get(PVCS, ns, held.claim) is None:
                raise Refused(f"dataset {name}: its claim {held.claim} does not exist in namespace {ns}")
            await self._fence(run, ns, None)  # first: no pod of the Job ever runs unfenced
            try:
                created = await self.api.create(JOBS, ns, jobs.job(run, held, ns, self.settings))
            except KubeError as e:
                if e.status != 409:
                    raise
                created = await self.api.get(JOBS, ns, job_name) or {}
                self._own(created, run.job_id)
            await self._fence(run, ns, created)
        except KubeError as e:
            raise _refusal(e, f"starting job {run.job_id[:63]} in {ns}")
        self._started[run.job_id] = None
        self._ended.pop(run.job_id, None)
        log.info("job %s started in %s next to dataset %s", run.job_id, ns, name)

    @staticmethod
    def _own(job_obj: Obj, job_id: str) -> None:
        meta = job_obj.get("metadata") or {}
        if (meta.get("annotations") or {}).get(jobs.JOB_ID) != job_id:
            raise Refused(f"a Job named {meta.get('name')} exists and is not the run {job_id[:63]}")

    async def _fence(self, run: JobRun, ns: str, job_obj: Obj | None) -> None:
        """The run's NetworkPolicy exists, owned by its Job once there is one."""
        body = jobs.network_policy(run, ns)
        name = body["metadata"]["name"]
        current = await self.api.get(NETWORKPOLICIES, ns, name)
        if current is None:
            if job_obj is not None:
                body["metadata"]["ownerReferences"] = [jobs.owner(job_obj)]
            try:
                await self.api.create(NETWORKPOLICIES, ns, body)
                return
            except KubeError as e:
                if e.status != 409:
                    raise
                current = await self.api.get(NETWORKPOLICIES, ns, name) or {}
        labels = (current.get("metadata") or {}).get("labels") or {}
        if labels.get(MANAGED_BY) != OPERATOR or labels.get(jobs.JOB_ID) != name:
            # The site's own NetworkPolicy of that name: never rewritten, and no Job without a fence.
            raise Refused(
                f"a NetworkPolicy named {name} exists and is not the fence of run {run.job_id[:63]}"
            )
        patch: Obj = {}
        have = current.get("spec") or {}
        if have != body["spec"]:  # someone loosened it: put the fence back, rules removed (None)
            patch["spec"] = {**{k: None for k in have if k not in body["spec"]}, **body["spec"]}
        owners = (current.get("metadata") or {}).get("ownerReferences")
        if job_obj is not None and owners != [jobs.owner(job_obj)]:
            # Owned by this Job exactly: an owner that no longer exists would have the garbage
            # collector delete the fence under the running Job.
            patch["metadata"] = {"ownerReferences": [jobs.owner(job_obj)]}
        if patch:
            await self.api.patch(NETWORKPOLICIES, ns, name, patch)

    async def cancel_job(self, job_id: str) -> None:
        """Delete the run's Job (its pods with it: propagation Background) and its NetworkPolicy."""
        name = jobs.job_name(job_id)
        try:
            for ns in self.settings.federation_namespaces:
                job_obj = await self.api.get(JOBS, ns, name)
                if job_obj is not None:
                    self._own(job_obj, job_id)
                    await self.api.delete(JOBS, ns, name, propagation="Background")
                fence = await self.api.get(NETWORKPOLICIES, ns, name)
                labels = ((fence or {}).get("metadata") or {}).get("labels") or {}
                if fence is not None and labels.get(MANAGED_BY) == OPERATOR:
                    await self.api.delete(NETWORKPOLICIES, ns, name)
        except KubeError as e:
            raise _refusal(e, f"cancelling job {job_id[:63]}")
        self._remember(JobProgress(job_id=job_id, phase=JobPhase.CANCELLED, reason="cancelled"))

    def _remember(self, p: JobProgress) -> None:
        self._started.pop(p.job_id, None)
        self._last.pop(p.job_id, None)
        self._ended[p.job_id] = p
        while len(self._ended) > REMEMBER:
            self._ended.popitem(last=False)

    async def job_progress(self) -> list[JobProgress]:
        """Every run's aggregates: the Jobs' status and progress annotations (a terminated
        trainer's message copied onto its Job first), plus runs cancelled or deleted at the site.
        On an API failure, the last answer."""
        try:
            out = []
            for ns in self.settings.federation_namespaces:
                for job_obj in await self.api.list(JOBS, ns, labels=f"{MANAGED_BY}={OPERATOR},{jobs.JOB_ID}"):
                    out.append(await self._read(ns, job_obj))
        except KubeError as e:
            log.warning("listing Jobs failed, reporting the last known: %s", e)
            return list(self._progress)
        seen = {p.job_id for p in out}
        self._last.update((p.job_id, p) for p in out if p.job_id in self._started)
        for job_id in [j for j in self._started if j not in seen]:  # its Job is gone
            last = self._last.pop(job_id, None)
            if last is not None and last.phase.final:
                self._remember(last)  # cleaned up after it ended: it ended as it was read
            else:  # deleted by hand at the site before it ended
                self._remember(JobProgress(job_id=job_id, phase=JobPhase.FAILED, reason="DeletedAtSite"))
        self._progress = out + [p for p in self._ended.values() if p.job_id not in seen]
        return list(self._progress)

    async def _read(self, ns: str, job_obj: Obj) -> JobProgress:
        p = jobs.progress(job_obj)
        annotations = job_obj["metadata"].get("annotations") or {}
        if not p.phase.final or jobs.PROGRESS in annotations:
            return p
        name = job_obj["metadata"]["name"]
        for pod in await self.api.list(PODS, ns, labels=f"{jobs.JOB_ID}={name}"):
            done = terminated(pod)
            if done is None:
                continue
            # Recorded once (an empty object when the message carries nothing): the pod may be
            # gone later, and a message is not re-read on every heartbeat.
            record = jobs.recorded(done[1]) or {jobs.PROGRESS: "{}"}
            await self.api.patch(JOBS, ns, name, {"metadata": {"annotations": record}})
            meta = {**job_obj["metadata"], "annotations": {**annotations, **record}}
            return jobs.progress({**job_obj, "metadata": meta})
        return p
