"""Where directives take effect. The kopf operator implements this over Kubernetes objects; a
simulated site uses MemoryBackend. Every method MUST be idempotent: applying the same directive
twice has no second effect."""

from __future__ import annotations

import abc
import hashlib
import time
from dataclasses import dataclass, field
from typing import Any

from controlplane.domain.datasets import Dataset
from controlplane.domain.jobs import JobPhase, JobProgress, JobRun
from operators.agent.sim_jobs import SimJobs, SimRun, manifest, progress


@dataclass
class Workload:
    name: str
    model: str
    version: str
    digest: str = ""
    replicas: int = 1
    accelerator: str = ""
    accelerators_per_replica: int = 0
    locale: str = ""
    release: str = ""
    risk_tier: int = 0
    source: str = "federation"
    halted: bool = False
    ready_replicas: int = 0
    #: Aggregates over the reporting window (never single requests): 0..1, ms, 0..1. None: the
    #: site did not measure it (reported as such; the federation never reads it as 0).
    error_rate: float | None = None
    latency_p95_ms: float | None = None
    safety_score: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def phase(self) -> str:
        if self.halted:
            return "Halted"
        return "Running" if self.ready_replicas >= self.replicas else "Progressing"


class WorkloadBackend(abc.ABC):
    @abc.abstractmethod
    async def deploy(self, payload: dict[str, Any]) -> None:
        """Create or update the federation-owned workload named ``payload['deployment_name']``.

        MUST refuse (raise ``Refused``) to overwrite a locally created workload of that name."""

    @abc.abstractmethod
    async def undeploy(self, name: str) -> None:
        """Remove the federation-owned workload ``name``; no error if absent. MUST NOT remove a
        local one."""

    @abc.abstractmethod
    async def workloads(self) -> list[Workload]:
        """Everything the site runs, federation-owned and local."""

    async def halt(self, release: str, *, model: str = "", digest: str = "") -> list[str]:
        """Stop serving every federation workload of the artifact ``model``/``digest``, whatever
        its deployment or release name (without an artifact: of ``release``; ``runs``). Scale to
        zero, keep the object so that a resume restores it; returns their names. Idempotent.
        Backends that cannot halt refuse, and the site says so upstream."""
        raise Refused("this site's backend cannot halt workloads")

    async def resume(self, release: str, *, model: str = "", digest: str = "") -> list[str]:
        """Lift a halt of the artifact (or ``release``); returns the workloads restored. Idempotent."""
        raise Refused("this site's backend cannot resume workloads")

    async def verify_artifact(self, digest: str) -> str | None:
        """Why the artifact ``digest`` cannot be verified at the site, or None when it can.

        The default has no local artifact store to consult and accepts; backends with one (a
        registry mirror, MemoryBackend.artifacts) MUST check that the bytes hash to ``digest``."""
        return None

    # --- localisation jobs (controlplane/domain/jobs.py) -------------------------------------
    # A site that runs no jobs keeps these defaults: it offers no datasets and refuses every job.

    async def datasets(self) -> list[Dataset]:
        """The datasets the site offers (each already checked against the site's country by the
        backend: ``Dataset.refusal``). Only their ``summary`` goes upstream."""
        return []

    async def start_job(self, run: JobRun, dataset: Dataset) -> None:
        """Start ``run`` next to ``dataset``, with no way out for its data (the Kubernetes backend:
        a batch/v1 Job with the dataset's claim mounted read-only and a NetworkPolicy denying all
        egress). MUST be idempotent on ``run.job_id``. Refuses (``Refused``) what it cannot run."""
        raise Refused("this site runs no jobs")

    async def cancel_job(self, job_id: str) -> None:
        """Stop the run ``job_id`` (its pods deleted, the output discarded); no error if absent."""
        return None

    async def job_progress(self) -> list[JobProgress]:
        """The latest aggregates of every run the site knows of (finished ones included until the
        federation has seen their end)."""
        return []


def runs(w_release: object, w_model: object, w_digest: object, release: str, model: str, digest: str) -> bool:
    """Whether a workload (its release, model, digest) is what a halt of the artifact ``model``/
    ``digest`` stops; a halt without an artifact (a release the federation did not know, or a
    local fail-closed halt) stops the workloads of ``release`` by name."""
    if model and digest:
        return w_model == model and w_digest == digest
    return bool(release) and w_release == release


class Refused(Exception):
    """The site declines a directive; ``reason`` goes upstream in the Reject."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class SimHealth:
    """How a simulated site's workloads of one release behave: the aggregates it measures (None:
    not measured) and how long after a deploy its replicas become ready. Set per release in the
    `health:` of `dev up`'s sites file, to stage a bad release at chosen sites."""

    error_rate: float | None = 0.0
    latency_p95_ms: float | None = 25.0
    safety_score: float | None = None
    ready_after: float = 0.0


#: What a simulated site measures of a release its sites file says nothing about: healthy, and no
#: safety evaluation (a gate on the safety score is inconclusive there, as at a real site without one).
DEFAULT_HEALTH = SimHealth()


class MemoryBackend(WorkloadBackend):
    """Workloads in a dict: what `make dev` and the benchmarks run by the hundreds."""

    def __init__(
        self,
        artifacts: dict[str, bytes] | None = None,
        health: dict[str, SimHealth] | None = None,
        datasets: list[Dataset] | None = None,
        jobs: SimJobs | None = None,
    ) -> None:
        self.items: dict[str, Workload] = {}
        #: The datasets the simulated site holds (the sites file's ``datasets:``), as held: the
        #: agent offers only those of the site's own jurisdiction.
        self.held: list[Dataset] = list(datasets or [])
        #: How its jobs run; None: the site runs no jobs (refuses them, as the default backend).
        self.jobs = jobs
        self.runs: dict[str, SimRun] = {}
        #: Artifacts the site's jobs trained (digest -> manifest); also in ``artifacts`` when simulated.
        self.trained: dict[str, bytes] = {}
        #: The site's local artifact store (digest -> manifest bytes); None = not simulated.
        self.artifacts = artifacts
        #: The health model per release name ("*": every other release), to drive rollout gates
        #: in tests, benchmarks and `dev up`.
        self.health: dict[str, SimHealth] = dict(health or {})
        self._deployed_at: dict[str, float] = {}

    def health_of(self, release: str) -> SimHealth:
        return self.health.get(release) or self.health.get("*") or DEFAULT_HEALTH

    async def verify_artifact(self, digest: str) -> str | None:
        if self.artifacts is None:
            return None
        data = self.artifacts.get(digest)
        if data is None:
            return f"digest: artifact {digest[:19]}... is not in the site's artifact store"
        if "sha256:" + hashlib.sha256(data).hexdigest() != digest:
            return f"digest: the site's copy of {digest[:19]}... does not hash to its digest"
        return None

    async def deploy(self, payload: dict[str, Any]) -> None:
        name = payload["deployment_name"]
        existing = self.items.get(name)
        if existing is not None and existing.source == "local":
            raise Refused(f"a local workload named {name!r} exists; the federation may not change it")
        fields = {k: payload[k] for k in Workload.__dataclass_fields__ if k in payload and k != "name"}
        w = Workload(name=name, **fields)
        w.ready_replicas = w.replicas
        if existing is not None and (existing.model, existing.digest) == (w.model, w.digest):
            w.halted = existing.halted  # a halt stops an artifact: another one starts unhalted
        self.items[name] = w
        self._deployed_at[name] = time.monotonic()

    async def undeploy(self, name: str) -> None:
        w = self.items.get(name)
        if w is not None and w.source != "local":
            del self.items[name]

    async def halt(self, release: str, *, model: str = "", digest: str = "") -> list[str]:
        names = []
        for w in self.items.values():
            if w.source != "local" and runs(w.release, w.model, w.digest, release, model, digest):
                w.halted, w.ready_replicas = True, 0
                names.append(w.name)
        return sorted(names)

    async def resume(self, release: str, *, model: str = "", digest: str = "") -> list[str]:
        names = []
        for w in self.items.values():
            lifted = w.halted and runs(w.release, w.model, w.digest, release, model, digest)
            if w.source != "local" and lifted:
                w.halted, w.ready_replicas = False, w.replicas
                names.append(w.name)
        return sorted(names)

    async def datasets(self) -> list[Dataset]:
        return list(self.held)

    async def start_job(self, run: JobRun, dataset: Dataset) -> None:
        if self.jobs is None:
            raise Refused("this site runs no jobs")
        if run.job_id not in self.runs:  # idempotent on the run's id
            self.runs[run.job_id] = SimRun(run, time.monotonic())

    async def cancel_job(self, job_id: str) -> None:
        r = self.runs.get(job_id)
        if r is not None and progress(r, self.jobs or SimJobs()).phase is JobPhase.RUNNING:
            r.cancelled = True

    async def job_progress(self) -> list[JobProgress]:
        out = []
        for r in self.runs.values():
            p = progress(r, self.jobs or SimJobs())
            if p.output_digest and not r.digest:
                # The trained artifact goes into the site's own store; only its digest goes upstream.
                r.digest = p.output_digest
                self.trained[r.digest] = manifest(r.run)
                if self.artifacts is not None:
                    self.artifacts[r.digest] = manifest(r.run)
            out.append(p)
        return out

    async def workloads(self) -> list[Workload]:
        now = time.monotonic()
        for w in self.items.values():
            h = self.health_of(w.release)
            w.error_rate, w.latency_p95_ms, w.safety_score = h.error_rate, h.latency_p95_ms, h.safety_score
            up = now - self._deployed_at.get(w.name, 0.0) >= h.ready_after
            w.ready_replicas = w.replicas if up and not w.halted else 0
        return list(self.items.values())
