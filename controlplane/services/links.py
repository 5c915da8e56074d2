"""Site links held by this replica, and the watch that wakes them when a directive is queued.

One watch per replica on the whole directive prefix (not one per site): with 5,000 sites that is
one etcd watch instead of 5,000. A wake-up only says "look again"; the session re-reads its queue
from the last sequence it sent, so a lost or duplicated wake-up can delay nothing and repeat
nothing.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field

from controlplane.domain.records import DIRECTIVES
from controlplane.errors import CompactedError, StargateError
from controlplane.store import EventType, Store

log = logging.getLogger(__name__)


@dataclass(eq=False)
class Session:
    site_id: str
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    closed: asyncio.Event = field(default_factory=asyncio.Event)
    #: Whether the ordinary directive queue may hold something unsent. A wake-up for the safety
    #: lane or a beacon leaves it False, so the link skips re-reading the queue (at 1,000 sites a
    #: halt would otherwise cost 1,000 needless range reads).
    directives_due: bool = True

    def close(self) -> None:
        self.closed.set()
        self.wake.set()


class LinkHub:
    def __init__(self, store: Store) -> None:
        self._store = store
        self._sessions: dict[str, Session] = {}

    def __len__(self) -> int:
        return len(self._sessions)

    def sites(self) -> list[str]:
        return sorted(self._sessions)

    def attach(self, site_id: str) -> Session:
        """A new session for ``site_id``; an older one of the same site is closed (the site
        reconnected, perhaps through another path, and the newest link wins)."""
        old = self._sessions.get(site_id)
        if old is not None:
            old.close()
        session = Session(site_id)
        self._sessions[site_id] = session
        return session

    def detach(self, session: Session) -> None:
        if self._sessions.get(session.site_id) is session:
            del self._sessions[session.site_id]
        session.close()

    def wake(self, site_id: str) -> None:
        """Something was queued for ``site_id``: its link re-reads its ordinary queue."""
        session = self._sessions.get(site_id)
        if session is not None:
            session.directives_due = True
            session.wake.set()

    def wake_all(self) -> None:
        for s in self._sessions.values():
            s.directives_due = True
            s.wake.set()

    async def run(self, retry_delay: float = 0.5) -> None:
        """Watch the directive prefix forever; survives compaction and store outages."""
        while True:
            try:
                start = await self._store.current_revision() + 1
                # Anything queued before the watch started is picked up by the re-read below.
                self.wake_all()
                async for batch in self._store.watch(DIRECTIVES, start_revision=start):
                    for event in batch:
                        if event.type is EventType.PUT and event.kv.version == 1:
                            self.wake(event.kv.key[len(DIRECTIVES) :].split("/", 1)[0])
            except CompactedError:
                continue
            except StargateError as e:
                log.warning("directive watch interrupted (%s); retrying", e.public)
                await asyncio.sleep(retry_delay)
