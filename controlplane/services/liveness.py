"""Liveness without a store write per heartbeat.

Each replica keeps the last heartbeat of the sites it holds in memory and publishes the whole map
as one key under its own lease every ``interval`` (one write per replica per interval, whatever the
number of sites or heartbeats). Registry status changes only on transitions: Ready when a Hello
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
from controlplane.services.registry import Registry
from controlplane.store import Compare, Store

log = logging.getLogger(__name__)

MISSED_HEARTBEATS = 3


class Liveness:
    def __init__(self, store: Store, registry: Registry, replica_id: str, interval: float) -> None:
        self._store = store
        self._registry = registry
        self.replica_id = replica_id
        self.interval = interval
        self._local: dict[str, float] = {}
        self._dirty = False
        self.publishes = 0

    @property
    def connected(self) -> int:
        return len(self._local)

    def seen(self, site_id: str, when: float | None = None) -> None:
        self._local[site_id] = when if when is not None else clock.now()
        self._dirty = True

    def drop(self, site_id: str) -> None:
        if self._local.pop(site_id, None) is not None:
            self._dirty = True

    def local(self) -> dict[str, float]:
        return dict(self._local)

    async def publish(self, lease: int) -> None:
        """Write this replica's map once (skipped when nothing changed since the last write)."""
        if not self._dirty:
            return
        self._dirty = False
        await self._store.put(
            LIVENESS + self.replica_id, json.dumps(self._local, separators=(",", ":")).encode(), lease=lease
        )
        self.publishes += 1

    async def merged(self) -> dict[str, float]:
        """Latest heartbeat per site across all replicas (published maps plus this replica's own)."""
        res = await self._store.range(LIVENESS)
        latest: dict[str, float] = {}
        for kv in res.items:
            with contextlib.suppress(ValueError):
                for site, ts in json.loads(kv.value).items():
                    latest[site] = max(latest.get(site, 0.0), float(ts))
        for site, ts in self._local.items():
            latest[site] = max(latest.get(site, 0.0), ts)
        return latest

    async def sweep(self, actor: str, fence: Sequence[Compare] = (), since: float = 0.0) -> list[str]:
        """Mark Ready sites with no heartbeat for MISSED_HEARTBEATS intervals Unreachable, and
        Unreachable sites whose heartbeats came back (on a link that never dropped, so no Hello
        marks them) Ready again (leader). Returns the sites whose status changed.

        ``since``: when the caller's leadership term began; it counts as a heartbeat of every site,
        so a new leader gives the replicas MISSED_HEARTBEATS intervals to publish their maps
        before it declares anything Unreachable on the strength of a stale map.
        """
        now = clock.now()
        latest = await self.merged()
        changed = []
        for site in await self._registry.list():
            heard = latest.get(site.site_id, 0.0)
            if site.status == SiteStatus.READY:
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
                self._dirty = True  # the replica's lease is being renewed; publish next round
            except StargateError as e:
                self._dirty = True
                log.warning("liveness publish failed: %s", e.public)
