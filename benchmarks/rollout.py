"""A 3-wave rollout with zero bake over N simulated sites, create -> Completed (goal: < 10 s at
1,000), beside the bare directive path in the same run: the same N Deploy directives issued
directly (FederationService.Deploy) until every site has applied its own.

    python -m benchmarks.rollout [N]
"""

from __future__ import annotations

import asyncio
import sys
import time

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from benchmarks.fleet import fleet
from controlplane.api.v1 import federation_pb2 as fpb
from controlplane.api.v1 import release_pb2 as rpb
from controlplane.api.v1 import rollouts_pb2 as opb
from controlplane.api.v1 import types_pb2 as tpb
from controlplane.domain import releases as rel

DIGEST = "sha256:" + "ab" * 32


async def run(n: int) -> None:
    async with fleet(n, heartbeat=5.0) as f, f.admin() as admin:
        # Baseline: one low-level Deploy per site, until every site applied it.
        t0 = time.perf_counter()
        sem = asyncio.Semaphore(64)

        async def deploy(site_id: str) -> None:
            payload = tpb.DeployPayload(
                deployment_name="base", model="base", version="1", digest=DIGEST, replicas=1
            )
            async with sem:
                await admin.call("Deploy", fpb.DeployRequest(site_id=site_id, deploy=payload))

        await asyncio.gather(*(deploy(s.facts.site_id) for s in f.sites))
        while not all("base" in s.backend.items for s in f.sites):
            await asyncio.sleep(0.01)
        bare = time.perf_counter() - t0

        key = Ed25519PrivateKey.generate()
        pub = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        await admin.call("AddPublisher", opb.AddPublisherRequest(name="bench", public_key=pub))
        r = rpb.ModelRelease(
            name="atlas-1",
            model="atlas",
            version="1",
            digest=DIGEST,
            risk_tier=1,
            resources=rpb.ReleaseResources(accelerator="h100", accelerators_per_replica=1),
        )
        await admin.call(
            "CreateRelease",
            opb.CreateReleaseRequest(
                signed=rpb.SignedRelease(release=r, publisher="bench", signature=rel.sign(key, r))
            ),
        )
        spec = opb.RolloutSpec(
            name="bench",
            release="atlas-1",
            placement=opb.Placement(replicas_per_site=1),
            waves=[
                opb.Wave(name="canary", sites=1),
                opb.Wave(name="half", percent=50),
                opb.Wave(name="all", percent=100),
            ],
            gates=opb.Gates(min_ready_ratio=1.0, max_error_rate=0.01, timeout_seconds=120),
        )
        t0 = time.perf_counter()
        await admin.call("CreateRollout", opb.CreateRolloutRequest(spec=spec))
        while True:
            ro = (await admin.call("GetRollout", opb.GetRolloutRequest(name="bench"))).rollout
            if ro.phase in ("Completed", "RolledBack", "Aborted", "Paused"):
                break
            await asyncio.sleep(0.05)
        took = time.perf_counter() - t0
        print(
            f"| sites | rollout create -> {ro.phase} (s) | baseline: {n} bare Deploys applied (s) | ratio |"
        )
        print("|---:|---:|---:|---:|")
        print(f"| {n:,} | {took:.2f} | {bare:.2f} | {took / bare:.1f}x |")


if __name__ == "__main__":
    asyncio.run(run(int(sys.argv[1]) if len(sys.argv) > 1 else 1000))
