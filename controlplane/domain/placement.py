"""Placement: which sites may run a release, how many replicas, in which order. Pure and
deterministic: the same sites, release and placement always give the same plan.

Which sites: those the admission chain admits (``controlplane/domain/admission.py``: registered
filter plugins, every failing one reported; the same chain low-level deploys pass), scored by the
registered scorers (built in: headroom). Order: countries interleaved (so every wave spreads
across countries), regions interleaved within a country, highest score first, then site id.
O(n log n): 10,000 sites plan in ~0.1 s here under load (benchmarks/placement.py).
"""

from __future__ import annotations

import itertools
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from controlplane.domain import admission
from controlplane.domain.records import SiteRecord


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


def _interleave(groups: dict[str, list[Candidate]]) -> list[Candidate]:
    """Round-robin over groups ordered by their best member, each group best-first."""
    ordered = sorted(groups.values(), key=lambda g: (-g[0].score, g[0].site))
    return [c for batch in itertools.zip_longest(*ordered) for c in batch if c is not None]


def plan(sites: list[SiteRecord], release: Any, placement: Any) -> Plan:
    replicas = max(1, int(placement.replicas_per_site or 1))
    work = admission.Workload.of(release, placement)
    by_country: dict[str, dict[str, list[Candidate]]] = defaultdict(lambda: defaultdict(list))
    excluded: list[Excluded] = []
    for site in sites:
        reasons = admission.reasons(site, work)
        if reasons:
            excluded.append(Excluded(site.site_id, site.country, tuple(reasons)))
        else:
            score = round(admission.score(site, work), 6)
            c = Candidate(site.site_id, site.country, site.region, replicas, score)
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
