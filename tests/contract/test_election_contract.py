"""LeaderElection on every Store backend (memory and a real etcd): same behaviour on both."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable

import pytest

from controlplane.errors import NotLeader
from controlplane.store import Put, Store
from controlplane.store.election import CampaignBackoff, LeaderElection

TTL = 2  # s; the keeper refreshes every ttl/3 = 0.67 s


async def _until(cond: Callable[[], bool], timeout: float) -> float:
    loop = asyncio.get_running_loop()
    start = loop.time()
    while not cond():
        if loop.time() - start > timeout:
            raise AssertionError(f"condition not met within {timeout}s")
        await asyncio.sleep(0.01)
    return loop.time() - start


@pytest.fixture
async def candidates(store: Store) -> AsyncIterator[list[LeaderElection]]:
    fast = CampaignBackoff(multiplier=0.02, maximum=0.2, jitter=0.02)
    elections = [LeaderElection(store, "scheduler", f"replica-{i}", ttl=TTL, retry=fast) for i in range(3)]
    tasks = [asyncio.create_task(e.run()) for e in elections]
    try:
        yield elections
    finally:
        for e in elections:
            await e.resign()
        await asyncio.gather(*tasks, return_exceptions=True)


def _leaders(elections: list[LeaderElection]) -> list[LeaderElection]:
    return [e for e in elections if e.is_leader]


async def test_exactly_one_leader_and_followers_know_it(candidates: list[LeaderElection]) -> None:
    await _until(lambda: len(_leaders(candidates)) == 1, 2)
    await asyncio.sleep(0.3)  # no second leader appears later
    (leader,) = _leaders(candidates)
    await _until(lambda: all(e.leader == leader.candidate_id for e in candidates), 2)
    for follower in (e for e in candidates if e is not leader):
        with pytest.raises(NotLeader):
            follower.fence()


async def test_fence_of_current_leader_succeeds(store: Store, candidates: list[LeaderElection]) -> None:
    await _until(lambda: len(_leaders(candidates)) == 1, 2)
    (leader,) = _leaders(candidates)
    result = await store.txn([*leader.fence()], [Put("/app/state", b"by-leader")])
    assert result.succeeded
    kv = await store.get("/app/state")
    assert kv is not None and kv.value == b"by-leader"


async def test_resign_hands_over_within_ttl(candidates: list[LeaderElection]) -> None:
    await _until(lambda: len(_leaders(candidates)) == 1, 2)
    (old,) = _leaders(candidates)
    await old.resign()
    assert not old.is_leader
    took = await _until(lambda: len(_leaders(candidates)) == 1, TTL + 1)
    (new,) = _leaders(candidates)
    assert new is not old
    assert took < 0.5, f"resign deletes the key: hand-over should not wait for the TTL ({took:.2f}s)"


async def test_revoked_lease_deposes_and_fences_out_the_old_leader(
    store: Store, candidates: list[LeaderElection]
) -> None:
    await _until(lambda: len(_leaders(candidates)) == 1, 2)
    (old,) = _leaders(candidates)
    stale_fence = old.fence()
    lease = old.lease_id
    assert lease is not None
    await store.revoke_lease(lease)
    await _until(lambda: not old.is_leader or old.lease_id != lease, 2)
    # The old term's fence fails in the store whatever the old leader believes.
    failed = await store.txn([*stale_fence], [Put("/app/state", b"stale")])
    assert not failed.succeeded
    assert await store.get("/app/state") is None
    # Someone (possibly the same replica with a new lease, in a new term) leads again.
    await _until(lambda: len(_leaders(candidates)) == 1, TTL + 1)
    (new,) = _leaders(candidates)
    assert new.fence() != stale_fence
    assert (await store.txn([*new.fence()], [Put("/app/state", b"fresh")])).succeeded


async def test_frozen_leader_steps_down_before_anything_else(store: Store) -> None:
    # ttl=1 (not TTL) keeps the freeze short; a lone candidate leads at once.
    election = LeaderElection(store, "frozen", "replica-f", ttl=1)
    task = asyncio.create_task(election.run())
    try:
        await _until(lambda: election.is_leader, 2)
        time.sleep(1.2)  # freeze the whole event loop past the TTL, as SIGSTOP would
        # First thing after "resume", before any await lets the refresh task run: already deposed.
        assert not election.is_leader
        with pytest.raises(NotLeader):
            election.fence()
    finally:
        await election.resign()
        await asyncio.gather(task, return_exceptions=True)
