"""Choosing and opening the state store from command-line options."""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field

from controlplane.errors import InvalidArgument
from controlplane.store import Store
from controlplane.store.memory import MemoryStore


@dataclass
class StoreOptions:
    kind: str = "memory"
    endpoints: list[str] = field(default_factory=list)
    ca_file: str | None = None
    cert_file: str | None = None
    key_file: str | None = None

    @staticmethod
    def add_arguments(p: argparse.ArgumentParser) -> None:
        p.add_argument("--store", choices=["memory", "etcd"], default="memory")
        p.add_argument("--etcd-endpoints", default="", help="comma-separated etcd client URLs")
        p.add_argument("--etcd-ca-file")
        p.add_argument("--etcd-cert-file")
        p.add_argument("--etcd-key-file")

    @classmethod
    def from_args(cls, a: argparse.Namespace) -> StoreOptions:
        endpoints = [e.strip() for e in a.etcd_endpoints.split(",") if e.strip()]
        return cls(a.store, endpoints, a.etcd_ca_file, a.etcd_cert_file, a.etcd_key_file)


async def open_store(opts: StoreOptions) -> Store:
    if opts.kind == "memory":
        return MemoryStore()
    if not opts.endpoints:
        raise InvalidArgument("--etcd-endpoints", "is required with --store etcd")
    from controlplane.store.etcd import EtcdStore

    try:
        return EtcdStore(
            opts.endpoints, ca_file=opts.ca_file, cert_file=opts.cert_file, key_file=opts.key_file
        )
    except ValueError as e:
        raise InvalidArgument("--etcd-endpoints", str(e)) from e
