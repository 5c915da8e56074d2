"""Keep one lease alive, and say - locally and at once - when it can no longer be trusted.

Why a local deadline and not just the server's answer: a process that was frozen (SIGSTOP, a long
GC pause, a VM migration) resumes believing it still holds its lease, while etcd expired it long
ago and another replica took over. So validity is computed from ``loop.time()`` (monotonic) at
every check: the lease is valid only until ``ttl`` after the *send time* of the last successful
refresh. The server started its TTL after receiving that request, so the local deadline always
falls before (never after) the server's expiry.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

from controlplane.errors import LeaseNotFound, StoreError
from controlplane.store.base import Store
from controlplane.tasks import cancel_and_wait

log = logging.getLogger(__name__)


class LeaseKeeper:
    """Grants (or adopts) a lease and refreshes it every ``ttl / 3`` seconds in a task.

    Contracts:
      - ``valid()`` MUST return False once ``ttl`` has passed since the last successful refresh was
        sent, even if the refresh task has not run yet (frozen process); it declares the loss
        synchronously, so callers that check it before each write never write on a dead lease.
      - Loss is declared exactly once: ``lost`` is set and ``on_lost`` called; the keeper then stops
        refreshing. A lost keeper MUST NOT be revived: grant a new one.
      - It MUST NOT raise from its task; store errors are retried until the deadline passes.
    """

    def __init__(
        self,
        store: Store,
        ttl: int,
        *,
        lease_id: int | None = None,
        on_lost: Callable[[str], None] | None = None,
    ) -> None:
        if ttl < 1:
            raise ValueError("ttl must be >= 1 s")
        self._store = store
        self.ttl = ttl
        self._lease_id = lease_id
        self._on_lost = on_lost
        self.lost = asyncio.Event()
        self.lost_reason = ""
        self._deadline = 0.0
        self._task: asyncio.Task[None] | None = None

    @property
    def lease_id(self) -> int:
        if self._lease_id is None:
            raise RuntimeError("LeaseKeeper.start() has not run")
        return self._lease_id

    async def start(self) -> int:
        """Grant a lease (or adopt ``lease_id``: LeaseNotFound if it is gone) and start refreshing."""
        loop = asyncio.get_running_loop()
        sent = loop.time()
        if self._lease_id is None:
            self._lease_id = await self._store.grant_lease(self.ttl)
        else:
            await self._store.refresh_lease(self._lease_id)
        self._deadline = sent + self.ttl
        self._task = asyncio.create_task(self._run(), name=f"lease-keeper-{self._lease_id:x}")
        return self._lease_id

    def remaining(self) -> float:
        """Seconds until the local deadline (<= 0: expired)."""
        return self._deadline - asyncio.get_running_loop().time()

    def valid(self) -> bool:
        """Whether the lease can still be trusted now. Declares the loss if the deadline passed."""
        if self.lost.is_set():
            return False
        if self._lease_id is None or self.remaining() <= 0:
            self._declare_lost(f"no successful refresh within the {self.ttl}s TTL")
            return False
        return True

    def _declare_lost(self, reason: str) -> None:
        if self.lost.is_set():
            return
        self.lost_reason = reason
        self.lost.set()
        log.warning("lease %s lost: %s", self._lease_id, reason)
        if self._on_lost is not None:
            self._on_lost(reason)

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        # Refresh at ttl/3 so that two consecutive failed refreshes still leave ~1/3 TTL of margin.
        period = self.ttl / 3
        while True:
            await asyncio.sleep(period)
            # Check first: after a freeze the deadline may be long gone; no refresh can save it.
            if not self.valid():
                return
            sent = loop.time()
            try:
                # Never wait past the deadline: a late success would not make the gap safe.
                await asyncio.wait_for(self._store.refresh_lease(self.lease_id), max(0.01, self.remaining()))
            except LeaseNotFound:
                self._declare_lost("the lease expired or was revoked on the server")
                return
            except (StoreError, TimeoutError) as e:
                log.info("lease %x refresh failed (%s); %.1fs left", self.lease_id, e, self.remaining())
                period = min(self.ttl / 3, 0.5)  # retry sooner while the deadline approaches
                continue
            if not self.valid():  # the refresh raced the deadline: keep the declared loss
                return
            self._deadline = sent + self.ttl
            period = self.ttl / 3

    async def stop(self, *, revoke: bool = True) -> None:
        """Stop refreshing; with ``revoke``, expire the lease now (its keys vanish at once)."""
        task, self._task = self._task, None
        await cancel_and_wait(task)
        if revoke and self._lease_id is not None:
            with contextlib.suppress(StoreError):
                await self._store.revoke_lease(self._lease_id)
        if not self.lost.is_set():  # a deliberate stop is not a loss: no warning, no on_lost
            self.lost_reason = "stopped"
            self.lost.set()
