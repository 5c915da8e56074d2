"""Localisation jobs at the site: what the site tells the federation of its datasets and runs
(summaries and aggregates only), and the RunJob / CancelJob directives, which the site may veto.

A RunJob is refused unless the dataset exists here, is held under this site's law (its
jurisdiction is the site's country), allows the job's purpose, and the site's ``jobs`` policy
allows the purpose, the base release's publisher, the trainer image, the accelerators and the
hours. Only then does the backend start it (the Kubernetes backend: a batch/v1 Job with the
dataset's claim read-only and no egress). A run goes on when the federation is gone; only a
signed CancelJob stops it.
"""

from __future__ import annotations

import logging
import math
from typing import TYPE_CHECKING, Any

from google.protobuf import json_format

from controlplane.api.v1 import types_pb2 as tpb
from controlplane.domain.datasets import Dataset
from controlplane.domain.jobs import JobPhase, JobRun
from controlplane.domain.site_input import MAX_DATASETS, MAX_JOBS
from operators.agent.backend import Refused, WorkloadBackend
from operators.agent.handlers import handler
from operators.agent.policy import LocalPolicy
from operators.agent.variants import SiteVariants
from operators.agent.variants import refusal as variant_refusal

if TYPE_CHECKING:
    from operators.agent.link import SiteAgent

if TYPE_CHECKING:
    pass

log = logging.getLogger(__name__)


async def offered(backend: WorkloadBackend, country: str, warned: set[str] | None = None) -> list[Dataset]:
    """The datasets the site offers: those held under its own law, at most 256 (the federation's
    bound). A dataset of another jurisdiction is never mentioned upstream, only logged here (once
    per name in ``warned``: a heartbeat every 5 s would repeat it 17,000 times a day)."""
    out = []
    for ds in await backend.datasets():
        why = ds.refusal(country)
        if why is not None:
            if warned is None or ds.summary.name not in warned:
                log.warning("dataset %s is not offered: %s", ds.summary.name, why)
                if warned is not None:
                    warned.add(ds.summary.name)
            continue
        out.append(ds)
    if len(out) > MAX_DATASETS:
        log.warning("the site holds %d datasets; only the first %d are offered", len(out), MAX_DATASETS)
    return sorted(out, key=lambda d: d.summary.name)[:MAX_DATASETS]


async def summaries(
    backend: WorkloadBackend, country: str, warned: set[str] | None = None
) -> list[tpb.DatasetSummary]:
    """What goes upstream of the datasets: built only from ``DatasetSummary``."""
    out = []
    for ds in await offered(backend, country, warned):
        s = ds.summary
        out.append(
            tpb.DatasetSummary(
                name=s.name,
                jurisdiction=s.jurisdiction,
                classification=str(s.classification),
                languages=list(s.languages),
                purposes=[str(p) for p in s.purposes],
                size=str(s.size),
            )
        )
    return out


def _measured(value: float | None) -> float:
    return float(value) if value is not None and math.isfinite(value) and value >= 0 else -1.0


async def statuses(backend: WorkloadBackend, variants: SiteVariants | None = None) -> list[tpb.JobStatus]:
    """The runs' aggregates: phase, step, loss, eval score, reason, output digest; for a succeeded
    fine-tune, the site's signature over its variant and its publisher public key."""
    out = []
    for p in sorted(await backend.job_progress(), key=lambda p: p.job_id)[-MAX_JOBS:]:
        s = tpb.JobStatus(
            job_id=p.job_id,
            phase=str(p.phase),
            step=max(0, int(p.step)),
            loss=_measured(p.loss),
            eval_score=min(1.0, _measured(p.eval_score)),
            reason=p.reason[:512],
            output_digest=p.output_digest,
        )
        if variants is not None and p.phase is JobPhase.SUCCEEDED and p.output_digest:
            signature = variants.sign(p.job_id, p.output_digest)
            if signature:
                s.variant_signature, s.publisher_key = signature, variants.public_key()
        out.append(s)
    return out


def run_of(payload: tpb.RunJobPayload) -> JobRun:
    d: dict[str, Any] = json_format.MessageToDict(payload, preserving_proto_field_name=True)
    d["command"] = tuple(d.get("command") or ())
    return JobRun(**{k: v for k, v in d.items() if k in JobRun.__dataclass_fields__})


async def run_job(
    backend: WorkloadBackend,
    policy: LocalPolicy,
    country: str,
    payload: tpb.RunJobPayload,
    variants: SiteVariants | None = None,
) -> None:
    """Apply a RunJob: refuse (``Refused``) what the site does not allow, else start it."""
    if policy.refusal:
        raise Refused(policy.refusal)
    run = run_of(payload)
    held = {d.summary.name: d for d in await backend.datasets()}
    ds = held.get(run.dataset)
    if ds is None:
        raise Refused(f"dataset: {run.dataset!r} is not held at this site")
    why = ds.refusal(country)
    if why is not None:
        raise Refused(f"dataset: {why}")
    if run.purpose not in {str(p) for p in ds.summary.purposes}:
        allowed = ", ".join(str(p) for p in ds.summary.purposes)
        raise Refused(f"dataset: {run.dataset} allows {allowed}, not {run.purpose}")
    why = policy.jobs.check(
        purpose=run.purpose,
        publisher=run.publisher,
        image=run.image,
        accelerators=run.accelerators,
        hours=run.max_hours,
    )
    if why is not None:
        raise Refused(why)
    if payload.HasField("variant"):
        why = variant_refusal(payload.variant, country, run.base_release)
        if why is not None:
            raise Refused(why)
        if variants is not None:
            variants.remember(run.job_id, payload.variant)
    await backend.start_job(run, ds)


async def cancel_job(backend: WorkloadBackend, payload: tpb.CancelJobPayload) -> None:
    await backend.cancel_job(payload.job_id)


@handler("RunJob")
async def _run_job(site: SiteAgent, d: tpb.Directive, payload: dict[str, Any]) -> None:
    await run_job(site.backend, site.policy, site.facts.country, d.run_job, site.variants)


@handler("CancelJob")
async def _cancel_job(site: SiteAgent, d: tpb.Directive, payload: dict[str, Any]) -> None:
    await cancel_job(site.backend, d.cancel_job)
