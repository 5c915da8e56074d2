"""The admission chain: every built-in filter as a table, the scorer, and a new filter added with
one registration (issue #14, part 3)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from controlplane.api.v1 import release_pb2 as rpb
from controlplane.api.v1 import rollouts_pb2 as opb
from controlplane.domain import admission, placement
from controlplane.domain.admission import Workload
from controlplane.domain.records import SiteRecord

BASE = SiteRecord(
    site_id="fr-par-1",
    country="FR",
    status="Ready",
    security_tier=2,
    labels={"tier": "gold"},
    capacity={"h100": {"total": 16, "free": 8}},
)
NEEDS = Workload(risk_tier=2, allow=("FR", "DE"), accelerator="h100", need=4)


@pytest.mark.parametrize(
    ("site", "work", "expected"),
    [
        (BASE, NEEDS, []),
        (BASE.replace(cordoned=True), NEEDS, ["cordoned: taken out of placement by an admin"]),
        (BASE.replace(status="Unreachable"), NEEDS, ["status: Unreachable, not Ready"]),
        (BASE, Workload(countries=frozenset({"DE"})), ["placement: FR not in placement.countries"]),
        (
            BASE,
            Workload(labels=(("tier", "silver"), ("zone", "a"))),
            ["labels: needs tier=silver, site has tier='gold'; needs zone=a, site has zone=''"],
        ),
        (BASE.replace(country="JP"), NEEDS, ["export: JP not in allowCountries ['FR', 'DE']"]),
        (BASE, Workload(deny=("FR",)), ["export: FR in denyCountries"]),
        (BASE.replace(security_tier=1), NEEDS, ["security: site tier 1 < release risk tier 2"]),
        (
            BASE.replace(policy={"accepted_risk_tiers": [1]}),
            NEEDS,
            ["site policy: risk tier 2 not accepted (accepts [1])"],
        ),
        (BASE, Workload(accelerator="a100", need=1), ["capacity: no a100 accelerators"]),
        (BASE, Workload(accelerator="h100", need=9), ["capacity: needs 9 h100, 8 free for the federation"]),
        (
            BASE.replace(policy={"federation_capacity_share": 0.25}),
            NEEDS,
            [],  # 16 * 0.25 = 4 usable, 4 needed
        ),
        (
            BASE.replace(cordoned=True, security_tier=1),
            NEEDS,
            ["cordoned: taken out of placement by an admin", "security: site tier 1 < release risk tier 2"],
        ),
    ],
)
def test_each_filter_names_its_reason(site: SiteRecord, work: Workload, expected: list[str]) -> None:
    assert admission.reasons(site, work) == expected


@pytest.mark.parametrize(("free", "need", "score"), [(8, 4, 0.25), (8, 8, 0.0), (16, 0, 1.0), (0, 4, 0.0)])
def test_headroom_scorer(free: int, need: int, score: float) -> None:
    site = BASE.replace(capacity={"h100": {"total": 16, "free": free}})
    assert admission.score(site, Workload(accelerator="h100" if need else "", need=need)) == score


def test_export_allows_is_the_one_export_rule() -> None:
    assert (
        admission.FILTERS["export"](BASE, Workload(allow=("DE",)))
        == "export: FR not in allowCountries ['DE']"
    )
    assert admission.FILTERS["export"](BASE, Workload()) is None


@pytest.fixture
def residency() -> Iterator[None]:
    @admission.filter_plugin("residency")
    def _residency(site: SiteRecord, w: Workload) -> str | None:
        return None if site.labels.get("residency") == "eu" else "residency: not an EU-resident site"

    yield
    admission.unregister("residency")


def test_a_new_filter_is_one_registration_and_placement_uses_it(residency: None) -> None:
    eu = BASE.replace(site_id="fr-par-2", labels={"residency": "eu"})
    plan = placement.plan([BASE, eu], rpb.ModelRelease(risk_tier=1), opb.Placement(replicas_per_site=1))
    assert [c.site for c in plan.selected] == ["fr-par-2"]
    assert [(e.site, e.reasons) for e in plan.excluded] == [
        ("fr-par-1", ("residency: not an EU-resident site",))
    ]
    with pytest.raises(ValueError, match="already registered"):
        admission.filter_plugin("residency")(lambda s, w: None)


def test_without_the_registration_the_site_is_admitted() -> None:
    assert "residency" not in admission.FILTERS
    assert admission.reasons(BASE, Workload()) == []
