"""A federation with simulated sites that hold datasets and run jobs (test infrastructure).

Sites: fr-par-1 (FR) holds fr-news (French, personal, fine-tune + evaluate) and runs jobs;
fr-lyo-1 (FR) holds no dataset; de-fra-1 (DE) holds de-news and also *holds* a dataset under
French law (fr-leak), which it must never offer; jp-tyo-1 (JP) holds nothing. The base release
atlas-1.2.0 is registered by the test publisher.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from controlplane.api.v1 import federation_pb2 as fpb
from controlplane.api.v1 import jobs_pb2 as jpb
from controlplane.client.federation import FederationClient
from controlplane.domain.datasets import Dataset, DatasetSummary
from controlplane.domain.jobs import JobPhase
from controlplane.pki.identity import Role
from operators.agent.policy import LocalPolicy
from operators.agent.sim_jobs import SimJobs
from tests.support.federation import Federation
from tests.support.requests import register_release
from tests.support.wait import until

BASE = "atlas-1.2.0"
IMAGE = "registry.example/trainer@sha256:" + "7e" * 32


def dataset(name: str, country: str, languages: list[str], purposes: list[str] | None = None) -> Dataset:
    summary = DatasetSummary.parse(
        {
            "name": name,
            "jurisdiction": country,
            "classification": "personal",
            "languages": languages,
            "purposes": purposes or ["fine-tune", "evaluate"],
            "size": "large",
        }
    )
    return Dataset(summary, claim=f"{name}-pvc", steward=f"steward@{country.lower()}.example")


def job_spec(
    name: str = "atlas-fr-news",
    *,
    dataset_name: str = "",
    language: str = "fr",
    country: str = "FR",
    purpose: str = "fine-tune",
    accelerators: int = 8,
    max_hours: float = 12,
    image: str = IMAGE,
) -> jpb.LocalizationJobSpec:
    return jpb.LocalizationJobSpec(
        name=name,
        base=BASE,
        dataset=jpb.DatasetSelector(
            name=dataset_name, language=language if not dataset_name else "", country=country
        ),
        purpose=purpose,
        trainer=jpb.JobTrainer(image=image, command=["train", "--epochs", "1"]),
        resources=jpb.JobResources(accelerator="h100", accelerators=accelerators, max_hours=max_hours),
        output=jpb.JobOutput(name="atlas-1.2.0-fr", version="1.2.0-fr.1"),
    )


@dataclass
class JobWorld:
    fed: Federation
    tmp: Path
    admin: FederationClient = field(init=False)

    async def start(
        self,
        *,
        fr_policy: LocalPolicy | None = None,
        jobs: SimJobs | None = None,
        extra: bool = True,
    ) -> JobWorld:
        fed = self.fed
        self.admin = fed.client()
        await register_release(self.admin, BASE, "atlas", "1.2.0")
        model = jobs or SimJobs(duration=1.0)
        await fed.add_site(
            "fr-par-1", "FR", datasets=[dataset("fr-news", "FR", ["fr"])], jobs=model, policy=fr_policy
        )
        if extra:
            await fed.add_site("fr-lyo-1", "FR", jobs=model)
            await fed.add_site(
                "de-fra-1",
                "DE",
                datasets=[dataset("de-news", "DE", ["de"]), dataset("fr-leak", "FR", ["fr"])],
                jobs=model,
            )
            await fed.add_site("jp-tyo-1", "JP", accelerators={"h200": 16}, jobs=model)
        await self.until(self._datasets_reported, 15, "datasets reported")
        return self

    async def _datasets_reported(self) -> bool:
        resp = await self.admin.call("ListDatasets", jpb.ListDatasetsRequest())
        return any(d.site_id == "fr-par-1" for d in resp.datasets)

    def person(self, name: str, role: Role, country: str = "") -> FederationClient:
        return self.fed.person(self.tmp, name, role, country)

    async def job(self, name: str) -> jpb.Job:
        return (await self.admin.call("GetJob", jpb.GetJobRequest(name=name))).job

    async def wait_job(self, name: str, phase: str, timeout: float = 15.0) -> jpb.Job:
        deadline = time.monotonic() + timeout
        while True:
            job = await self.job(name)
            if job.phase == phase:
                return job
            if time.monotonic() > deadline or (JobPhase(job.phase).final and job.phase != phase):
                raise AssertionError(f"job {name} is {job.phase} ({job.message}), not {phase}")
            await asyncio.sleep(0.05)

    async def audit(self) -> list[Any]:
        return list(
            (await self.admin.call("ListAuditEvents", fpb.ListAuditEventsRequest(limit=10000))).events
        )

    #: Waiting with a deadline that names what did not happen (tests/support/wait.py).
    until = staticmethod(until)

    async def close(self) -> None:
        await self.admin.close()
