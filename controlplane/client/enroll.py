"""Joining a federation: the site's key is generated here and never leaves this machine."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import grpc
from cryptography import x509
from cryptography.x509.oid import NameOID

from controlplane.api.v1 import site_pb2 as spb
from controlplane.api.v1 import site_pb2_grpc as sgrpc
from controlplane.api.v1 import types_pb2 as tpb
from controlplane.client.channel import secure_channel
from controlplane.client.retry import CLI
from controlplane.domain import roster as rd
from controlplane.errors import InvalidArgument, Unavailable, from_status
from controlplane.pki.directive_key import write_publishers, write_site_key
from controlplane.pki.keys import (
    certificate_pem,
    csr_pem,
    generate_private_key,
    make_csr,
    write_atomic,
    write_private_key,
)
from controlplane.pki.safety_key import write_site_ring


@dataclass(frozen=True)
class Facts:
    site_id: str
    country: str
    region: str = ""
    labels: dict[str, str] = field(default_factory=dict)
    #: accelerator type -> count (all free at start)
    accelerators: dict[str, int] = field(default_factory=dict)
    security_tier: int = 1
    operator_version: str = ""

    def to_pb(self, free: dict[str, int] | None = None) -> tpb.SiteFacts:
        free = self.accelerators if free is None else free
        return tpb.SiteFacts(
            site_id=self.site_id,
            country=self.country,
            region=self.region,
            labels=self.labels,
            capacity={
                k: tpb.AcceleratorCapacity(total=v, free=free.get(k, 0)) for k, v in self.accelerators.items()
            },
            security_tier=self.security_tier,
            operator_version=self.operator_version,
        )


def site_csr(site_id: str) -> tuple[object, str]:
    key = generate_private_key()
    csr = make_csr(key, x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, site_id)]))
    return key, csr_pem(csr)


async def join(
    server: str,
    ca_pem: bytes,
    token: str,
    facts: Facts,
    out: Path,
    *,
    timeout: float = 15.0,
    roster_hash: str = "",
) -> Path:
    """Enroll at ``server`` (the enrollment address) and write site.key (0600), site.crt, ca.crt,
    the safety key ring and roster.json (the newest roster that chains from version 1, which must
    hash to ``roster_hash`` when given: pin it out of band like the CA certificate).

    Nothing is written unless the federation accepted the request and its roster checked out.
    """
    key, csr = site_csr(facts.site_id)
    request = spb.EnrollRequest(token=token, csr_pem=csr, facts=facts.to_pb())
    async with secure_channel(server, ca_pem) as channel:
        try:
            # Only a connection that never got through is retried: a consumed token cannot be reused.
            async for attempt in CLI.retrying():
                with attempt:
                    resp = await sgrpc.SiteServiceStub(channel).Enroll(request, timeout=timeout)
        except grpc.aio.AioRpcError as e:
            if e.code() == grpc.StatusCode.UNAVAILABLE:
                raise Unavailable(f"cannot reach the enrollment server at {server}") from e
            raise from_status(e.code(), e.details() or e.code().name) from e
    try:
        cert = x509.load_pem_x509_certificate(resp.certificate_pem.encode())
    except ValueError as e:
        raise InvalidArgument("certificate_pem", "the server returned an unreadable certificate") from e
    try:
        chain = [rd.SignedRoster.from_json(raw) for raw in resp.roster_chain]
        roster = rd.follow_chain(None, chain, roster_hash) if chain or roster_hash else None
    except InvalidArgument as e:
        raise InvalidArgument(e.field if e.field == "roster-hash" else "roster", e.reason) from e
    out.mkdir(parents=True, exist_ok=True)
    if roster is not None:
        current = next(c for c in chain if c.roster.version == roster.version)
        write_atomic(out / rd.ROSTER_FILE, current.to_json(), 0o644)
    write_private_key(out / "site.key", key)  # type: ignore[arg-type]
    write_atomic(out / "site.crt", certificate_pem(cert), 0o644)
    write_atomic(out / "ca.crt", resp.ca_bundle_pem.encode(), 0o644)
    if resp.safety_keys:  # the federation's safety key ring: verifies signed halts and beacons
        write_site_ring(out, {k.key_id: k.public_key_pem for k in resp.safety_keys})
    if resp.HasField("directive_key"):  # every directive must verify with it
        write_site_key(out, resp.directive_key.public_key_pem)
    write_publishers(out, list(resp.publishers))  # whose signed releases the site deploys
    if resp.log_vkey:  # the audit log's verifier key: checks the checkpoints and proofs it is shown
        write_atomic(out / "log.vkey", resp.log_vkey.encode() + b"\n", 0o644)
    return out
