"""In-memory Store: the reference implementation of the contract, for tests and ``make dev``.

Everything happens synchronously inside one event-loop step, so each method is atomic without
locks. History is kept for watches until ``compact`` (or past ``history_limit`` events, after
which the oldest revisions are compacted automatically, as etcd's auto-compaction would).
"""

from __future__ import annotations

import asyncio
import bisect
import itertools
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field

from controlplane.errors import CompactedError, LeaseNotFound, StoreUnavailable
from controlplane.store.base import (
    Compare,
    Delete,
    EventType,
    KeyValue,
    Op,
    Put,
    RangeResult,
    Store,
    TxnResult,
    WatchEvent,
)


@dataclass
class _Lease:
    ttl: int
    keys: set[str] = field(default_factory=set)
    timer: asyncio.TimerHandle | None = None


@dataclass
class _Watcher:
    prefix: str
    queue: asyncio.Queue[list[WatchEvent] | None]


class MemoryStore(Store):
    kind = "memory"

    def __init__(self, *, history_limit: int = 100_000) -> None:
        self._data: dict[str, KeyValue] = {}
        self._sorted: list[str] = []
        self._revision = 1  # etcd starts at 1 too
        self._compacted = 0
        self._history: list[tuple[int, list[WatchEvent]]] = []
        self._history_limit = history_limit
        self._leases: dict[int, _Lease] = {}
        self._lease_ids = itertools.count(0x1000)
        self._watchers: list[_Watcher] = []
        self._closed = False

    def _check_open(self) -> None:
        if self._closed:
            raise StoreUnavailable()

    async def get(self, key: str) -> KeyValue | None:
        self._check_open()
        return self._data.get(key)

    async def range(self, prefix: str, *, start: str | None = None, limit: int = 0) -> RangeResult:
        self._check_open()
        keys = self._sorted
        lo = bisect.bisect_left(keys, max(prefix, start or ""))
        items: list[KeyValue] = []
        # By index, not islice: islice walks the list from its head to ``lo`` (O(n) per range).
        for i in range(lo, len(keys)):
            key = keys[i]
            if not key.startswith(prefix):
                break
            items.append(self._data[key])
            if limit and len(items) >= limit:
                break
        return RangeResult(items, self._revision)

    def _holds(self, c: Compare) -> bool:
        kv = self._data.get(c.key)
        if c.target == "value":
            return kv is not None and kv.value == c.value
        actual = 0 if kv is None else getattr(kv, c.target)
        return bool(actual == c.value)

    async def txn(self, compares: Sequence[Compare], ops: Sequence[Op]) -> TxnResult:
        self._check_open()
        if not all(self._holds(c) for c in compares):
            return TxnResult(False, self._revision)
        for op in ops:
            if isinstance(op, Put) and op.lease and op.lease not in self._leases:
                raise LeaseNotFound()
        if not ops:
            return TxnResult(True, self._revision)
        revision = self._revision + 1
        events = [e for op in ops if (e := self._apply(op, revision)) is not None]
        self._revision = revision
        self._record(revision, events)
        return TxnResult(True, revision)

    def _apply(self, op: Op, revision: int) -> WatchEvent | None:
        old = self._data.get(op.key)
        if isinstance(op, Delete):
            if old is None:
                return None
            self._remove(op.key)
            return WatchEvent(EventType.DELETE, KeyValue(op.key, b"", old.create_revision, revision, 0))
        if old is not None and old.lease and old.lease != op.lease and old.lease in self._leases:
            self._leases[old.lease].keys.discard(op.key)
        kv = KeyValue(
            op.key,
            op.value,
            old.create_revision if old else revision,
            revision,
            (old.version if old else 0) + 1,
            op.lease,
        )
        if old is None:
            bisect.insort(self._sorted, op.key)
        self._data[op.key] = kv
        if op.lease:
            self._leases[op.lease].keys.add(op.key)
        return WatchEvent(EventType.PUT, kv)

    def _remove(self, key: str) -> None:
        old = self._data.pop(key)
        del self._sorted[bisect.bisect_left(self._sorted, key)]
        if old.lease and old.lease in self._leases:
            self._leases[old.lease].keys.discard(key)

    def _record(self, revision: int, events: list[WatchEvent]) -> None:
        if not events:
            return
        self._history.append((revision, events))
        if len(self._history) > self._history_limit:
            drop = len(self._history) - self._history_limit
            self._compacted = self._history[drop - 1][0]
            del self._history[:drop]
        for w in self._watchers:
            batch = [e for e in events if e.kv.key.startswith(w.prefix)]
            if batch:
                w.queue.put_nowait(batch)

    async def watch(self, prefix: str, *, start_revision: int) -> AsyncIterator[list[WatchEvent]]:
        self._check_open()
        if start_revision <= self._compacted:
            raise CompactedError(start_revision, self._compacted)
        watcher = _Watcher(prefix, asyncio.Queue())
        # Replay history and register in the same loop step, so nothing falls between the two.
        for revision, events in self._history:
            if revision >= start_revision:
                batch = [e for e in events if e.kv.key.startswith(prefix)]
                if batch:
                    watcher.queue.put_nowait(batch)
        self._watchers.append(watcher)
        try:
            while True:
                item = await watcher.queue.get()
                if item is None:
                    raise StoreUnavailable()
                yield item
        finally:
            if watcher in self._watchers:
                self._watchers.remove(watcher)

    async def grant_lease(self, ttl: int) -> int:
        self._check_open()
        lease_id = next(self._lease_ids)
        lease = _Lease(max(1, ttl))
        self._leases[lease_id] = lease
        self._arm(lease_id, lease)
        return lease_id

    def _arm(self, lease_id: int, lease: _Lease) -> None:
        if lease.timer is not None:
            lease.timer.cancel()
        loop = asyncio.get_running_loop()
        lease.timer = loop.call_later(lease.ttl, self._expire, lease_id)

    def _expire(self, lease_id: int) -> None:
        lease = self._leases.pop(lease_id, None)
        if lease is None or self._closed:
            return
        if lease.timer is not None:
            lease.timer.cancel()
        ops = [Delete(k) for k in sorted(lease.keys) if k in self._data]
        if ops:
            revision = self._revision + 1
            events = [e for op in ops if (e := self._apply(op, revision)) is not None]
            self._revision = revision
            self._record(revision, events)

    async def refresh_lease(self, lease_id: int) -> int:
        self._check_open()
        lease = self._leases.get(lease_id)
        if lease is None:
            raise LeaseNotFound()
        self._arm(lease_id, lease)
        return lease.ttl

    async def revoke_lease(self, lease_id: int) -> None:
        self._check_open()
        self._expire(lease_id)

    async def compact(self, revision: int) -> None:
        self._check_open()
        self._compacted = max(self._compacted, revision - 1)
        self._history = [(r, e) for r, e in self._history if r > self._compacted]

    async def current_revision(self) -> int:
        self._check_open()
        return self._revision

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        for lease in self._leases.values():
            if lease.timer is not None:
                lease.timer.cancel()
        for w in self._watchers:
            w.queue.put_nowait(None)
