"""The cost of sites verifying people's approvals (issue 12 part 1), for halt_propagation.py.

Each round: a global halt (every site acks), admin's signed resume request, then bob's signed
approval, which makes the resume effective; a site's time runs from that approval call to its ack
of the Resume stored by the federation. The sites' process checks the Resume's two approval
signatures against its roster in one of three modes, switched between rounds:

- ``skipped``: the approvals check returns at once (what the federation's count alone would cost);
- ``verified, once per process``: as shipped, a process remembers an approval set it verified
  (``operators/agent/approvals.py:_ACCEPTED``), so the simulator verifies the two signatures once;
- ``verified by every site``: the memory cleared before every check, as 1,000 real sites (each on
  its own machine) verify, here serially in one process: the worst case of one process.

Also reported: one check of two approvals without the memory, in microseconds (what each real site
pays once per resume). Benchmark code: it reaches into the site agent of its own child process.
"""

from __future__ import annotations

import os
import statistics
import time
from typing import Any

from controlplane.api.v1 import safety_pb2 as xpb
from controlplane.domain import roster as rd
from tests.support.federation import approve, resume

MODES = ("skipped", "verified, once per process", "verified by every site")


def patch_sites_process(mode: Any) -> None:
    """In the sites' process: make RosterGuard.check_resume follow ``mode`` (a shared int)."""
    from operators.agent import approvals

    real = approvals.RosterGuard.check_resume

    def check(self: Any, d: Any) -> str | None:
        if mode.value == 0:
            return None
        if mode.value == 2:
            approvals._ACCEPTED.clear()
        return real(self, d)

    approvals.RosterGuard.check_resume = check  # type: ignore[method-assign]


def verify_cost_us(roster: rd.Roster, keys: dict[str, Any], n: int = 2000) -> float:
    """Median microseconds of one check of two approvals (no memory), as a site makes it."""
    statement = rd.resume_statement(halt_id="h", release="r", scope="global")
    sigs = [rd.Signature(p, k.sign(statement)) for p, k in keys.items()]
    times = []
    for _ in range(n):
        t = time.perf_counter()
        assert rd.meets(roster, rd.ActionClass.RESUME, statement, sigs) is None
        times.append((time.perf_counter() - t) * 1e6)
    return statistics.median(times)


class ResumePath:
    """Rounds of halt -> resume (two signed approvals); reuses the halt path's ack timing."""

    def __init__(self, halt: Any, bob: Any, mode: Any, runs: dict[str, Any]) -> None:
        self.halt, self.bob, self.mode, self.runs = halt, bob, mode, runs

    async def round(self, r: int, mode: int) -> None:
        from benchmarks.halt_propagation import cpu_ms

        self.mode.value = mode
        await self.halt.round(10_000 + r)  # every site acked the halt
        h = (await self.halt.admin.call("ListSafetyActions", xpb.ListSafetyActionsRequest(limit=1))).actions[
            0
        ]
        pending = await resume(self.halt.admin, h.id, "bench")
        self.halt.acked.clear()
        cpu0 = (cpu_ms(os.getpid()), cpu_ms(self.halt.pid))
        t0 = time.perf_counter()
        done = await approve(self.bob, pending.id)
        assert done.state in ("Resuming", "Resumed"), done.state
        while len(self.halt.acked) < self.halt.n:
            await time_out(t0, len(self.halt.acked), self.halt.n)
        self.runs[MODES[mode]].round_done(t0, list(self.halt.acked.values()), cpu0, self.halt.pid)


async def time_out(t0: float, got: int, n: int) -> None:
    import asyncio

    await asyncio.sleep(0.001)
    if time.perf_counter() - t0 > 60:
        raise SystemExit(f"resume: only {got} of {n} sites acked in 60 s")


def report(runs: dict[str, Any], verify_us: float) -> None:
    from benchmarks.halt_propagation import pct

    print(
        "\n| resume (2 signed approvals) -> every site's ack stored | p50 ms | p99 ms | last site (mean) ms "
        "| CPU per round: sites ms |"
    )
    print("|---|---:|---:|---:|---:|")
    for mode, r in runs.items():
        print(
            f"| approvals {mode} | {pct(r.lat, 50):.1f} | {pct(r.lat, 99):.1f} "
            f"| {statistics.mean(r.alls):.1f} | {statistics.mean(r.client_cpu):.0f} |"
        )
    print(f"\none check of 2 approvals at a site (no memory): {verify_us:.0f} us (median)")
