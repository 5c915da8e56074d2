"""Contract clauses of controlplane/store/base.py that test_store_contract.py does not cover."""

from __future__ import annotations

import asyncio

import pytest

from controlplane.errors import StoreUnavailable
from controlplane.store import Store


async def test_watch_raises_store_unavailable_when_the_store_goes_away(store: Store) -> None:
    start = await store.current_revision() + 1
    it = store.watch("/gone/", start_revision=start)
    await store.put("/gone/a", b"1")
    first = await asyncio.wait_for(anext(it), 5)  # type: ignore[call-overload]
    assert [e.kv.key for e in first] == ["/gone/a"]
    pending = asyncio.ensure_future(anext(it))  # type: ignore[call-overload]
    await asyncio.sleep(0.05)
    await store.close()
    with pytest.raises(StoreUnavailable):
        await asyncio.wait_for(pending, 5)  # raises, not a silent StopAsyncIteration


async def test_calls_after_close_raise_store_unavailable(store: Store) -> None:
    await store.close()
    await store.close()  # idempotent
    with pytest.raises(StoreUnavailable):
        await store.get("/x")
    with pytest.raises(StoreUnavailable):
        await store.put("/x", b"1")
    assert await store.healthy() is False


async def test_cancelling_the_consumer_is_not_an_outage(store: Store) -> None:
    it = store.watch("/cancel/", start_revision=await store.current_revision() + 1)
    task = asyncio.ensure_future(anext(it))  # type: ignore[call-overload]
    await asyncio.sleep(0.05)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    # The store stays usable and a new watch works.
    start = await store.current_revision() + 1
    await store.put("/cancel/a", b"1")
    it2 = store.watch("/cancel/", start_revision=start)
    batch = await asyncio.wait_for(anext(it2), 5)  # type: ignore[call-overload]
    assert [e.kv.key for e in batch] == ["/cancel/a"]
    await it2.aclose()  # type: ignore[attr-defined]
