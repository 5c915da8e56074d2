"""The release publishers sites trust, as the federation hands them out.

A site learns the registered publishers at enrollment (``EnrollResponse.publishers``) and, when one
is added, from a ``Publishers`` directive queued for every site: the whole set, signed like every
directive by the directive key, so someone who can write the store cannot add a publisher a site
trusts. A site whose policy names its own publisher keys ignores both (operators/agent/directive_trust.py).
"""

from __future__ import annotations

import asyncio
import base64
import logging
from typing import Any

from controlplane.api.directive_kinds import PUBLISHERS
from controlplane.domain.limits import DIRECTIVE_TTL
from controlplane.services.directives import Directives
from controlplane.services.registry import Registry
from controlplane.services.releases import Releases

log = logging.getLogger(__name__)

#: A site offline for longer than this misses the update (it enrolls again, or the next one comes).
PUBLISHERS_TTL_S = float(DIRECTIVE_TTL.hi)
#: Directives queued at once when fanning out (each is one transaction).
FANOUT = 32


async def publisher_set(releases: Releases) -> list[dict[str, Any]]:
    """The TrustedPublisher dicts (proto field names, base64 keys) of every registered publisher."""
    return [{"name": p["name"], "public_key": p["public_key"]} for p in await releases.publishers()]


def raw_keys(publishers: list[dict[str, Any]]) -> list[tuple[str, bytes]]:
    return [(str(p["name"]), base64.b64decode(p["public_key"])) for p in publishers]


async def send_publishers(directives: Directives, registry: Registry, releases: Releases, actor: str) -> int:
    """Queue the current publisher set for every site; returns how many sites it was queued for."""
    payload = {"publishers": await publisher_set(releases)}
    sites = [s.site_id for s in await registry.list()]
    gate = asyncio.Semaphore(FANOUT)

    async def one(site_id: str) -> None:
        async with gate:
            await directives.issue(site_id, PUBLISHERS.name, payload, actor, ttl_s=PUBLISHERS_TTL_S)

    await asyncio.gather(*(one(s) for s in sites))
    log.info("publisher set (%d) queued for %d sites", len(payload["publishers"]), len(sites))
    return len(sites)
