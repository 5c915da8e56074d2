"""Placement: which sites may run a release, how many replicas, in which order. Pure and
deterministic: the same sites, release and placement always give the same plan.

Filters (every failing one is reported, so a steward can see *all* the reasons a site was left
out): site Ready and not cordoned; in the placement's countries and labels; the export rule allows
its country; its security tier covers the release's risk tier; the accelerator type exists and
enough is free (within the share the site's policy gives the federation); its policy accepts the
risk tier. Order: countries interleaved (so every wave spreads across countries), regions
interleaved within a country, most headroom first, then site id. O(n log n): 10,000 sites plan in
tens of milliseconds (benchmarks/placement.py).
"""

from __future__ import annotations

import itertools
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from controlplane.domain.records import SiteRecord, SiteStatus


@dataclass(frozen=True)
class Candidate:
    site: str
    country: str
    region: str
    replicas: int
    score: float


@dataclass(frozen=True)
class Excluded:
    site: str
    country: str
    reasons: tuple[str, ...]


@dataclass(frozen=True)
class Plan:
    selected: list[Candidate]
    excluded: list[Excluded] = field(default_factory=list)


@dataclass(frozen=True)
class _Needs:
    """The release and placement fields every site is checked against, read once per plan
    (protobuf attribute access costs ~10x a dataclass field's in this loop)."""

    risk_tier: int
    allow: frozenset[str]
    deny: frozenset[str]
    allow_text: str
    countries: frozenset[str]
    labels: tuple[tuple[str, str], ...]
    accelerator: str
    need: int

    @classmethod
    def of(cls, release: Any, placement: Any) -> _Needs:
        allow = list(release.export.allow_countries)
        per = int(release.resources.accelerators_per_replica)
        return cls(
            risk_tier=int(release.risk_tier),
            allow=frozenset(allow),
            deny=frozenset(release.export.deny_countries),
            allow_text=str(allow),
            countries=frozenset(placement.countries),
            labels=tuple(sorted(placement.labels.items())),
            accelerator=release.resources.accelerator if per else "",
            need=per * max(1, int(placement.replicas_per_site or 1)),
        )


def _reasons(site: SiteRecord, n: _Needs) -> tuple[list[str], float]:
    reasons: list[str] = []
    if site.cordoned:
        reasons.append("cordoned: taken out of placement by an admin")
    if site.status != SiteStatus.READY:
        reasons.append(f"status: {site.status}, not Ready")
    if n.countries and site.country not in n.countries:
        reasons.append(f"placement: {site.country} not in placement.countries")
    for k, v in n.labels:
        if site.labels.get(k) != v:
            reasons.append(f"labels: needs {k}={v}, site has {k}={site.labels.get(k, '')!r}")
    if n.allow and site.country not in n.allow:
        reasons.append(f"export: {site.country} not in allowCountries {n.allow_text}")
    elif site.country in n.deny:
        reasons.append(f"export: {site.country} in denyCountries")
    if site.security_tier < n.risk_tier:
        reasons.append(f"security: site tier {site.security_tier} < release risk tier {n.risk_tier}")
    policy = site.policy
    accepted = policy.get("accepted_risk_tiers") if policy else None
    if accepted and n.risk_tier not in accepted:
        reasons.append(f"site policy: risk tier {n.risk_tier} not accepted (accepts {sorted(accepted)})")
    headroom = 1.0
    if n.accelerator:
        cap = site.capacity.get(n.accelerator)
        if cap is None or not cap.get("total"):
            reasons.append(f"capacity: no {n.accelerator} accelerators")
        else:
            share = float(policy.get("federation_capacity_share") or 1.0) if policy else 1.0
            usable = min(cap.get("free", 0), int(cap["total"] * share))
            if usable < n.need:
                reasons.append(f"capacity: needs {n.need} {n.accelerator}, {usable} free for the federation")
            else:
                headroom = (usable - n.need) / cap["total"]
    return reasons, headroom


def _interleave(groups: dict[str, list[Candidate]]) -> list[Candidate]:
    """Round-robin over groups ordered by their best member, each group best-first."""
    ordered = sorted(groups.values(), key=lambda g: (-g[0].score, g[0].site))
    return [c for batch in itertools.zip_longest(*ordered) for c in batch if c is not None]


def plan(sites: list[SiteRecord], release: Any, placement: Any) -> Plan:
    replicas = max(1, int(placement.replicas_per_site or 1))
    needs = _Needs.of(release, placement)
    by_country: dict[str, dict[str, list[Candidate]]] = defaultdict(lambda: defaultdict(list))
    excluded: list[Excluded] = []
    for site in sites:
        reasons, headroom = _reasons(site, needs)
        if reasons:
            excluded.append(Excluded(site.site_id, site.country, tuple(reasons)))
        else:
            c = Candidate(site.site_id, site.country, site.region, replicas, round(headroom, 6))
            by_country[c.country][c.region].append(c)
    per_country: dict[str, list[Candidate]] = {}
    for country, regions in by_country.items():
        for members in regions.values():
            members.sort(key=lambda c: (-c.score, c.site))
        per_country[country] = _interleave(dict(regions))
    selected = _interleave(per_country) if per_country else []
    limit = int(placement.max_sites or 0)
    if limit and len(selected) > limit:
        for c in selected[limit:]:
            excluded.append(Excluded(c.site, c.country, (f"placement: maxSites {limit} reached",)))
        selected = selected[:limit]
    excluded.sort(key=lambda e: e.site)
    return Plan(selected, excluded)
