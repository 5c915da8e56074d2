"""Halt propagation: publish -> every site acked, over real mTLS, beside bare grpc.aio fan-outs.

    python benchmarks/halt_propagation.py [--sites 1000] [--rounds 3]

A real control plane (memory store) in this process and N simulated sites (the real site-agent
core, enrolled through the real token/CSR path, each on its own mTLS connection) in a second
process, both with the daemons' GC settings. Each round an admin publishes a global Halt of a new
release through SafetyService (on an admin connection opened before the first round); a site's
latency is the time from the Halt call to the federation having stored that site's ack (signed
directive committed with the action, sent on every link, verified and applied at the site, acked,
the ack's batch committed). Baselines, same run, same certificates, the same number of bidi
streams held by a second process: one message pushed to every stream, latency = publish ->
received by the client (one-way), or publish -> the client's answer received by the server (+ ack:
the round trip a halt makes, with no logic), with raw bytes or with the link's own protobuf
messages (the last halt's signed directive as sent, and an Ack). Also reported: the CPU each side
used per round. Ratios are halt / baseline.

The halt rounds themselves alternate between audit-log modes (issue 13): signed checkpoints as
served (at most one per second), no checkpoints, a checkpoint after every commit batch, and the
hash chain alone (the log before its Merkle tree; its events are added to the tree between rounds,
untimed).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import multiprocessing
import os
import resource
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import grpc

from benchmarks import resume_path
from benchmarks.audit_modes import AuditModes
from controlplane.api.v1 import federation_pb2 as fpb
from controlplane.api.v1 import safety_pb2 as xpb
from controlplane.api.v1 import site_pb2 as spb
from controlplane.client.channel import secure_channel
from controlplane.client.enroll import Facts
from controlplane.domain import roster as rd
from controlplane.domain import safety as sd
from controlplane.errors import Unavailable
from controlplane.pki import approval_key
from controlplane.pki.identity import Role
from controlplane.process import tune_gc
from controlplane.server.app import SERVER_OPTIONS
from controlplane.server.safety_link import lane_message
from controlplane.store import Put
from controlplane.store.memory import MemoryStore
from operators.sim import SimulatedSite
from tests.support.federation import Federation

_METHOD = "/bench.Fanout/Subscribe"
_PB_CLIENT = {
    "request_serializer": spb.ConnectRequest.SerializeToString,
    "response_deserializer": spb.ConnectResponse.FromString,
}
_PB_SERVER = {
    "request_deserializer": spb.ConnectRequest.FromString,
    "response_serializer": spb.ConnectResponse.SerializeToString,
}


def cpu_ms(pid: int) -> float:
    """CPU time (user + system, all threads) a process has used, in ms (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) * 1000 / os.sysconf("SC_CLK_TCK")


@dataclass
class Run:
    """One path's measurements: per-site latencies, per-round time to the last site, and the CPU
    each side used per round (the server here; the sites' or bare clients' process)."""

    lat: list[float] = field(default_factory=list)
    alls: list[float] = field(default_factory=list)
    server_cpu: list[float] = field(default_factory=list)
    client_cpu: list[float] = field(default_factory=list)

    def round_done(self, t0: float, times: list[float], cpu0: tuple[float, float], client: int) -> None:
        self.lat += [(t - t0) * 1000 for t in times]
        self.alls.append((max(times) - t0) * 1000)
        self.server_cpu.append(cpu_ms(os.getpid()) - cpu0[0])
        self.client_cpu.append(cpu_ms(client) - cpu0[1])


def pct(xs: list[float], p: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, round(p / 100 * (len(xs) - 1)))]


def _specs(n: int) -> list[tuple[str, str]]:
    return [(f"s{i:05d}", ("FR", "DE", "JP", "BR")[i % 4]) for i in range(n)]


def _sites_process(
    root: str, specs: list[tuple[str, str]], address: str, ready: Any, stop: Any, mode: Any
) -> None:
    """Child process: run already-enrolled sites until ``stop`` is set."""

    async def run() -> None:
        tune_gc()  # as the site operator's entry point does
        resume_path.patch_sites_process(mode)  # how the sites check a Resume's approvals
        sites = [
            SimulatedSite(
                Facts(sid, cc, "r1", {}, {"h100": 8}, 3), Path(root) / "sites" / sid, [address], persist=False
            )
            for sid, cc in specs
        ]
        for s in sites:
            s.start()
        await asyncio.gather(*(s.wait_connected(180) for s in sites))
        ready.set()
        while not stop.is_set():
            await asyncio.sleep(0.1)
        await asyncio.gather(*(s.stop() for s in sites))

    asyncio.run(run())


def _bare_process(
    port: int, ca: bytes, key: bytes, cert: bytes, n: int, rounds: int, ack: bool, pb: bool, conn: Any
) -> None:
    """Child process: n bare streams. One-way: after each round, send back when each stream got its
    message. With ``ack``: answer each message on its stream (the server times the answers). With
    ``pb``: the link's protobuf messages (a ConnectResponse in, a ConnectRequest with an Ack out)
    instead of raw bytes."""

    async def run() -> None:
        tune_gc()  # as the sites' process does
        got: dict[int, float] = {}
        complete = asyncio.Event()
        ready = 0

        async def client(i: int) -> None:
            nonlocal ready
            ch = secure_channel(f"127.0.0.1:{port}", ca, key, cert)
            call = ch.stream_stream(_METHOD, **(_PB_CLIENT if pb else {}))(wait_for_ready=True)
            async for msg in call:
                if msg == b"ready" or (pb and msg.HasField("welcome")):
                    ready += 1
                elif ack and pb:
                    d = msg.directive
                    await call.write(
                        spb.ConnectRequest(
                            ack=spb.Ack(site_id=f"s{i}", directive_id=d.id, safety_sequence=d.safety_sequence)
                        )
                    )
                elif ack:
                    await call.write(b"ack")
                else:
                    got[i] = time.perf_counter()
                    if len(got) == n:
                        complete.set()

        tasks = []
        for start in range(0, n, 50):
            tasks += [asyncio.create_task(client(i)) for i in range(start, min(n, start + 50))]
            while ready < len(tasks):
                await asyncio.sleep(0.02)
        conn.send("ready")
        for _ in range(0 if ack else rounds):
            await complete.wait()  # not a polling loop: the other paths' rounds run meanwhile
            conn.send(list(got.values()))
            got.clear()
            complete.clear()
        await asyncio.get_running_loop().run_in_executor(None, conn.recv)  # the parent is done
        for t in tasks:
            t.cancel()

    asyncio.run(run())


async def enroll_sites(fed: Federation, n: int, *, start: bool = True) -> None:
    async with fed.client() as c:

        async def one(i: int) -> None:
            sid = f"s{i:05d}"
            cc = ("FR", "DE", "JP", "BR")[i % 4]
            tok = (await c.call("CreateJoinToken", fpb.CreateJoinTokenRequest(site_id=sid, country=cc))).token
            # In-memory application record and safety state: in one process, 1,000 sites' file
            # writes would be serialized on this machine's disk; real sites write their own.
            facts = Facts(sid, cc, "r1", {}, {"h100": 8}, 3)
            site = SimulatedSite(facts, fed.dir / "sites" / sid, [fed.address], persist=False)
            fed.sites[sid] = site
            for attempt in range(5):
                try:
                    await site.enroll(fed.enroll_address, fed.ca_pem, tok)
                    break
                except Unavailable:
                    if attempt == 4:
                        raise
                    await asyncio.sleep(0.5)
            if start:
                site.start()

        for first in range(0, n, 25):
            await asyncio.gather(*(one(i) for i in range(first, min(n, first + 25))))
    if not start:
        return
    deadline = time.monotonic() + 120
    while not all(s.agent.connected.is_set() for s in fed.sites.values()):
        if time.monotonic() > deadline:
            raise SystemExit("sites did not connect")
        await asyncio.sleep(0.1)


class HaltPath:
    """Rounds of a global Halt through SafetyService; a site's time is when its ack was stored."""

    def __init__(self, fed: Federation, store: MemoryStore, n: int, sites_pid: int) -> None:
        self.fed, self.n, self.pid = fed, n, sites_pid
        self.run = Run()
        self.acked: dict[str, float] = {}
        self.admin: Any = None
        self._admin = contextlib.AsyncExitStack()
        original = store.txn

        async def timed(compares, ops):  # type: ignore[no-untyped-def]
            # A site's ack counts once the transaction holding it is committed (acks are stored in
            # batches: ``acks/<action>/~<batch>`` records naming the sites).
            result = await original(compares, ops)
            if result.succeeded:
                t = time.perf_counter()
                for op in ops:
                    if (
                        isinstance(op, Put)
                        and op.key.startswith(sd.ACKS)
                        and "/" + sd.ACK_BATCH_MARK in op.key
                    ):
                        for site in sd.AckBatchRecord.from_json(op.value).sites:
                            self.acked.setdefault(site, t)
            return result

        store.txn = timed  # type: ignore[method-assign]

    async def round(self, r: int) -> None:
        if self.admin is None:
            # One admin connection for all rounds, opened before the first: the bare paths' server
            # pushes on streams already open too (the handshake is not part of either).
            self.admin = await self._admin.enter_async_context(self.fed.client())
            await self.admin.call("ListSafetyActions", xpb.ListSafetyActionsRequest(limit=1))
        self.acked.clear()
        cpu0 = (cpu_ms(os.getpid()), cpu_ms(self.pid))
        t0 = time.perf_counter()
        await self.admin.call("Halt", xpb.HaltRequest(release=f"bench-r{r}", scope="global", reason="bench"))
        while len(self.acked) < self.n:
            await asyncio.sleep(0.001)
            if time.perf_counter() - t0 > 60:
                raise SystemExit(f"round {r}: only {len(self.acked)} of {self.n} sites acked in 60 s")
        self.run.round_done(t0, list(self.acked.values()), cpu0, self.pid)

    async def close(self) -> None:
        await self._admin.aclose()


class BarePath:
    """The baseline: bare grpc.aio bidi streams over mTLS with the same certificates, clients in a
    second process. One message pushed to every stream; latency = publish -> received by the client
    (one-way), or publish -> the client's answer received by the server (``ack``). With ``pb``, the
    messages are the link's: the last halt's signed directive as sent, and an Ack."""

    def __init__(self, fed: Federation, n: int, rounds: int, *, ack: bool, pb: bool = False) -> None:
        self.fed, self.n, self.rounds, self.ack, self.pb = fed, n, rounds, ack, pb
        self.run = Run()
        self.queues: list[asyncio.Queue[Any]] = []
        self.acked: dict[int, float] = {}

    async def start(self) -> None:
        async def subscribe(requests: Any, context: grpc.aio.ServicerContext):  # type: ignore[no-untyped-def]
            q: asyncio.Queue[Any] = asyncio.Queue()
            i = len(self.queues)
            self.queues.append(q)

            async def read() -> None:
                async for _ in requests:
                    self.acked[i] = time.perf_counter()

            reader = asyncio.create_task(read())
            try:
                yield spb.ConnectResponse(welcome=spb.Welcome()) if self.pb else b"ready"
                while True:
                    yield await q.get()
            finally:
                reader.cancel()

        d = self.fed.dir
        handler = grpc.method_handlers_generic_handler(
            "bench.Fanout",
            {
                "Subscribe": grpc.stream_stream_rpc_method_handler(
                    subscribe, **(_PB_SERVER if self.pb else {})
                )
            },
        )
        self.server = grpc.aio.server(options=SERVER_OPTIONS)
        self.server.add_generic_rpc_handlers((handler,))
        creds = grpc.ssl_server_credentials(
            [((d / "server.key").read_bytes(), (d / "server.crt").read_bytes())],
            root_certificates=self.fed.ca_pem,
            require_client_auth=True,
        )
        port = self.server.add_secure_port("127.0.0.1:0", creds)
        await self.server.start()
        site_dir = d / "sites" / _specs(1)[0][0]
        key, cert = (site_dir / "site.key").read_bytes(), (site_dir / "site.crt").read_bytes()
        ctx = multiprocessing.get_context("spawn")
        self.conn, child = ctx.Pipe()
        args = (port, self.fed.ca_pem, key, cert, self.n, self.rounds, self.ack, self.pb, child)
        self.proc = ctx.Process(target=_bare_process, args=args, daemon=True)
        self.proc.start()
        assert await asyncio.get_running_loop().run_in_executor(None, self.conn.recv) == "ready"

    async def round(self) -> None:
        self.acked.clear()
        pid: int = self.proc.pid  # type: ignore[assignment]
        cpu0 = (cpu_ms(os.getpid()), cpu_ms(pid))
        t0 = time.perf_counter()  # CLOCK_MONOTONIC: the same clock in both processes
        item: Any = b"halt"
        if self.pb:  # the wire message of the last halt, exactly as its links sent it
            lane = self.fed.cp.runtime.safety.lane  # type: ignore[union-attr]
            item = lane_message(lane.get(lane.top))  # type: ignore[arg-type]
        for q in self.queues:
            q.put_nowait(item)
        if self.ack:
            while len(self.acked) < self.n:
                await asyncio.sleep(0.001)
                if time.perf_counter() - t0 > 60:
                    raise SystemExit(f"bare: only {len(self.acked)} of {self.n} streams answered in 60 s")
            times = list(self.acked.values())
        else:
            times = await asyncio.get_running_loop().run_in_executor(None, self.conn.recv)
        self.run.round_done(t0, times, cpu0, pid)

    async def stop(self) -> None:
        self.conn.send("done")
        self.proc.join(30)
        await self.server.stop(0)


async def main(n: int, rounds: int) -> None:
    # All paths connected at once: with three paths this process measured ~4 descriptors per site
    # (5,000 sites reached the 20,000 limit); the fourth adds about one more, plus the enrollment's
    # leftovers.
    alternate = 5 * n + 2000 <= resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    with tempfile.TemporaryDirectory() as tmp:
        store = MemoryStore()
        # Long heartbeat/beacon intervals: the measurement is the halt, not background chatter.
        fed = await Federation(Path(tmp) / "fed", store, interval=30.0).start()
        verify_us = resume_path.verify_cost_us(
            rd.SignedRoster.from_json((fed.dir / rd.ROSTER_FILE).read_bytes()).roster,
            {n: approval_key.load_private(fed.dir / f"{n}.approval.key") for n in ("admin", "bob")},
        )
        tune_gc()  # as the replica's entry point does after start-up (controlplane/server/app.py)
        try:
            t = time.perf_counter()
            await enroll_sites(fed, n, start=False)
            # The sites in a second process: the federation's core is its own, as the bare
            # baseline's server has its own.
            ctx = multiprocessing.get_context("spawn")
            ready, stop, mode = ctx.Event(), ctx.Event(), ctx.Value("i", 1)
            proc = ctx.Process(
                target=_sites_process,
                args=(str(fed.dir), _specs(n), fed.address, ready, stop, mode),
                daemon=True,
            )
            proc.start()
            await asyncio.get_running_loop().run_in_executor(None, ready.wait, 300)
            print(f"{n} sites enrolled and connected in {time.perf_counter() - t:.1f}s", file=sys.stderr)
            halt = HaltPath(fed, store, n, proc.pid)  # type: ignore[arg-type]
            modes, runs = AuditModes(fed), {m: Run() for m in AuditModes.MODES}

            async def halt_rounds(r: int) -> None:
                for i, mode in enumerate(AuditModes.MODES):
                    await modes.set(mode)
                    halt.run = runs[mode]
                    await halt.round(r * len(AuditModes.MODES) + i)
                    await asyncio.sleep(0.5)
                await modes.set(AuditModes.MODES[0])

            bare = {
                "one-way": BarePath(fed, n, rounds, ack=False),
                "+ ack": BarePath(fed, n, rounds, ack=True),
                "+ ack, protobuf": BarePath(fed, n, rounds, ack=True, pb=True),
            }

            bob = await halt._admin.enter_async_context(fed.person(Path(tmp), "bob", Role.ADMIN))
            resumes = {m: Run() for m in resume_path.MODES}
            rpath = resume_path.ResumePath(halt, bob, mode, resumes)

            async def halts_done() -> None:
                for r in range(rounds):  # the resume rounds, the verification modes alternating
                    for i in range(len(resume_path.MODES)):
                        await rpath.round(r * len(resume_path.MODES) + i, i)
                        await asyncio.sleep(0.5)
                await halt.close()
                stop.set()
                await asyncio.get_running_loop().run_in_executor(None, proc.join, 60)

            if alternate:
                # Rounds alternate between the paths, so that the machine's drift (it is noisy:
                # +-15-30 % between runs) affects each of them alike.
                for path in bare.values():
                    await path.start()
                for r in range(rounds):
                    await halt_rounds(r)
                    for path in bare.values():
                        await path.round()
                        await asyncio.sleep(0.5)
                await halts_done()
                for path in bare.values():
                    await path.stop()
            else:  # not enough file descriptors for all paths at once: one path after another
                for r in range(rounds):
                    await halt_rounds(r)
                await halts_done()
                for path in bare.values():
                    await path.start()
                    for _ in range(rounds):
                        await path.round()
                        await asyncio.sleep(0.5)
                    await path.stop()
        finally:
            await fed.stop()
            await store.close()
    report(n, rounds, alternate, runs, {name: path.run for name, path in bare.items()})
    resume_path.report(resumes, verify_us)


def report(n: int, rounds: int, alternate: bool, halts: dict[str, Run], bare: dict[str, Run]) -> None:
    h = halts[AuditModes.MODES[0]]
    cores = Path("/proc/cpuinfo").read_text().count("processor")
    order = "alternating: halt, then each bare path" if alternate else "one path after another"
    print(
        f"\n{n} sites, {rounds} rounds ({order}), sites and bare clients in processes of their own, "
        f"{cores} cores\n"
    )
    print(
        "| path | p50 ms | p99 ms | max ms | last site (mean of rounds) ms "
        "| CPU per round: server ms | CPU per round: sites/clients ms |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|")
    rows = {f"signed halt -> verified, applied, ack recorded; audit: {m}": r for m, r in halts.items()} | {
        f"bare grpc.aio fan-out {name}": r for name, r in bare.items()
    }
    for name, r in rows.items():
        print(
            f"| {name} | {pct(r.lat, 50):.1f} | {pct(r.lat, 99):.1f} | {max(r.lat):.1f} "
            f"| {statistics.mean(r.alls):.1f} | {statistics.mean(r.server_cpu):.0f} "
            f"| {statistics.mean(r.client_cpu):.0f} |"
        )
    for name, r in bare.items():
        print(ratio_row(f"halt / bare {name}", h, r))
    base = halts[AuditModes.BASELINE]
    for mode, r in halts.items():
        if mode != AuditModes.BASELINE:
            print(ratio_row(f"audit: {mode} / {AuditModes.BASELINE}", r, base))


def ratio_row(name: str, a: Run, b: Run) -> str:
    pairs = (
        (pct(a.lat, 50), pct(b.lat, 50)),
        (pct(a.lat, 99), pct(b.lat, 99)),
        (max(a.lat), max(b.lat)),
        (statistics.mean(a.alls), statistics.mean(b.alls)),
        (statistics.mean(a.server_cpu), statistics.mean(b.server_cpu)),
        (statistics.mean(a.client_cpu), statistics.mean(b.client_cpu)),
    )
    # CPU is counted in clock ticks (10 ms): at 100 sites a baseline may read 0.
    cells = [f"{x / y:.2f}x" if y else "-" for x, y in pairs]
    return f"| ratio {name} | " + " | ".join(cells) + " |"


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--sites", type=int, default=1000)
    ap.add_argument("--rounds", type=int, default=3)
    a = ap.parse_args()
    asyncio.run(main(a.sites, a.rounds))
