"""`dev up` topologies: default sites and --sites-file validation with field paths."""

from __future__ import annotations

from pathlib import Path

import pytest

from controlplane.client.enroll import Facts
from controlplane.devenv.topology import DEFAULT_SITES, default_sites, load_sites_file, load_topology
from controlplane.domain.validation import validate_country, validate_dns_label, validate_security_tier
from controlplane.errors import InvalidArgument
from operators.agent.backend import SimHealth

GOOD = """\
- id: fr-par-1
  country: FR
  region: paris
  labels: {tier: gold}
  accelerators: {h100: 64}
  securityTier: 3
- id: de-fra-1
  country: DE
- id: jp-tyo-1
  country: JP
  accelerators: {h200: 0}
"""


def valid(f: Facts) -> None:
    validate_dns_label("id", f.site_id)
    validate_country(f.country)
    validate_security_tier(f.security_tier)


def test_three_default_sites_in_three_countries() -> None:
    sites = default_sites(3)
    assert len(sites) == 3
    assert len({s.country for s in sites}) == 3
    assert len({s.site_id for s in sites}) == 3
    for s in sites:
        valid(s)


@pytest.mark.parametrize("n", [1, 2, 5, 12])
def test_n_default_sites_have_unique_valid_ids(n: int) -> None:
    sites = default_sites(n)
    assert len(sites) == n
    assert len({s.site_id for s in sites}) == n
    for s in sites:
        valid(s)


def test_generated_sites_do_not_share_mutable_state_with_defaults() -> None:
    sites = default_sites(5)
    sites[4].labels["tier"] = "changed"
    sites[4].accelerators["h100"] = 0
    assert all(d.labels.get("tier") != "changed" for d in DEFAULT_SITES)
    assert all(d.accelerators.get("h100") != 0 for d in DEFAULT_SITES)


@pytest.mark.parametrize("n", [0, -1])
def test_at_least_one_site(n: int) -> None:
    with pytest.raises(InvalidArgument) as e:
        default_sites(n)
    assert e.value.field == "--sites"


def test_load_good_file(tmp_path: Path) -> None:
    path = tmp_path / "sites.yaml"
    path.write_text(GOOD)
    sites = load_sites_file(path)
    assert [s.site_id for s in sites] == ["fr-par-1", "de-fra-1", "jp-tyo-1"]
    fr, de, jp = sites
    assert fr == Facts("fr-par-1", "FR", "paris", {"tier": "gold"}, {"h100": 64}, 3)
    assert de == Facts("de-fra-1", "DE", "", {}, {}, 1)  # defaults
    assert jp.accelerators == {"h200": 0}


BAD = [
    ("- {id: a, country: FR, gpu: 3}\n", "sites[0].gpu"),
    ("- {id: a, country: FR}\n- {id: b, country: ZZ}\n", "sites[1].country"),
    ("- {id: a, country: FR}\n- {id: b, country: fr}\n", "sites[1].country"),
    ("- {id: a, country: FR}\n- {id: b}\n", "sites[1].country"),
    ("- {id: a, country: FR}\n- {id: a, country: DE}\n", "sites[1].id"),
    ("- {id: a, country: FR}\n- {id: B_1, country: DE}\n", "sites[1].id"),
    ("- {country: FR}\n", "sites[0].id"),
    ("- {id: a, country: FR, accelerators: {h100: -1}}\n", "sites[0].accelerators"),
    ("- {id: a, country: FR, accelerators: {h100: two}}\n", "sites[0].accelerators"),
    ("- {id: a, country: FR, accelerators: [h100]}\n", "sites[0].accelerators"),
    ("- {id: a, country: FR, labels: [x]}\n", "sites[0].labels"),
    ("- {id: a, country: FR, securityTier: 5}\n", "sites[0].securityTier"),
    ("- {id: a, country: FR, securityTier: '3'}\n", "sites[0].securityTier"),
    ("- {id: a, country: FR}\n- just-a-string\n", "sites[1]"),
    ("{id: a, country: FR}\n", "--sites-file"),
    ("[]\n", "--sites-file"),
    ("", "--sites-file"),
    ("- {id: a, country: [FR\n", "--sites-file"),
    ("- {id: a, country: FR, health: [x]}\n", "sites[0].health"),
    ("- {id: a, country: FR, health: {Bad_Name: {}}}\n", "sites[0].health"),
    ("- {id: a, country: FR, health: {r: {errorRate: 2}}}\n", "sites[0].health.r.errorRate"),
    ("- {id: a, country: FR, health: {r: {errorRate: yes}}}\n", "sites[0].health.r.errorRate"),
    ("- {id: a, country: FR, health: {r: {latencyP95Ms: -1}}}\n", "sites[0].health.r.latencyP95Ms"),
    ("- {id: a, country: FR, health: {r: {readyAfter: soon}}}\n", "sites[0].health.r.readyAfter"),
    ("- {id: a, country: FR, health: {r: {colour: red}}}\n", "sites[0].health.r.colour"),
]


@pytest.mark.parametrize(("content", "field"), BAD, ids=[f"{i}-{f}" for i, (_, f) in enumerate(BAD)])
def test_bad_file_names_the_field(tmp_path: Path, content: str, field: str) -> None:
    path = tmp_path / "sites.yaml"
    path.write_text(content)
    with pytest.raises(InvalidArgument) as e:
        load_sites_file(path)
    assert e.value.field == field


def test_health_model_per_release(tmp_path: Path) -> None:
    path = tmp_path / "sites.yaml"
    path.write_text(
        "- id: fr-par-1\n  country: FR\n  health:\n"
        "    atlas-1.3.0: {errorRate: 0.2, latencyP95Ms: 900, safetyScore: 0.5, readyAfter: 2s}\n"
        "    '*': {safetyScore: 0.95, errorRate: null}\n"
        "- {id: de-fra-1, country: DE}\n"
    )
    topo = load_topology(path)
    assert [s.site_id for s in topo.sites] == ["fr-par-1", "de-fra-1"] and set(topo.health) == {"fr-par-1"}
    bad = topo.health["fr-par-1"]["atlas-1.3.0"]
    assert bad == SimHealth(error_rate=0.2, latency_p95_ms=900, safety_score=0.5, ready_after=2.0)
    other = topo.health["fr-par-1"]["*"]
    assert other.error_rate is None and other.safety_score == 0.95 and other.latency_p95_ms == 25.0


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(InvalidArgument) as e:
        load_sites_file(tmp_path / "nope.yaml")
    assert e.value.field == "--sites-file"
