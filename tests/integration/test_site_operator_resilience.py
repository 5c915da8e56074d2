"""The site operator when things go away: the link (control plane down and back) and the operator
itself (restarted with directives queued meanwhile: applied exactly once, no second enrollment)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable

from controlplane.api.v1 import federation_pb2 as fpb
from controlplane.api.v1 import types_pb2 as tpb
from controlplane.errors import StargateError
from tests.integration.test_site_operator import deploy, outcome, phase
from tests.integration.test_site_operator_kit import (
    CONFIGMAPS,
    DEPLOYMENTS,
    MD,
    NS,
    SECRETS,
    SERVICES,
    WORKLOADS,
    FakeKubelet,
    Site,
    restart_control_plane,
    site,
)
from tests.support.federation import Federation
from tests.support.requests import deploy as send_deploy
from tests.support.wait import until


def versions(s: Site) -> dict[str, str]:
    """resourceVersion of every workload object: any write at all changes one."""
    return {
        f"{res.plural}/{o['metadata']['name']}": o["metadata"]["resourceVersion"]
        for res in (MD, DEPLOYMENTS, SERVICES)
        for o in s.objects(res, WORKLOADS)
    }


def admin_reaches(fed: Federation) -> Callable[[], Awaitable[bool]]:
    """gRPC shares subchannels between channels in a process: the first call after a restart on
    the same port can fail its handshake on a stale one, and the client library does not retry TLS
    failures (on purpose). The site's link retries on its own; the test's admin client waits."""

    async def probe() -> bool:
        try:
            async with fed.client() as c:
                await c.call("WhoAmI", fpb.WhoAmIRequest())
            return True
        except StargateError:
            return False

    return probe


async def test_link_down_changes_nothing_and_link_back_is_in_sync(fed: Federation) -> None:
    async with site(fed, "fr-par-1", "FR") as fr, FakeKubelet([fr]):
        await until(lambda: fr.link_status().get("connected"), 15, "connected")
        async with fed.client() as c:
            first = (await send_deploy(c, deploy("fr-par-1", "atlas", replicas=2))).directive
        await outcome(fed, "fr-par-1", first.id)
        await until(lambda: phase(fr, "atlas") == "Running", 5, "running")
        await asyncio.sleep(0.5)  # let status writes settle
        before = versions(fr)

        async def while_down() -> None:
            await until(lambda: fr.link_status().get("connected") is False, 10, "link down at the site")
            cond = next(c for c in fr.link_status()["conditions"] if c["type"] == "Connected")
            assert cond["status"] == "False" and cond["reason"] == "Disconnected"
            await asyncio.sleep(1.5)  # several resync ticks and reconnect attempts
            assert versions(fr) == before  # nothing the site runs changed

        await restart_control_plane(fed, while_down)
        await until(lambda: fr.link_status().get("connected"), 10, "link back")
        await until(admin_reaches(fed), 5, "the admin client reaches the restarted control plane")

        async with fed.client() as c:
            upgrade = (await send_deploy(c, deploy("fr-par-1", "atlas", replicas=3))).directive
            gone = (
                await c.call("Undeploy", fpb.UndeployRequest(site_id="fr-par-1", deployment_name="atlas"))
            ).directive
            again = (await send_deploy(c, deploy("fr-par-1", "orion"))).directive
        for d in (upgrade, gone, again):
            assert (await outcome(fed, "fr-par-1", d.id)).state == tpb.DIRECTIVE_STATE_ACKED
        await until(lambda: phase(fr, "orion") == "Running", 5, "orion running")
        assert fr.get(MD, WORKLOADS, "atlas") is None and fr.get(DEPLOYMENTS, WORKLOADS, "atlas") is None

        async def in_sync() -> bool:
            async with fed.client() as c:
                got = (await c.call("GetSite", fpb.GetSiteRequest(site_id="fr-par-1"))).site
            return got.last_applied_sequence == 4 and [(d.name, d.phase) for d in got.deployments] == [
                ("orion", "Running")
            ]

        await until(in_sync, 10, "the federation's view matches the site")
        assert fr.link_status()["lastAppliedSequence"] == 4


async def test_operator_restart_applies_queued_directives_exactly_once(fed: Federation) -> None:
    async with site(fed, "fr-par-1", "FR") as fr, FakeKubelet([fr]):
        await until(lambda: fr.link_status().get("connected"), 15, "connected")
        key = fr.get(SECRETS, NS, "stargate-site-identity")["data"]["site.key"]  # type: ignore[index]
        async with fed.client() as c:
            first = (await send_deploy(c, deploy("fr-par-1", "atlas"))).directive
            await outcome(fed, "fr-par-1", first.id)
            await until(lambda: phase(fr, "atlas") == "Running", 5, "running")

            await fr.stop_operator()
            queued = [
                (await send_deploy(c, deploy("fr-par-1", "orion"))).directive,
                (
                    await c.call("Undeploy", fpb.UndeployRequest(site_id="fr-par-1", deployment_name="atlas"))
                ).directive,
            ]
            await asyncio.sleep(0.3)
            assert fr.get(MD, WORKLOADS, "orion") is None  # no operator, nothing applied

            await fr.start_operator()  # a new Runtime: only what the site stored survives
            for d in queued:
                assert (await outcome(fed, "fr-par-1", d.id)).state == tpb.DIRECTIVE_STATE_ACKED
            await until(lambda: phase(fr, "orion") == "Running", 5, "orion running")
            await asyncio.sleep(0.5)  # a re-application would show up here
            events = (await c.call("ListAuditEvents", fpb.ListAuditEventsRequest())).events

        assert fr.get(MD, WORKLOADS, "atlas") is None
        state = fr.get(CONFIGMAPS, NS, "stargate-site-state")
        assert state is not None
        applied = json.loads(state["data"]["applied.json"])
        assert [(e["sequence"], e["directive_id"]) for e in applied] == [
            (1, first.id),
            (2, queued[0].id),
            (3, queued[1].id),
        ]
        assert sorted(json.loads(state["data"]["desired.json"])) == ["orion"]
        # The restarted operator used the stored identity: same key, one enrollment.
        assert fr.get(SECRETS, NS, "stargate-site-identity")["data"]["site.key"] == key  # type: ignore[index]
        assert [e.action for e in events].count("site.enroll") == 1
