"""What a site (or an unauthenticated peer) sends is held to the federation's rules, bounded in
size, and its refusals are audited in bounded volume (issue #12, part 4)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import grpc
import pytest

from controlplane.api.v1 import federation_pb2 as fpb
from controlplane.api.v1 import federation_pb2_grpc as fgrpc
from controlplane.api.v1 import site_pb2 as spb
from controlplane.api.v1 import site_pb2_grpc as sgrpc
from controlplane.api.v1 import types_pb2 as tpb
from controlplane.client.channel import secure_channel
from controlplane.client.enroll import Facts, site_csr
from tests.support.federation import Federation
from tests.support.requests import deploy as send_deploy
from tests.support.requests import deploy_request

ESC = "\x1b[2J\x1b]0;owned\x07"


async def _audit(fed: Federation) -> list[fpb.AuditEvent]:
    async with fed.client() as c:
        return list((await c.call("ListAuditEvents", fpb.ListAuditEventsRequest(limit=10_000))).events)


async def _site(fed: Federation, site_id: str) -> fpb.Site:
    async with fed.client() as c:
        return (await c.call("GetSite", fpb.GetSiteRequest(site_id=site_id))).site


def _creds(fed: Federation, site_id: str) -> tuple[bytes, bytes]:
    d = fed.dir / "sites" / site_id
    return (d / "site.key").read_bytes(), (d / "site.crt").read_bytes()


async def _flush(fed: Federation) -> None:
    assert fed.cp is not None and fed.cp.runtime is not None
    await fed.cp.runtime.refusals.flush(everything=True)


def _counted(events: list[fpb.AuditEvent], action: str, actor: str = "") -> int:
    return sum(int(e.details["count"]) for e in events if e.action == action and actor in e.actor)


class RawLink:
    """A site's link by hand: send what the test says, collect what arrives."""

    def __init__(self, fed: Federation, site_id: str) -> None:
        self.fed, self.site_id = fed, site_id
        self.outbox: asyncio.Queue[spb.ConnectRequest | None] = asyncio.Queue()
        self.received: list[spb.ConnectResponse] = []
        self.error: grpc.aio.AioRpcError | None = None

    async def _requests(self) -> AsyncIterator[spb.ConnectRequest]:
        yield spb.ConnectRequest(hello=spb.Hello(site_id=self.site_id, last_applied_sequence=0))
        while (m := await self.outbox.get()) is not None:
            yield m

    async def run(self) -> None:
        key, cert = _creds(self.fed, self.site_id)
        async with secure_channel(self.fed.address, self.fed.ca_pem, key, cert) as ch:
            try:
                async for msg in sgrpc.SiteServiceStub(ch).Connect(self._requests()):
                    self.received.append(msg)
            except grpc.aio.AioRpcError as e:
                self.error = e

    def directives(self) -> list[str]:
        return [m.directive.id for m in self.received if m.HasField("directive") and m.directive.id]


async def _wait(cond: Any, timeout: float = 10.0) -> None:
    for _ in range(int(timeout / 0.05)):
        if cond():
            return
        await asyncio.sleep(0.05)
    raise AssertionError("condition not met")


def _heartbeat(site_id: str, **kw: Any) -> spb.ConnectRequest:
    return spb.ConnectRequest(heartbeat=spb.Heartbeat(site_id=site_id, **kw))


async def test_three_huge_heartbeats_are_refused_and_sites_list_works_for_everyone(fed: Federation) -> None:
    ids = ("fr-par-1", "de-fra-1", "jp-tyo-1")
    for sid, cc in zip(ids, ("FR", "DE", "JP"), strict=True):
        await (await fed.add_site(sid, cc)).stop()
    # ~3.2 MB of well-formed deployment reports each.
    many = [
        tpb.DeploymentStatus(name=f"d{i}-" + "x" * 140, model="m" * 60, version="1") for i in range(16_000)
    ]
    for sid in ids:
        link = RawLink(fed, sid)
        task = asyncio.create_task(link.run())
        await link.outbox.put(_heartbeat(sid, deployments=many))
        await asyncio.wait_for(task, 10)
        assert link.error is not None and link.error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    async with fed.client() as c:
        sites = (await c.call("ListSites", fpb.ListSitesRequest())).sites
    assert sorted(s.site_id for s in sites) == sorted(ids) and all(not s.deployments for s in sites)


async def test_hostile_facts_and_heartbeats_are_refused_audited_once_per_window_and_the_link_goes_on(
    fed: Federation,
) -> None:
    site = await fed.add_site("fr-par-1", "FR")
    await site.stop()
    before = await _site(fed, "fr-par-1")
    events_before = len(await _audit(fed))
    link = RawLink(fed, "fr-par-1")
    task = asyncio.create_task(link.run())
    try:
        bad = [
            _heartbeat("fr-par-1", capacity={ESC: tpb.AcceleratorCapacity(total=1)}),
            _heartbeat("fr-par-1", deployments=[tpb.DeploymentStatus(name="ok", model=ESC)]),
            _heartbeat("fr-par-1", deployments=[tpb.DeploymentStatus(name="UPPER\u202eCASE")]),
            _heartbeat("fr-par-1", deployments=[tpb.DeploymentStatus(name=f"d{i}") for i in range(500)]),
            _heartbeat("fr-par-1", capacity={"h100": tpb.AcceleratorCapacity(total=1, free=9)}),
            _heartbeat("fr-par-1", deployments=[tpb.DeploymentStatus(name="big", version="v" * 300_000)]),
            spb.ConnectRequest(ack=spb.Ack(site_id="fr-par-1", directive_id="not-a-uuid", sequence=1)),
        ] * 10
        for msg in bad:
            await link.outbox.put(msg)
        async with fed.client() as c:
            d = (await send_deploy(c, deploy_request("fr-par-1", "after"))).directive
        await _wait(lambda: d.id in link.directives())  # the link survived 70 refused messages
    finally:
        await link.outbox.put(None)
        await asyncio.wait_for(task, 10)
    await _flush(fed)
    new = (await _audit(fed))[events_before:]
    refused = [e for e in new if e.action == "link.refused"]
    assert len(refused) == 2 and _counted(refused, "link.refused") == len(bad), [
        (e.reason, dict(e.details)) for e in refused
    ]
    assert "larger than 262144 bytes" in refused[1].details["reasons"]
    assert "is not an accelerator type" in refused[0].reason
    after = await _site(fed, "fr-par-1")
    assert (after.region, dict(after.labels), dict(after.capacity)) == (
        before.region,
        dict(before.labels),
        dict(before.capacity),
    )


async def test_a_hello_with_hostile_facts_keeps_its_link_without_storing_them(fed: Federation) -> None:
    site = await fed.add_site("fr-par-1", "FR")
    await site.stop()
    site.agent.facts = Facts("fr-par-1", "FR", ESC, {"tier": "gold\u202e"}, {"h100": 16}, 3)
    site.start()
    await site.wait_connected(10)
    s = await _site(fed, "fr-par-1")
    assert s.status == tpb.SITE_STATUS_READY and s.region == "r1" and dict(s.labels) == {}
    await _flush(fed)
    refused = [e for e in await _audit(fed) if e.action == "link.refused"]
    assert refused and refused[0].reason.startswith("hello: hello.facts.region:")


@pytest.mark.parametrize(
    ("facts", "field"),
    [
        (Facts("fr-par-1", "FR", ESC), "facts.region"),
        (Facts("fr-par-1", "FR", "paris", {f"k{i}": "v" for i in range(65)}), "facts.labels"),
        (Facts("fr-par-1", "FR", "paris", {"bad key!": "v"}), "facts.labels"),
        (Facts("fr-par-1", "FR", "paris", {}, {"H100\x07": 8}), "facts.capacity"),
        (Facts("fr-par-1", "FR", "paris", {}, {"h100": 99_999_999_999}), "facts.capacity['h100'].total"),
        (Facts("fr-par-1", "FR", "paris", {}, {}, 1, "v1\x1b[31m"), "facts.operator_version"),
    ],
)
async def test_enrollment_refuses_site_facts_outside_the_federations_rules(
    fed: Federation, facts: Facts, field: str
) -> None:
    token = await fed.token("fr-par-1", "FR")
    _, csr = site_csr("fr-par-1")
    async with secure_channel(fed.enroll_address, fed.ca_pem) as ch:
        with pytest.raises(grpc.aio.AioRpcError) as e:
            await sgrpc.SiteServiceStub(ch).Enroll(
                spb.EnrollRequest(token=token, csr_pem=csr, facts=facts.to_pb())
            )
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert (e.value.details() or "").startswith(field + ":"), e.value.details()
    async with fed.client() as c:
        assert not (await c.call("ListSites", fpb.ListSitesRequest())).sites
    # The token was not consumed: the site can still join with honest facts.
    await fed.new_site(Facts("fr-par-1", "FR", "paris")).enroll(fed.enroll_address, fed.ca_pem, token)


async def test_a_flood_of_bad_enrollments_is_rate_limited_and_audited_once_per_peer_and_window(
    fed: Federation,
) -> None:
    events_before = len(await _audit(fed))
    _, csr = site_csr("fr-par-1")
    calls = 600
    codes: list[grpc.StatusCode] = []
    async with secure_channel(fed.enroll_address, fed.ca_pem) as ch:
        stub = sgrpc.SiteServiceStub(ch)
        people = fgrpc.FederationServiceStub(ch)  # no client certificate on this port

        async def bad(i: int) -> None:
            req = spb.EnrollRequest(token=f"sgjt_bad{i}", csr_pem=csr, facts=Facts("fr-par-1", "FR").to_pb())
            try:
                await stub.Enroll(req, timeout=10)
            except grpc.aio.AioRpcError as e:
                codes.append(e.code())
            try:
                await people.ListSites(fpb.ListSitesRequest(), timeout=10)
            except grpc.aio.AioRpcError as e:
                codes.append(e.code())

        for start in range(0, calls, 50):
            await asyncio.gather(*(bad(i) for i in range(start, start + 50)))
    assert len(codes) == 2 * calls
    limited = codes.count(grpc.StatusCode.RESOURCE_EXHAUSTED)
    assert limited >= calls - 12, codes[:20]  # a burst of 10 (+ a refill or two), then refused unread
    await _flush(fed)
    new = (await _audit(fed))[events_before:]
    # Two events per peer and kind of refusal (the first at once, the rest with their count),
    # instead of one per call.
    assert len(new) <= 4, [(e.action, e.actor, dict(e.details)) for e in new]
    assert _counted(new, "site.enroll", "anonymous@ipv4:127.0.0.1") == calls
    assert _counted(new, "rpc.ListSites", "anonymous@ipv4:127.0.0.1") == calls
    enroll = [e for e in new if e.action == "site.enroll"]
    assert (
        "rate limited" in enroll[-1].details["reasons"] or "too many failed" in enroll[-1].details["reasons"]
    )
