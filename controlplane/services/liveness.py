"""Liveness without a store write per heartbeat.

Each replica keeps the last heartbeat of the sites it holds in memory and publishes the whole map
as one key under its own lease every ``interval`` (one write per replica per interval, whatever the
number of sites or heartbeats), stamped with the time it was written: ``{"at": t, "sites": {...}}``.
A map whose stamp is older than MISSED_HEARTBEATS intervals belongs to a replica that still holds
its lease but cannot write (e.g. its etcd member was lost and its client has not failed over yet):
its sites are *unknown*, not missed, so the sweeper leaves them as they are. A replica that dies
loses its lease, its map goes with it, and its sites are missed as before.
Registry status changes only on transitions: Ready when a Hello
arrives, Unreachable when the leader's sweeper finds no heartbeat for ``missed`` intervals.
With 500 sites at a 5 s interval that is 100 heartbeats/s against 0.2 writes/s.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Callable, Sequence

from controlplane.domain.records import LIVENESS, SiteStatus
from controlplane.errors import LeaseNotFound, StargateError
from controlplane.services import clock
from controlplane.services.audit import Entry
from controlplane.services.registry import UNREADABLE_LABEL, Registry
from controlplane.store import Compare, Store

log = logging.getLogger(__name__)

MISSED_HEARTBEATS = 3
#: How long a stale map (see the module docstring) keeps its sites "unknown": 12 intervals (60 s at
#: 5 s) covers an etcd client's failover (measured 5-15 s here) and is short enough that a replica
#: which keeps its lease but never writes again cannot hide a lost site for long.
STALE_GRACE = 12


def parse_map(value: bytes) -> tuple[float | None, dict[str, float]]:
    """A published map as (stamp, heartbeat per site); a map without a stamp (written by an older
    replica) has stamp None. Raises ValueError on anything that is not such a map."""
    raw = json.loads(value)
    if not isinstance(raw, dict):
        raise ValueError("liveness map is not an object")
    at = raw.get("at")
    sites = raw.get("sites") if "sites" in raw else raw
    if not isinstance(sites, dict) or (at is not None and not isinstance(at, (int, float))):
        raise ValueError("liveness map has a bad shape")
    return (float(at) if at is not None else None), {str(k): float(v) for k, v in sites.items()}


class Liveness:
    def __init__(self, store: Store, registry: Registry, replica_id: str, interval: float) -> None:
        self._store = store
        self._registry = registry
        self.replica_id = replica_id
        self.interval = interval
        self._local: dict[str, float] = {}
        self.publishes = 0

    @property
    def connected(self) -> int:
        return len(self._local)

    def seen(self, site_id: str, when: float | None = None) -> None:
        self._local[site_id] = when if when is not None else clock.now()

    def drop(self, site_id: str) -> None:
        self._local.pop(site_id, None)

    def local(self) -> dict[str, float]:
        return dict(self._local)

    async def publish(self, lease: int) -> None:
        """Write this replica's map with a fresh stamp. Written every interval even when no
        heartbeat changed: the stamp is what tells the sweeper the map is current."""
        body = {"at": clock.now(), "sites": self._local}
        await self._store.put(
            LIVENESS + self.replica_id, json.dumps(body, separators=(",", ":")).encode(), lease=lease
        )
        self.publishes += 1

    async def merged(self) -> dict[str, float]:
        """Latest heartbeat per site across all replicas (published maps plus this replica's own)."""
        return (await self._merged())[0]

    async def _merged(self) -> tuple[dict[str, float], set[str]]:
        """(latest heartbeat per site, sites held only in stale maps of replicas still leased)."""
        res = await self._store.range(LIVENESS)
        latest: dict[str, float] = {}
        stale: set[str] = set()
        fresh_after = clock.now() - MISSED_HEARTBEATS * self.interval
        for kv in res.items:
            with contextlib.suppress(ValueError):
                at, sites = parse_map(kv.value)
                if kv.key == LIVENESS + self.replica_id:
                    continue  # this replica's own map is read from memory below
                if at is not None and at < fresh_after:
                    stale.update(sites)
                for site, ts in sites.items():
                    latest[site] = max(latest.get(site, 0.0), ts)
        for site, ts in self._local.items():
            latest[site] = max(latest.get(site, 0.0), ts)
        return latest, stale

    async def sweep(self, actor: str, fence: Sequence[Compare] = (), since: float = 0.0) -> list[str]:
        """Mark Ready sites with no heartbeat for MISSED_HEARTBEATS intervals Unreachable, and
        Unreachable sites whose heartbeats came back (on a link that never dropped, so no Hello
        marks them) Ready again (leader). Returns the sites whose status changed.

        ``since``: when the caller's leadership term began; it counts as a heartbeat of every site,
        so a new leader gives the replicas MISSED_HEARTBEATS intervals to publish their maps
        before it declares anything Unreachable on the strength of a stale map.
        """
        now = clock.now()
        latest, stale = await self._merged()
        changed = []
        for site in await self._registry.list():
            if UNREADABLE_LABEL in site.labels:
                continue  # a stand-in for a record that cannot be read: nothing to write to it
            heard = latest.get(site.site_id, 0.0)
            if site.status == SiteStatus.READY:
                if (
                    site.site_id in stale
                    and now - latest.get(site.site_id, 0.0) <= STALE_GRACE * self.interval
                ):
                    continue  # its replica is alive but cannot write: unknown, not missed
                last = max(heard, site.last_heartbeat)
                if now - max(last, since) > MISSED_HEARTBEATS * self.interval and (
                    await self._registry.mark_unreachable(site.site_id, actor, last, fence)
                ):
                    changed.append(site.site_id)
            elif (
                site.status == SiteStatus.UNREACHABLE
                and heard > site.last_heartbeat
                and now - heard <= MISSED_HEARTBEATS * self.interval
            ):
                entry = Entry(
                    actor,
                    "site.ready",
                    f"site/{site.site_id}",
                    reason="heartbeats resumed",
                    details={"last_heartbeat": f"{heard:.3f}"},
                )
                updated = await self._registry.update(
                    site.site_id,
                    {"status": SiteStatus.READY, "last_heartbeat": heard},
                    entry,
                    only_if=lambda s, h=heard: s.status == SiteStatus.UNREACHABLE and s.last_heartbeat < h,
                    fence=fence,
                )
                if updated is not None:
                    changed.append(site.site_id)
        return changed

    async def run_publisher(self, lease_of: Callable[[], int]) -> None:
        while True:
            await asyncio.sleep(self.interval)
            lease = lease_of()
            if not lease:
                continue  # no valid lease now: a map written without one would outlive the replica
            try:
                await self.publish(lease)
            except LeaseNotFound:
                pass  # the replica's lease is being renewed; the next round publishes
            except StargateError as e:
                log.warning("liveness publish failed: %s", e.public)
