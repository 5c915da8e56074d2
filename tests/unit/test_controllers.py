"""The leader runner: controllers run only while leading, with the fence and the term; a failed
pass backs off and never stops the controller; a second registration under one name is refused."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest

from controlplane.errors import NotLeader, StoreUnavailable
from controlplane.services import controllers as ctl
from controlplane.store import Compare

FENCE = (Compare("/e", "create_revision", 7), Compare("/e", "value", "me"))


class Election:
    def __init__(self) -> None:
        self.is_leader = False
        self.term = 0

    def fence(self) -> tuple[Compare, Compare]:
        if not self.is_leader:
            raise NotLeader()
        return FENCE


class Recorder:
    def __init__(
        self, name: str = "rec", interval: float = 0.01, fail: list[Exception] | None = None
    ) -> None:
        self.name, self.interval = name, interval
        self.calls: list[tuple[list[Compare], ctl.Term]] = []
        self.fail = list(fail or [])

    async def step(self, fence: Sequence[Compare], term: ctl.Term) -> None:
        self.calls.append((list(fence), term))
        if self.fail:
            raise self.fail.pop(0)


async def run_for(runner: ctl.LeaderRunner, seconds: float) -> None:
    task = asyncio.create_task(runner.run())
    await asyncio.sleep(seconds)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_runs_only_while_leading_with_fence_and_term() -> None:
    election, rec = Election(), Recorder()
    runner = ctl.LeaderRunner(election)
    runner.register(rec)
    await run_for(runner, 0.1)
    assert rec.calls == []  # a follower does nothing
    election.is_leader, election.term = True, 7
    await run_for(runner, 0.1)
    assert rec.calls and all(f == list(FENCE) for f, _ in rec.calls)
    assert {t.number for _, t in rec.calls} == {7}
    assert len({t.since for _, t in rec.calls}) == 1  # one term, one start
    assert runner.stats["rec"].passes == len(rec.calls)


async def test_a_failing_pass_is_counted_backed_off_and_the_controller_goes_on() -> None:
    election = Election()
    election.is_leader, election.term = True, 1
    rec = Recorder(fail=[StoreUnavailable("etcd down"), RuntimeError("bug"), NotLeader()])
    runner = ctl.LeaderRunner(election)
    runner.register(rec)
    await run_for(runner, 0.3)
    stats = runner.stats["rec"]
    assert stats.failures == 2 and "bug" in stats.last_error  # NotLeader is no failure
    assert stats.passes >= 1 and len(rec.calls) >= 4


def test_one_registration_per_name() -> None:
    runner = ctl.LeaderRunner(Election())
    runner.register(Recorder("a"))
    with pytest.raises(ValueError, match="already registered"):
        runner.register(Recorder("a"))
    assert runner.names == ["a"]
