"""WatchService over real mTLS: the current state first, one state per change with rising
revisions, nothing repeated, the end of the object ends the stream; refusals are errors naming the
field; resuming from a revision sends only what changed after it (issue #14, part 6)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from controlplane.api.v1 import rollouts_pb2 as opb
from controlplane.api.v1 import watch_pb2 as wpb
from controlplane.client.federation import FederationClient
from controlplane.errors import InvalidRequest, NotFound
from tests.integration.test_rollouts import Rig, release, rig, spec

__all__ = ["rig"]  # the fixture


async def next_state(stream: Any, timeout: float = 10.0) -> wpb.WatchResponse:
    return await asyncio.wait_for(stream.__anext__(), timeout)  # type: ignore[no-any-return]


async def _waiting_rollout(rig: Rig, name: str) -> None:
    await rig.sites()
    await rig.publish(release("atlas-1.2.0", "1.2.0"))
    async with rig.fed.client() as c:
        # Steward approvals: the rollout waits for FR and DE, a state that stays put.
        await c.call("CreateRollout", opb.CreateRolloutRequest(spec=spec(name, "atlas-1.2.0", steward=True)))
    await rig.wait(name, lambda r: r.phase == "WaitingForApproval" or "Waiting" in r.phase)


async def test_watch_streams_each_change_once_and_ends_on_delete(rig: Rig) -> None:
    await _waiting_rollout(rig, "atlas-watch")
    async with rig.fed.client() as c:
        stream = c.watch(wpb.WATCH_KIND_ROLLOUT, "atlas-watch")
        first = await next_state(stream)
        assert first.rollout.spec.name == "atlas-watch" and first.revision > 0
        await c.call(
            "UpdateRollout",
            opb.UpdateRolloutRequest(name="atlas-watch", action=opb.ROLLOUT_ACTION_PAUSE, reason="look"),
        )
        paused = await next_state(stream)
        assert paused.rollout.phase == "Paused" and paused.revision > first.revision
        await c.call(
            "UpdateRollout",
            opb.UpdateRolloutRequest(name="atlas-watch", action=opb.ROLLOUT_ACTION_ABORT, reason="done"),
        )
        await c.call("DeleteRollout", opb.DeleteRolloutRequest(name="atlas-watch"))
        states = [await next_state(stream)]
        while not states[-1].deleted:
            states.append(await next_state(stream))
        assert states[-1].deleted and states[-1].revision > paused.revision
        with pytest.raises(StopAsyncIteration):
            await next_state(stream)  # the stream ended with the object
        bodies = [s.rollout.SerializeToString(deterministic=True) for s in [first, paused, *states[:-1]]]
        assert len(bodies) == len(set(bodies)), "a state was sent twice"


async def test_watch_resumes_after_a_revision_without_repeating(rig: Rig) -> None:
    await _waiting_rollout(rig, "atlas-resume")
    async with rig.fed.client() as c:
        first = await next_state(c.watch(wpb.WATCH_KIND_ROLLOUT, "atlas-resume"))
        resumed = c.watch(wpb.WATCH_KIND_ROLLOUT, "atlas-resume", after_revision=first.revision)
        pending = asyncio.ensure_future(next_state(resumed))
        await asyncio.sleep(0.5)
        assert not pending.done(), "the state already seen was sent again"
        await c.call(
            "UpdateRollout",
            opb.UpdateRolloutRequest(name="atlas-resume", action=opb.ROLLOUT_ACTION_PAUSE, reason="x"),
        )
        assert (await pending).rollout.phase == "Paused"
        await resumed.aclose()


async def test_watch_refusals_name_their_reason(rig: Rig) -> None:
    async with rig.fed.client() as c:
        with pytest.raises(NotFound):
            await next_state(c.watch(wpb.WATCH_KIND_ROLLOUT, "nobody"))
        with pytest.raises(InvalidRequest, match="kind"):
            await next_state(c.watch(wpb.WATCH_KIND_UNSPECIFIED, "x"))
        with pytest.raises(InvalidRequest, match="name"):
            await next_state(c.watch(wpb.WATCH_KIND_ROLLOUT, "Not A Name"))
        with pytest.raises(InvalidRequest, match="after_revision"):
            await next_state(c.watch(wpb.WATCH_KIND_ROLLOUT, "x", after_revision=-1))


async def test_the_cli_watch_uses_no_get_calls(rig: Rig, monkeypatch: pytest.MonkeyPatch) -> None:
    """``rollouts status --watch`` follows the stream: no GetRollout call while it watches."""
    await _waiting_rollout(rig, "atlas-cli")
    calls: list[str] = []
    original = FederationClient.call

    async def counting(self: FederationClient, method: str, request: Any) -> Any:
        calls.append(method)
        return await original(self, method, request)

    monkeypatch.setattr(FederationClient, "call", counting)
    from controlplane.cli.main import main

    async def abort_soon() -> None:
        await asyncio.sleep(1.5)
        async with rig.fed.client() as c:
            await c.call(
                "UpdateRollout",
                opb.UpdateRolloutRequest(name="atlas-cli", action=opb.ROLLOUT_ACTION_ABORT, reason="done"),
            )

    config = str(rig.fed.dir / "stargatectl.yaml")
    task = asyncio.ensure_future(abort_soon())
    code = await asyncio.to_thread(
        main,
        [
            "--config",
            config,
            "--server",
            rig.fed.address,
            "rollouts",
            "status",
            "atlas-cli",
            "-w",
            "-o",
            "json",
        ],
    )
    await task
    assert code == 1  # Aborted
    assert [m for m in calls if m != "UpdateRollout"] == [], calls
