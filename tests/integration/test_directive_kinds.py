"""A new directive kind is one registration on each side (controlplane/api/directive_kinds.py and
operators/agent/handlers.py), and it travels the whole path: queued and signed by the
federation, delivered over the real mTLS link, verified and handled by the site, acked upstream.
A site without a handler refuses it as unsupported; the federation refuses a kind nobody
registered and any safety-lane kind on a site's ordinary queue."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from controlplane.api import directive_kinds
from controlplane.api.directive_kinds import DirectiveKind
from controlplane.api.v1 import types_pb2 as tpb
from controlplane.domain.records import DirectiveState
from controlplane.errors import InvalidArgument
from controlplane.server.runtime import Runtime
from operators.agent import handlers
from operators.agent.backend import Refused
from tests.support.federation import Federation
from tests.support.wait import until

ADMIN = "spiffe://test.stargate/user/admin"
#: A wire number outside the enum: what a newer federation might send.
PROBE = tpb.DirectiveKind.ValueType(99)


@pytest.fixture
def probe_kind() -> Iterator[list[tuple[str, dict[str, Any]]]]:
    """The kind "Probe", registered on both sides; yields what the site's handler saw."""
    seen: list[tuple[str, dict[str, Any]]] = []

    def check(payload: Any) -> None:
        if payload.get("deployment_name") == "bad":
            raise InvalidArgument("deployment_name", "bad is not allowed for a probe")

    directive_kinds.register(DirectiveKind("Probe", PROBE, "undeploy", validate=check))

    @handlers.handler("Probe")
    async def probe(site: Any, d: tpb.Directive, payload: dict[str, Any]) -> None:
        if payload.get("deployment_name") == "refuse-me":
            raise Refused("probe: refused by the site")
        seen.append((d.id, payload))

    try:
        yield seen
    finally:
        directive_kinds.unregister("Probe")
        handlers.unregister("Probe")


def runtime(fed: Federation) -> Runtime:
    assert fed.cp is not None and fed.cp.runtime is not None
    return fed.cp.runtime


async def outcome(rt: Runtime, site: str, directive_id: str) -> Any:
    async def done() -> Any:
        d = await rt.directives.get(site, directive_id)
        return d if d is not None and d.state != DirectiveState.PENDING else None

    return await until(done, what=f"the outcome of {directive_id}")


async def test_a_new_kind_is_one_registration_each_side(
    fed: Federation, probe_kind: list[tuple[str, dict[str, Any]]]
) -> None:
    await fed.add_site("fr-par-1", "FR")
    rt = runtime(fed)
    d = await rt.directives.issue("fr-par-1", "Probe", {"deployment_name": "x"}, ADMIN)
    done = await outcome(rt, "fr-par-1", d.id)
    assert done.state == DirectiveState.ACKED, done
    assert probe_kind == [(d.id, {"deployment_name": "x"})]  # the payload, through the signature

    refused = await rt.directives.issue("fr-par-1", "Probe", {"deployment_name": "refuse-me"}, ADMIN)
    done = await outcome(rt, "fr-par-1", refused.id)
    assert done.state == DirectiveState.REJECTED and "refused by the site" in done.reason


async def test_kind_validation_runs_before_anything_is_queued(
    fed: Federation, probe_kind: list[tuple[str, dict[str, Any]]]
) -> None:
    await fed.add_site("fr-par-1", "FR")
    rt = runtime(fed)
    with pytest.raises(InvalidArgument, match="deployment_name"):
        await rt.directives.issue("fr-par-1", "Probe", {"deployment_name": "bad"}, ADMIN)
    assert await rt.directives.list("fr-par-1") == []


async def test_a_site_without_the_handler_refuses_the_kind(fed: Federation) -> None:
    directive_kinds.register(DirectiveKind("Probe", PROBE, "undeploy"))  # federation side only
    try:
        await fed.add_site("fr-par-1", "FR")
        rt = runtime(fed)
        d = await rt.directives.issue("fr-par-1", "Probe", {"deployment_name": "x"}, ADMIN)
        done = await outcome(rt, "fr-par-1", d.id)
    finally:
        directive_kinds.unregister("Probe")
    assert done.state == DirectiveState.REJECTED
    assert done.reason == "unsupported directive kind Probe"


async def test_unknown_and_safety_kinds_are_refused_on_a_sites_queue(fed: Federation) -> None:
    await fed.add_site("fr-par-1", "FR")
    rt = runtime(fed)
    with pytest.raises(InvalidArgument, match="kind"):
        await rt.directives.issue("fr-par-1", "Reboot", {}, ADMIN)
    with pytest.raises(InvalidArgument, match="safety lane"):
        await rt.directives.issue("fr-par-1", "Halt", {"halt_id": "h"}, ADMIN)
    assert await rt.directives.list("fr-par-1") == []


def test_registering_a_kind_twice_is_refused() -> None:
    with pytest.raises(ValueError, match="already registered"):
        directive_kinds.register(DirectiveKind("Deploy", PROBE, "deploy"))
    with pytest.raises(ValueError, match="no field"):
        directive_kinds.register(DirectiveKind("Probe", PROBE, "nonsense"))
    with pytest.raises(ValueError, match="already registered"):
        handlers.handler("Deploy")(handlers.deploy)
