"""A 3-member etcd cluster: EtcdStore fails over between members, reports a full outage quickly,
and recovers by itself - the same store object, never recreated."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from controlplane.errors import StoreUnavailable
from tests.support.etcd_tls import running_etcd

pytestmark = pytest.mark.slow


async def test_failover_outage_and_recovery(tmp_path: Path) -> None:
    async with running_etcd(tmp_path, members=3) as (cluster, pki):
        store = pki.store(cluster.client_urls, timeout=1.0)
        assert store.endpoints == tuple(cluster.client_urls)
        assert await store.put("/ha/k", b"0") > 1  # served by member 0, the first endpoint

        # 1. One member crashes (the one the client is using). A write already on the dying
        #    connection may fail - the client cannot know whether etcd applied it, so it MUST NOT
        #    retry it elsewhere (etcd's clientv3 makes the same choice); the caller re-reads and
        #    retries, as the contract says. Reads fail over transparently, and so does every later call.
        cluster.kill_member(0)
        try:
            await store.put("/ha/k", b"1")
        except StoreUnavailable:
            kv = await store.get("/ha/k")  # re-read (fails over), then retry the write
            assert kv is not None and kv.value == b"0"
            await store.put("/ha/k", b"1")
        for i in range(2, 21):
            await store.put("/ha/k", str(i).encode())
            kv = await store.get("/ha/k")
            assert kv is not None and kv.value == str(i).encode()
        watch = store.watch("/ha/", start_revision=await store.current_revision() + 1)
        pending = asyncio.ensure_future(anext(watch))  # type: ignore[call-overload]
        await asyncio.sleep(0.05)

        # 2. The whole cluster goes down for ~2 s: every call fails fast with StoreUnavailable,
        #    and the open watch raises instead of going silent.
        await asyncio.gather(cluster.stop_member(1), cluster.stop_member(2))
        with pytest.raises(StoreUnavailable):
            await asyncio.wait_for(pending, 3)
        outage_end = time.monotonic() + 2.0
        attempts = 0
        while time.monotonic() < outage_end:
            t0 = time.monotonic()
            with pytest.raises(StoreUnavailable, match="state store unavailable") as info:
                await store.put("/ha/k", b"during outage")
            assert time.monotonic() - t0 < 1.5, "bounded by the 1 s call timeout"
            assert "etcd endpoints" in str(info.value)
            attempts += 1
            await asyncio.sleep(0.2)
        assert attempts >= 5
        assert await store.healthy() is False

        # 3. The cluster comes back: the same store recovers without being recreated.
        for i in range(3):
            await cluster.start_member(i)
        await cluster.wait_ready(10)
        t0 = time.monotonic()
        while True:
            try:
                await store.put("/ha/k", b"after")
                break
            except StoreUnavailable:
                assert time.monotonic() - t0 < 5, "store did not recover within 5 s of the cluster"
                await asyncio.sleep(0.05)
        kv = await store.get("/ha/k")
        assert kv is not None and kv.value == b"after" and kv.version == 22  # no write was lost
        await store.close()
