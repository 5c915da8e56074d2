"""Two control-plane replicas as separate processes on a 3-member etcd: leader failover, fencing of
a frozen leader, losing one etcd member, and a whole-cluster etcd outage.

Everything is real except the sites' workloads: replica processes (``stargate-controlplane
serve``), etcd over mutual TLS (fast raft timings), gRPC over mTLS, SimulatedSite agents (the real
site-agent core) in this process. "Exactly once" is asserted against each site's own application
record, never against the federation's view of it.
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
import uuid
from pathlib import Path

import pytest

from controlplane.api.v1 import federation_pb2 as fpb
from controlplane.api.v1 import safety_pb2 as xpb
from controlplane.api.v1 import types_pb2 as tpb
from controlplane.errors import Unavailable
from tests.support.replicas import (
    INTERVAL,
    ONCE,
    TTL,
    Deployer,
    Harness,
    Replica,
    all_acked,
    assert_exactly_once,
    deploy_request,
    harness,
    until,
)
from tests.support.requests import deploy as send_deploy

pytestmark = pytest.mark.slow

# --- a. failover ------------------------------------------------------------------------------------


async def test_leader_killed_survivor_leads_and_no_directive_lost_or_doubled(tmp_path: Path) -> None:
    async with harness(tmp_path) as h:
        leader, follower = await h.start_pair()
        for i in range(6):
            await h.add_site(f"fr-s{i}", [leader, follower])
        assert {s.agent.replica for s in h.sites.values()} == {leader.rid}

        deployer = Deployer(h, [leader, follower])
        deployer.start()
        await until(lambda: _ge(deployer.count, 12), 15, "deploys before the kill")

        killed_at = time.monotonic()
        os.kill(leader.pid, signal.SIGKILL)
        await h.wait_leader(follower, expect=follower.rid, timeout=TTL + 5)
        failover = time.monotonic() - killed_at
        assert failover <= TTL + 1, f"failover took {failover:.2f}s (lease TTL {TTL}s)"

        async def all_on_survivor() -> bool:
            return all(
                s.agent.replica == follower.rid and s.agent.connected.is_set() for s in h.sites.values()
            )

        await until(all_on_survivor, 10, "every site reconnected to the survivor")
        before = deployer.count
        await until(lambda: _ge(deployer.count, before + 12), 15, "deploys after the failover")
        await deployer.stop()

        async with h.client(follower) as c:
            await until(lambda: all_acked(h, c), 15, "every directive acked")
            total = await assert_exactly_once(h, c, deployer.succeeded)
            status = await h.status(follower)
            audit = await h.audit(c)
        assert total == deployer.count >= 24
        assert status is not None and status.leader == follower.rid and status.store.healthy
        assert [r.id for r in status.replicas] == [follower.rid]  # the dead one's lease expired
        assert audit.chain_verified
        print(f"failover {failover:.2f}s, {deployer.count} directives, {deployer.retries} retries")


async def _ge(a: int, b: int) -> bool:
    return a >= b


# --- b. fencing -------------------------------------------------------------------------------------


async def test_frozen_leader_is_fenced_and_rejoins_as_follower(tmp_path: Path) -> None:
    async with harness(tmp_path) as h:
        leader, follower = await h.start_pair()
        for i in range(3):
            await h.add_site(f"fr-f{i}", [follower, leader])  # links on the replica that survives
        pinned = await h.add_site("fr-pinned", [leader, follower])  # its link stays on the frozen one
        async with h.client(follower, leader) as c:
            await until(lambda: _all_ready(h, [follower]), 10, "sites Ready")
            seq_before = max(e.sequence for e in (await h.audit(c)).events)

        os.kill(leader.pid, signal.SIGSTOP)
        frozen_at = time.monotonic()
        try:
            # While it is frozen: a site goes away. The frozen leader last saw it alive, so its
            # sweeper - were it still leading - would have work to do the moment it wakes.
            await h.sites["fr-f0"].stop()
            await h.wait_leader(follower, expect=follower.rid, timeout=TTL + 5)
            takeover = time.monotonic() - frozen_at

            async def gone() -> bool:
                return (await h.site_statuses(follower))["fr-f0"] == tpb.SITE_STATUS_UNREACHABLE

            await until(gone, 10, "the stopped site marked Unreachable by the new leader")
            # Stay frozen well past the TTL: every local deadline of the old leader has lapsed.
            await asyncio.sleep(max(0.0, 2 * TTL - (time.monotonic() - frozen_at)))
        finally:
            os.kill(leader.pid, signal.SIGCONT)
        woke_at = time.monotonic()

        # It rejoins as a follower: both replicas name the new leader, and both are registered.
        await h.wait_leader(leader, expect=follower.rid, timeout=10)
        want = {(leader.rid, False), (follower.rid, True)}
        for r in (leader, follower):

            async def agrees(r: Replica = r) -> bool:
                st = await h.status(r)
                return (
                    st is not None
                    and st.leader == follower.rid
                    and {(x.id, x.leader) for x in st.replicas} == want
                )

            await until(agrees, 5, f"{r.rid} names {follower.rid} leader and lists both replicas")

        # The pinned site's link survived the freeze; its heartbeats resume on the old leader and
        # the new leader marks it Ready again (it never reconnected, so no Hello would).
        async def pinned_ready() -> bool:
            return (await h.site_statuses(follower))["fr-pinned"] == tpb.SITE_STATUS_READY

        await until(pinned_ready, 10, "the pinned site Ready again")
        assert pinned.agent.connects == 1
        await asyncio.sleep(max(0.0, 4 * INTERVAL - (time.monotonic() - woke_at)))

        async with h.client(follower, leader) as c:
            audit = await h.audit(c)
            statuses = await h.site_statuses([follower])
        assert audit.chain_verified
        after = [e for e in audit.events if e.sequence > seq_before and e.actor.startswith("controller/")]
        actors = {e.actor for e in after}
        assert actors == {f"controller/liveness@{follower.rid}"}, [
            (e.actor, e.action, e.object) for e in after
        ]
        assert ("site.unreachable", "site/fr-f0") in {(e.action, e.object) for e in after}
        assert statuses["fr-f0"] == tpb.SITE_STATUS_UNREACHABLE
        assert all(statuses[f"fr-f{i}"] == tpb.SITE_STATUS_READY for i in (1, 2))
        log = leader.proc.output()
        assert "no longer leads" in log, log
        print(
            f"takeover {takeover:.2f}s after SIGSTOP; controller events after it:",
            [(e.action, e.object) for e in after],
        )


async def _all_ready(h: Harness, rs: list[Replica]) -> bool:
    st = await h.site_statuses(rs)
    return set(st) == set(h.sites) and all(v == tpb.SITE_STATUS_READY for v in st.values())


# --- c. one etcd member lost --------------------------------------------------------------------------


async def test_one_etcd_member_lost_service_continues(tmp_path: Path) -> None:
    async with harness(tmp_path) as h:
        leader, follower = await h.start_pair()
        for i in range(3):
            await h.add_site(f"fr-m{i}", [leader, follower] if i % 2 == 0 else [follower, leader])
        async with h.client(leader, follower) as c:
            await until(lambda: _all_ready(h, [leader]), 10, "sites Ready")
            seq_before = max(e.sequence for e in (await h.audit(c)).events)

            h.etcd.kill_member(0)  # every replica's current endpoint: the first in the list
            lost_at = time.monotonic()

            # Writes through either replica still succeed (a write on the dying connection may
            # fail UNAVAILABLE once; the same request_id makes the retry safe).
            rid = str(uuid.uuid4())
            for r in (leader, follower):
                async with h.client(r) as one:
                    await one.call(
                        "CordonSite", fpb.CordonSiteRequest(site_id="fr-m1", reason=f"check via {r.rid}")
                    )
                    await one.call("UncordonSite", fpb.UncordonSiteRequest(site_id="fr-m1"))
            d = (await send_deploy(c, deploy_request("fr-m2", "after-loss", rid))).directive
            assert d.id == rid

            async def delivered() -> bool:
                return rid in h.sites["fr-m2"].agent.record.applied_ids()

            took = await until(delivered, 10, "the Deploy reached its site")

            # Sites stay Ready for longer than the Unreachable threshold (3 intervals).
            while time.monotonic() - lost_at < 4 * MISSED_WINDOW:
                assert await _all_ready(h, [follower]), await h.site_statuses(follower)
                await asyncio.sleep(0.2)
            for r in (leader, follower):
                st = await h.status(r)
                assert st is not None and st.store.healthy and st.leader == leader.rid, (r.rid, st)
            audit = await h.audit(c)
            await until(lambda: all_acked(h, c), 10, "acked")
            await assert_exactly_once(h, c, {"fr-m2": [rid]})
        assert audit.chain_verified
        assert not [e for e in audit.events if e.sequence > seq_before and e.action == "site.unreachable"]
        print(f"Deploy delivered {took:.2f}s after the write, one of three etcd members down")


MISSED_WINDOW = 3 * INTERVAL


# --- d. whole etcd cluster down -------------------------------------------------------------------------

#: How long etcd stays down: the issue's 10 s = 5 lease TTLs, so every lease (replica, leader) and
#: every local deadline lapses and the retry loops reach their backoff caps (1 s registration, 5 s
#: election, 2 s gRPC reconnect). STARGATE_ETCD_OUTAGE=6 (3 TTLs) exercises the same paths 4 s faster.
OUTAGE = float(os.environ.get("STARGATE_ETCD_OUTAGE", "10"))


async def test_whole_etcd_down_fails_fast_and_recovers_without_restarts(tmp_path: Path) -> None:
    async with harness(tmp_path) as h:
        leader, follower = await h.start_pair()
        for i in range(3):
            await h.add_site(f"fr-o{i}", [leader, follower] if i % 2 == 0 else [follower, leader])
        pids = {r.rid: r.pid for r in (leader, follower)}
        async with h.client(leader, follower) as c:
            first = str(uuid.uuid4())
            await send_deploy(c, deploy_request("fr-o0", "before", first))
            await until(lambda: _has(h, "fr-o0", first), 10, "first Deploy applied")
            await until(lambda: all_acked(h, c), 10, "acked")
            await until(lambda: _all_ready(h, [leader]), 10, "sites Ready")
            workloads = {sid: sorted(s.backend.items) for sid, s in h.sites.items()}
            seqs = {sid: len(await h.directives(c, sid)) for sid in h.sites}

        await asyncio.gather(*(h.etcd.stop_member(i, timeout=2) for i in range(3)))
        down_at = time.monotonic()
        during = str(uuid.uuid4())
        attempts = 0
        while time.monotonic() - down_at < OUTAGE:
            for r in (leader, follower):
                t0 = time.monotonic()
                with pytest.raises(Unavailable) as info:
                    async with h.client(r, retry=ONCE) as one:
                        await send_deploy(one, deploy_request("fr-o1", "during", during))
                took = time.monotonic() - t0
                assert took < 1.0, f"Deploy via {r.rid} took {took:.2f}s to fail"
                assert str(info.value).startswith("state store unavailable"), info.value.__cause__
                attempts += 1
            for sid, s in h.sites.items():
                assert sorted(s.backend.items) == workloads[sid], sid  # sites keep what they run
            await asyncio.sleep(0.3)
        st = await h.status(leader)
        assert st is not None and not st.store.healthy and not st.leader, st

        for i in range(3):
            await h.etcd.start_member(i)
        await h.etcd.wait_ready(10)
        up_at = time.monotonic()

        # No replica is restarted: the same processes re-register and elect a leader.
        new_leader = await h.wait_leader(leader, timeout=20)
        await h.wait_leader(follower, expect=new_leader, timeout=10)
        reelected = time.monotonic() - up_at
        assert {r.rid: r.pid for r in (leader, follower)} == pids
        assert all(r.proc.p.poll() is None for r in (leader, follower))

        async with h.client(leader, follower) as c:
            # Nothing half-written: the Deploy that failed during the outage left no trace.
            assert len(await h.directives(c, "fr-o1")) == seqs["fr-o1"]
            d = (await send_deploy(c, deploy_request("fr-o1", "during", during))).directive
            assert d.id == during and d.sequence == seqs["fr-o1"] + 1
            took = await until(lambda: _has(h, "fr-o1", during), 15, "Deploy after the outage delivered")
            await until(lambda: all_acked(h, c), 10, "acked")
            await until(lambda: _all_ready(h, [leader]), 10, "sites Ready after the outage")
            for r in (leader, follower):

                async def recovered(r: Replica = r) -> bool:
                    st = await h.status(r)
                    return (
                        st is not None
                        and st.store.healthy
                        and st.leader == new_leader
                        and {x.id for x in st.replicas} == {leader.rid, follower.rid}
                    )

                # Each replica's etcd channels reconnect on their own backoff: wait, bounded.
                await until(recovered, 10, f"{r.rid} reports a healthy store and the new leader")
            audit = await h.audit(c)
            await assert_exactly_once(h, c, {"fr-o0": [first], "fr-o1": [during]})
        assert audit.chain_verified
        assert sum(s.agent.connects for s in h.sites.values()) >= len(h.sites)
        assert {sid: sorted(s.backend.items) for sid, s in h.sites.items()} == {
            **workloads,
            "fr-o1": sorted([*workloads["fr-o1"], "during"]),
        }
        print(
            f"{attempts} writes failed fast during a {OUTAGE:.0f}s outage; leader re-elected "
            f"{reelected:.2f}s after etcd was back; Deploy delivered {took:.2f}s after it was accepted"
        )


async def _has(h: Harness, sid: str, rid: str) -> bool:
    return rid in h.sites[sid].agent.record.applied_ids()


# --- e. the safety lane across replicas -------------------------------------------------------------


async def test_a_halt_reaches_sites_on_every_replica_and_survives_the_loss_of_one(tmp_path: Path) -> None:
    """A halt committed through one replica reaches sites linked to the other (each replica follows
    the lane in etcd); after the replica that holds half the links is killed, those sites reconnect
    to the survivor, which sends them the next halt, and nothing is applied twice."""
    async with harness(tmp_path) as h:
        leader, follower = await h.start_pair()
        on_leader = [await h.add_site(f"fr-l{i}", [leader, follower]) for i in range(2)]
        on_follower = [await h.add_site(f"fr-f{i}", [follower, leader]) for i in range(2)]
        sites = [*on_leader, *on_follower]
        assert {s.agent.replica for s in on_leader} == {leader.rid}
        assert {s.agent.replica for s in on_follower} == {follower.rid}

        async with h.client(follower, leader) as c:
            for s in sites:
                req = deploy_request(s.facts.site_id, "atlas", str(uuid.uuid4()))
                req.deploy.release = "atlas-r1"
                await send_deploy(c, req)
            await until(lambda: _ge(sum("atlas" in s.backend.items for s in sites), 4), 15, "deployed")

            async def state(aid: str) -> str:
                return str((await c.call("GetSafetyAction", xpb.GetSafetyActionRequest(id=aid))).action.state)

            first = (
                await c.call("Halt", xpb.HaltRequest(release="atlas-r1", scope="global", reason="a"))
            ).action
            await until(lambda: _ge(sum(s.agent.safety.last_sequence == 1 for s in sites), 4), 15, "halt 1")
            await until(lambda: _eq(state(first.id), "Halted"), 15, "halt 1 settled")

            os.kill(leader.pid, signal.SIGKILL)

            async def moved() -> bool:
                return all(s.agent.replica == follower.rid and s.agent.connected.is_set() for s in sites)

            await until(moved, 15, "every site on the survivor")
            second = (await c.call("Halt", xpb.HaltRequest(release="atlas-r2", scope="country:FR"))).action
            await until(lambda: _ge(sum(s.agent.safety.last_sequence == 2 for s in sites), 4), 15, "halt 2")
            await until(lambda: _eq(state(second.id), "Halted"), 15, "halt 2 settled")
    for s in sites:
        halts = [(e.safety_sequence, e.outcome) for e in s.agent.record.entries if e.kind == "Halt"]
        assert halts == [(1, "applied"), (2, "applied")], (s.facts.site_id, halts)
        # atlas-r1 is registered: its halt stops the artifact; atlas-r2 is not: by name.
        artifact = f"atlas@{s.backend.items['atlas'].digest}"
        assert s.backend.items["atlas"].halted and s.agent.safety.state.halted == {"atlas-r2": second.id}
        assert s.agent.safety.state.halted_artifacts == {artifact: [first.id]}


async def _eq(a: object, b: object) -> bool:
    return (await a if asyncio.iscoroutine(a) else a) == b
