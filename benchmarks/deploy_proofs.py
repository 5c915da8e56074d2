"""What a Deploy's inclusion proof costs (issue 13 part 5), at N simulated sites (default 1,000).

1. N low-level Deploys (one per site, 64 in flight) until every site applied its own, twice in one
   run: with the proofs (the federation attaches each Deploy's proof, every site checks it against
   the log key and its last checkpoint), and as before them (the link attaches nothing and the sites
   check nothing). Order alternates over ``ROUNDS`` rounds.
2. The site's check of one proof (checkpoint signature, consistency with its last checkpoint,
   inclusion, the leaf's fields) in CPU microseconds, and the proof's size on the wire.

    python -m benchmarks.deploy_proofs [N]
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import time
from typing import Any

from benchmarks.fleet import Fleet, fleet
from controlplane.api.v1 import federation_pb2 as fpb
from controlplane.api.v1 import types_pb2 as tpb
from controlplane.server import log_link
from operators.agent import log_verdict as lv
from operators.agent.site_log import event_proof
from tests.support.requests import register_release

DIGEST = "sha256:" + "ab" * 32
ROUNDS = 2


async def deploy_all(f: Fleet, admin: Any, name: str) -> float:
    sem = asyncio.Semaphore(64)
    # A low-level Deploy names a registered release (signed by the test publisher): registered
    # before the clock starts, so both modes time the Deploys alone.
    await register_release(admin, name, model=name, version="1", digest=DIGEST)
    t0 = time.perf_counter()

    async def one(site_id: str) -> None:
        payload = tpb.DeployPayload(deployment_name=name, model=name, version="1", digest=DIGEST, replicas=1)
        async with sem:
            await admin.call("Deploy", fpb.DeployRequest(site_id=site_id, deploy=payload, release=name))

    await asyncio.gather(*(one(s.facts.site_id) for s in f.sites))
    while not all(name in s.backend.items for s in f.sites):
        rejected = [e for s in f.sites for e in s.agent.record.entries if e.outcome == "rejected"]
        if rejected:
            raise SystemExit(f"a site refused a Deploy: {rejected[0].reason}")
        await asyncio.sleep(0.01)
    return time.perf_counter() - t0


def without_proofs(f: Fleet, off: bool) -> None:
    """Today's path: the link attaches nothing and the sites check nothing. The sites keep their
    log key and keep taking the beacons' checkpoints in both modes (a site without its key ignores
    beacons, and the link, which assumes a site took each checkpoint it sent, would then prove the
    next Deploys from a size the site does not hold)."""
    for s in f.sites:
        log_ = s.agent.log
        if off:
            log_.check_deploy = _no_check  # type: ignore[method-assign]
        elif "check_deploy" in vars(log_):
            del log_.check_deploy
    log_link.LogLink.attach = _no_attach if off else _attach  # type: ignore[method-assign]


def _no_check(d: tpb.Directive) -> str | None:
    return None


_attach = log_link.LogLink.attach


async def _no_attach(self: log_link.LogLink, rec: Any, msg: Any) -> bool:
    return True


def site_check_cost(f: Fleet, msg_proof: Any, site_id: str, d: tpb.Directive) -> tuple[float, int]:
    site = next(s for s in f.sites if s.facts.site_id == site_id)
    trust = site.agent.log.trust()
    assert trust is not None
    proof = event_proof(msg_proof)
    expect = lv.deploy_event(site_id, d.id, d.sequence, DIGEST)
    view = lv.LogView(trust.log.vkey)  # a first checkpoint: no consistency step
    runs = 200
    t0 = time.process_time()
    for _ in range(runs):
        v = lv.check_deploy(view, proof, trust, expect)
    assert v.outcome == lv.Outcome.ACCEPT, v.reason
    return (time.process_time() - t0) / runs * 1e6, msg_proof.ByteSize()


async def main(n: int) -> None:
    async with fleet(n) as f, f.admin() as admin:
        rows: dict[str, list[float]] = {"with proofs": [], "without (today)": []}
        for r in range(ROUNDS):
            order = ["with proofs", "without (today)"] if r % 2 == 0 else ["without (today)", "with proofs"]
            for mode in order:
                without_proofs(f, mode != "with proofs")
                rows[mode].append(await deploy_all(f, admin, f"m{r}-{'p' if mode == 'with proofs' else 'b'}"))
        without_proofs(f, False)
        # One Deploy's proof, as a site received it.
        site = f.sites[0]
        captured: list[Any] = []
        original = site.agent.log.check_deploy

        def capture(d: tpb.Directive) -> str | None:
            captured.append(tpb.Directive.FromString(d.SerializeToString()))
            return original(d)

        site.agent.log.check_deploy = capture  # type: ignore[method-assign]
        await deploy_all(f, admin, "probe")
        d = captured[-1]
        us, size = site_check_cost(f, d.log_proof, site.facts.site_id, d)
    print(
        f"| {n:,} sites: {n:,} Deploys applied (s) | "
        + " | ".join(f"run {i + 1}" for i in range(ROUNDS))
        + " | median |"
    )
    print("|---|" + "---:|" * (ROUNDS + 1))
    for mode, values in rows.items():
        print(
            f"| {mode} | " + " | ".join(f"{v:.2f}" for v in values) + f" | {statistics.median(values):.2f} |"
        )
    print(
        f"\nsite check of one Deploy's proof: {us:.0f} us CPU; proof on the wire: {size} bytes "
        f"(tree of {d.log_proof.leaf_index + 1}+ events, {len(d.log_proof.inclusion_path)} hashes)"
    )


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 1000))
