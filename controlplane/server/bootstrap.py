"""``stargate-controlplane init``: a federation's PKI directory and the first admin's config.

Writes, in ``dir``: ca.crt / ca.key (0600), server.crt / server.key (0600), admin.crt / admin.key
(0600) and stargatectl.yaml (0600) with one context that reaches the server as that admin.
The CA key stays here; keep this directory on the control plane's own storage.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from pathlib import Path

from controlplane.client.config import write_config
from controlplane.errors import AlreadyExists, InvalidArgument
from controlplane.pki.ca import SERVER_TTL, USER_TTL, CertificateAuthority
from controlplane.pki.directive_key import ensure_directive_key
from controlplane.pki.identity import Identity, Kind, Role
from controlplane.pki.keys import certificate_pem, write_atomic, write_private_key
from controlplane.pki.log_key import ensure_log_key
from controlplane.pki.safety_key import ensure_safety_key


@dataclass
class InitOptions:
    dir: Path
    trust_domain: str
    server_address: str = "127.0.0.1:7443"
    enroll_address: str = ""
    hostnames: list[str] = field(default_factory=list)
    admin: str = "admin"
    force: bool = False


def _split_names(names: list[str]) -> tuple[list[str], list[str]]:
    dns, ips = [], []
    for n in names:
        try:
            ips.append(str(ipaddress.ip_address(n)))
        except ValueError:
            dns.append(n)
    return dns, ips


def init(opts: InitOptions) -> Path:
    d = opts.dir
    if (d / "ca.key").exists() and not opts.force:
        raise AlreadyExists(
            f"{d / 'ca.key'} exists: this directory already holds a federation CA (use --force to replace it)"
        )
    host, _, port = opts.server_address.rpartition(":")
    if not host or not port.isdigit():
        raise InvalidArgument("--server-address", "must be HOST:PORT")
    enroll = opts.enroll_address or f"{host}:{int(port) + 1}"
    d.mkdir(parents=True, exist_ok=True)
    d.chmod(0o700)
    ca = CertificateAuthority.create(opts.trust_domain)
    dns, ips = _split_names(["localhost", "127.0.0.1", "::1", host, *opts.hostnames])
    skey, scert = ca.issue(
        Identity(opts.trust_domain, Kind.SERVER, "controlplane", Role.SERVER),
        ttl=SERVER_TTL,
        dns_names=sorted(set(dns)),
        ip_addresses=sorted(set(ips)),
    )
    akey, acert = ca.issue(Identity(opts.trust_domain, Kind.USER, opts.admin, Role.ADMIN), ttl=USER_TTL)
    ca.save(d)
    write_private_key(d / "server.key", skey)
    ensure_safety_key(d)  # safety.key (0600) / safety.pub: signs halts, resumes and beacons
    ensure_log_key(d, opts.trust_domain)  # log.key (0600) / log.vkey: signs audit checkpoints
    ensure_directive_key(d)  # directive.key (0600) / directive.pub: signs every directive
    write_atomic(d / "server.crt", certificate_pem(scert), 0o644)
    write_private_key(d / f"{opts.admin}.key", akey)
    write_atomic(d / f"{opts.admin}.crt", certificate_pem(acert), 0o644)
    cfg = d / "stargatectl.yaml"
    write_config(
        cfg,
        trust_domain=opts.trust_domain,
        user=opts.admin,
        servers=[opts.server_address],
        enroll_server=enroll,
        cert_file=f"{opts.admin}.crt",
        key_file=f"{opts.admin}.key",
    )
    return cfg
