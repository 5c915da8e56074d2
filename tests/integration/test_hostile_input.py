"""Hostile and bad input: refused with a clear reason, audited where the server sees it, nothing stored.

Refusals in the TLS handshake (no certificate, a foreign CA, an expired certificate) happen in gRPC's
TLS layer before any application code runs, so they cannot be audited by the federation; the tests
prove they are refused and change nothing, and that the client explains why before even dialling.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from pathlib import Path

import grpc
import pytest

from controlplane.api.v1 import federation_pb2 as fpb
from controlplane.api.v1 import federation_pb2_grpc as fgrpc
from controlplane.api.v1 import site_pb2 as spb
from controlplane.api.v1 import site_pb2_grpc as sgrpc
from controlplane.client.channel import secure_channel
from controlplane.client.config import Context
from controlplane.client.enroll import Facts, site_csr
from controlplane.client.federation import FederationClient
from controlplane.errors import InvalidArgument, PermissionDenied, StargateError, Unauthenticated
from controlplane.pki.ca import CertificateAuthority
from controlplane.pki.identity import Identity, Kind, Role
from controlplane.pki.keys import certificate_pem, private_key_pem
from tests.support.federation import TD, Federation


def _creds(
    ca: CertificateAuthority, identity: Identity, ttl: dt.timedelta = dt.timedelta(hours=1)
) -> tuple[bytes, bytes]:
    key, cert = ca.issue(identity, ttl=ttl)
    return private_key_pem(key), certificate_pem(cert)


async def _audit(fed: Federation) -> list[fpb.AuditEvent]:
    async with fed.client() as c:
        return list((await c.call("ListAuditEvents", fpb.ListAuditEventsRequest())).events)


async def _site_count(fed: Federation) -> int:
    async with fed.client() as c:
        return len((await c.call("ListSites", fpb.ListSitesRequest())).sites)


async def _raw_status(fed: Federation, key: bytes | None, cert: bytes | None) -> grpc.aio.AioRpcError:
    async with secure_channel(fed.address, fed.ca_pem, key, cert) as ch:
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await fgrpc.FederationServiceStub(ch).CreateJoinToken(
                fpb.CreateJoinTokenRequest(site_id="x-1", country="FR"), timeout=3
            )
    return info.value


async def test_tls_layer_refusals_store_nothing(fed: Federation) -> None:
    before = await _audit(fed)
    # No client certificate at all.
    err = await _raw_status(fed, None, None)
    assert err.code() == grpc.StatusCode.UNAVAILABLE
    # A certificate from another CA with the same trust domain and an admin role.
    foreign = CertificateAuthority.create(TD)
    err = await _raw_status(fed, *_creds(foreign, Identity(TD, Kind.USER, "mallory", Role.ADMIN)))
    assert err.code() == grpc.StatusCode.UNAVAILABLE
    # An expired certificate from the right CA.
    ca = CertificateAuthority.load(fed.dir)
    key, cert = _creds(ca, Identity(TD, Kind.USER, "late", Role.ADMIN), dt.timedelta(seconds=1))
    await asyncio.sleep(1.2)
    err = await _raw_status(fed, key, cert)
    assert err.code() == grpc.StatusCode.UNAVAILABLE
    after = await _audit(fed)
    assert not [e for e in after[len(before) :] if e.action == "token.create"]  # nothing was created


async def test_client_explains_expired_and_foreign_certificates(fed: Federation, tmp_path: Path) -> None:
    ca = CertificateAuthority.load(fed.dir)
    key, cert = _creds(ca, Identity(TD, Kind.USER, "late", Role.ADMIN), dt.timedelta(seconds=1))
    (tmp_path / "late.key").write_bytes(key)
    (tmp_path / "late.crt").write_bytes(cert)
    ctx = Context("t", (fed.address,), "", fed.dir / "ca.crt", tmp_path / "late.crt", tmp_path / "late.key")
    await asyncio.sleep(1.2)
    with pytest.raises(Unauthenticated, match="expired"):
        FederationClient(ctx)
    fkey, fcert = _creds(CertificateAuthority.create(TD), Identity(TD, Kind.USER, "mallory", Role.ADMIN))
    (tmp_path / "late.key").write_bytes(fkey)
    (tmp_path / "late.crt").write_bytes(fcert)
    with pytest.raises(Unauthenticated, match="not issued by this federation"):
        FederationClient(ctx)


async def test_steward_calling_admin_rpc_is_denied_and_audited(fed: Federation) -> None:
    ca = CertificateAuthority.load(fed.dir)
    key, cert = _creds(ca, Identity(TD, Kind.USER, "claire", Role.STEWARD, "FR"))
    async with secure_channel(fed.address, fed.ca_pem, key, cert) as ch:
        stub = fgrpc.FederationServiceStub(ch)
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await stub.CreateJoinToken(fpb.CreateJoinTokenRequest(site_id="fr-x-1", country="FR"))
        assert info.value.code() == grpc.StatusCode.PERMISSION_DENIED
        assert "steward may not call CreateJoinToken" in (info.value.details() or "")
        # Reads are allowed to stewards.
        assert (await stub.ListSites(fpb.ListSitesRequest())).sites == []
    events = await _audit(fed)
    denied = [e for e in events if e.outcome == "denied"]
    assert denied[-1].actor == f"spiffe://{TD}/user/claire" and denied[-1].action == "rpc.CreateJoinToken"


async def test_site_speaking_as_another_site_is_refused(fed: Federation) -> None:
    site_a = await fed.add_site("fr-par-1", "FR")
    site_b = await fed.add_site("de-fra-1", "DE")
    await site_a.stop()  # its reconnects would replace our hand-made link (the newest link wins)
    d = fed.dir / "sites" / "fr-par-1"
    key, cert = (d / "site.key").read_bytes(), (d / "site.crt").read_bytes()
    async with secure_channel(fed.address, fed.ca_pem, key, cert) as ch:

        async def hello_as_b():  # type: ignore[no-untyped-def]
            yield spb.ConnectRequest(hello=spb.Hello(site_id="de-fra-1", facts=site_b.facts.to_pb()))

        with pytest.raises(grpc.aio.AioRpcError) as info:
            async for _ in sgrpc.SiteServiceStub(ch).Connect(hello_as_b()):
                pass
        assert info.value.code() == grpc.StatusCode.PERMISSION_DENIED

        # Honest Hello, then a heartbeat for the other site: the link is closed with PERMISSION_DENIED.
        async def then_heartbeat_as_b():  # type: ignore[no-untyped-def]
            yield spb.ConnectRequest(hello=spb.Hello(site_id="fr-par-1"))
            await asyncio.sleep(0.1)
            yield spb.ConnectRequest(heartbeat=spb.Heartbeat(site_id="de-fra-1"))
            await asyncio.sleep(5)

        with pytest.raises(grpc.aio.AioRpcError) as info:
            async for _ in sgrpc.SiteServiceStub(ch).Connect(then_heartbeat_as_b()):
                pass
        assert info.value.code() == grpc.StatusCode.PERMISSION_DENIED
    # Refusals are audited per actor and window: the first at once, the rest with a count.
    assert fed.cp is not None and fed.cp.runtime is not None
    await fed.cp.runtime.refusals.flush(everything=True)
    denied = [e for e in await _audit(fed) if e.outcome == "denied" and e.action == "rpc.Connect"]
    assert sum(int(e.details["count"]) for e in denied) == 2
    assert all(e.actor == f"spiffe://{TD}/site/fr-par-1" for e in denied)


async def test_people_cannot_open_site_links_and_sites_cannot_call_people_rpcs(fed: Federation) -> None:
    await fed.add_site("fr-par-1", "FR")
    d = fed.dir / "sites" / "fr-par-1"
    async with secure_channel(
        fed.address, fed.ca_pem, (d / "site.key").read_bytes(), (d / "site.crt").read_bytes()
    ) as ch:
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await fgrpc.FederationServiceStub(ch).ListSites(fpb.ListSitesRequest())
        assert info.value.code() == grpc.StatusCode.PERMISSION_DENIED


@pytest.mark.parametrize(
    "case", ["unknown", "reused", "expired", "wrong-site", "bad-site-id", "bad-country", "csr-other"]
)
async def test_bad_enrollment_is_refused_audited_and_stores_nothing(
    fed: Federation, tmp_path: Path, case: str
) -> None:
    token = await fed.token("fr-par-1", "FR", ttl_seconds=1 if case == "expired" else 0)
    facts = Facts("fr-par-1", "FR")
    if case == "unknown":
        token = token[:-4] + "AAAA"
    elif case == "reused":
        await fed.add_site("fr-par-9", "FR")  # unrelated, to have a real site around
        site = fed.new_site(facts)
        await site.enroll(fed.enroll_address, fed.ca_pem, token)
    elif case == "expired":
        await asyncio.sleep(1.2)
    elif case == "wrong-site":
        facts = Facts("fr-lyon-1", "FR")
    elif case == "bad-site-id":
        facts = Facts("FR_PAR!", "FR")
    elif case == "bad-country":
        facts = Facts("fr-par-1", "XX")
    sites_before = await _site_count(fed)
    events_before = len(await _audit(fed))
    out = tmp_path / "creds"
    from controlplane.client.enroll import join

    if case == "csr-other":
        _, csr = site_csr("de-fra-1")
        async with secure_channel(fed.enroll_address, fed.ca_pem) as ch:
            with pytest.raises(grpc.aio.AioRpcError) as info:
                await sgrpc.SiteServiceStub(ch).Enroll(
                    spb.EnrollRequest(token=token, csr_pem=csr, facts=facts.to_pb())
                )
        err: StargateError = InvalidArgument("csr_pem", info.value.details() or "")
        assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    else:
        with pytest.raises(StargateError) as exc:
            await join(fed.enroll_address, fed.ca_pem, token, facts, out)
        err = exc.value
    expected = {
        "unknown": (PermissionDenied, "unknown"),
        "reused": (PermissionDenied, "already used"),
        "expired": (PermissionDenied, "expired"),
        "wrong-site": (PermissionDenied, "bound to another site"),
        "bad-site-id": (StargateError, "site_id"),
        "bad-country": (StargateError, "country"),
        "csr-other": (StargateError, "csr_pem"),
    }[case]
    assert isinstance(err, expected[0]) and expected[1] in err.public, err.public
    assert not out.exists()  # no key or certificate written
    assert await _site_count(fed) == sites_before  # nothing stored
    new = (await _audit(fed))[events_before:]
    assert [(e.action, e.outcome) for e in new][-1:] == [("site.enroll", "denied")]


async def test_oversized_requests_are_refused_and_audited(fed: Federation) -> None:
    await fed.add_site("fr-par-1", "FR")
    async with fed.client() as c:
        with pytest.raises(StargateError) as info:
            await c.call("CordonSite", fpb.CordonSiteRequest(site_id="fr-par-1", reason="x" * 300_000))
        assert "larger than" in info.value.public
        site = (await c.call("GetSite", fpb.GetSiteRequest(site_id="fr-par-1"))).site
        assert not site.cordoned
        # Past gRPC's own 4 MiB limit the transport refuses it before our code (not auditable).
        with pytest.raises(StargateError):
            await c.call("CordonSite", fpb.CordonSiteRequest(site_id="fr-par-1", reason="x" * 5_000_000))
    events = await _audit(fed)
    assert any(
        e.action == "rpc.CordonSite" and e.outcome == "denied" and "larger than" in e.reason for e in events
    )
    async with secure_channel(fed.enroll_address, fed.ca_pem) as ch:
        with pytest.raises(grpc.aio.AioRpcError) as raw:
            await sgrpc.SiteServiceStub(ch).Enroll(spb.EnrollRequest(token="t" * 300_000))
    assert raw.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED


async def test_enrollment_port_serves_nothing_but_enroll(fed: Federation) -> None:
    async with secure_channel(fed.enroll_address, fed.ca_pem) as ch:
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await fgrpc.FederationServiceStub(ch).ListSites(fpb.ListSitesRequest())
    assert info.value.code() == grpc.StatusCode.UNAUTHENTICATED
