"""Pure rollout logic: canonical releases and signatures, manifests, placement, waves, gates."""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from controlplane.api.v1 import release_pb2 as rpb
from controlplane.api.v1 import rollouts_pb2 as opb
from controlplane.client import manifests
from controlplane.domain import placement, releases, rollouts
from controlplane.domain.records import SiteRecord
from controlplane.errors import InvalidArgument

EXAMPLES = Path(__file__).resolve().parents[2] / "docs" / "examples"


def _release(**kw: object) -> rpb.ModelRelease:
    base = manifests.load_one(EXAMPLES / "release.yaml", rpb.ModelRelease)
    for k, v in kw.items():
        setattr(base, k, v)
    return base


def test_examples_parse() -> None:
    r = _release()
    assert (r.name, r.model, r.version, r.risk_tier) == ("atlas-1.2.0", "atlas", "1.2.0", 2)
    assert list(r.export.allow_countries) == ["FR", "DE", "JP"] and r.resources.accelerators_per_replica == 8
    s = manifests.load_one(EXAMPLES / "rollout.yaml", opb.RolloutSpec)
    assert [(w.name, w.sites, w.percent, w.bake_seconds) for w in s.waves] == [
        ("canary", 1, 0, 30.0),
        ("half", 0, 50, 60.0),
        ("all", 0, 100, 0.0),
    ]
    assert s.gates.timeout_seconds == 600 and s.approvals.country_steward
    assert (s.gates.interval_seconds, s.gates.failure_limit, s.gates.progress_deadline_seconds) == (
        10,
        0,
        600,
    )
    releases.validate_release(r)
    rollouts.validate_spec(s)
    for name in ("release-1.3.0.yaml",):
        releases.validate_release(manifests.load_one(EXAMPLES / name, rpb.ModelRelease))
    for name in ("canary-1.2.0.yaml", "canary-1.3.0.yaml"):
        rollouts.validate_spec(manifests.load_one(EXAMPLES / name, opb.RolloutSpec))


@pytest.mark.parametrize(
    ("text", "field"),
    [
        ("kind: ModelRelease\n", "apiVersion"),
        ("apiVersion: federation.stargate.io/v1alpha1\nkind: Nope\nmetadata: {name: a}\nspec: {}\n", "kind"),
        (
            "apiVersion: federation.stargate.io/v1alpha1\nkind: ModelRelease\nmetadata: {name: a}\n"
            "spec: {model: a, version: 1.0.0, digest: x, riskTier: 1, colour: red}\n",
            "spec.colour",
        ),
        (
            "apiVersion: federation.stargate.io/v1alpha1\nkind: ModelRelease\nmetadata: {name: a}\n"
            "spec: {model: a, version: 1.2, digest: x, riskTier: 1}\n",
            "spec.version",
        ),
        (
            "apiVersion: federation.stargate.io/v1alpha1\nkind: ModelRelease\nmetadata: {name: a}\n"
            "spec: {model: a, version: '1', digest: x}\n",
            "spec.riskTier",
        ),
        (
            "apiVersion: federation.stargate.io/v1alpha1\nkind: Rollout\nmetadata: {name: r}\n"
            "spec: {release: a, waves: [{name: w, percent: 100, bake: soon}]}\n",
            "spec.waves[0].bake",
        ),
        (
            "apiVersion: federation.stargate.io/v1alpha1\nkind: Rollout\nmetadata: {name: r}\n"
            "spec: {release: a, placement: {replicas: 2}, waves: []}\n",
            "spec.placement.replicas",
        ),
        (
            "apiVersion: federation.stargate.io/v1alpha1\nkind: Rollout\nmetadata: {name: r}\n"
            "spec: {release: a, waves: [{name: w, percent: 100}]\n",
            "-f",
        ),
    ],
)
def test_bad_manifests_name_the_field(tmp_path: Path, text: str, field: str) -> None:
    f = tmp_path / "m.yaml"
    f.write_text(text)
    with pytest.raises(InvalidArgument) as info:
        manifests.load(f)
    assert info.value.field == field, info.value.public


def test_signature_covers_every_field_and_lists_are_canonical() -> None:
    key = Ed25519PrivateKey.generate()
    pub = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    r = _release()
    sig = releases.sign(key, r)
    assert releases.verify(pub, sig, r)
    reordered = _release()
    del reordered.export.allow_countries[:]
    reordered.export.allow_countries.extend(["JP", "FR", "DE"])
    assert releases.verify(pub, sig, reordered)  # order of countries does not matter
    for change in (
        {"digest": "sha256:" + "ee" * 32},
        {"risk_tier": 1},
        {"version": "1.2.1"},
        {"name": "other"},
    ):
        assert not releases.verify(pub, sig, _release(**change)), change
    assert not releases.verify(pub[:-1] + bytes([pub[-1] ^ 1]), sig, r)
    assert not releases.verify(b"short", sig, r)


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"risk_tier": 5}, "spec.riskTier"),
        ({"digest": "sha256:xyz"}, "spec.digest"),
        ({"model": "Atlas"}, "spec.model"),
    ],
)
def test_release_validation_names_the_field(change: dict[str, object], field: str) -> None:
    with pytest.raises(InvalidArgument) as info:
        releases.validate_release(_release(**change))
    assert info.value.field == field


def _site(i: int, country: str, region: str = "r", free: int = 64, tier: int = 3, **kw: object) -> SiteRecord:
    fields: dict[str, object] = {"status": "Ready", **kw}
    return SiteRecord(
        site_id=f"{country.lower()}-{region}-{i}",
        country=country,
        region=region,
        security_tier=tier,
        capacity={"h100": {"total": 64, "free": free}},
        **fields,
    )  # type: ignore[arg-type]


def test_placement_filters_with_every_reason_and_is_deterministic() -> None:
    r = _release()
    sites = [
        _site(1, "FR", free=64),
        _site(2, "FR", free=32),
        _site(1, "DE", "fra"),
        _site(1, "JP", tier=1),
        _site(1, "US"),
        _site(3, "FR", free=4),
        _site(4, "FR", cordoned=True, status="Unreachable"),
        _site(1, "DE", "ber", policy={"accepted_risk_tiers": [1]}),
    ]
    p = placement.plan(sites, r, opb.Placement(replicas_per_site=1))
    # Equal headroom: ties go by site id; then countries alternate, most headroom first.
    assert [c.site for c in p.selected] == ["de-fra-1", "fr-r-1", "fr-r-2"]
    why = {e.site: e.reasons for e in p.excluded}
    assert why["jp-r-1"] == ("security: site tier 1 < release risk tier 2",)
    assert why["us-r-1"] == ("export: US not in allowCountries ['FR', 'DE', 'JP']",)
    assert why["fr-r-3"] == ("capacity: needs 8 h100, 4 free for the federation",)
    assert why["fr-r-4"] == ("cordoned: taken out of placement by an admin", "status: Unreachable, not Ready")
    assert why["de-ber-1"] == ("site policy: risk tier 2 not accepted (accepts [1])",)
    assert placement.plan(list(reversed(sites)), r, opb.Placement(replicas_per_site=1)) == p
    limited = placement.plan(sites, r, opb.Placement(replicas_per_site=1, max_sites=2))
    assert len(limited.selected) == 2 and ("placement: maxSites 2 reached",) in [
        e.reasons for e in limited.excluded
    ]


def test_waves() -> None:
    waves = [opb.Wave(name="c", sites=1), opb.Wave(name="h", percent=50), opb.Wave(name="a", percent=100)]
    assert rollouts.assign_waves(waves, 6) == [1, 2, 3]
    assert rollouts.assign_waves(waves, 1) == [1, 0, 0]
    assert rollouts.assign_waves(waves, 10) == [1, 4, 5]


@pytest.mark.parametrize(
    ("mutate", "field"),
    [
        (lambda s: s.waves[1].__setattr__("sites", 3), "spec.waves[1]"),
        (lambda s: s.waves[2].__setattr__("percent", 90), "spec.waves[2].percent"),
        (lambda s: s.waves[1].__setattr__("name", "canary"), "spec.waves[1].name"),
        (lambda s: s.placement.countries.append("XX"), "spec.placement.countries[0]"),
        (lambda s: s.gates.__setattr__("max_error_rate", 2), "spec.gates.maxErrorRate"),
    ],
)
def test_rollout_spec_validation_names_the_field(mutate: object, field: str) -> None:
    s = manifests.load_one(EXAMPLES / "rollout.yaml", opb.RolloutSpec)
    del s.placement.countries[:]
    mutate(s)  # type: ignore[operator]
    with pytest.raises(InvalidArgument) as info:
        rollouts.validate_spec(s)
    assert info.value.field == field
