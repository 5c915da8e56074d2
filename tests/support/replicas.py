"""Two or more control-plane replicas as separate processes on a 3-member etcd, with simulated
sites in the test's process (test infrastructure for the HA and failover tests)."""

from __future__ import annotations

import asyncio
import collections
import contextlib
import os
import signal
import sys
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from controlplane.api.v1 import federation_pb2 as fpb
from controlplane.api.v1 import types_pb2 as tpb
from controlplane.client.config import ConfigFile, Context
from controlplane.client.enroll import Facts
from controlplane.client.federation import FederationClient
from controlplane.client.retry import RetryPolicy
from controlplane.errors import StargateError
from controlplane.server.bootstrap import InitOptions, init
from controlplane.store.embedded import EmbeddedEtcd
from operators.sim import SimulatedSite
from tests.support.etcd_tls import EtcdPki, running_etcd
from tests.support.procs import Proc, free_port
from tests.support.requests import add_publisher
from tests.support.requests import deploy as send_deploy

TD = "replicas.test"
TTL = 2  # --lease-ttl of the replicas, seconds
INTERVAL = 0.5  # --heartbeat-interval, seconds
DIGEST = "sha256:" + "cd" * 32
#: One attempt on each server, no backoff: what a caller sees when it does not retry.
ONCE = RetryPolicy(initial=0.01, maximum=0.01, deadline=0.0)
#: Retries across servers for a few seconds (a failover in progress).
PATIENT = RetryPolicy(initial=0.05, maximum=0.3, deadline=3.0)


@dataclass
class Replica:
    rid: str
    port: int
    enroll_port: int
    proc: Proc

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        return int(self.proc.p.pid)


@dataclass
class Harness:
    """A federation PKI, a 3-member etcd with client mTLS, replica processes and sites."""

    dir: Path
    etcd: EmbeddedEtcd
    pki: EtcdPki
    replicas: dict[str, Replica] = field(default_factory=dict)
    sites: dict[str, SimulatedSite] = field(default_factory=dict)
    #: Calls of backend.deploy per (site, deployment name): a second call = applied twice.
    deploy_calls: collections.Counter[tuple[str, str]] = field(default_factory=collections.Counter)

    def __post_init__(self) -> None:
        init(InitOptions(self.dir / "pki", TD, server_address="127.0.0.1:0", enroll_address="127.0.0.1:0"))
        self.ctx: Context = ConfigFile.load(self.dir / "pki" / "stargatectl.yaml").context()
        self.ca_pem = (self.dir / "pki" / "ca.crt").read_bytes()

    # --- replicas -----------------------------------------------------------------------------

    def launch(self, rid: str) -> Replica:
        port, eport = free_port(), free_port()
        cmd = [
            sys.executable,
            "-m",
            "controlplane.server.main",
            "serve",
            "--dir",
            str(self.dir / "pki"),
            "--listen",
            f"127.0.0.1:{port}",
            "--enroll-listen",
            f"127.0.0.1:{eport}",
            "--store",
            "etcd",
            "--etcd-endpoints",
            ",".join(self.etcd.client_urls),
            "--etcd-ca-file",
            str(self.pki.ca_file),
            "--etcd-cert-file",
            str(self.pki.client_cert),
            "--etcd-key-file",
            str(self.pki.client_key),
            "--replica-id",
            rid,
            "--lease-ttl",
            str(TTL),
            "--heartbeat-interval",
            str(INTERVAL),
        ]
        r = Replica(rid, port, eport, Proc(cmd, self.dir / f"{rid}.log"))
        self.replicas[rid] = r
        return r

    def client(
        self, *replicas: Replica, retry: RetryPolicy = PATIENT, timeout: float = 3.0
    ) -> FederationClient:
        return FederationClient(self.ctx, servers=[r.address for r in replicas], retry=retry, timeout=timeout)

    async def status(self, r: Replica, timeout: float = 1.0) -> fpb.GetStatusResponse | None:
        """GetStatus of one replica, or None when it does not answer."""
        try:
            async with self.client(r, retry=ONCE, timeout=timeout) as c:
                return await c.call("GetStatus", fpb.GetStatusRequest())
        except StargateError:
            return None

    async def wait_leader(self, r: Replica, expect: str | None = None, timeout: float = 15.0) -> str:
        """Poll ``r`` until it names a leader (``expect`` if given) and lists every live replica."""
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            last = await self.status(r, timeout=0.5)
            if last is not None and last.leader and (expect is None or last.leader == expect):
                return str(last.leader)
            await asyncio.sleep(0.05)
        raise AssertionError(
            f"{r.rid} names no leader {expect or ''} after {timeout}s: {last}\n{r.proc.output()}"
        )

    async def start_pair(self) -> tuple[Replica, Replica]:
        """Two replicas, started together; returns (leader, follower) once both agree."""
        a, b = self.launch("cp-a"), self.launch("cp-b")
        leader = await self.wait_leader(a, timeout=30)
        await self.wait_leader(b, expect=leader, timeout=15)
        return (a, b) if leader == a.rid else (b, a)

    # --- sites --------------------------------------------------------------------------------

    async def add_site(self, site_id: str, servers: list[Replica]) -> SimulatedSite:
        facts = Facts(site_id, "FR", "r1", {}, {"h100": 16}, 3)
        site = SimulatedSite(facts, self.dir / "sites" / site_id, [r.address for r in servers])
        async with self.client(*servers) as c:
            await add_publisher(c)  # before the first site: every site receives it at enrollment
            token = (
                await c.call("CreateJoinToken", fpb.CreateJoinTokenRequest(site_id=site_id, country="FR"))
            ).token
        enroll = f"127.0.0.1:{servers[0].enroll_port}"
        await site.enroll(enroll, self.ca_pem, token)
        real_deploy = site.backend.deploy

        async def counted(payload: dict[str, Any]) -> None:
            self.deploy_calls[(site_id, payload["deployment_name"])] += 1
            await real_deploy(payload)

        site.backend.deploy = counted  # type: ignore[method-assign]
        site.start()
        await site.wait_connected(15)
        self.sites[site_id] = site
        return site

    async def site_statuses(self, r: Replica | list[Replica]) -> dict[str, int]:
        rs = r if isinstance(r, list) else [r]
        async with self.client(*rs) as c:
            sites = (await c.call("ListSites", fpb.ListSitesRequest())).sites
        return {s.site_id: int(s.status) for s in sites}

    async def directives(self, c: FederationClient, site_id: str) -> list[Any]:
        req = fpb.ListDirectivesRequest(site_id=site_id)
        return list((await c.call("ListDirectives", req)).directives)

    async def audit(self, c: FederationClient) -> fpb.ListAuditEventsResponse:
        return await c.call("ListAuditEvents", fpb.ListAuditEventsRequest(limit=10_000))

    async def close(self) -> None:
        for s in self.sites.values():
            with contextlib.suppress(Exception):
                await s.stop()
        for r in self.replicas.values():
            with contextlib.suppress(ProcessLookupError):
                os.kill(r.pid, signal.SIGCONT)
            r.proc.kill()


@contextlib.asynccontextmanager
async def harness(tmp_path: Path) -> AsyncIterator[Harness]:
    (tmp_path / "etcd").mkdir()
    async with running_etcd(tmp_path / "etcd", members=3) as (etcd, pki):
        h = Harness(tmp_path, etcd, pki)
        try:
            yield h
        finally:
            await h.close()


def deploy_request(site_id: str, name: str, request_id: str) -> fpb.DeployRequest:
    payload = tpb.DeployPayload(
        deployment_name=name, model="atlas", version="1.0.0", digest=DIGEST, replicas=1
    )
    return fpb.DeployRequest(site_id=site_id, deploy=payload, request_id=request_id)


async def until(cond: Callable[[], Awaitable[bool]], timeout: float, what: str) -> float:
    start = time.monotonic()
    while not await cond():
        if time.monotonic() - start > timeout:
            raise AssertionError(f"{what}: not true after {timeout}s")
        await asyncio.sleep(0.05)
    return time.monotonic() - start


async def all_acked(h: Harness, c: FederationClient) -> bool:
    for sid in h.sites:
        if any(d.state == tpb.DIRECTIVE_STATE_PENDING for d in await h.directives(c, sid)):
            return False
    return True


async def assert_exactly_once(h: Harness, c: FederationClient, succeeded: dict[str, list[str]]) -> int:
    """Each site's own record equals the federation's queue for it, in order; nothing applied twice."""
    total = 0
    for sid, site in h.sites.items():
        recs = await h.directives(c, sid)
        assert [d.directive.sequence for d in recs] == list(range(1, len(recs) + 1)), sid
        fed_ids = [d.directive.id for d in recs]
        applied = site.agent.record.applied_ids()
        assert applied == fed_ids, (sid, applied, fed_ids)
        assert len(set(applied)) == len(applied), sid
        assert [e.sequence for e in site.agent.record.entries] == list(range(1, len(recs) + 1)), sid
        assert set(succeeded.get(sid, [])) <= set(applied), sid
        assert all(d.state == tpb.DIRECTIVE_STATE_ACKED for d in recs), sid
        total += len(applied)
    twice = {k: n for k, n in h.deploy_calls.items() if n != 1}
    assert not twice, f"applied more than once: {twice}"
    return total


class Deployer:
    """A stream of Deploy directives, round-robin over sites, through a client that fails over.

    Each logical directive gets a fresh UUID as request_id and is retried with the SAME id until it
    succeeds, so a retry after a lost response cannot queue it twice.
    """

    def __init__(self, h: Harness, servers: list[Replica], workers: int = 2) -> None:
        self.h = h
        self.servers = servers
        self.workers = workers
        self.succeeded: dict[str, list[str]] = collections.defaultdict(list)
        self.retries = 0
        self.count = 0
        self._n = 0
        self._stop = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []

    def start(self) -> None:
        self._tasks = [asyncio.create_task(self._worker()) for _ in range(self.workers)]

    async def stop(self) -> None:
        self._stop.set()
        await asyncio.gather(*self._tasks)

    async def _worker(self) -> None:
        sites = sorted(self.h.sites)
        async with self.h.client(*self.servers, timeout=2.0) as c:
            while not self._stop.is_set():
                n, self._n = self._n, self._n + 1
                sid, rid = sites[n % len(sites)], str(uuid.uuid4())
                req = deploy_request(sid, f"w{n}", rid)
                deadline = time.monotonic() + 30
                while True:
                    try:
                        d = (await send_deploy(c, req)).directive
                        break
                    except StargateError:
                        assert time.monotonic() < deadline, "a Deploy kept failing for 30 s"
                        self.retries += 1
                        await asyncio.sleep(0.05)
                assert d.id == rid
                self.succeeded[sid].append(rid)
                self.count += 1
                await asyncio.sleep(0.01)
