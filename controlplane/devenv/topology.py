"""Which simulated sites `dev up` brings up: defaults, --sites N, or a --sites-file."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from controlplane.client import yamlfile
from controlplane.client.enroll import Facts
from controlplane.client.manifests import duration
from controlplane.domain import limits, site_input
from controlplane.domain.datasets import Dataset, DatasetSummary
from controlplane.domain.jobs import JobPhase
from controlplane.domain.validation import (
    validate_country,
    validate_dns_label,
    validate_dns_subdomain,
    validate_security_tier,
)
from controlplane.errors import InvalidArgument
from operators.agent.backend import SimHealth
from operators.agent.sim_jobs import SimJobs

DEFAULT_SITES = [
    Facts("fr-par-1", "FR", "paris", {"tier": "gold"}, {"h100": 64}, 3),
    Facts("de-fra-1", "DE", "frankfurt", {"tier": "gold"}, {"h100": 32, "a100": 64}, 3),
    Facts("jp-tyo-1", "JP", "tokyo", {"tier": "silver"}, {"h200": 16}, 2),
]
_KEYS = {"id", "country", "region", "labels", "accelerators", "securityTier", "health", "datasets", "jobs"}
#: datasets: [{these keys}]; jurisdiction defaults to the site's country (another one is accepted
#: here, and the simulated site then refuses to offer it: its law is not the site's).
_DATASET_KEYS = {
    "name",
    "jurisdiction",
    "classification",
    "languages",
    "purposes",
    "size",
    "claim",
    "steward",
}
#: What `make dev`'s default sites hold: a dataset each, in the site's language.
DEFAULT_DATASETS = {
    "fr-par-1": [{"name": "fr-news", "languages": ["fr"], "classification": "personal",
                  "purposes": ["fine-tune", "evaluate"], "size": "large"}],
    "de-fra-1": [{"name": "de-web", "languages": ["de"], "classification": "public",
                  "purposes": ["fine-tune", "evaluate"], "size": "medium"}],
    "jp-tyo-1": [{"name": "ja-eval", "languages": ["ja"], "classification": "public",
                  "purposes": ["evaluate"], "size": "small"}],
}  # fmt: skip
#: health: {<release name, or "*" for every other release>: {these keys}}; a metric set to null is
#: not measured at that site (a gate on it is then inconclusive there).
_HEALTH_KEYS = {"errorRate": "error_rate", "latencyP95Ms": "latency_p95_ms", "safetyScore": "safety_score"}


@dataclass(frozen=True)
class Topology:
    sites: list[Facts]
    #: site id -> release name -> how the simulated site's workloads of that release behave.
    health: dict[str, dict[str, SimHealth]] = field(default_factory=dict)
    #: site id -> the datasets the simulated site holds (as held: it offers only its own law's).
    datasets: dict[str, list[Dataset]] = field(default_factory=dict)
    #: site id -> how its jobs run (a site without an entry runs none).
    jobs: dict[str, SimJobs] = field(default_factory=dict)


def default_topology(n: int) -> Topology:
    """``--sites N``: the default sites, the first three with a dataset each, all running jobs."""
    sites = default_sites(n)
    held = {
        f.site_id: [_dataset(d, f.country, f"sites[{i}].datasets[0]") for d in DEFAULT_DATASETS[f.site_id]]
        for i, f in enumerate(sites)
        if f.site_id in DEFAULT_DATASETS
    }
    return Topology(sites, datasets=held, jobs={f.site_id: SimJobs() for f in sites})


def default_sites(n: int) -> list[Facts]:
    limits.DEV_SITES.check("--sites", n)
    out = DEFAULT_SITES[:n]
    for i in range(len(out), n):
        base = DEFAULT_SITES[i % len(DEFAULT_SITES)]
        cc = base.country.lower()
        out.append(
            Facts(
                f"{cc}-sim-{i}",
                base.country,
                base.region,
                dict(base.labels),
                dict(base.accelerators),
                base.security_tier,
            )
        )
    return out


def load_sites_file(path: Path) -> list[Facts]:
    return load_topology(path).sites


def load_topology(path: Path) -> Topology:
    """The sites (and their health models) of a ``--sites-file``; errors name the field and the
    file, in one line."""
    raw = yamlfile.load(path, "--sites-file")  # bounded: size, aliases, depth, digits, UTF-8
    if not isinstance(raw, list) or not raw:
        raise InvalidArgument("--sites-file", f"{path} must be a non-empty YAML list of sites")
    limits.DEV_SITES.check("--sites-file", len(raw))
    sites, seen, health, held, jobs = [], set(), {}, {}, {}
    try:
        for i, item in enumerate(raw):
            sites.append(_site(item, f"sites[{i}]"))
            sid, country = sites[-1].site_id, sites[-1].country
            if sid in seen:
                raise InvalidArgument(f"sites[{i}].id", f"duplicate site id {sid!r}")
            seen.add(sid)
            if item.get("health") is not None:
                health[sid] = _health(item["health"], f"sites[{i}].health")
            if item.get("datasets") is not None:
                held[sid] = _datasets(item["datasets"], country, f"sites[{i}].datasets")
            if item.get("jobs") is not None:
                jobs[sid] = _jobs(item["jobs"], f"sites[{i}].jobs")
    except InvalidArgument as e:
        raise InvalidArgument(e.field, f"{e.reason} (in {path})") from e
    return Topology(sites, health, held, jobs)


def _dataset(raw: Any, country: str, where: str) -> Dataset:
    if not isinstance(raw, dict):
        raise InvalidArgument(where, "must be a mapping {name, languages, classification, purposes, size}")
    unknown = set(raw) - _DATASET_KEYS
    if unknown:
        known = ", ".join(sorted(_DATASET_KEYS))
        raise InvalidArgument(f"{where}.{sorted(unknown)[0]}", f"unknown field (known: {known})")
    fields: dict[str, object] = {"jurisdiction": country, **raw}
    summary = DatasetSummary.parse(fields, where + ".")
    return Dataset(
        summary, claim=str(raw.get("claim") or summary.name), steward=str(raw.get("steward") or "")
    )


def _datasets(raw: Any, country: str, where: str) -> list[Dataset]:
    if not isinstance(raw, list) or len(raw) > site_input.MAX_DATASETS:
        raise InvalidArgument(where, f"must be a list of at most {site_input.MAX_DATASETS} datasets")
    out = [_dataset(d, country, f"{where}[{i}]") for i, d in enumerate(raw)]
    names = [d.summary.name for d in out]
    dup = next((n for n in names if names.count(n) > 1), None)
    if dup:
        raise InvalidArgument(where, f"dataset {dup!r} is listed twice")
    return out


def _jobs(raw: Any, where: str) -> SimJobs:
    if not isinstance(raw, dict) or set(raw) - {"duration", "outcome"}:
        raise InvalidArgument(where, "must be {duration: 3s, outcome: Succeeded | Failed}")
    model = SimJobs()
    if "duration" in raw:
        d = duration(raw["duration"], f"{where}.duration")
        if not 0 <= d <= 86_400:
            raise InvalidArgument(f"{where}.duration", "must be between 0s and 24h")
        model = SimJobs(d, model.outcome)
    if "outcome" in raw:
        if raw["outcome"] not in (JobPhase.SUCCEEDED, JobPhase.FAILED):
            raise InvalidArgument(f"{where}.outcome", "must be Succeeded or Failed")
        model = SimJobs(model.duration, JobPhase(raw["outcome"]))
    return model


def _health(raw: Any, where: str) -> dict[str, SimHealth]:
    if not isinstance(raw, dict):
        raise InvalidArgument(where, "must map a release name (or '*') to {errorRate, latencyP95Ms, ...}")
    out = {}
    for release, model in raw.items():
        at = f"{where}.{release}"
        if release != "*":
            validate_dns_subdomain(where, str(release))
        if not isinstance(model, dict):
            raise InvalidArgument(at, "must be a mapping")
        known = {*_HEALTH_KEYS, "readyAfter"}
        unknown = set(model) - known
        if unknown:
            raise InvalidArgument(
                f"{at}.{sorted(unknown)[0]}", f"unknown field (known: {', '.join(sorted(known))})"
            )
        values: dict[str, Any] = {}
        for key, attr in _HEALTH_KEYS.items():
            if key not in model:
                continue
            v = model[key]
            if v is not None and (
                isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v)
            ):
                raise InvalidArgument(f"{at}.{key}", "must be a number, or null for not measured")
            if v is not None and (v < 0 or (key != "latencyP95Ms" and v > 1)):
                raise InvalidArgument(
                    f"{at}.{key}", "must be between 0 and 1" if key != "latencyP95Ms" else ">= 0"
                )
            values[attr] = None if v is None else float(v)
        if "readyAfter" in model:
            values["ready_after"] = duration(model["readyAfter"], f"{at}.readyAfter")
            if values["ready_after"] < 0:
                raise InvalidArgument(f"{at}.readyAfter", "must not be negative")
        out[str(release)] = SimHealth(**values)
    return out


def _site(item: Any, where: str) -> Facts:
    if not isinstance(item, dict):
        raise InvalidArgument(where, "must be a mapping")
    unknown = set(item) - _KEYS
    if unknown:
        raise InvalidArgument(
            f"{where}.{sorted(unknown)[0]}", f"unknown field (known: {', '.join(sorted(_KEYS))})"
        )
    validate_dns_label(f"{where}.id", str(item.get("id", "")))
    validate_country(str(item.get("country", "")), f"{where}.country")
    labels = item.get("labels") or {}
    accels = item.get("accelerators") or {}
    if not isinstance(labels, dict):
        raise InvalidArgument(f"{where}.labels", "must be a mapping of strings")
    if not isinstance(accels, dict) or not all(_is_int(v) and v >= 0 for v in accels.values()):
        raise InvalidArgument(f"{where}.accelerators", "must map accelerator type to a count >= 0")
    for k, v in accels.items():
        limits.ACCELERATOR_COUNT.check(f"{where}.accelerators.{k}", v)
    tier = item.get("securityTier", 1)
    if not _is_int(tier):
        raise InvalidArgument(f"{where}.securityTier", "must be an integer 1..4")
    validate_security_tier(tier, f"{where}.securityTier")
    facts = Facts(
        str(item["id"]),
        str(item["country"]),
        str(item.get("region", "")),
        {str(k): str(v) for k, v in labels.items()},
        {str(k): int(v) for k, v in accels.items()},
        tier,
    )
    # The federation's own rules for what a site says about itself (it would refuse them at join).
    site_input.validate_facts(
        region=facts.region,
        labels=facts.labels,
        capacity={k: (v, v) for k, v in facts.accelerators.items()},
        operator_version="",
        prefix=where + ".",
    )
    return facts


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)  # YAML `true` is not a count
