"""Rollouts at 1,000 sites, each beside a baseline measured in the same run.

1. A 3-wave rollout (canary 1 site, 50 %, 100 %) with evidence gates (readiness, error rate, p95
   latency, all measured and reported by the sites) and zero bake, create -> Completed (goal:
   < 10 s at 1,000), against the bare directive path: the same N Deploy directives issued directly
   (FederationService.Deploy, 64 in flight) until every site has applied its own.
2. The engine's CPU per tick at 1,000 sites (a rollout whose last wave of 500 sites bakes), with
   nothing due and with a gate measurement due on every tick, against the floor of a tick: reading
   the registry and the rollout records (both from their parse caches), plus, when something is
   due, serialising the record and committing it with an audit event.

    python -m benchmarks.rollout [N]
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import time
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from benchmarks.fleet import fleet
from controlplane.api.v1 import federation_pb2 as fpb
from controlplane.api.v1 import release_pb2 as rpb
from controlplane.api.v1 import rollouts_pb2 as opb
from controlplane.api.v1 import types_pb2 as tpb
from controlplane.domain import gates as g
from controlplane.domain import releases as rel
from controlplane.domain.records import ROLLOUTS, SiteRecord, SiteStatus, site_key
from controlplane.domain.rollouts import RolloutRecord, SiteState, WaveState
from controlplane.services.audit import AuditLog, Entry
from controlplane.services.directives import Directives
from controlplane.services.registry import Registry
from controlplane.services.releases import Releases
from controlplane.services.rollout_engine import RolloutEngine
from controlplane.services.rollouts import Rollouts
from controlplane.store import Put
from controlplane.store.memory import MemoryStore
from tests.support.requests import deploy as send_deploy

DIGEST = "sha256:" + "ab" * 32


async def rollout_wall_time(n: int) -> tuple[str, float, float]:
    async with fleet(n, heartbeat=5.0) as f, f.admin() as admin:
        # Baseline: one low-level Deploy per site, until every site applied it.
        t0 = time.perf_counter()
        sem = asyncio.Semaphore(64)

        async def deploy(site_id: str) -> None:
            payload = tpb.DeployPayload(
                deployment_name="base", model="base", version="1", digest=DIGEST, replicas=1
            )
            async with sem:
                await send_deploy(admin, fpb.DeployRequest(site_id=site_id, deploy=payload))

        await asyncio.gather(*(deploy(s.facts.site_id) for s in f.sites))
        while not all("base" in s.backend.items for s in f.sites):
            await asyncio.sleep(0.01)
        bare = time.perf_counter() - t0

        key = Ed25519PrivateKey.generate()
        pub = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        await admin.call("AddPublisher", opb.AddPublisherRequest(name="bench", public_key=pub))
        r = rpb.ModelRelease(
            name="atlas-1.0.0",
            model="atlas",
            version="1.0.0",
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
            release="atlas-1.0.0",
            placement=opb.Placement(replicas_per_site=1),
            waves=[
                opb.Wave(name="canary", sites=1),
                opb.Wave(name="half", percent=50),
                opb.Wave(name="all", percent=100),
            ],
            # Evidence gates: each wave passes on fresh reports of this release from its sites.
            gates=opb.Gates(
                min_ready_ratio=1.0, max_error_rate=0.01, max_latency_p95_ms=500, timeout_seconds=120
            ),
        )
        t0 = time.perf_counter()
        await admin.call("CreateRollout", opb.CreateRolloutRequest(spec=spec))
        while True:
            ro = (await admin.call("GetRollout", opb.GetRolloutRequest(name="bench"))).rollout
            if ro.phase in ("Completed", "RolledBack", "Aborted", "Paused", "Failed"):
                break
            await asyncio.sleep(0.05)
        return ro.phase, time.perf_counter() - t0, bare


def _report() -> dict[str, Any]:
    return {
        "name": "atlas",
        "release": "atlas-1.0.0",
        "digest": DIGEST,
        "version": "1.0.0",
        "replicas": 1,
        "ready_replicas": 1,
        "phase": "Running",
        "source": "WORKLOAD_SOURCE_FEDERATION",
        "error_rate": 0.001,
        "latency_p95_ms": 40,
        "measured": [g.ERROR_RATE, g.LATENCY_P95],
    }


async def engine_cpu(n: int, ticks: int = 30) -> list[tuple[str, float, float]]:
    """(case, engine CPU ms per tick, floor CPU ms per tick)."""
    out = []
    for case, interval in (("nothing due", 3600.0), ("a measurement due", 0.1)):
        store = MemoryStore()
        audit = AuditLog(store)
        registry = Registry(store, audit)
        rollouts = Rollouts(store, audit, registry, Releases(store, audit))
        engine = RolloutEngine(store, audit, registry, Directives(store, audit), rollouts, "bench")
        ids = [f"s-{i}" for i in range(n)]
        for sid in ids:
            site = SiteRecord(
                sid, "FR", status=SiteStatus.READY, deployments=[_report()], reported_sequence=1
            )
            await store.put(site_key(sid), site.to_json())
        sizes = [1, n // 2 - 1, n - n // 2]
        waves, i, now = [], 0, time.time()
        for k, size in enumerate(sizes):
            sites = [
                SiteState(s, "FR", 1, "Ready", verified=True, deploy_sequence=1) for s in ids[i : i + size]
            ]
            w = WaveState(
                f"w{k}", 3600.0 if k == 2 else 0.0, sites, phase="Baking" if k == 2 else "Completed"
            )
            w.window_start, w.bake_until, w.next_check_at = now, now + 3600, now + interval
            w.last_outcome, w.evidence = "pass", f"{n}/{n}"
            waves.append(w.to_dict())
            i += size
        rec = RolloutRecord(
            name="bench",
            spec={
                "release": "atlas-1.0.0",
                "gates": {"max_error_rate": 0.01, "max_latency_p95_ms": 500, "interval_seconds": interval},
            },
            release={
                "release": {"name": "atlas-1.0.0", "model": "atlas", "version": "1.0.0", "digest": DIGEST}
            },
            waves=waves,
            phase="Progressing",
            uid="bench",
        )
        await store.put(ROLLOUTS + "bench", rec.to_json())
        await engine.tick([])  # warm the parse caches, as a running leader has them
        spent, floor = [], []
        for _ in range(ticks):
            if interval < 1:
                await asyncio.sleep(interval)
            t = time.process_time()
            await engine.tick([])
            spent.append(time.process_time() - t)
            t = time.process_time()
            await registry.list()
            listed = await rollouts.list_kv()
            if interval < 1:  # what writing a changed record costs anyway
                kv, r = listed[0]
                await audit.commit([], [Put(kv.key, r.to_json())], [Entry("bench", "bench", "rollout/bench")])
            floor.append(time.process_time() - t)
        out.append((case, statistics.median(spent) * 1000, statistics.median(floor) * 1000))
        await store.close()
    return out


async def run(n: int) -> None:
    phase, took, bare = await rollout_wall_time(n)
    print(f"| sites | rollout create -> {phase} (s) | baseline: {n:,} bare Deploys applied (s) | ratio |")
    print("|---:|---:|---:|---:|")
    print(f"| {n:,} | {took:.2f} | {bare:.2f} | {took / bare:.1f}x |")
    print()
    print(
        f"| engine tick at {n:,} sites | engine CPU/tick (ms) "
        "| baseline: the reads (and write) of a tick (ms) | ratio |"
    )
    print("|---|---:|---:|---:|")
    for case, spent, floor in await engine_cpu(n):
        print(f"| {case} | {spent:.2f} | {floor:.2f} | {spent / floor:.1f}x |")


if __name__ == "__main__":
    asyncio.run(run(int(sys.argv[1]) if len(sys.argv) > 1 else 1000))
