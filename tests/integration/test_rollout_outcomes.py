"""Outcomes that match the sites, over real mTLS with simulated sites: a bad release staged at the
canary rolls back and every reached site reports the previous release again; a rejected restore is
never RolledBack; refusal everywhere never completes; promote, undo and delete."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from controlplane.api.v1 import federation_pb2 as fpb
from controlplane.api.v1 import rollouts_pb2 as opb
from controlplane.domain.records import site_key
from controlplane.errors import StargateError
from controlplane.pki.identity import Role
from operators.agent.backend import SimHealth
from operators.agent.policy import LocalPolicy
from tests.integration.test_rollouts import Rig, release, rig, spec, states

__all__ = ["rig"]  # the fixture


async def reported(rig: Rig, site_id: str) -> dict[str, Any]:
    """What the federation stores of the site's report of atlas (the source of evidence)."""
    async with rig.fed.client() as c:
        site = (await c.call("GetSite", fpb.GetSiteRequest(site_id=site_id))).site
    return next(
        (
            {"version": d.version, "digest": d.digest, "release": d.release}
            for d in site.deployments
            if d.name == "atlas"
        ),
        {},
    )


async def act(rig: Rig, name: str, action: int, **kw: Any) -> opb.Rollout:
    async with rig.fed.client() as admin:
        req = opb.UpdateRolloutRequest(name=name, action=action, **kw)
        return (await admin.call("UpdateRollout", req)).rollout


async def test_a_bad_release_staged_at_the_canary_rolls_back_and_the_canary_reports_the_old_one(
    rig: Rig,
) -> None:
    await rig.sites()
    await rig.publish(release("atlas-1.1.0", "1.1.0"))
    await rig.publish(release("atlas-1.2.0", "1.2.0"))
    async with rig.fed.client() as admin:
        await admin.call("CreateRollout", opb.CreateRolloutRequest(spec=spec("v1", "atlas-1.1.0")))
        await rig.wait("v1", lambda r: r.phase == "Completed")
        plan = await admin.call("PlanRollout", opb.PlanRolloutRequest(spec=spec("v2", "atlas-1.2.0")))
        canary = plan.selected[0].site
        rig.fed.sites[canary].backend.health["atlas-1.2.0"] = SimHealth(error_rate=0.2, latency_p95_ms=900)
        await admin.call("CreateRollout", opb.CreateRolloutRequest(spec=spec("v2", "atlas-1.2.0")))
    r = await rig.wait("v2", lambda r: r.phase in ("RolledBack", "Completed"))
    assert r.phase == "RolledBack" and f"at {canary}" in r.message and r.waves[0].phase == "Failed"
    st = states(r)
    assert st[canary] == "RolledBack" and {v for k, v in st.items() if k != canary} == {"Skipped"}
    gates = {g.name: g for g in r.waves[0].gates}
    assert gates["maxErrorRate"].outcome == "fail" and gates["maxErrorRate"].value == pytest.approx(0.2)
    # Every site, the canary included, runs 1.1.0 again, and says so upstream.
    for sid, site in rig.fed.sites.items():
        assert site.backend.items["atlas"].version == "1.1.0", sid
    assert (await reported(rig, canary))["version"] == "1.1.0"


async def test_a_rejected_restore_is_rollback_failed_never_rolled_back(rig: Rig) -> None:
    await rig.sites()
    await rig.publish(release("atlas-1.1.0", "1.1.0", tier=2))
    await rig.publish(release("atlas-1.2.0", "1.2.0", tier=1))
    async with rig.fed.client() as admin:
        await admin.call("CreateRollout", opb.CreateRolloutRequest(spec=spec("v1", "atlas-1.1.0")))
        await rig.wait("v1", lambda r: r.phase == "Completed")
        plan = await admin.call("PlanRollout", opb.PlanRolloutRequest(spec=spec("v2", "atlas-1.2.0")))
        canary = plan.selected[0].site
        site = rig.fed.sites[canary]
        site.backend.health["atlas-1.2.0"] = SimHealth(error_rate=0.5)
        site.agent.policy = LocalPolicy(accepted_risk_tiers={1})  # 1.1.0 (tier 2) is now refused here
        await admin.call("CreateRollout", opb.CreateRolloutRequest(spec=spec("v2", "atlas-1.2.0")))
    r = await rig.wait("v2", lambda r: r.phase in ("Paused", "RolledBack"))
    assert r.phase == "Paused" and f"rollback failed at {canary}" in r.message, r.message
    canary_state = next(s for w in r.waves for s in w.sites if s.site == canary)
    assert canary_state.state == "RollbackFailed" and "risk tier 2 not accepted" in canary_state.reason
    assert site.backend.items["atlas"].version == "1.2.0"  # what the site really runs
    # The site changes its mind; resuming retries the restore with a new directive.
    site.agent.policy = LocalPolicy()
    await act(rig, "v2", opb.ROLLOUT_ACTION_RESUME)
    r = await rig.wait("v2", lambda r: r.phase == "RolledBack")
    assert site.backend.items["atlas"].version == "1.1.0"


async def test_refusal_everywhere_never_completes(rig: Rig) -> None:
    # Every site trusts only another publisher's key: placement cannot know that, each site refuses.
    await rig.sites(lambda _: LocalPolicy(trusted_publisher_keys={b"\1" * 32}))
    await rig.publish(release("atlas-1.2.0", "1.2.0", tier=2))
    async with rig.fed.client() as admin:
        await admin.call("CreateRollout", opb.CreateRolloutRequest(spec=spec("x", "atlas-1.2.0")))
    r = await rig.wait("x", lambda r: r.phase in ("Completed", "Failed"))
    assert r.phase == "Failed" and "every site refused" in r.message
    assert states(r)[r.waves[0].sites[0].site] == "Refused"
    assert {w.phase for w in r.waves[1:]} == {"Pending"}  # nothing after the canary was sent
    assert all("atlas" not in s.backend.items for s in rig.fed.sites.values())


async def test_a_site_the_federation_cannot_send_to_is_refused_with_the_reason(rig: Rig) -> None:
    await rig.sites()
    await rig.publish(release("atlas-1.2.0", "1.2.0"))
    async with rig.fed.client() as admin:
        plan = await admin.call("PlanRollout", opb.PlanRolloutRequest(spec=spec("g", "atlas-1.2.0")))
        gone = plan.selected[-1].site  # in the last wave
        slow = spec("g", "atlas-1.2.0")
        slow.waves[0].bake_seconds = 1.0
        await admin.call("CreateRollout", opb.CreateRolloutRequest(spec=slow))
    await rig.fed.store.delete(site_key(gone))  # issue() for it now fails: refused, not a crash
    r = await rig.wait("g", lambda r: r.phase in ("Completed", "Failed") and states(r)[gone] != "Pending")
    assert r.phase == "Completed", r.message
    gone_state = next(s for w in r.waves for s in w.sites if s.site == gone)
    assert gone_state.state == "Refused" and "federation: site" in gone_state.reason


async def test_promote_undo_and_delete(rig: Rig) -> None:
    await rig.sites()
    await rig.publish(release("atlas-1.1.0", "1.1.0"))
    await rig.publish(release("atlas-1.2.0", "1.2.0"))
    async with rig.fed.client() as admin:
        await admin.call("CreateRollout", opb.CreateRolloutRequest(spec=spec("v1", "atlas-1.1.0")))
        await rig.wait("v1", lambda r: r.phase == "Completed")
        held = spec("v2", "atlas-1.2.0")
        held.waves[0].bake_seconds = 3600  # the canary would bake for an hour
        await admin.call("CreateRollout", opb.CreateRolloutRequest(spec=held))
        await rig.wait("v2", lambda r: r.waves[0].phase == "Baking")
        with pytest.raises(StargateError, match="reason"):
            await act(rig, "v2", opb.ROLLOUT_ACTION_PROMOTE, wave="canary")
        async with rig.person("steward-fr", Role.STEWARD, "FR") as steward:  # admins only
            req = opb.UpdateRolloutRequest(
                name="v2", action=opb.ROLLOUT_ACTION_PROMOTE, wave="canary", reason="mine"
            )
            with pytest.raises(StargateError, match="may not call UpdateRollout"):
                await steward.call("UpdateRollout", req)
            with pytest.raises(StargateError, match="may not call DeleteRelease"):
                await steward.call("DeleteRelease", opb.DeleteReleaseRequest(name="atlas-1.1.0"))
        with pytest.raises(StargateError, match="only the current wave"):
            await act(rig, "v2", opb.ROLLOUT_ACTION_PROMOTE, wave="half", reason="x")
        r = await act(rig, "v2", opb.ROLLOUT_ACTION_PROMOTE, wave="canary", reason="metrics reviewed")
        assert r.waves[0].phase == "Completed" and r.waves[0].promoted.endswith(": metrics reviewed")
        r = await rig.wait("v2", lambda r: r.phase == "Completed")
        # Deleting: a release still referenced, or running, is refused saying where.
        with pytest.raises(StargateError, match=r"referenced by rollouts v2.*running at sites"):
            await admin.call("DeleteRelease", opb.DeleteReleaseRequest(name="atlas-1.2.0"))
        with pytest.raises(StargateError, match="undo or roll that back first"):
            await act(rig, "v1", opb.ROLLOUT_ACTION_UNDO)  # v2 replaced v1 since
        r = await act(rig, "v2", opb.ROLLOUT_ACTION_UNDO, reason="customer report")
        assert r.phase == "RollingBack"
        r = await rig.wait("v2", lambda r: r.phase == "RolledBack")
        assert all(s.backend.items["atlas"].version == "1.1.0" for s in rig.fed.sites.values())
        assert set(states(r).values()) == {"RolledBack"}
        await admin.call("DeleteRollout", opb.DeleteRolloutRequest(name="v2"))
        await asyncio.sleep(0.5)  # the sites report 1.1.0 only: 1.2.0 runs nowhere
        await admin.call("DeleteRelease", opb.DeleteReleaseRequest(name="atlas-1.2.0"))
        names = [
            s.release.name for s in (await admin.call("ListReleases", opb.ListReleasesRequest())).releases
        ]
        assert names == ["atlas-1.1.0"]
        # A rollout created again under the deleted one's name sends its own directives (ids derive
        # from the rollout's uid), never re-finding the deleted rollout's.
        again = spec("v2", "atlas-1.1.0")
        again.waves[0].bake_seconds = 3600
        await admin.call("CreateRollout", opb.CreateRolloutRequest(spec=again))
        with pytest.raises(StargateError, match="only a Completed, Failed, RolledBack or Aborted"):
            await admin.call("DeleteRollout", opb.DeleteRolloutRequest(name="v2"))
        r = await rig.wait("v2", lambda r: r.waves[0].phase == "Baking")
        canary = r.waves[0].sites[0].site
        sent = (await admin.call("ListDirectives", fpb.ListDirectivesRequest(site_id=canary))).directives
        deploys = [d for d in sent if d.directive.deploy.rollout == "v2"]
        assert [d.directive.deploy.release for d in deploys] == ["atlas-1.2.0", "atlas-1.1.0"]
        events = (await admin.call("ListAuditEvents", fpb.ListAuditEventsRequest(limit=10000))).events
    promote = [e for e in events if e.action == "rollout.promote"]
    assert [(e.reason, e.details["wave"]) for e in promote] == [("metrics reviewed", "canary")]
    assert {"rollout.undo", "rollout.delete", "release.delete"} <= {e.action for e in events}
    assert any(e.action == "release.delete" and e.outcome == "denied" for e in events)
