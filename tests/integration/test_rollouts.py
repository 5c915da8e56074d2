"""Signed releases, placement and gated multi-country rollouts over real mTLS (simulated sites)."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from controlplane.api.v1 import federation_pb2 as fpb
from controlplane.api.v1 import release_pb2 as rpb
from controlplane.api.v1 import rollouts_pb2 as opb
from controlplane.api.v1 import safety_pb2 as xpb
from controlplane.client.config import Context
from controlplane.client.enroll import Facts
from controlplane.client.federation import FederationClient
from controlplane.domain import releases as rel
from controlplane.errors import StargateError
from controlplane.pki.ca import CertificateAuthority
from controlplane.pki.identity import Identity, Kind, Role
from controlplane.pki.keys import certificate_pem, write_atomic, write_private_key
from controlplane.telemetry import metrics
from operators.agent.backend import SimHealth
from operators.agent.policy import LocalPolicy
from tests.support.federation import FAST, TD, Federation

SITES = [
    ("fr-par-1", "FR", "paris"),
    ("fr-lyo-1", "FR", "lyon"),
    ("de-fra-1", "DE", "frankfurt"),
    ("de-ber-1", "DE", "berlin"),
    ("jp-tyo-1", "JP", "tokyo"),
    ("br-sao-1", "BR", "sao-paulo"),
]
DIGEST = "sha256:" + "c0" * 32


def release(name: str, version: str, allow: list[str] | None = None, tier: int = 2) -> rpb.ModelRelease:
    return rpb.ModelRelease(
        name=name,
        model="atlas",
        version=version,
        digest=DIGEST,
        risk_tier=tier,
        export=rpb.ExportRule(allow_countries=allow or []),
        resources=rpb.ReleaseResources(accelerator="h100", accelerators_per_replica=4),
        locales=["fr-FR"],
    )


def spec(
    name: str,
    rel_name: str,
    *,
    countries: list[str] | None = None,
    steward: bool = False,
    gates: opb.Gates | None = None,
) -> opb.RolloutSpec:
    return opb.RolloutSpec(
        name=name,
        release=rel_name,
        placement=opb.Placement(countries=countries or [], replicas_per_site=1),
        waves=[
            opb.Wave(name="canary", sites=1, bake_seconds=0.1),
            opb.Wave(name="half", percent=50, bake_seconds=0.1),
            opb.Wave(name="all", percent=100),
        ],
        gates=gates
        or opb.Gates(min_ready_ratio=1.0, max_error_rate=0.01, max_latency_p95_ms=500, timeout_seconds=10),
        approvals=opb.Approvals(country_steward=steward),
    )


class Rig:
    def __init__(self, fed: Federation, tmp: Path) -> None:
        self.fed = fed
        self.tmp = tmp
        self.key = Ed25519PrivateKey.generate()
        self.pub = self.key.public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw
        )

    async def sites(self, policy: Callable[[str], LocalPolicy | None] = lambda _: None) -> None:
        for sid, cc, region in SITES:
            facts = Facts(sid, cc, region, {}, {"h100": 16}, 3)
            site = self.fed.new_site(facts, policy(sid))
            await site.enroll(self.fed.enroll_address, self.fed.ca_pem, await self.fed.token(sid, cc))
            site.start()
        await asyncio.gather(*(s.wait_connected(10) for s in self.fed.sites.values()))

    def person(self, name: str, role: Role, country: str = "") -> FederationClient:
        ca = CertificateAuthority.load(self.fed.dir)
        key, cert = ca.issue(Identity(TD, Kind.USER, name, role, country), ttl=dt.timedelta(hours=1))
        d = self.tmp / name
        write_private_key(d / "u.key", key)
        write_atomic(d / "u.crt", certificate_pem(cert), 0o644)
        ctx = Context(name, (self.fed.address,), "", self.fed.dir / "ca.crt", d / "u.crt", d / "u.key")
        return FederationClient(ctx, retry=FAST)

    async def publish(self, r: rpb.ModelRelease, key: Ed25519PrivateKey | None = None) -> None:
        async with self.fed.client() as c:
            with contextlib.suppress(StargateError):  # already registered
                await c.call("AddPublisher", opb.AddPublisherRequest(name="acme", public_key=self.pub))
            signed = rpb.SignedRelease(release=r, publisher="acme", signature=rel.sign(key or self.key, r))
            await c.call("CreateRelease", opb.CreateReleaseRequest(signed=signed))

    async def rollout(self, name: str) -> opb.Rollout:
        async with self.fed.client() as c:
            return (await c.call("GetRollout", opb.GetRolloutRequest(name=name))).rollout

    async def wait(self, name: str, cond: Callable[[opb.Rollout], bool], timeout: float = 20) -> opb.Rollout:
        deadline = time.monotonic() + timeout
        async with self.fed.client() as c:  # one connection for the whole wait (few TLS handshakes)
            while True:
                r = (await c.call("GetRollout", opb.GetRolloutRequest(name=name))).rollout
                if cond(r):
                    return r
                if time.monotonic() > deadline:
                    raise AssertionError(
                        f"rollout {name} stuck: {r.phase} {r.message} "
                        + str([(s.site, s.state, s.reason) for w in r.waves for s in w.sites])
                    )
                await asyncio.sleep(0.1)


def states(r: opb.Rollout) -> dict[str, str]:
    return {s.site: s.state for w in r.waves for s in w.sites}


@pytest.fixture
async def rig(fed: Federation, tmp_path: Path) -> Rig:
    return Rig(fed, tmp_path)


async def test_waves_with_a_country_withholding_approval(rig: Rig) -> None:
    await rig.sites()
    await rig.publish(release("atlas-1-2-0", "1.2.0"))
    async with rig.fed.client() as admin:
        r = (
            await admin.call(
                "CreateRollout", opb.CreateRolloutRequest(spec=spec("eu", "atlas-1-2-0", steward=True))
            )
        ).rollout
    assert [len(w.sites) for w in r.waves] == [1, 2, 3]
    # Waves spread across countries: the first three sites are in three countries.
    assert len({s.country for w in r.waves[:2] for s in w.sites}) == 3
    await rig.wait(
        "eu", lambda r: set(states(r).values()) == {"WaitingForApproval"} or r.phase == "WaitingForApproval"
    )
    for cc in ("FR", "DE", "JP"):
        async with rig.person(f"steward-{cc.lower()}", Role.STEWARD, cc) as steward:
            await steward.call("ApproveRollout", opb.ApproveRolloutRequest(name="eu", country=cc))
    # A steward cannot approve for another country; an admin cannot approve (federation default).
    async with rig.person("steward-fr2", Role.STEWARD, "FR") as fr:
        with pytest.raises(StargateError, match="country"):
            await fr.call("ApproveRollout", opb.ApproveRolloutRequest(name="eu", country="BR"))
    async with rig.fed.client() as admin:
        with pytest.raises(StargateError, match="steward"):
            await admin.call("ApproveRollout", opb.ApproveRolloutRequest(name="eu", country="BR"))
    # The canary is the Brazilian site (countries interleave, BR sorts first), and Brazil has not
    # approved: no wave may start before the canary passed with evidence, so nothing reaches any
    # site, however many other countries approved (the bug was: FR, DE, JP deployed at once).
    r = await rig.wait("eu", lambda r: r.phase == "WaitingForApproval" and len(r.approved_countries) == 3)
    await asyncio.sleep(1.0)  # several engine ticks: still nothing
    r = await rig.rollout("eu")
    st = states(r)
    assert r.waves[0].sites[0].site == "br-sao-1" and st["br-sao-1"] == "WaitingForApproval"
    assert all(v == "Pending" for k, v in st.items() if k != "br-sao-1"), st
    assert all("atlas" not in s.backend.items for s in rig.fed.sites.values())
    assert r.waves[1].phase == "Pending" and r.waves[0].gate.startswith("waiting")
    async with rig.person("steward-br", Role.STEWARD, "BR") as br:
        await br.call("ApproveRollout", opb.ApproveRolloutRequest(name="eu", country="BR"))
    r = await rig.wait("eu", lambda r: r.phase == "Completed")
    assert set(states(r).values()) == {"Ready"}
    async with rig.fed.client() as admin:
        events = (await admin.call("ListAuditEvents", fpb.ListAuditEventsRequest(limit=10000))).events
    by_action: dict[str, set[str]] = {}
    for e in events:
        by_action.setdefault(e.action, set()).add(e.actor)
    assert by_action["rollout.create"] == {f"spiffe://{TD}/user/admin"}
    assert by_action["rollout.approve"] >= {
        f"spiffe://{TD}/user/steward-{c}" for c in ("fr", "de", "jp", "br")
    }
    assert by_action["rollout.wave.start"] == {"controller/rollouts@cp-0"}
    assert "rollout.gate.pass" in by_action and "rollout.complete" in by_action
    assert any(a.endswith("/site/br-sao-1") for a in by_action["directive.ack"])
    denied = [e for e in events if e.action == "rollout.approve" and e.outcome == "denied"]
    assert len(denied) == 2


def _series() -> dict[str, float]:
    """The rollout series of this process's /metrics registry (counters are process-wide)."""
    out = {}
    for name, label, values in (
        ("stargate_rollout_phase_transitions_total", "phase", ("Completed", "RolledBack")),
        ("stargate_gate_outcomes_total", "outcome", ("pass", "fail")),
    ):
        for v in values:
            out[v] = metrics.REGISTRY.get_sample_value(name, {label: v}) or 0.0
    return out


async def test_failing_gate_in_wave_two_rolls_back_to_the_previous_release(rig: Rig) -> None:
    before = _series()
    await rig.sites()
    await rig.publish(release("atlas-1-1-0", "1.1.0"))
    await rig.publish(release("atlas-1-2-0", "1.2.0"))
    async with rig.fed.client() as admin:
        await admin.call("CreateRollout", opb.CreateRolloutRequest(spec=spec("v1", "atlas-1-1-0")))
        await rig.wait("v1", lambda r: r.phase == "Completed")
        r = (
            await admin.call("CreateRollout", opb.CreateRolloutRequest(spec=spec("v2", "atlas-1-2-0")))
        ).rollout
    wave2 = [s.site for s in r.waves[1].sites]
    for sid in wave2:  # the new release misbehaves at the wave-2 sites
        rig.fed.sites[sid].backend.health["atlas-1-2-0"] = SimHealth(error_rate=0.25)
    r = await rig.wait("v2", lambda r: r.phase == "RolledBack")
    assert "gate fail: error rate 0.250 > 0.01" in r.message
    st = states(r)
    assert st[r.waves[0].sites[0].site] == "RolledBack" and all(st[s] == "RolledBack" for s in wave2)
    assert all(st[s.site] == "Skipped" for s in r.waves[2].sites)
    for sid, site in rig.fed.sites.items():
        assert site.backend.items["atlas"].version == "1.1.0", sid  # restored, or never changed
    async with rig.fed.client() as admin:
        events = (await admin.call("ListAuditEvents", fpb.ListAuditEventsRequest(limit=10000))).events
    assert any(e.action == "rollout.gate.fail" and e.outcome == "failed" for e in events)
    assert any(e.action == "rollout.rolledback" for e in events)
    # ... and /metrics counted it: v1 completed (its gates passed), v2's gate failed, it rolled back.
    delta = {k: v - before[k] for k, v in _series().items()}
    assert delta["Completed"] == 1 and delta["RolledBack"] == 1 and delta["fail"] == 1, delta
    assert delta["pass"] >= 2, delta  # v1's waves, and v2's first


async def test_export_rule_and_capacity_exclusions_name_their_reasons(rig: Rig) -> None:
    await rig.sites()
    await rig.publish(release("atlas-eu", "1.2.0", allow=["FR", "DE"]))
    async with rig.fed.client() as c:
        await c.call("CordonSite", fpb.CordonSiteRequest(site_id="de-ber-1", reason="maintenance"))
        plan = await c.call("PlanRollout", opb.PlanRolloutRequest(spec=spec("p", "atlas-eu")))
        excluded = {e.site: list(e.reasons) for e in plan.excluded}
        assert sorted(s.site for s in plan.selected) == ["de-fra-1", "fr-lyo-1", "fr-par-1"]
        assert excluded["jp-tyo-1"] == ["export: JP not in allowCountries ['FR', 'DE']"]
        assert excluded["br-sao-1"] == ["export: BR not in allowCountries ['FR', 'DE']"]
        assert excluded["de-ber-1"] == ["cordoned: taken out of placement by an admin"]
        # A plan with no eligible site is refused at create, naming the field to look at.
        with pytest.raises(StargateError, match="no eligible site"):
            await c.call(
                "CreateRollout", opb.CreateRolloutRequest(spec=spec("p", "atlas-eu", countries=["JP"]))
            )
        with pytest.raises(StargateError, match=r"spec\.release"):
            await c.call("PlanRollout", opb.PlanRolloutRequest(spec=spec("p", "nope")))


async def test_release_with_a_bad_signature_or_unknown_publisher_is_refused(rig: Rig) -> None:
    await rig.publish(release("ok", "1.0.0"))
    forged = release("forged", "1.0.0")
    async with rig.fed.client() as c:
        bad = rpb.SignedRelease(
            release=forged, publisher="acme", signature=rel.sign(Ed25519PrivateKey.generate(), forged)
        )
        with pytest.raises(StargateError, match="signature"):
            await c.call("CreateRelease", opb.CreateReleaseRequest(signed=bad))
        nobody = rpb.SignedRelease(release=forged, publisher="nobody", signature=rel.sign(rig.key, forged))
        with pytest.raises(StargateError, match="publisher"):
            await c.call("CreateRelease", opb.CreateReleaseRequest(signed=nobody))
        tampered = release("ok2", "1.0.0")
        sig = rel.sign(rig.key, tampered)
        tampered.digest = "sha256:" + "ee" * 32  # changed after signing
        with pytest.raises(StargateError, match="signature"):
            await c.call(
                "CreateRelease",
                opb.CreateReleaseRequest(
                    signed=rpb.SignedRelease(release=tampered, publisher="acme", signature=sig)
                ),
            )
        names = [s.release.name for s in (await c.call("ListReleases", opb.ListReleasesRequest())).releases]
    assert names == ["ok"]


async def test_sites_verify_publisher_and_digest_themselves(rig: Rig) -> None:
    other = (
        Ed25519PrivateKey.generate()
        .public_key()
        .public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    )

    def policy(site_id: str) -> LocalPolicy | None:
        if site_id == "fr-par-1":  # trusts another publisher only
            return LocalPolicy(trusted_publisher_keys={other})
        return None

    await rig.sites(policy)
    rig.fed.sites["de-fra-1"].backend.artifacts = {}  # this site cannot find the artifact locally
    await rig.publish(release("atlas-1-2-0", "1.2.0"))
    async with rig.fed.client() as admin:
        await admin.call(
            "CreateRollout", opb.CreateRolloutRequest(spec=spec("v", "atlas-1-2-0", countries=["FR", "DE"]))
        )
    r = await rig.wait("v", lambda r: r.phase in ("Completed", "Failed", "Paused", "RolledBack"))
    reasons = {s.site: (s.state, s.reason) for w in r.waves for s in w.sites}
    assert reasons["fr-par-1"][0] == "Refused" and "is not trusted by this site" in reasons["fr-par-1"][1]
    assert (
        reasons["de-fra-1"][0] == "Refused" and "not in the site's artifact store" in reasons["de-fra-1"][1]
    )
    assert reasons["fr-lyo-1"][0] == "Ready" and reasons["de-ber-1"][0] == "Ready"
    assert "atlas" not in rig.fed.sites["fr-par-1"].backend.items
    # The last wave's two sites both refused: that wave cannot pass on evidence, so the rollout
    # fails with their reasons (a refusal is their right, not a health failure: nothing rolls back).
    assert r.phase == "Failed" and r.waves[2].phase == "Failed", r.message
    assert "every site refused" in r.message and "artifact store" in r.message
    assert rig.fed.sites["fr-lyo-1"].backend.items["atlas"].version == "1.2.0"


async def test_pause_resume_abort_and_bad_manifest_fields(rig: Rig) -> None:
    await rig.sites()
    await rig.publish(release("atlas-1-2-0", "1.2.0"))
    slow = spec("s", "atlas-1-2-0")
    slow.waves[0].bake_seconds = 30  # hold after the canary so that pause/abort find it running
    async with rig.fed.client() as admin:
        await admin.call("CreateRollout", opb.CreateRolloutRequest(spec=slow))
        await rig.wait("s", lambda r: r.waves[0].phase == "Baking")
        act: Any = opb.UpdateRolloutRequest
        r = (await admin.call("UpdateRollout", act(name="s", action=opb.ROLLOUT_ACTION_PAUSE))).rollout
        assert r.phase == "Paused"
        r = (await admin.call("UpdateRollout", act(name="s", action=opb.ROLLOUT_ACTION_RESUME))).rollout
        assert r.phase == "Progressing"
        r = (
            await admin.call("UpdateRollout", act(name="s", action=opb.ROLLOUT_ACTION_ABORT, reason="test"))
        ).rollout
        assert r.phase == "Aborted"
        with pytest.raises(StargateError, match="Aborted"):
            await admin.call("UpdateRollout", act(name="s", action=opb.ROLLOUT_ACTION_RESUME))
        bad = spec("b", "atlas-1-2-0")
        bad.waves[2].percent = 90
        with pytest.raises(StargateError, match=r"spec.waves\[2\].percent"):
            await admin.call("CreateRollout", opb.CreateRolloutRequest(spec=bad))
    await asyncio.sleep(0.5)
    assert (await rig.rollout("s")).phase == "Aborted"  # the engine leaves it alone


async def test_a_safety_freeze_holds_a_rollout_where_it_is(rig: Rig) -> None:
    await rig.sites()
    await rig.publish(release("atlas-1-2-0", "1.2.0"))
    async with rig.fed.client() as admin, rig.person("bob", Role.ADMIN) as second:
        freeze = (
            await admin.call("Freeze", xpb.FreezeRequest(scope="country:DE", reason="incident review"))
        ).action
        await second.call("ApproveSafetyAction", xpb.ApproveSafetyActionRequest(id=freeze.id))
        await admin.call("CreateRollout", opb.CreateRolloutRequest(spec=spec("held", "atlas-1-2-0")))
        r = await rig.wait("held", lambda r: r.message.startswith("frozen by safety control"))
        await asyncio.sleep(0.6)  # several engine ticks: nothing moves
        r = await rig.rollout("held")
        assert set(states(r).values()) == {"Pending"}, states(r)
        assert all("atlas" not in s.backend.items for s in rig.fed.sites.values())
        lift = (await admin.call("Unfreeze", xpb.UnfreezeRequest(scope="country:DE", reason="done"))).action
        await second.call("ApproveSafetyAction", xpb.ApproveSafetyActionRequest(id=lift.id))
        r = await rig.wait("held", lambda r: r.phase == "Completed")
    assert set(states(r).values()) == {"Ready"}
