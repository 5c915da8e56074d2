"""A fleet of simulated sites around one in-process control plane, for benchmarks.

Real PKI, real gRPC over mTLS on loopback, every site enrolled through the real token/CSR path.
"""

from __future__ import annotations

import asyncio
import contextlib
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path

from controlplane.api.v1 import federation_pb2 as fpb
from controlplane.client.config import ConfigFile
from controlplane.client.enroll import Facts
from controlplane.client.federation import FederationClient
from controlplane.errors import Unavailable
from controlplane.server.app import ControlPlane, ServerConfig
from controlplane.server.bootstrap import InitOptions, init
from controlplane.store import Store
from controlplane.store.memory import MemoryStore
from operators.sim import SimulatedSite

COUNTRIES = ["FR", "DE", "JP", "BR", "IN", "CA", "IT", "ES"]


class Fleet:
    def __init__(self, directory: Path, store: Store, *, heartbeat: float = 5.0) -> None:
        self.dir = directory
        self.store = store
        self.heartbeat = heartbeat
        self.cp: ControlPlane | None = None
        self.sites: list[SimulatedSite] = []

    async def start(self) -> None:
        init(
            InitOptions(
                self.dir, "bench.stargate", server_address="127.0.0.1:0", enroll_address="127.0.0.1:0"
            )
        )
        self.cp = ControlPlane(
            ServerConfig(
                self.dir, listen="127.0.0.1:0", enroll_listen="127.0.0.1:0", heartbeat_interval=self.heartbeat
            ),
            self.store,
        )
        await self.cp.start()

    def admin(self) -> FederationClient:
        assert self.cp is not None
        return FederationClient(
            ConfigFile.load(self.dir / "stargatectl.yaml").context(), servers=[self.cp.address], timeout=60
        )

    async def add_sites(self, n: int, *, concurrency: int = 64, accelerators: int = 64) -> None:
        assert self.cp is not None
        ca = (self.dir / "ca.crt").read_bytes()
        sem = asyncio.Semaphore(concurrency)
        async with self.admin() as admin:

            async def one(i: int) -> SimulatedSite:
                cc = COUNTRIES[i % len(COUNTRIES)]
                facts = Facts(f"{cc.lower()}-b-{i}", cc, f"r{i % 5}", {}, {"h100": accelerators}, 4)
                site = SimulatedSite(
                    facts, self.dir / "sites" / facts.site_id, [self.cp.address], persist=False
                )  # type: ignore[union-attr]
                async with sem:
                    tok = await admin.call(
                        "CreateJoinToken", fpb.CreateJoinTokenRequest(site_id=facts.site_id, country=cc)
                    )
                    for attempt in range(5):
                        # On a loaded machine a burst of TLS handshakes sometimes fails before the
                        # request got through ("Handshake read failed"); the token is unspent then.
                        try:
                            await site.enroll(self.cp.enroll_address, ca, tok.token)  # type: ignore[union-attr]
                            break
                        except Unavailable:
                            if attempt == 4:
                                raise
                            await asyncio.sleep(0.5 * (attempt + 1))
                site.start()
                return site

            self.sites += await asyncio.gather(*(one(len(self.sites) + i) for i in range(n)))
        await asyncio.gather(*(s.wait_connected(120) for s in self.sites))

    async def stop(self) -> None:
        await asyncio.gather(*(s.stop() for s in self.sites))
        if self.cp is not None:
            await self.cp.stop(grace=1)


@contextlib.asynccontextmanager
async def fleet(n: int, *, heartbeat: float = 5.0) -> AsyncIterator[Fleet]:
    with tempfile.TemporaryDirectory() as d:
        store = MemoryStore()
        f = Fleet(Path(d), store, heartbeat=heartbeat)
        await f.start()
        try:
            await f.add_sites(n)
            yield f
        finally:
            await f.stop()
            await store.close()
