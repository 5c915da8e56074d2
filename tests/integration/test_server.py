"""Server plumbing: health checking, reflection, replica status."""

from __future__ import annotations

from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from controlplane.api.v1 import federation_pb2 as fpb
from controlplane.client.channel import secure_channel
from tests.support.federation import Federation


async def test_health_is_served_on_both_ports(fed: Federation) -> None:
    ctx = fed.context()
    ca, key, cert = ctx.read_tls()
    async with secure_channel(fed.enroll_address, ca) as ch:  # no client certificate needed
        resp = await health_pb2_grpc.HealthStub(ch).Check(health_pb2.HealthCheckRequest(service=""))
        assert resp.status == health_pb2.HealthCheckResponse.SERVING
    async with secure_channel(fed.address, ca, key, cert) as ch:
        svc = "stargate.federation.v1.FederationService"
        resp = await health_pb2_grpc.HealthStub(ch).Check(health_pb2.HealthCheckRequest(service=svc))
        assert resp.status == health_pb2.HealthCheckResponse.SERVING


async def test_reflection_lists_the_versioned_services(fed: Federation) -> None:
    ca, key, cert = fed.context().read_tls()
    async with secure_channel(fed.address, ca, key, cert) as ch:
        stub = reflection_pb2_grpc.ServerReflectionStub(ch)

        async def ask():  # type: ignore[no-untyped-def]
            yield reflection_pb2.ServerReflectionRequest(list_services="")

        names = []
        async for r in stub.ServerReflectionInfo(ask()):
            names = [s.name for s in r.list_services_response.service]
    assert "stargate.federation.v1.FederationService" in names
    assert "stargate.federation.v1.SiteService" in names


async def test_status_reports_the_replica_and_store(fed: Federation) -> None:
    await fed.add_site("fr-par-1", "FR")
    async with fed.client() as c:
        status = await c.call("GetStatus", fpb.GetStatusRequest())
    assert status.store.kind == "memory" and status.store.healthy
    assert [(r.id, r.connected_sites) for r in status.replicas] == [("cp-0", 1)]
    assert status.leader in ("cp-0", "")  # elected within the first lease period
    assert status.enroll_address == fed.enroll_address
