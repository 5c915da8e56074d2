"""Safety controls end to end over real mTLS: a real control plane (the ``fed`` fixture) and
simulated sites running the real site-agent core."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import pytest

from controlplane.api.v1 import federation_pb2 as fpb
from controlplane.api.v1 import safety_pb2 as xpb
from controlplane.api.v1 import site_pb2 as spb
from controlplane.api.v1 import types_pb2 as tpb
from controlplane.client.config import Context
from controlplane.client.federation import FederationClient
from controlplane.errors import FailedPrecondition, PermissionDenied, Unavailable
from controlplane.pki.identity import Role
from controlplane.pki.safety_key import SafetyKey
from controlplane.services.safety import Safety
from operators.agent.policy import LocalPolicy
from tests.support.federation import FAST, TD, Federation, approve
from tests.support.federation import resume as signed_resume
from tests.support.requests import deploy as send_deploy
from tests.support.wait import until

DIGEST = "sha256:" + "cd" * 32
OTHER = "sha256:" + "ce" * 32
ADMIN = f"spiffe://{TD}/user/admin"


def person(fed: Federation, tmp: Path, name: str, role: Role, country: str = "") -> FederationClient:
    return fed.person(tmp, name, role, country)


def deploy(site: str, name: str, release: str, tier: int = 2, digest: str = DIGEST) -> fpb.DeployRequest:
    payload = tpb.DeployPayload(
        deployment_name=name,
        model="atlas",
        version="1.0.0",
        digest=digest,
        replicas=1,
        release=release,
        risk_tier=tier,
    )
    return fpb.DeployRequest(site_id=site, deploy=payload)


async def action(c: FederationClient, aid: str) -> xpb.SafetyAction:
    return (await c.call("GetSafetyAction", xpb.GetSafetyActionRequest(id=aid))).action


async def audit(c: FederationClient) -> list[fpb.AuditEvent]:
    return list((await c.call("ListAuditEvents", fpb.ListAuditEventsRequest())).events)


async def test_global_halt_to_ten_sites_one_offline_halted_first_on_reconnect(fed: Federation) -> None:
    sites = [await fed.add_site(f"site-{i}", "FR" if i % 2 else "DE") for i in range(10)]
    async with fed.client() as c:
        for s in sites:
            await send_deploy(c, deploy(s.facts.site_id, "atlas", "atlas-r1"))
        await until(lambda: all("atlas" in s.backend.items for s in sites), what="deploys applied")
        offline = sites[9]
        await offline.stop()
        before = len(offline.agent.record.entries)

        halt = (
            await c.call("Halt", xpb.HaltRequest(release="atlas-r1", scope="global", reason="sev1"))
        ).action
        assert halt.requested_by == ADMIN and halt.approvals == [ADMIN]
        # Queued for the offline site after the halt: it must still come second. (Another artifact:
        # the halt stops atlas-r1's model and digest whatever the release is called.)
        later = (await send_deploy(c, deploy("site-9", "later", "other-r1", digest=OTHER))).directive

        async def nine_acked() -> bool:
            return (await action(c, halt.id)).acked == 9

        await until(nine_acked, what="9 acks")
        st = await action(c, halt.id)
        assert (st.acked, st.pending, st.rejected) == (9, 1, 0)
        assert [s.state for s in st.sites if s.site_id == "site-9"] in (["Pending"], ["Unreachable"])
        assert all(s.backend.items["atlas"].halted for s in sites[:9])
        assert not offline.backend.items["atlas"].halted

        offline.start()

        async def settled() -> bool:
            # All ten: "Halted" alone also holds while the returning site still counts as
            # unreachable (it is not waited for then).
            st = await action(c, halt.id)
            return st.state == "Halted" and st.acked == 10

        await until(settled, what="Halted with all ten acked")
        st = await action(c, halt.id)
        assert (st.acked, st.pending, st.unreachable) == (10, 0, 0)
        await until(lambda: len(offline.agent.record.entries) == before + 2, what="halt and deploy applied")
        after = offline.agent.record.entries[before:]
        assert [(e.kind, e.outcome) for e in after] == [("Halt", "applied"), ("Deploy", "applied")]
        assert after[1].directive_id == later.id and after[0].safety_sequence == 1
        assert offline.backend.items["atlas"].halted and not offline.backend.items["later"].halted
        # A later Deploy of the halted release is refused at the federation (and would be at the
        # site: tests/integration/test_artifact_halts.py).
        with pytest.raises(FailedPrecondition, match="is halted"):
            await send_deploy(c, deploy("site-0", "atlas-2", "atlas-r1"))
        events = await audit(c)
    assert any(e.action == "safety.halt" and e.actor == ADMIN and e.details["id"] == halt.id for e in events)
    # Acks are audited in batches, each event naming its sites: all ten, once each.
    acked = [s for e in events if e.action == "safety.ack" for s in e.details["sites"].split(",")]
    assert sorted(acked) == sorted(s.facts.site_id for s in sites)
    assert all(e.details["id"] == halt.id for e in events if e.action == "safety.ack")


async def test_a_halt_signed_with_another_key_is_refused_at_the_site_and_audited(fed: Federation) -> None:
    site = await fed.add_site("fr-par-1", "FR")
    async with fed.client() as c:
        await send_deploy(c, deploy("fr-par-1", "atlas", "atlas-r1"))
        await until(lambda: "atlas" in site.backend.items)
        # Someone with write access to the store and the code, but not the safety key.
        rt = fed.cp.runtime  # type: ignore[union-attr]
        forger = Safety(rt.store, rt.audit, rt.registry, SafetyKey.generate())
        forged = await forger.halt("spiffe://x/user/mallory", "atlas-r1", "global", "forged")

        async def rejected() -> bool:
            return (await action(c, forged.id)).rejected == 1

        await until(rejected, what="reject")
        st = await action(c, forged.id)
        events = await audit(c)
    assert st.sites[0].state == "Rejected" and st.sites[0].reason.startswith("signature: unknown safety key")
    assert not site.backend.items["atlas"].halted
    rej = [e for e in events if e.action == "safety.reject"]
    assert rej and rej[-1].outcome == "denied" and rej[-1].actor.endswith("/site/fr-par-1")
    assert rej[-1].reason.startswith("signature:")


async def test_two_person_rule_for_resume_freeze_and_global_halts(fed: Federation, tmp_path: Path) -> None:
    site = await fed.add_site("fr-par-1", "FR")
    rt = fed.cp.runtime  # type: ignore[union-attr]
    async with (
        fed.client() as alice,
        person(fed, tmp_path, "bob", Role.ADMIN) as bob,
        person(fed, tmp_path, "claire", Role.STEWARD, "FR") as claire,
    ):
        await send_deploy(alice, deploy("fr-par-1", "atlas", "atlas-r1"))
        await until(lambda: "atlas" in site.backend.items)
        halt = (await alice.call("Halt", xpb.HaltRequest(release="atlas-r1", scope="site:fr-par-1"))).action
        await until(lambda: site.backend.items["atlas"].halted)
        resume = await signed_resume(alice, halt.id, "fixed")
        assert resume.state == "PendingApproval" and resume.approvals_required == 2
        with pytest.raises(FailedPrecondition, match="second, distinct admin"):
            await approve(alice, resume.id)
        with pytest.raises(PermissionDenied):
            await claire.call("ApproveSafetyAction", xpb.ApproveSafetyActionRequest(id=resume.id))
        await asyncio.sleep(0.3)
        assert site.backend.items["atlas"].halted and (await action(alice, halt.id)).state == "Halted"
        done = await approve(bob, resume.id)
        assert done.approvals == [ADMIN, f"spiffe://{TD}/user/bob"]
        await until(lambda: not site.backend.items["atlas"].halted, what="resumed at the site")
        assert (await action(alice, halt.id)).state == "Resumed"

        # Freeze: held only once a second admin approved; the rollout engine's check sees it.
        fr = (await alice.call("Freeze", xpb.FreezeRequest(scope="country:FR", reason="audit"))).action
        assert await rt.safety.is_frozen(site_id="fr-par-1", country="FR") is None
        await bob.call("ApproveSafetyAction", xpb.ApproveSafetyActionRequest(id=fr.id))
        frozen = await rt.safety.is_frozen(site_id="fr-par-1", country="FR")
        assert frozen is not None and frozen.action_id == fr.id
        assert await rt.safety.is_frozen(site_id="de-fra-1", country="DE") is None
        un = (await bob.call("Unfreeze", xpb.UnfreezeRequest(scope="country:FR"))).action
        await alice.call("ApproveSafetyAction", xpb.ApproveSafetyActionRequest(id=un.id))
        assert await rt.safety.is_frozen(site_id="fr-par-1", country="FR") is None

        # The federation setting: a global halt needs a second approver.
        rt.safety.settings.global_halt_approvals = 2
        g = (await alice.call("Halt", xpb.HaltRequest(release="atlas-r1", scope="global"))).action
        assert g.state == "PendingApproval" and not site.backend.items["atlas"].halted
        await bob.call("ApproveSafetyAction", xpb.ApproveSafetyActionRequest(id=g.id))
        await until(lambda: site.backend.items["atlas"].halted, what="approved global halt")
        events = await audit(alice)
    denied = [(e.action, e.actor.rsplit("/", 1)[-1]) for e in events if e.outcome == "denied"]
    assert ("safety.approve", "admin") in denied and ("rpc.ApproveSafetyAction", "claire") in denied
    actions = [e.action for e in events]
    for a in ("safety.resume.request", "safety.approve", "safety.resume", "safety.freeze", "safety.unfreeze"):
        assert a in actions, a


async def test_incident_rule_halts_the_release_globally(fed: Federation) -> None:
    a = await fed.add_site("fr-par-1", "FR")
    b = await fed.add_site("de-fra-1", "DE")
    async with fed.client() as c:
        for s in (a, b):
            await send_deploy(c, deploy(s.facts.site_id, "atlas", "atlas-r1"))
        await until(lambda: "atlas" in a.backend.items and "atlas" in b.backend.items)
        a.agent.report_incident("atlas-r1", 1, "harmful-output", 2)  # over the link
        d = fed.dir / "sites" / "de-fra-1"  # and with the site's certificate, as `incidents report` does
        ctx = Context("site", (fed.address,), "", d / "ca.crt", d / "site.crt", d / "site.key")
        await asyncio.sleep(0.3)
        assert not a.backend.items["atlas"].halted  # 2 incidents from 1 site: not yet
        async with FederationClient(ctx, servers=[fed.address], retry=FAST) as site_client:
            inc = xpb.IncidentReport(
                site_id="de-fra-1", release="atlas-r1", severity=1, category="harm", count=1
            )
            await site_client.call("ReportIncident", spb.ReportIncidentRequest(incident=inc))
            with pytest.raises(PermissionDenied):  # a site reports only as itself
                inc.site_id = "fr-par-1"
                await site_client.call("ReportIncident", spb.ReportIncidentRequest(incident=inc))
        await until(
            lambda: a.backend.items["atlas"].halted and b.backend.items["atlas"].halted, what="auto halt"
        )
        actions = (await c.call("ListSafetyActions", xpb.ListSafetyActionsRequest())).actions
        events = await audit(c)
    auto = [x for x in actions if x.automatic and x.kind == xpb.SAFETY_ACTION_KIND_HALT]
    assert len(auto) == 1 and auto[0].scope == "global" and auto[0].release == "atlas-r1"
    assert auto[0].requested_by.startswith("controller/safety@")
    halt_events = [e for e in events if e.action == "safety.halt"]
    assert halt_events[-1].details["rule"] == "sev1-burst" and halt_events[-1].details["automatic"] == "true"
    assert sum(e.action == "incident.report" for e in events) == 2


async def test_fail_closed_halts_a_tier_after_its_tolerance_without_beacons(fed: Federation) -> None:
    tolerance = 1.0
    site = await fed.add_site("fr-par-1", "FR", policy=LocalPolicy(link_loss_tolerance={3: tolerance}))
    rt = fed.cp.runtime  # type: ignore[union-attr]
    async with fed.client() as c:
        await send_deploy(c, deploy("fr-par-1", "risky", "risky-r1", tier=3))
        await send_deploy(c, deploy("fr-par-1", "calm", "calm-r1", tier=2))
        await until(lambda: {"risky", "calm"} <= set(site.backend.items))
        await until(lambda: site.agent.safety.beacons >= 2, what="beacons")
        rt.safety.beacons_paused = True  # the link stays up; only the signed beacon stops
        paused = time.monotonic()
        await asyncio.sleep(tolerance - 2 * fed.interval)
        assert not site.backend.items["risky"].halted  # not before the tolerance
        await until(lambda: site.backend.items["risky"].halted, timeout=2 * tolerance, what="fail-closed")
        waited = time.monotonic() - paused
        assert tolerance - fed.interval - 0.05 <= waited <= tolerance + 0.5, waited
        assert not site.backend.items["calm"].halted  # another tier
        rt.safety.beacons_paused = False

        async def reported() -> bool:
            acts = (await c.call("ListSafetyActions", xpb.ListSafetyActionsRequest())).actions
            return any(x.kind == xpb.SAFETY_ACTION_KIND_LOCAL_HALT for x in acts)

        await until(reported, what="local halt reported upstream")
        events = await audit(c)
        local = next(
            x
            for x in (await c.call("ListSafetyActions", xpb.ListSafetyActionsRequest())).actions
            if x.kind == xpb.SAFETY_ACTION_KIND_LOCAL_HALT
        )
    assert local.release == "risky-r1" and local.state == "Halted" and local.scope == "site:fr-par-1"
    ev = [e for e in events if e.action == "safety.local_halt"][-1]
    assert ev.actor.endswith("/site/fr-par-1") and ev.details["risk_tier"] == "3"
    assert site.backend.items["risky"].halted  # stays halted until resumed under the two-person rule


async def test_a_country_halt_reaches_that_country_only_and_a_site_enrolled_later_gets_it_first(
    fed: Federation,
) -> None:
    fr = [await fed.add_site(f"fr-{i}", "FR") for i in range(2)]
    de = await fed.add_site("de-0", "DE")
    async with fed.client() as c:
        for s in [*fr, de]:
            await send_deploy(c, deploy(s.facts.site_id, "atlas", "atlas-r1"))
        await until(lambda: all("atlas" in s.backend.items for s in [*fr, de]), what="deploys applied")
        halt = (
            await c.call("Halt", xpb.HaltRequest(release="atlas-r1", scope="country:FR", reason="FR only"))
        ).action
        assert (halt.state, halt.pending) == ("Halting", 2)  # the sites in scope, before any ack

        async def settled() -> bool:
            return (await action(c, halt.id)).state == "Halted"

        await until(settled, what="Halted")
        assert all(s.backend.items["atlas"].halted for s in fr)
        assert not de.backend.items["atlas"].halted and de.agent.safety.last_sequence == 0
        assert [s.site_id for s in (await action(c, halt.id)).sites] == ["fr-0", "fr-1"]

        # A French site enrolled after the halt: the halt is the first thing it receives.
        late = await fed.add_site("fr-late", "FR")
        await until(lambda: late.agent.safety.last_sequence == 1, what="late site halted")
        assert late.agent.record.entries[0].kind == "Halt"
        # The halt stops the artifact of atlas-r1, whatever the name a Deploy gives it.
        assert late.agent.safety.check_deploy({"model": "atlas", "digest": DIGEST}) is not None

        async def three_acked() -> bool:  # the site applies first, then its ack is stored
            return (await action(c, halt.id)).acked == 3

        await until(three_acked, what="the late site's ack stored")
        st = await action(c, halt.id)
        assert (st.pending, [s.site_id for s in st.sites]) == (0, ["fr-0", "fr-1", "fr-late"])


async def test_concurrent_halts_take_distinct_rising_sequences_and_every_site_applies_them_in_order(
    fed: Federation,
) -> None:
    sites = [await fed.add_site(f"site-{i}", "JP") for i in range(3)]
    async with fed.client() as c:
        halts = await asyncio.gather(
            *(
                c.call("Halt", xpb.HaltRequest(release=f"r{i}", scope="global", reason="burst"))
                for i in range(6)
            )
        )
        ids = {h.action.id for h in halts}
        await until(lambda: all(s.agent.safety.last_sequence == 6 for s in sites), what="all applied")
    rt = fed.cp.runtime  # type: ignore[union-attr]
    lane = [rt.safety.lane.get(seq) for seq in range(1, 7)]
    assert {e.record.id for e in lane if e is not None} == ids  # one directive each, seq 1..6
    for s in sites:
        applied = [e.safety_sequence for e in s.agent.record.entries if e.kind == "Halt"]
        assert applied == [1, 2, 3, 4, 5, 6] and all(e.outcome == "applied" for e in s.agent.record.entries)


async def test_an_ack_for_a_directive_that_does_not_cover_the_site_is_refused_and_audited(
    fed: Federation,
) -> None:
    await fed.add_site("de-0", "DE")
    rt = fed.cp.runtime  # type: ignore[union-attr]
    async with fed.client() as c:
        halt = (await c.call("Halt", xpb.HaltRequest(release="r1", scope="country:FR", reason="x"))).action
        await until(lambda: rt.safety.lane.top == 1, what="lane loaded")
        # A German site claiming to have applied a French halt, and an ack naming a wrong id.
        actor = f"spiffe://{TD}/site/de-0"
        assert not await rt.safety.complete(actor, "de-0", "DE", halt.id, 1, rejected=False)
        assert not await rt.safety.complete(actor, "de-0", "DE", "not-" + halt.id, 1, rejected=False)
        events = [e for e in await audit(c) if e.action == "safety.ack" and e.actor == actor]
        st = await action(c, halt.id)
    assert len(events) == 2 and all(e.outcome == "denied" for e in events)
    assert events[0].reason == "no such safety directive for this site"
    assert (st.acked, [s.site_id for s in st.sites]) == (0, [])


async def test_incidents_raised_without_a_link_go_out_when_it_returns(fed: Federation) -> None:
    site = await fed.add_site("fr-par-1", "FR")
    await site.stop()
    assert not site.agent.connected.is_set()
    site.agent.report_incident("atlas-r1", 2, "harmful-output", 4)
    async with fed.client() as c:

        async def reported() -> bool:
            return any(e.action == "incident.report" for e in await audit(c))

        await asyncio.sleep(0.3)
        assert not await reported()
        site.start()
        await until(reported, what="the incident after the reconnect")
        event = next(e for e in await audit(c) if e.action == "incident.report")
    assert event.actor == f"spiffe://{TD}/site/fr-par-1" and event.details["count"] == "4"


async def test_an_ack_the_federation_fails_to_store_ends_the_link_and_the_site_sends_it_again(
    fed: Federation,
) -> None:
    site = await fed.add_site("fr-par-1", "FR")
    rt = fed.cp.runtime  # type: ignore[union-attr]
    commit = rt.safety._audit.commit
    failed: list[int] = []

    async def flaky(compares: Any, ops: Any, entries: Any) -> Any:
        # The first ack batch meets a store outage.
        if not failed and any(e.action == "safety.ack" for e in entries):
            failed.append(1)
            raise Unavailable()
        return await commit(compares, ops, entries)

    rt.safety._audit.commit = flaky
    connects = site.agent.connects
    async with fed.client() as c:
        halt = (await c.call("Halt", xpb.HaltRequest(release="r1", scope="global", reason="x"))).action
        # The site applied it and acked; the ack was lost with the batch: the link ended
        # (UNAVAILABLE), the site came back and re-sent its outcome, which is stored now.
        await until(lambda: site.agent.connects > connects, what="the site reconnected")
        for _ in range(250):
            if (await action(c, halt.id)).acked == 1:
                break
            await asyncio.sleep(0.02)
        st = await action(c, halt.id)
    assert failed and st.acked == 1 and st.state == "Halted"
    assert site.agent.safety.last_sequence == 1 and len(site.agent.record.entries) == 1  # applied once
