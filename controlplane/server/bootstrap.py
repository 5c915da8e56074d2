"""``stargate-controlplane init``: a federation's PKI directory and the first admin's config.

Writes, in ``dir``: ca.crt / ca.key (0600), server.crt / server.key (0600), admin.crt / admin.key
(0600) and stargatectl.yaml (0600) with one context that reaches the server as that admin.
The CA key stays here; keep this directory on the control plane's own storage.

It also writes ``roster.json``, roster version 1 (controlplane/domain/roster.py): the admins whose
approval public keys ``--admin-key`` names (made on their own machines with ``stargatectl keys
create``). Without ``--admin-key`` (a lab), it makes one approval key for ``--admin`` here
(``<admin>.approval.key``): a single-admin federation, which ``status`` and every approval say.
Give sites the roster's hash out of band (``join --roster-hash``), like the CA certificate.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from pathlib import Path

from controlplane.client.config import write_config
from controlplane.domain.roster import ROSTER_FILE, Roster, SignedRoster, first_roster
from controlplane.errors import AlreadyExists, InvalidArgument
from controlplane.pki import approval_key
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
    #: (person id, path of a ``.pub`` approval key), the first is ``admin``'s; empty: a lab key.
    admin_keys: list[tuple[str, Path]] = field(default_factory=list)
    #: The admin's private approval key, as the config names it (relative to ``dir``), if known.
    admin_approval_key: str = ""


def parse_admin_key(text: str) -> tuple[str, Path]:
    """``NAME=PATH`` or ``PATH`` (the name is the file's stem, e.g. ``bob.pub`` -> bob)."""
    name, sep, path = text.partition("=")
    if not sep:
        path, name = text, Path(text).name.removesuffix(".pub").split(".")[0]
    return name, Path(path)


def _own_key(opts: InitOptions, lab_key: Path) -> str:
    """The config's approval-key: the lab key, or the private half beside the first --admin-key
    when it is on this machine (K next to K.pub, as ``stargatectl keys create`` writes them)."""
    if not opts.admin_keys:
        return lab_key.name
    pub = opts.admin_keys[0][1]
    private = pub.with_name(pub.name.removesuffix(".pub"))
    if pub.name.endswith(".pub") and private.exists():
        return str(private.resolve())
    return ""


def write_first_roster(d: Path, admin: str, admin_keys: list[tuple[str, Path]]) -> Roster:
    """``roster.json`` for a PKI directory made before rosters (never replaces one)."""
    if (d / ROSTER_FILE).exists():
        raise AlreadyExists(f"{d / ROSTER_FILE} exists: change the roster with `stargatectl roster propose`")
    if not (d / "ca.key").exists():
        raise InvalidArgument("--dir", f"{d} holds no federation (run init)")
    opts = InitOptions(d, "", admin=admin, admin_keys=list(admin_keys))
    if opts.admin_keys:
        opts.admin_keys[0] = (admin, opts.admin_keys[0][1])
    signed = _first_roster(opts)
    write_atomic(d / ROSTER_FILE, signed.to_json(), 0o644)
    return signed.roster


def _first_roster(opts: InitOptions) -> SignedRoster:
    d = opts.dir
    keys = list(opts.admin_keys)
    if not keys:
        approval_key.create(d / f"{opts.admin}.approval.key", force=True)
        keys = [(opts.admin, approval_key.pub_path(d / f"{opts.admin}.approval.key"))]
    pairs = [(name, approval_key.load_public(p)) for name, p in keys]
    return SignedRoster(first_roster(pairs))


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
    if opts.admin_keys and opts.admin_keys[0][0] != opts.admin:
        opts.admin_keys[0] = (opts.admin, opts.admin_keys[0][1])  # the first key is the config's admin
    d.mkdir(parents=True, exist_ok=True)
    d.chmod(0o700)
    roster = _first_roster(opts)  # before anything is written: a bad key leaves nothing behind
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
    write_atomic(d / ROSTER_FILE, roster.to_json(), 0o644)
    lab_key = d / f"{opts.admin}.approval.key"
    cfg = d / "stargatectl.yaml"
    write_config(
        cfg,
        trust_domain=opts.trust_domain,
        user=opts.admin,
        servers=[opts.server_address],
        enroll_server=enroll,
        cert_file=f"{opts.admin}.crt",
        key_file=f"{opts.admin}.key",
        approval_key=opts.admin_approval_key or _own_key(opts, lab_key),
    )
    return cfg
