"""Localisation jobs as the federation holds them, and the pure decisions about them: where a job
may run (the admission chain, with a dataset), and how its phase follows what its site reports.

Phases: Pending (approved, no eligible site right now: placement is retried), WaitingForApproval
(placed, the data country's steward has not consented), Admitted (consented; a signed RunJob is
queued for the chosen site), Running, Succeeded, Failed, Cancelled, Refused (no site qualified, or
the site vetoed it).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from typing import Any

from controlplane.domain import admission
from controlplane.domain.datasets import DatasetWant
from controlplane.domain.jobs import JobPhase
from controlplane.domain.records import JOBS, Record, SiteRecord
from controlplane.domain.releases import is_locale

#: Sites listed per excluded reason in a job record (the rest are counted): a job over 10,000
#: sites would otherwise store ~1 MB of reasons, over etcd's 1.5 MiB request limit with the rest.
MAX_EXCLUDED = 1_000


def job_key(name: str) -> str:
    return JOBS + name


@dataclass(frozen=True)
class JobRecord(Record):
    name: str
    #: The LocalizationJobSpec as created (its dict form).
    spec: dict[str, Any]
    phase: str = JobPhase.PENDING
    message: str = ""
    uid: str = ""
    #: The run's id at the site (a DNS subdomain: name and 8 hex of the uid).
    job_id: str = ""
    #: The base release as registered when the job was created (its signed dict form).
    base: dict[str, Any] = field(default_factory=dict)
    #: The data's country, whose steward must consent.
    dataset_country: str = ""
    #: The dataset at the chosen site, and its languages (the variant's locales).
    dataset: str = ""
    dataset_languages: list[str] = field(default_factory=list)
    #: The site the job runs at (one).
    sites: list[str] = field(default_factory=list)
    #: [{site, country, reasons}] of every site left out (at most MAX_EXCLUDED, then a count).
    excluded: list[dict[str, Any]] = field(default_factory=list)
    excluded_more: int = 0
    needs_approval: list[str] = field(default_factory=list)
    approved: list[str] = field(default_factory=list)
    #: Directive ids of the RunJob and the CancelJob sent to the site ("" until queued).
    run_directive: str = ""
    cancel_directive: str = ""
    #: The latest aggregates the site reported: step, loss, eval_score, output_digest.
    progress: dict[str, Any] = field(default_factory=dict)
    #: The variant release registered from the output (fine-tune, on success), and the release the
    #: site was asked to sign (its ModelRelease dict without the digest; set with the RunJob).
    variant: str = ""
    variant_template: dict[str, Any] = field(default_factory=dict)
    created_at: float = 0.0
    updated_at: float = 0.0
    created_by: str = ""

    @property
    def final(self) -> bool:
        return JobPhase(self.phase).final

    @property
    def want(self) -> DatasetWant:
        d = self.spec.get("dataset") or {}
        return DatasetWant(str(d.get("name", "")), str(d.get("language", "")), self.dataset_country)


def workload(spec: dict[str, Any], base: Any, country: str) -> admission.Workload:
    """What the admission chain judges of a job: the base release's export rule and risk tier (the
    job runs the base model at the site), the accelerators it holds, its dataset and, for the
    site's jobs policy, its purpose, the base's publisher, the image and the hours."""
    res = spec.get("resources") or {}
    d = spec.get("dataset") or {}
    n = int(res.get("accelerators") or 0)
    return admission.Workload(
        risk_tier=int(base.release.risk_tier),
        allow=tuple(base.release.export.allow_countries),
        deny=tuple(base.release.export.deny_countries),
        accelerator=str(res.get("accelerator") or "") if n else "",
        need=n,
        dataset=DatasetWant(str(d.get("name", "")), str(d.get("language", "")), country),
        purpose=str(spec.get("purpose", "")),
        publisher=str(base.publisher),
        image=str((spec.get("trainer") or {}).get("image", "")),
        max_hours=float(res.get("max_hours") or 0.0),
    )


def data_countries(sites: Iterable[SiteRecord], want: DatasetWant) -> list[str]:
    """The countries holding a dataset of that name (to resolve a job that names no country)."""
    return sorted(
        {
            s.country
            for s in sites
            for d in s.datasets
            if want.matches(d) and d.get("jurisdiction") == s.country
        }
    )


@dataclass(frozen=True)
class JobPlan:
    #: Eligible sites, best first (score, then site id).
    candidates: list[str]
    excluded: list[dict[str, Any]]
    excluded_more: int = 0


def place(sites: Iterable[SiteRecord], w: admission.Workload) -> JobPlan:
    """Every site through the one admission chain; the excluded ones with every reason."""
    scored: list[tuple[float, str]] = []
    excluded: list[dict[str, Any]] = []
    more = 0
    for site in sites:
        why = admission.reasons(site, w)
        if why:
            if len(excluded) < MAX_EXCLUDED:
                excluded.append({"site": site.site_id, "country": site.country, "reasons": why})
            else:
                more += 1
        else:
            scored.append((-round(admission.score(site, w), 6), site.site_id))
    excluded.sort(key=lambda e: e["site"])
    return JobPlan([s for _, s in sorted(scored)], excluded, more)


def variant_template(rec: JobRecord, base: Any, languages: Iterable[str]) -> dict[str, Any]:
    """The variant a fine-tune produces, as the site is to sign it (digest: the site's): the base's
    model, risk tier and resources, the dataset's languages as locales, the export rule locked to
    the data's country, ``variant_of`` the base. Empty for an evaluation."""
    out = rec.spec.get("output") or {}
    if rec.spec.get("purpose") != "fine-tune" or not out.get("name"):
        return {}
    b = base.release
    return {
        "name": out["name"],
        "model": b.model,
        "version": out.get("version", ""),
        "risk_tier": int(b.risk_tier),
        "export": {"allow_countries": [rec.dataset_country]},
        "resources": {
            "accelerator": b.resources.accelerator,
            "accelerators_per_replica": int(b.resources.accelerators_per_replica),
        },
        "locales": sorted({x for x in languages if is_locale(x)}),
        "variant_of": rec.spec.get("base", ""),
    }


def dataset_at(site: SiteRecord, want: DatasetWant, purpose: str) -> dict[str, Any] | None:
    """The dataset the job uses at ``site`` (the first by name that matches and allows its purpose)."""
    found = [d for d in site.datasets if want.matches(d) and purpose in (d.get("purposes") or ())]
    return min(found, key=lambda d: str(d.get("name"))) if found else None


#: Phases a site reports, as the federation's.
_REPORTED = {
    "Running": JobPhase.RUNNING,
    "Succeeded": JobPhase.SUCCEEDED,
    "Failed": JobPhase.FAILED,
    "Cancelled": JobPhase.CANCELLED,
}


def followed(rec: JobRecord, report: dict[str, Any] | None, directive: tuple[str, str] | None) -> JobRecord:
    """``rec`` after what its site said: its report of the run (JobStatus fields) and the state
    and reason of its RunJob directive. Pure. Only an Admitted or Running job follows its site;
    a site that stopped reporting (unreachable) leaves it as it was: the run goes on there."""
    if rec.phase not in (JobPhase.ADMITTED, JobPhase.RUNNING) or not rec.run_directive:
        return rec
    if directive is not None:
        state, reason = directive
        if state == "Rejected":
            return replace(rec, phase=JobPhase.REFUSED, message=f"refused by {rec.sites[0]}: {reason}")
        if state in ("Failed", "Cancelled"):
            return replace(
                rec, phase=JobPhase.FAILED, message=f"the RunJob directive was {state.lower()}: {reason}"
            )
    if report is None:
        return rec
    phase = _REPORTED.get(str(report.get("phase")))
    if phase is None:
        return rec
    progress: dict[str, Any] = {
        k: report[k]
        for k in ("step", "loss", "eval_score", "output_digest", "variant_signature", "publisher_key")
        if report.get(k) not in (None, "")
    }
    message = rec.message
    if phase is JobPhase.RUNNING:
        message = f"running at {rec.sites[0]}"
    elif phase is JobPhase.SUCCEEDED:
        message = f"succeeded at {rec.sites[0]}"
    elif phase in (JobPhase.FAILED, JobPhase.CANCELLED):
        message = f"{phase.lower()} at {rec.sites[0]}: {report.get('reason') or 'no reason given'}"
    return replace(rec, phase=phase, progress=progress, message=message)
