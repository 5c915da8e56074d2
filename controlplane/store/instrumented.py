"""A Store that times every call and counts its errors (``stargate_store_*`` metrics).

Wraps any Store and delegates everything: the backend's attributes (``kind``, ``endpoints``,
``persistent``, ``delete_all``, ...) read through, so callers see the store they opened. Costs
one ``perf_counter`` pair and a histogram observation per call (~2 µs; an etcd round trip is
~0.5 ms here).
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Any, TypeVar

from controlplane.store.base import Compare, KeyValue, Op, RangeResult, Store, TxnResult, WatchEvent
from controlplane.telemetry import metrics

T = TypeVar("T")


class InstrumentedStore(Store):
    def __init__(self, inner: Store) -> None:
        self.inner = inner
        # The backend's descriptive attributes, not Store's class defaults (fixed per backend).
        self.kind = inner.kind
        self.endpoints = inner.endpoints
        self.persistent = inner.persistent

    def __getattr__(self, name: str) -> Any:  # anything else the backend has
        return getattr(self.inner, name)

    async def _timed(self, op: str, call: Callable[[], Awaitable[T]]) -> T:
        start = time.perf_counter()
        try:
            return await call()
        except Exception as e:
            metrics.STORE_ERRORS.labels(op=op, error=type(e).__name__).inc()
            raise
        finally:
            metrics.STORE_LATENCY.labels(op=op).observe(time.perf_counter() - start)

    async def get(self, key: str) -> KeyValue | None:
        return await self._timed("get", lambda: self.inner.get(key))

    async def range(self, prefix: str, *, start: str | None = None, limit: int = 0) -> RangeResult:
        return await self._timed("range", lambda: self.inner.range(prefix, start=start, limit=limit))

    async def txn(self, compares: Sequence[Compare], ops: Sequence[Op]) -> TxnResult:
        return await self._timed("txn", lambda: self.inner.txn(compares, ops))

    async def put(self, key: str, value: bytes, *, lease: int = 0) -> int:
        return await self._timed("put", lambda: self.inner.put(key, value, lease=lease))

    async def create(self, key: str, value: bytes, *, lease: int = 0) -> bool:
        return await self._timed("create", lambda: self.inner.create(key, value, lease=lease))

    async def cas(self, key: str, value: bytes, expected_mod_revision: int) -> bool:
        return await self._timed("cas", lambda: self.inner.cas(key, value, expected_mod_revision))

    async def holds(self, compares: Sequence[Compare]) -> bool:
        return await self._timed("holds", lambda: self.inner.holds(compares))

    async def delete(self, key: str) -> bool:
        return await self._timed("delete", lambda: self.inner.delete(key))

    async def watch(self, prefix: str, *, start_revision: int) -> AsyncIterator[list[WatchEvent]]:
        # A watch is long-lived: only its failures are counted, not its duration.
        try:
            async for batch in self.inner.watch(prefix, start_revision=start_revision):
                yield batch
        except Exception as e:
            metrics.STORE_ERRORS.labels(op="watch", error=type(e).__name__).inc()
            raise

    async def grant_lease(self, ttl: int) -> int:
        return await self._timed("grant_lease", lambda: self.inner.grant_lease(ttl))

    async def refresh_lease(self, lease_id: int) -> int:
        return await self._timed("refresh_lease", lambda: self.inner.refresh_lease(lease_id))

    async def revoke_lease(self, lease_id: int) -> None:
        await self._timed("revoke_lease", lambda: self.inner.revoke_lease(lease_id))

    async def compact(self, revision: int) -> None:
        await self._timed("compact", lambda: self.inner.compact(revision))

    async def current_revision(self) -> int:
        return await self._timed("current_revision", self.inner.current_revision)

    async def healthy(self) -> bool:
        return await self.inner.healthy()

    async def close(self) -> None:
        await self.inner.close()
