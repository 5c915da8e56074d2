"""The control plane's controllers are registrations of one leader runner, and incidents are
pruned (issue #14: nothing used to call ``prune_incidents``, so incidents grew forever and the
rules scanned all of them every quarter heartbeat)."""

from __future__ import annotations

import pytest

from controlplane.domain import safety as sd
from controlplane.services import clock
from tests.support.federation import Federation

DAY = 86400.0


async def test_every_leader_loop_is_a_registered_controller(fed: Federation) -> None:
    assert fed.cp is not None and fed.cp.runtime is not None
    assert fed.cp.runtime.controllers.names == ["liveness", "incident-rules", "incident-pruning", "rollouts"]


async def test_incidents_past_their_retention_are_pruned(
    fed: Federation, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert fed.cp is not None and fed.cp.runtime is not None
    rt = fed.cp.runtime
    real_now = clock.now
    monkeypatch.setattr(clock, "now", lambda: real_now() - 8 * DAY)
    await rt.incidents.report_incident("site/fr-par-1", "fr-par-1", "atlas-r1", 2, "harmful-output", 1)
    monkeypatch.setattr(clock, "now", real_now)
    await rt.incidents.report_incident("site/fr-par-1", "fr-par-1", "atlas-r1", 2, "harmful-output", 1)
    before = (await rt.store.range(sd.INCIDENTS)).items
    assert len(before) == 2
    pruner = rt.controllers.get("incident-pruning")
    await pruner.step(list(rt.election.fence()), None)  # type: ignore[arg-type]
    after = (await rt.store.range(sd.INCIDENTS)).items
    assert [kv.key for kv in after] == [max(kv.key for kv in before)]  # the fresh one stays
