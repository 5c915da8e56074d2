"""The audit log as a Merkle tree at 10^6 events: append cost per event, proof time and size,
beside the hash chain it replaced, in one run.

    python benchmarks/audit_log.py [--events 1000000] [--commits 1000] [--proofs 300]

Both logs start at --events events (the tree's tiles are computed and stored first: only the edge
matters to an append), on the memory store and on a real etcd member (real fsync, default
timings, plaintext loopback), one store per path. Append rounds alternate between the paths (the
machine is shared: drift hits both). Reported: wall time per event and store bytes written per
event, one event per commit (serial) and 50 concurrent events (group commit); proof time and
size at that tree size (every tile read from the store, or with the replica's cache of 1,024
full tiles), with the client's verification time; and what the hash chain offers instead of a
proof: re-hashing every later event (measured per event, times the events after a random one).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from controlplane.domain import merkle, tiles
from controlplane.domain.audit import seal, verify_chain
from controlplane.domain.records import AUDIT_HEAD, AUDIT_TREE, AuditEvent
from controlplane.domain.tiles import TreeEdge
from controlplane.pki.log_key import LogKey
from controlplane.services.audit import AuditLog, Entry, _Head
from controlplane.services.checkpoints import Checkpoints
from controlplane.services.log_tree import LogTree, tile_puts, tree_record
from controlplane.services.witnesses import AdminWitnessList
from controlplane.store import Compare, Op, Put, Store
from controlplane.store.embedded import EmbeddedEtcd
from controlplane.store.etcd import FAST_RECONNECT, EtcdStore
from controlplane.store.memory import MemoryStore


class ChainOnly(AuditLog):
    """The log before issue 13: the hash chain and its head, no tree (the baseline)."""

    async def _head(self) -> _Head:
        if self._cached is None:
            kv = await self._store.get(AUDIT_HEAD)
            assert kv is not None
            head = json.loads(kv.value)
            self._cached = _Head(Compare.unchanged(kv), head["sequence"], head["hash"], TreeEdge.empty())
        return self._cached

    def _tree_ops(self, edge: TreeEdge, raws: list[bytes]) -> tuple[TreeEdge, list[Op]]:
        return edge, []


class Counting:
    """Bytes of values written per successful transaction, by wrapping ``store.txn``."""

    def __init__(self, store: Store) -> None:
        self.bytes = 0
        original = store.txn

        async def txn(compares: Any, ops: Sequence[Op]) -> Any:
            result = await original(compares, ops)
            if result.succeeded:
                self.bytes += sum(len(op.key) + len(op.value) for op in ops if isinstance(op, Put))
            return result

        store.txn = txn  # type: ignore[method-assign]


async def prefill(store: Store, n: int, tree: bool) -> None:
    """A log of ``n`` events as far as appends and proofs see it: the head, and with ``tree`` the
    tiles and the tree record of ``n`` leaves (the events themselves are never read by either)."""
    await store.put(AUDIT_HEAD, json.dumps({"sequence": n, "hash": "0" * 64}).encode())
    if not tree:
        return
    edge, written = TreeEdge.empty(), {}
    for start in range(0, n, 65536):
        edge, touched = edge.append(
            [merkle.leaf_hash(b"%d" % i) for i in range(start, min(n, start + 65536))]
        )
        written.update(touched)
    items = tile_puts(TreeEdge.empty(), written)
    for i in range(0, len(items), 100):  # 100 tiles of 8 KiB: under etcd's 1.5 MiB request limit
        await store.txn([], items[i : i + 100])
    await store.put(AUDIT_TREE, tree_record(edge))


def entry(i: int) -> Entry:
    # The shape of a real event (an ack of a halt by a site), ~330 bytes stored.
    details = {"action": "3f0c1e5a-0d6b-4c39-9a57-4a4f4f6c2b11", "sites": f"s{i:05d}"}
    return Entry("controller/safety@cp-0", "safety.ack", "safety/3f0c1e5a", details=details)


async def serial(log: AuditLog, k: int) -> float:
    t0 = time.perf_counter()
    for i in range(k):
        await log.record(entry(i))
    return (time.perf_counter() - t0) / k


async def grouped(log: AuditLog, k: int) -> float:
    t0 = time.perf_counter()
    for start in range(0, k, 50):
        await asyncio.gather(*(log.record(entry(i)) for i in range(start, min(k, start + 50))))
    return (time.perf_counter() - t0) / k


async def appends(
    backend: str, stores: dict[str, Store], commits: int
) -> list[tuple[str, str, float, float]]:
    logs = {"hash chain (before)": ChainOnly(stores["chain"]), "Merkle tree": AuditLog(stores["tree"])}
    counters = {name: Counting(log._store) for name, log in logs.items()}
    for log in logs.values():  # warm: load the head and the edge
        await log.record(entry(0))
    rows = []
    for how, fn in (("1 event per commit", serial), ("50 concurrent (group commit)", grouped)):
        times: dict[str, list[float]] = {name: [] for name in logs}
        written = dict.fromkeys(logs, 0)
        for _ in range(5):  # rounds alternate between the paths
            for name, log in logs.items():
                before = counters[name].bytes
                times[name].append(await fn(log, commits // 5))
                written[name] += counters[name].bytes - before
        for name in logs:
            rows.append((f"{backend}, {how}", name, statistics.median(times[name]), written[name] / commits))
    return rows


async def signing(backend: str, store: Store) -> tuple[str, float, float]:
    """What one checkpoint costs (at most one per second per replica): the consistency proof from
    the previous checkpoint, the Ed25519 signature, the store round trips; and the signature alone."""
    log = AuditLog(store)
    cps = Checkpoints(store, log.tree, LogKey.generate("bench"), AdminWitnessList(store, log))
    await cps.sign_latest()  # the first: checked against the tiles, not a previous checkpoint
    times = []
    for i in range(30):
        await log.record(entry(i))
        t0 = time.perf_counter()
        assert await cps.sign_latest() is not None
        times.append(time.perf_counter() - t0)
    t0 = time.perf_counter()
    for _ in range(200):
        cps.key.signer.signature_line("bench/audit\n1000000\n" + "A" * 44 + "\n")
    return f"{backend}: sign a checkpoint", statistics.median(times), (time.perf_counter() - t0) / 200


async def proofs(backend: str, store: Store, n: int, count: int) -> list[tuple[str, float, float, int]]:
    rows = []
    for cache in ("no tile cache", "tile cache"):
        tree = LogTree(store)
        if cache == "no tile cache":
            tree.CACHE_TILES = 0
        size, root = await tree.state()
        inc, con, ver, isize, csize = [], [], [], [], []
        for _ in range(count):
            index, first = random.randrange(size), random.randint(1, size - 1)
            t0 = time.perf_counter()
            path = await tree.inclusion(index, size)
            inc.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            merkle.verify_inclusion(index, size, merkle.leaf_hash(b"%d" % index), path, root)
            ver.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            cpath = await tree.consistency(first, size)
            con.append(time.perf_counter() - t0)
            isize.append(len(path))
            csize.append(len(cpath))
        rows.append(
            (f"{backend}: inclusion proof ({cache})", statistics.median(inc), max(isize), max(isize) * 32)
        )
        rows.append(
            (f"{backend}: consistency proof ({cache})", statistics.median(con), max(csize), max(csize) * 32)
        )
        if cache == "no tile cache":
            rows.append(("client: verify an inclusion proof", statistics.median(ver), 0, 0))
    return rows


def chain_cost(n: int) -> float:
    """Seconds to check one event against the head with the hash chain alone: re-hash every later
    event (per-event cost measured over 20,000 events, times n/2 events on average)."""
    events, prev = [], ""
    for i in range(20_000):
        e = seal(AuditEvent(i + 1, 1.7e9, "a", "safety.ack", "o", "success", details={"i": str(i)}), prev)
        prev = e.hash
        events.append(AuditEvent.from_json(e.to_json()))
    t0 = time.perf_counter()
    assert verify_chain(events, "")
    per_event = (time.perf_counter() - t0) / len(events)
    return per_event * n / 2


async def main(n: int, commits: int, count: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        etcds = [EmbeddedEtcd(Path(tmp) / name, members=1) for name in ("chain", "tree")]
        for e in etcds:
            await e.start()
        try:
            for e in etcds:
                await e.wait_ready(15)
            backends: dict[str, dict[str, Store]] = {
                "memory": {"chain": MemoryStore(), "tree": MemoryStore()},
                "etcd": {
                    name: EtcdStore(e.client_urls, timeout=60, channel_options=FAST_RECONNECT)
                    for name, e in zip(("chain", "tree"), etcds, strict=True)
                },
            }
            t0 = time.perf_counter()
            for stores in backends.values():
                await prefill(stores["chain"], n, tree=False)
                await prefill(stores["tree"], n, tree=True)
            print(f"prefilled {n:,} events in {time.perf_counter() - t0:.1f}s", file=sys.stderr)
            proof_rows = []
            for backend, stores in backends.items():
                proof_rows += await proofs(backend, stores["tree"], n, count)
            append_rows, sign_rows = [], []
            for backend, stores in backends.items():
                append_rows += await appends(backend, stores, commits)
                sign_rows.append(await signing(backend, stores["tree"]))
            for stores in backends.values():
                for s in stores.values():
                    await s.close()
        finally:
            for e in etcds:
                await e.stop()
    report(n, commits, count, append_rows, proof_rows, chain_cost(n))
    print("\n| checkpoint | median time (ms) | of which the Ed25519 signature (ms) |\n|---|---:|---:|")
    for name, t, sig in sign_rows:
        print(f"| {name} | {t * 1e3:.2f} | {sig * 1e3:.3f} |")


def report(n: int, commits: int, count: int, appends: list[Any], proofs: list[Any], chain: float) -> None:
    cores = Path("/proc/cpuinfo").read_text().count("processor")
    print(f"\nAppends at {n:,} events ({commits} per cell, median of 5 alternating rounds), {cores} cores\n")
    print("| store, commits | path | time per event (us) | bytes written per event |")
    print("|---|---|---:|---:|")
    by_cell: dict[str, dict[str, tuple[float, float]]] = {}
    for cell, path, t, b in appends:
        by_cell.setdefault(cell, {})[path] = (t, b)
        print(f"| {cell} | {path} | {t * 1e6:.0f} | {b:.0f} |")
    for cell, paths in by_cell.items():
        (tc, bc), (tt, bt) = paths["hash chain (before)"], paths["Merkle tree"]
        print(f"| {cell} | ratio tree / chain | {tt / tc:.2f}x | {bt / bc:.2f}x |")
    print(f"\nProofs at {n:,} events ({count} random leaves and sizes; 32 bytes per hash)\n")
    print("| proof | median time (ms) | hashes | bytes |")
    print("|---|---:|---:|---:|")
    for name, t, hashes, size in proofs:
        print(f"| {name} | {t * 1e3:.3f} | {hashes or '-'} | {size or '-'} |")
    levels = tiles.levels(n)
    print(
        f"| hash chain (before): check one event against the head | {chain * 1e3:.0f} | - | "
        f"~{n // 2 * 330:,} read |\n\nA proof reads at most 2 tiles per level ({levels} levels at {n:,});"
        f" base64 in JSON adds a third (`audit prove -o json`)."
    )


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--events", type=int, default=1_000_000)
    ap.add_argument("--commits", type=int, default=1000, help="events appended per cell")
    ap.add_argument("--proofs", type=int, default=300)
    a = ap.parse_args()
    asyncio.run(main(a.events, a.commits, a.proofs))
