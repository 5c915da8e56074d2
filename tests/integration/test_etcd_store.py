"""EtcdStore against a real single-member etcd with client mutual TLS: what the contract suite
cannot express generically (TLS refusal, server-side watch release, member death)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from controlplane.errors import StoreUnavailable
from controlplane.store.embedded import EmbeddedEtcd
from controlplane.store.etcd import FAST_RECONNECT, EtcdStore
from tests.support.etcd_tls import EtcdPki, make_etcd_pki, running_etcd


@pytest.fixture
async def etcd(tmp_path: Path) -> AsyncIterator[tuple[EmbeddedEtcd, EtcdPki]]:
    async with running_etcd(tmp_path, members=1) as server:
        yield server


async def _watchers(etcd: EmbeddedEtcd) -> int:
    """etcd's own count of open watchers, from its plaintext metrics endpoint."""
    u = urlsplit(etcd.metrics_urls[0])
    # Bounded: a stuck read once hung a whole suite run for the 120 s test timeout, with no trace.
    async with asyncio.timeout(5):
        reader, writer = await asyncio.open_connection(u.hostname, u.port)
        writer.write(b"GET /metrics HTTP/1.0\r\n\r\n")
        body = (await reader.read()).decode()
    writer.close()
    for line in body.splitlines():
        if line.startswith("etcd_debugging_mvcc_watcher_total "):
            return int(float(line.split()[1]))
    raise AssertionError("etcd_debugging_mvcc_watcher_total not in /metrics")


async def _eventually(cond, timeout: float = 3.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not await cond():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.02)


async def test_mtls_client_is_accepted_and_others_are_refused(
    etcd: tuple[EmbeddedEtcd, EtcdPki], tmp_path: Path
) -> None:
    server, pki = etcd
    good = pki.store(server.client_urls)
    assert await good.put("/tls/ok", b"1") > 1
    await good.close()

    no_cert = EtcdStore(server.client_urls, ca_file=pki.ca_file, timeout=2, channel_options=FAST_RECONNECT)
    other_ca = make_etcd_pki(tmp_path / "other")  # a valid cert, but from a CA etcd does not trust
    foreign = EtcdStore(
        server.client_urls,
        ca_file=pki.ca_file,
        cert_file=other_ca.client_cert,
        key_file=other_ca.client_key,
        timeout=2,
        channel_options=FAST_RECONNECT,
    )
    for client in (no_cert, foreign):
        t0 = time.monotonic()
        with pytest.raises(StoreUnavailable):
            await client.get("/tls/ok")
        assert time.monotonic() - t0 < 2.5  # refused by the handshake, within the call timeout
        assert await client.healthy() is False
        await client.close()


async def test_watch_is_released_on_aclose_and_on_cancel(etcd: tuple[EmbeddedEtcd, EtcdPki]) -> None:
    server, pki = etcd
    store = pki.store(server.client_urls)
    base = await _watchers(server)
    start = await store.current_revision() + 1
    it = store.watch("/rel/", start_revision=start)
    await store.put("/rel/a", b"1")
    async with asyncio.timeout(10):  # a failure with a trace rather than a hang
        assert [e.kv.key for e in await anext(it)] == ["/rel/a"]  # type: ignore[call-overload]

    async def count_is(n: int) -> bool:
        return await _watchers(server) == n

    assert await _watchers(server) == base + 1
    await it.aclose()  # type: ignore[attr-defined]
    await _eventually(lambda: count_is(base))

    task = asyncio.create_task(anext(store.watch("/rel/", start_revision=start + 1)))  # type: ignore[call-overload]
    await _eventually(lambda: count_is(base + 1))
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await _eventually(lambda: count_is(base))
    await store.close()


async def test_watch_raises_store_unavailable_when_the_member_dies(
    etcd: tuple[EmbeddedEtcd, EtcdPki],
) -> None:
    server, pki = etcd
    store = pki.store(server.client_urls)
    it = store.watch("/dies/", start_revision=await store.current_revision() + 1)
    pending = asyncio.ensure_future(anext(it))  # type: ignore[call-overload]
    await asyncio.sleep(0.1)
    server.kill_member(0)
    t0 = time.monotonic()
    with pytest.raises(StoreUnavailable):
        await asyncio.wait_for(pending, 5)
    assert time.monotonic() - t0 < 1.0  # a reset connection is noticed at once, not at keepalive
    await store.close()
