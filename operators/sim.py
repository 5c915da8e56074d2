"""A simulated site: the real site-agent core over real mTLS, with workloads in memory.

What `make dev`, the integration tests and the benchmarks run by the dozens or thousands. It
enrolls through the real token/CSR path and keeps a real link; only the Kubernetes part is absent.
"""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path

from controlplane.client.enroll import Facts, join
from controlplane.client.retry import RetryPolicy
from controlplane.domain.datasets import Dataset
from operators.agent.backend import MemoryBackend
from operators.agent.link import SiteAgent
from operators.agent.policy import LocalPolicy
from operators.agent.records import ApplicationRecord, FileRecord
from operators.agent.sim_jobs import SimJobs

#: Simulated sites reconnect fast so that tests of outages stay short; still jittered.
SIM_RETRY = RetryPolicy(initial=0.05, maximum=0.5, deadline=None, persistent=True)


class SimulatedSite:
    def __init__(
        self,
        facts: Facts,
        directory: Path,
        servers: list[str],
        *,
        policy: LocalPolicy | None = None,
        persist: bool = True,
        retry: RetryPolicy = SIM_RETRY,
        datasets: list[Dataset] | None = None,
        jobs: SimJobs | None = None,
    ) -> None:
        self.facts = facts
        self.directory = directory
        self.servers = servers
        #: Datasets held and, when ``jobs`` is set, jobs run with that modelled duration and outcome.
        self.backend = MemoryBackend(datasets=datasets, jobs=jobs)
        record: ApplicationRecord = FileRecord(directory / "applied.json") if persist else ApplicationRecord()
        self.agent = SiteAgent(
            facts=facts,
            servers=servers,
            cred_dir=directory,
            backend=self.backend,
            record=record,
            policy=policy,
            retry=retry,
        )
        self._task: asyncio.Task[None] | None = None

    @property
    def enrolled(self) -> bool:
        return (self.directory / "site.crt").exists()

    async def enroll(self, enroll_server: str, ca_pem: bytes, token: str) -> None:
        await join(enroll_server, ca_pem, token, self.facts, self.directory)

    def start(self) -> None:
        self._task = asyncio.create_task(self.agent.run(), name=f"site-{self.facts.site_id}")

    async def wait_connected(self, timeout: float = 10.0) -> None:
        await asyncio.wait_for(self.agent.connected.wait(), timeout)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
