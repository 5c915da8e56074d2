"""controlplane/services/cas.py: attempts, lost races, the fence, and the one-key mutate."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from controlplane.errors import Conflict, NotLeader, Unavailable
from controlplane.services import cas
from controlplane.store import Compare, KeyValue, Op, TxnResult
from controlplane.store.memory import MemoryStore


async def test_retry_runs_attempts_until_one_returns() -> None:
    store, calls = MemoryStore(), []

    async def attempt() -> str | cas.Retry:
        calls.append(1)
        return "done" if len(calls) == 3 else cas.RETRY

    assert await cas.retry(store, attempt) == "done"
    assert len(calls) == 3


@pytest.mark.parametrize(
    ("policy", "error"),
    [(cas.CasPolicy(4), Conflict), (cas.AUDIT_HEAD, Unavailable)],
)
async def test_exhausted_attempts_raise_the_policys_error(policy: cas.CasPolicy, error: type) -> None:
    store, calls = MemoryStore(), []

    async def attempt() -> cas.Retry | None:
        calls.append(1)
        return cas.RETRY

    with pytest.raises(error):
        await cas.retry(store, attempt, policy=policy)
    assert len(calls) == policy.attempts


async def test_a_fence_that_no_longer_holds_ends_at_the_first_lost_race() -> None:
    store, calls = MemoryStore(), []
    await store.put("leader", b"cp-0")
    kv = await store.get("leader")
    assert kv is not None
    fence = [Compare.unchanged(kv)]
    await store.put("leader", b"cp-1")  # another replica leads now

    async def attempt() -> cas.Retry | None:
        calls.append(1)
        return cas.RETRY

    with pytest.raises(NotLeader):
        await cas.retry(store, attempt, fence=fence)
    assert calls == [1]


async def test_mutate_writes_decides_nothing_or_reads_again_after_a_race() -> None:
    store = MemoryStore()
    await store.put("k", b"1")
    raced = []

    async def commit(compares: Sequence[Compare], ops: Sequence[Op], entries: object) -> TxnResult:
        if not raced:  # another writer gets in between our read and our commit, once
            raced.append(1)
            await store.put("k", b"5")
        return await store.txn(compares, ops)

    def incr(kv: KeyValue | None) -> cas.Write[int]:
        assert kv is not None
        n = int(kv.value) + 1
        return cas.Write(str(n).encode(), n)

    assert await cas.mutate(store, commit, "k", incr) == 6  # on the raced value, not over it
    kv = await store.get("k")
    assert kv is not None and kv.value == b"6"

    assert await cas.mutate(store, commit, "k", lambda kv: "unchanged") == "unchanged"
    kv2 = await store.get("k")
    assert kv2 is not None and kv2.mod_revision == kv.mod_revision

    async def create(kv: KeyValue | None) -> cas.Write[str]:
        assert kv is None
        return cas.Write(b"new", "created")

    assert await cas.mutate(store, commit, "absent", create) == "created"
