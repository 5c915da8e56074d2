"""What a site does with each kind of ordered directive: one handler per kind, registered by name.

The link (operators/agent/link.py) has already checked the directive's signature, its site, its
sequence and that it is not a re-delivery; it looks the kind up in controlplane/api/directive_kinds.py
and calls the handler registered here under that name. A handler applies the directive or raises
``Refused`` with the reason that goes upstream; a kind without a handler is refused as
unsupported (a site older than its federation says so instead of guessing). Safety-lane kinds
(Halt, Resume) go to operators/agent/safety.py instead. A new kind is one registration::

    @handler("RunJob")
    async def run_job(site: SiteAgent, d: tpb.Directive, payload: dict[str, Any]) -> None:
        ...
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from controlplane.api.v1 import types_pb2 as tpb
from operators.agent.backend import Refused
from operators.agent.verify import check_release

if TYPE_CHECKING:
    from operators.agent.link import SiteAgent

Handler = Callable[["SiteAgent", tpb.Directive, dict[str, Any]], Awaitable[None]]

#: kind name -> handler.
HANDLERS: dict[str, Handler] = {}


def handler(kind: str) -> Callable[[Handler], Handler]:
    """Register the site's handler of directive kind ``kind`` (twice is a bug, refused)."""

    def register(fn: Handler) -> Handler:
        if kind in HANDLERS:
            raise ValueError(f"a handler of directive kind {kind!r} is already registered")
        HANDLERS[kind] = fn
        return fn

    return register


def unregister(kind: str) -> None:
    HANDLERS.pop(kind, None)


@handler("Deploy")
async def deploy(site: SiteAgent, d: tpb.Directive, payload: dict[str, Any]) -> None:
    payload.setdefault("replicas", 0)
    name = str(payload.get("deployment_name", ""))
    # The site's own policy first (risk tiers, capacity, the federation's share of it), then the
    # release's publisher signature and artifact, then halts, then the Deploy's proof in the log.
    reason = site.policy.check_deploy(
        payload,
        await site.free(exclude=name),
        total=site.facts.accelerators,
        federation_used=await site.used(exclude=name, federation_only=True),
    )
    if not reason:
        trusted = site.policy.trusted_publisher_keys or site.trust.publisher_keys()
        reason = await check_release(payload, trusted, site.backend)
    reason = reason or site.safety.check_deploy(payload) or site.log.check_deploy(d)
    if reason:
        raise Refused(reason)
    # Which directive made the change, for the backend to show at the site (the Kubernetes
    # operator puts it in the ModelDeployment's status); others ignore it.
    payload["directive_id"], payload["directive_sequence"] = d.id, d.sequence
    await site.backend.deploy(payload)


@handler("Undeploy")
async def undeploy(site: SiteAgent, d: tpb.Directive, payload: dict[str, Any]) -> None:
    await site.backend.undeploy(d.undeploy.deployment_name)


@handler("Publishers")
async def publishers(site: SiteAgent, d: tpb.Directive, payload: dict[str, Any]) -> None:
    site.trust.set_publishers(d.publishers)
