"""Controllers and the one leader runner (OCM's controller factory, in asyncio).

A controller is a name, an interval and ``step(fence, term)``: one pass of leader-only work whose
every write carries ``fence`` (the election's compares: a deposed leader's writes fail). The
runner owns what each controller used to copy: the sleep, the leadership check, the fence, the
term, the backoff after a failed pass and the logging. A new controller is one registration::

    class Compactor:
        name, interval = "compactor", 60.0

        async def step(self, fence: Sequence[Compare], term: Term) -> None:
            await compact_old_revisions(fence)

    runner.register(Compactor())
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from controlplane.errors import NotLeader, StargateError, StoreError
from controlplane.services import clock
from controlplane.services.incidents import Incidents
from controlplane.services.liveness import Liveness
from controlplane.services.rollout_engine import RolloutEngine
from controlplane.store import Compare

log = logging.getLogger(__name__)

#: Longest wait after failed passes: a pass that fails k times in a row waits interval * 2**k, at
#: most this long (or the interval itself when that is longer). 5 s: a store outage of a minute
#: costs ~12 attempts per controller, and a recovered store is used again within 5 s.
BACKOFF_MAX = 5.0


@dataclass(frozen=True)
class Term:
    """This replica's current leadership term: its number and when the replica saw it begin."""

    number: int
    since: float


class Controller(Protocol):
    name: str
    interval: float

    async def step(self, fence: Sequence[Compare], term: Term) -> None: ...


class Leadership(Protocol):
    @property
    def is_leader(self) -> bool: ...

    @property
    def term(self) -> int: ...

    def fence(self) -> tuple[Compare, Compare]: ...


@dataclass
class Stats:
    passes: int = 0
    failures: int = 0
    last_error: str = ""


class LeaderRunner:
    """Runs every registered controller while this replica leads."""

    def __init__(self, election: Leadership) -> None:
        self._election = election
        self._controllers: dict[str, Controller] = {}
        self.stats: dict[str, Stats] = {}

    def register(self, controller: Controller) -> None:
        if controller.name in self._controllers:
            raise ValueError(f"controller {controller.name!r} is already registered")
        self._controllers[controller.name] = controller
        self.stats[controller.name] = Stats()

    @property
    def names(self) -> list[str]:
        return list(self._controllers)

    def get(self, name: str) -> Controller:
        return self._controllers[name]

    async def run(self) -> None:
        await asyncio.gather(*(self._loop(c) for c in self._controllers.values()))

    async def _loop(self, c: Controller) -> None:
        term, failures, stats = Term(0, 0.0), 0, self.stats[c.name]
        while True:
            await asyncio.sleep(min(c.interval * 2**failures, max(c.interval, BACKOFF_MAX)))
            if not self._election.is_leader:
                failures = 0
                continue
            if self._election.term != term.number:
                term = Term(self._election.term, clock.now())
            try:
                await c.step(list(self._election.fence()), term)
            except NotLeader:
                continue  # deposed during the pass: the next pass finds out who leads
            except StargateError as e:
                failures, stats.failures, stats.last_error = (
                    min(failures + 1, 10),
                    stats.failures + 1,
                    e.public,
                )
                log.info("controller %s: %s", c.name, e.public)
            except Exception as e:  # a bug in one pass must not stop the controller for good
                failures, stats.failures, stats.last_error = (
                    min(failures + 1, 10),
                    stats.failures + 1,
                    repr(e),
                )
                log.exception("controller %s failed", c.name)
            else:
                failures = 0
                stats.passes += 1


# --- the control plane's controllers ----------------------------------------------------------


@dataclass
class LivenessSweeper:
    """Marks sites Unreachable (and Ready again) from the replicas' heartbeat maps. A quarter
    interval: Unreachable is declared at most 0.25 interval after the 3rd missed heartbeat."""

    liveness: Liveness
    actor: str
    interval: float
    name: str = "liveness"
    #: Set when a sweep failed on the store; the next sweep that reads it starts a new grace.
    store_failed: bool = False
    recovered_at: float = 0.0

    async def step(self, fence: Sequence[Compare], term: Term) -> None:
        # The start of the term counts as a heartbeat of every site: until now this replica did not
        # watch heartbeats, and the others may not have republished their maps yet (Liveness.sweep).
        # So does the end of a store outage this replica saw: the other replicas' maps and links
        # went through the same outage (their writes failed, links reconnected), and they get the
        # same MISSED_HEARTBEATS intervals to publish again before anything is declared missed.
        if self.store_failed:
            self.store_failed, self.recovered_at = False, clock.now()
        try:
            await self.liveness.sweep(self.actor, fence=fence, since=max(term.since, self.recovered_at))
        except StoreError:
            self.store_failed = True
            raise


@dataclass
class IncidentRules:
    """The safety controller: incident rules that halt automatically."""

    incidents: Incidents
    actor: str
    interval: float
    name: str = "incident-rules"

    async def step(self, fence: Sequence[Compare], term: Term) -> None:
        await self.incidents.run_rules(self.actor, fence)


@dataclass
class IncidentPruning:
    """Deletes incidents older than their retention, so the rules scan a bounded set (they used to
    grow forever: nothing called ``prune_incidents``). Once a minute is plenty for a 7-day retention."""

    incidents: Incidents
    interval: float = 60.0
    name: str = "incident-pruning"

    async def step(self, fence: Sequence[Compare], term: Term) -> None:
        if pruned := await self.incidents.prune_incidents(fence):
            log.info("pruned %d incidents past their retention", pruned)


@dataclass
class RolloutController:
    """One rollout engine step per tick; a deposed leader's step fails on the fence."""

    engine: RolloutEngine
    interval: float
    name: str = "rollouts"

    async def step(self, fence: Sequence[Compare], term: Term) -> None:
        await self.engine.tick(list(fence))
