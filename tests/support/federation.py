"""A real control plane in the test's event loop: real PKI, real gRPC over mTLS on port 0.

Test infrastructure, not product code. Sites are SimulatedSite instances (the real site-agent
core with in-memory workloads) enrolled through the real token/CSR path.
"""

from __future__ import annotations

import contextlib
import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path

from controlplane.api.v1 import federation_pb2 as fpb
from controlplane.api.v1 import safety_pb2 as xpb
from controlplane.client import approvals
from controlplane.client.config import ConfigFile, Context
from controlplane.client.enroll import Facts
from controlplane.client.federation import FederationClient
from controlplane.client.retry import RetryPolicy
from controlplane.domain.datasets import Dataset
from controlplane.pki import approval_key
from controlplane.pki.ca import CertificateAuthority
from controlplane.pki.identity import Identity, Kind, Role
from controlplane.pki.keys import certificate_pem, write_atomic, write_private_key
from controlplane.server.app import ControlPlane, ServerConfig
from controlplane.server.bootstrap import InitOptions, init
from controlplane.store import Store
from operators.agent.policy import LocalPolicy
from operators.agent.sim_jobs import SimJobs
from operators.sim import SimulatedSite
from tests.support.requests import add_publisher

TD = "test.stargate"
#: The roster's admins; each has ``<name>.approval.key`` in the federation's directory.
ADMINS = ("admin", "bob")
FAST = RetryPolicy(initial=0.05, maximum=0.5, deadline=5.0)


@dataclass
class Federation:
    dir: Path
    store: Store
    interval: float = 0.3
    replica_id: str = "cp-0"
    site_cert_ttl: dt.timedelta = dt.timedelta(hours=24)
    cp: ControlPlane | None = None
    sites: dict[str, SimulatedSite] = field(default_factory=dict)

    async def start(self) -> Federation:
        if not (self.dir / "ca.key").exists():
            # Two admins in roster v1, each with an approval key: "admin" (the config's) and "bob".
            self.dir.mkdir(parents=True, exist_ok=True)
            keys = []
            for name in ADMINS:
                approval_key.create(self.dir / f"{name}.approval.key", force=True)
                keys.append((name, approval_key.pub_path(self.dir / f"{name}.approval.key")))
            init(
                InitOptions(
                    self.dir,
                    TD,
                    server_address="127.0.0.1:0",
                    enroll_address="127.0.0.1:0",
                    admin_keys=keys,
                    admin_approval_key="admin.approval.key",
                )
            )
        self.cp = ControlPlane(
            ServerConfig(
                dir=self.dir,
                listen="127.0.0.1:0",
                enroll_listen="127.0.0.1:0",
                replica_id=self.replica_id,
                heartbeat_interval=self.interval,
                lease_ttl=2,
                site_cert_ttl=self.site_cert_ttl,
            ),
            self.store,
        )
        await self.cp.start()
        async with self.client() as c:
            await add_publisher(c)  # before any site: sites receive it at enrollment
        return self

    @property
    def address(self) -> str:
        assert self.cp is not None
        return self.cp.address

    @property
    def enroll_address(self) -> str:
        assert self.cp is not None
        return self.cp.enroll_address

    @property
    def ca_pem(self) -> bytes:
        return (self.dir / "ca.crt").read_bytes()

    def context(self) -> Context:
        return ConfigFile.load(self.dir / "stargatectl.yaml").context()

    def client(self, ctx: Context | None = None) -> FederationClient:
        return FederationClient(ctx or self.context(), servers=[self.address], retry=FAST)

    def person(self, tmp: Path, name: str, role: Role, country: str = "") -> FederationClient:
        """A client for a person whose certificate the CA signs directly (test setup), with their
        approval key when the roster lists them (``<name>.approval.key`` in the federation's dir)."""
        ca = CertificateAuthority.load(self.dir)
        key, cert = ca.issue(Identity(TD, Kind.USER, name, role, country), ttl=dt.timedelta(hours=1))
        write_private_key(tmp / f"{name}.key", key)
        write_atomic(tmp / f"{name}.crt", certificate_pem(cert), 0o644)
        approval = self.dir / f"{name}.approval.key"
        ctx = Context(
            name,
            (self.address,),
            "",
            self.dir / "ca.crt",
            tmp / f"{name}.crt",
            tmp / f"{name}.key",
            approval_key=approval if approval.exists() else None,
        )
        return FederationClient(ctx, servers=[self.address], retry=FAST)

    async def token(self, site_id: str, country: str, ttl_seconds: int = 0) -> str:
        async with self.client() as c:
            resp = await c.call(
                "CreateJoinToken",
                fpb.CreateJoinTokenRequest(site_id=site_id, country=country, ttl_seconds=ttl_seconds),
            )
        return str(resp.token)

    def new_site(
        self,
        facts: Facts,
        policy: LocalPolicy | None = None,
        datasets: list[Dataset] | None = None,
        jobs: SimJobs | None = None,
    ) -> SimulatedSite:
        site = SimulatedSite(
            facts,
            self.dir / "sites" / facts.site_id,
            [self.address],
            policy=policy,
            datasets=datasets,
            jobs=jobs,
        )
        self.sites[facts.site_id] = site
        return site

    async def add_site(
        self,
        site_id: str,
        country: str,
        *,
        accelerators: dict[str, int] | None = None,
        policy: LocalPolicy | None = None,
        datasets: list[Dataset] | None = None,
        jobs: SimJobs | None = None,
    ) -> SimulatedSite:
        facts = Facts(site_id, country, "r1", {}, accelerators or {"h100": 16}, 3)
        site = self.new_site(facts, policy, datasets, jobs)
        await site.enroll(self.enroll_address, self.ca_pem, await self.token(site_id, country))
        site.start()
        await site.wait_connected(10)
        return site

    async def stop(self) -> None:
        for s in self.sites.values():
            with contextlib.suppress(Exception):
                await s.stop()
        if self.cp is not None:
            await self.cp.stop(grace=0.5)
            self.cp = None


async def resume(c: FederationClient, halt_id: str, reason: str = "") -> xpb.SafetyAction:
    """Request a resume signed with the approval key of ``c``'s context (as stargatectl does)."""
    approval = await approvals.for_resume(c, c.ctx, halt_id)
    req = xpb.ResumeRequest(halt_id=halt_id, reason=reason, approval=approval)
    return (await c.call("Resume", req)).action


async def approve(c: FederationClient, action_id: str) -> xpb.SafetyAction:
    """Approve ``action_id``, signed with ``c``'s approval key when the action needs a signature."""
    approval = await approvals.for_action(c, c.ctx, action_id)
    req = xpb.ApproveSafetyActionRequest(id=action_id, approval=approval)
    return (await c.call("ApproveSafetyAction", req)).action
