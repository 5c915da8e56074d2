"""The cost of checking what crosses the edge, beside what the same message costs anyway.

- A site's heartbeat (10 deployments, 2 accelerator types) and an Ack: the link's checks (size,
  every number against its range, the federation's rules for names; ``server/inbound.py``) beside
  two baselines measured in the same run: protobuf parsing the same bytes (what gRPC does for every
  message before our code sees it) and, for the heartbeat, the conversion the link already did for
  every heartbeat before these checks existed (``runtime._coarse`` of each deployment, capacity).
- A rollout manifest: the bounded YAML reader (``client/yamlfile.py``) beside PyYAML's
  ``safe_load`` of the same text.

    python -m benchmarks.input_checks
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable

import yaml

from controlplane.api.v1 import site_pb2 as spb
from controlplane.api.v1 import types_pb2 as tpb
from controlplane.client import yamlfile
from controlplane.server import convert, inbound
from controlplane.server.runtime import _coarse

MANIFEST = b"""apiVersion: federation.stargate.io/v1alpha1
kind: Rollout
metadata: {name: atlas-eu}
spec:
  release: atlas-1-2-0
  placement: {countries: [FR, DE, IT, ES], labels: {tier: gold}, replicasPerSite: 2}
  waves:
    - {name: canary, sites: 1, bake: 10m}
    - {name: half, percent: 50, bake: 30m}
    - {name: rest, percent: 100}
  gates: {minReadyRatio: 0.9, maxErrorRate: 0.01, maxLatencyP95Ms: 800, timeout: 15m}
  approvals: {countrySteward: true}
"""


def per_call_us(fn: Callable[[], object], n: int) -> float:
    runs = []
    for _ in range(7):
        t = time.perf_counter()
        for _ in range(n):
            fn()
        runs.append((time.perf_counter() - t) / n * 1e6)
    return statistics.median(runs)


def main() -> None:
    hb = spb.Heartbeat(
        site_id="fr-par-1",
        capacity={
            "h100": tpb.AcceleratorCapacity(total=64, free=8),
            "a100": tpb.AcceleratorCapacity(total=32),
        },
        health=tpb.SITE_HEALTH_HEALTHY,
        deployments=[
            tpb.DeploymentStatus(
                name=f"atlas-{i}",
                model="atlas",
                version="1.2.0",
                phase="Running",
                replicas=2,
                ready_replicas=2,
                source=tpb.WORKLOAD_SOURCE_FEDERATION,
                error_rate=0.001,
                latency_p95_ms=120.0,
                safety_score=0.98,
                release="atlas-1-2-0",
            )
            for i in range(10)
        ],
        last_applied_sequence=1234,
    )
    ack = spb.Ack(site_id="fr-par-1", directive_id="5e7c1f0e-0000-4000-8000-000000000001", sequence=7)
    rows = []
    for name, which, msg, n in (
        ("heartbeat, 10 deployments", "heartbeat", hb, 2000),
        ("ack", "ack", ack, 20000),
    ):
        raw = msg.SerializeToString()
        check = per_call_us(lambda m=msg, w=which: inbound.check_message(w, m), n)
        parse = per_call_us(
            lambda r=raw, t=spb.Heartbeat if which == "heartbeat" else spb.Ack: t.FromString(r), n
        )
        rows.append((f"{name}: link checks vs protobuf parse", len(raw), check, parse))
    existing = per_call_us(
        lambda: ([_coarse(d) for d in hb.deployments], convert.capacity_from_pb(hb.capacity)), 2000
    )
    check = per_call_us(lambda: inbound.check_message("heartbeat", hb), 2000)
    rows.append(("heartbeat: link checks vs the conversion it already had", hb.ByteSize(), check, existing))
    bounded = per_call_us(lambda: yamlfile.parse_all(MANIFEST, "m", "-f"), 500)
    plain = per_call_us(lambda: yaml.safe_load(MANIFEST), 500)
    print("| input | bytes | checks (us) | baseline (us) | ratio |")
    print("|---|---:|---:|---:|---:|")
    for name, size, check, base in rows:
        print(f"| {name} | {size} | {check:.1f} | {base:.1f} | {check / base:.2f} |")
    name = "rollout manifest: bounded reader vs yaml.safe_load"
    print(f"| {name} | {len(MANIFEST)} | {bounded:.0f} | {plain:.0f} | {bounded / plain:.2f} |")


if __name__ == "__main__":
    main()
