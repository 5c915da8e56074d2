"""How a simulated site runs localisation jobs: a modelled duration and outcome (``dev up``'s
sites file: ``jobs: {duration: 3s, outcome: Succeeded}``), progress in 100 steps, a loss falling
from ~2.5 towards ~0.6 and, at the end, an eval score; on success the trained artifact's manifest
goes into the site's artifact store under its digest (it never leaves the site)."""

from __future__ import annotations

import hashlib
import json
import math
import time
from dataclasses import dataclass

from controlplane.domain.jobs import JobPhase, JobProgress, JobRun

#: Steps a simulated run reports over its duration.
STEPS = 100


@dataclass(frozen=True)
class SimJobs:
    """The modelled run: how long, and how it ends (Succeeded or Failed)."""

    duration: float = 3.0
    outcome: JobPhase = JobPhase.SUCCEEDED


@dataclass
class SimRun:
    run: JobRun
    started: float
    cancelled: bool = False
    #: The trained artifact's digest, once it succeeded (its manifest is in the artifact store).
    digest: str = ""


def manifest(run: JobRun) -> bytes:
    """The simulated trained artifact: a manifest naming its base, dataset and job (stands for the
    weights, which a real site keeps in its own registry)."""
    body = {"base": run.base_digest, "dataset": run.dataset, "job": run.job_id, "output": run.output_version}
    return json.dumps(body, sort_keys=True).encode()


def progress(r: SimRun, model: SimJobs, now: float | None = None) -> JobProgress:
    """Where the run is ``now``: pure, from its start time and the model."""
    now = time.monotonic() if now is None else now
    share = 1.0 if model.duration <= 0 else min(1.0, max(0.0, (now - r.started) / model.duration))
    step = int(share * STEPS)
    loss = round(0.6 + 1.9 * math.exp(-3.0 * share), 4)
    if r.cancelled:
        return JobProgress(r.run.job_id, JobPhase.CANCELLED, step, loss, reason="cancelled")
    if share < 1.0:
        return JobProgress(r.run.job_id, JobPhase.RUNNING, step, loss)
    if model.outcome is JobPhase.FAILED:
        return JobProgress(r.run.job_id, JobPhase.FAILED, step, loss, reason="trainer exited with status 1")
    digest = r.digest or "sha256:" + hashlib.sha256(manifest(r.run)).hexdigest()
    score = 0.81 if r.run.purpose == "fine-tune" else 0.74
    out = digest if r.run.purpose == "fine-tune" else ""
    return JobProgress(r.run.job_id, JobPhase.SUCCEEDED, STEPS, loss, score, output_digest=out)
