"""Placement time for 100, 1,000 and 10,000 sites (goal: < 50 ms at 10,000), beside the floor of
any placement - one sort of the same sites by a key - measured in the same run.

    python -m benchmarks.placement
"""

from __future__ import annotations

import random
import statistics
import time

from controlplane.api.v1 import release_pb2 as rpb
from controlplane.api.v1 import rollouts_pb2 as opb
from controlplane.domain import placement
from controlplane.domain.records import SiteRecord

COUNTRIES = ["FR", "DE", "JP", "BR", "IN", "CA", "IT", "ES", "US", "KR"]


def sites(n: int, seed: int = 7) -> list[SiteRecord]:
    rnd = random.Random(seed)
    out = []
    for i in range(n):
        cc = COUNTRIES[i % len(COUNTRIES)]
        total = rnd.choice([16, 32, 64, 128])
        out.append(
            SiteRecord(
                site_id=f"{cc.lower()}-s-{i}",
                country=cc,
                region=f"r{rnd.randrange(8)}",
                status="Ready",
                security_tier=rnd.randint(1, 4),
                capacity={"h100": {"total": total, "free": rnd.randrange(total + 1)}},
                labels={"tier": rnd.choice(["gold", "silver"])},
                cordoned=rnd.random() < 0.02,
            )
        )
    return out


def _sort_key(x: SiteRecord) -> tuple[str, int, str]:
    return (x.country, -x.capacity["h100"]["free"], x.site_id)


def timed(fn, repeat: int) -> float:  # type: ignore[no-untyped-def]
    samples = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - t) * 1000)
    return statistics.median(samples)


def main() -> None:
    release = rpb.ModelRelease(
        name="atlas",
        model="atlas",
        version="1",
        digest="sha256:" + "0" * 64,
        risk_tier=2,
        export=rpb.ExportRule(deny_countries=["US"]),
        resources=rpb.ReleaseResources(accelerator="h100", accelerators_per_replica=8),
    )
    spec = opb.Placement(replicas_per_site=1)
    print("| sites | placement p50 (ms) | baseline: one sort (ms) | ratio | selected | excluded |")
    print("|---:|---:|---:|---:|---:|---:|")
    for n in (100, 1_000, 10_000):
        s = sites(n)
        repeat = 50 if n < 10_000 else 15
        p = placement.plan(s, release, spec)
        t_plan = timed(lambda s=s: placement.plan(s, release, spec), repeat)
        t_sort = timed(lambda s=s: sorted(s, key=_sort_key), repeat)
        ratio = t_plan / t_sort
        counts = f"{len(p.selected):,} | {len(p.excluded):,}"
        print(f"| {n:,} | {t_plan:.2f} | {t_sort:.2f} | {ratio:.1f}x | {counts} |")


if __name__ == "__main__":
    main()
