"""The release publishers sites trust, as the federation hands them out.

A site learns the registered publishers at enrollment (``EnrollResponse.publishers``) and, when one
is added, from a ``Publishers`` directive queued for every site: the whole set, signed like every
directive by the directive key, so someone who can write the store cannot add a publisher a site
trusts. A site whose policy names its own publisher keys ignores both (operators/agent/directive_trust.py).
A publisher registered for some countries only (a site's own key, for its variants) is in the set
of those countries' sites only: a site elsewhere never trusts it.
"""

from __future__ import annotations

import asyncio
import base64
import logging
from collections.abc import Sequence
from typing import Any

from controlplane.api.directive_kinds import PUBLISHERS
from controlplane.domain.limits import DIRECTIVE_TTL
from controlplane.services.directives import Directives
from controlplane.services.registry import Registry
from controlplane.services.releases import Releases
from controlplane.store import Compare

log = logging.getLogger(__name__)

#: A site offline for longer than this misses the update (it enrolls again, or the next one comes).
PUBLISHERS_TTL_S = float(DIRECTIVE_TTL.hi)
#: Directives queued at once when fanning out (each is one transaction).
FANOUT = 32


def for_country(publishers: list[dict[str, Any]], country: str) -> list[dict[str, Any]]:
    """The TrustedPublisher dicts a site of ``country`` trusts: every publisher not limited to
    other countries (a site's own key publishes its variants for its country only)."""
    return [
        {"name": p["name"], "public_key": p["public_key"]}
        for p in publishers
        if not p.get("countries") or country in p["countries"]
    ]


async def publisher_set(releases: Releases, country: str = "") -> list[dict[str, Any]]:
    """The TrustedPublisher dicts (proto field names, base64 keys) of every registered publisher a
    site of ``country`` trusts ("": only the publishers of every country)."""
    return for_country(await releases.publishers(), country)


def raw_keys(publishers: list[dict[str, Any]]) -> list[tuple[str, bytes]]:
    return [(str(p["name"]), base64.b64decode(p["public_key"])) for p in publishers]


async def send_publishers(
    directives: Directives, registry: Registry, releases: Releases, actor: str, fence: Sequence[Compare] = ()
) -> int:
    """Queue the current publisher set for every site; returns how many sites it was queued for."""
    registered = await releases.publishers()
    sites = [(s.site_id, s.country) for s in await registry.list()]
    gate = asyncio.Semaphore(FANOUT)

    async def one(site_id: str, country: str) -> None:
        payload = {"publishers": for_country(registered, country)}
        async with gate:
            await directives.issue(
                site_id, PUBLISHERS.name, payload, actor, ttl_s=PUBLISHERS_TTL_S, fence=fence
            )

    await asyncio.gather(*(one(s, c) for s, c in sites))
    log.info("publisher set (%d) queued for %d sites", len(registered), len(sites))
    return len(sites)
