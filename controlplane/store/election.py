"""Leader election on the ``Store`` interface alone (works on MemoryStore and EtcdStore alike).

Algorithm (etcd has an Election API, but aetcd does not expose it and MemoryStore has none):
  1. hold a lease (``LeaseKeeper``);
  2. campaign: ``txn([Compare.absent(key)], [Put(key, candidate_id, lease)])``; success = leader;
  3. everyone watches the key from the revision they read; when it is deleted (resign, lease
     expiry or revocation) everyone campaigns again; the txn lets exactly one win.
Fencing: the leader key's ``create_revision`` identifies one term (no two terms can create the key
at the same revision) and its value the holder. A leader-only write includes ``fence()`` in its
txn, so the write of a deposed leader fails in the store even while it still believes it leads.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass

from tenacity import AsyncRetrying, retry_if_exception_type, stop_never, wait_exponential_jitter

from controlplane.errors import NotLeader, StoreError
from controlplane.store.base import Compare, EventType, Put, Store
from controlplane.store.lease import LeaseKeeper
from controlplane.telemetry import metrics

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class CampaignBackoff:
    """Backoff between campaigns after a store error: ``multiplier * 2**n`` s plus jitter, capped.

    Defaults: 0.1, 0.2, 0.4 ... 5 s. A new backoff starts after each healthy session, so an outage
    an hour after the previous one starts again at 0.1 s. Jitter (0.2 s) spreads replicas apart.
    """

    multiplier: float = 0.1
    maximum: float = 5.0
    jitter: float = 0.2

    def wait(self) -> wait_exponential_jitter:
        return wait_exponential_jitter(multiplier=self.multiplier, max=self.maximum, jitter=self.jitter)


class LeaderElection:
    """One candidate in the election ``name``. Run ``run()`` in a task; ``resign()`` to leave.

    Contracts:
      - At most one candidate holds the key at a time (store txn); ``is_leader`` MUST turn False
        before any further write once the lease is lost, the key is deleted or overwritten, or
        the candidate resigns (it checks the lease's local deadline synchronously on every read).
      - ``fence()`` MUST be part of every leader-only txn; it raises NotLeader when not leading.
      - ``leader`` is the current holder's id as last seen by this candidate, or None.
      - Callbacks MUST be quick and MUST NOT raise; they run in the event loop.
    """

    def __init__(
        self,
        store: Store,
        name: str,
        candidate_id: str,
        *,
        ttl: int = 10,
        prefix: str = "/elections/",
        retry: CampaignBackoff = CampaignBackoff(),
        on_elected: Callable[[], None] | None = None,
        on_deposed: Callable[[str], None] | None = None,
    ) -> None:
        if not name or "/" in name:
            raise ValueError("election name must be non-empty and contain no '/'")
        self._store = store
        self.key = prefix.rstrip("/") + "/" + name
        self.candidate_id = candidate_id
        self._value = candidate_id.encode()
        self.ttl = ttl
        self._retry = retry
        self._on_elected = on_elected
        self._on_deposed = on_deposed
        self._keeper: LeaseKeeper | None = None
        self._leading = False
        self._term = 0  # create_revision of our leader key while leading
        self._leader: str | None = None
        self._stopping = asyncio.Event()
        self._run_task: asyncio.Task[None] | None = None
        #: Set while this candidate leads; cleared on deposition.
        self.elected = asyncio.Event()

    # --- observation -----------------------------------------------------------------------------

    @property
    def is_leader(self) -> bool:
        # valid() declares a lapsed lease lost (-> _step_down) right here, before the caller writes.
        return self._leading and self._keeper is not None and self._keeper.valid()

    @property
    def leader(self) -> str | None:
        if self._leading and not self.is_leader:
            return None
        return self._leader

    @property
    def lease_id(self) -> int | None:
        return self._keeper.lease_id if self._keeper is not None else None

    @property
    def term(self) -> int:
        """The leader key's create_revision while leading (0 otherwise): a monotonic term number."""
        return self._term if self.is_leader else 0

    def fence(self) -> tuple[Compare, Compare]:
        """Compares that hold only while this candidate's term is current: ``txn([*fence(), ...])``."""
        if not self.is_leader:
            raise NotLeader()
        return Compare(self.key, "create_revision", self._term), Compare(self.key, "value", self._value)

    # --- transitions -----------------------------------------------------------------------------

    def _become_leader(self, term: int) -> None:
        self._leading, self._term, self._leader = True, term, self.candidate_id
        self.elected.set()
        metrics.LEADER_CHANGES.labels(event="elected").inc()
        log.info("%s leads %s (term %d)", self.candidate_id, self.key, term)
        if self._on_elected is not None:
            self._on_elected()

    def _step_down(self, reason: str) -> None:
        if not self._leading:
            return
        self._leading, self._term, self._leader = False, 0, None
        self.elected.clear()
        metrics.LEADER_CHANGES.labels(event="deposed").inc()
        log.warning("%s no longer leads %s: %s", self.candidate_id, self.key, reason)
        if self._on_deposed is not None:
            self._on_deposed(reason)

    # --- the loop --------------------------------------------------------------------------------

    async def run(self) -> None:
        """Campaign, lead or follow, and campaign again, until ``resign()`` or cancellation."""
        self._run_task = asyncio.current_task()
        try:
            while not self._stopping.is_set():
                # A fresh AsyncRetrying per outage: tenacity's backoff never resets inside one.
                async for attempt in AsyncRetrying(
                    retry=retry_if_exception_type(StoreError),
                    wait=self._retry.wait(),
                    stop=stop_never,
                    sleep=self._sleep,
                    before_sleep=self._log_retry,
                    reraise=True,
                ):
                    with attempt:
                        await self._session()
        finally:
            self._step_down("stopped")
            if self._keeper is not None:
                keeper, self._keeper = self._keeper, None
                await keeper.stop(revoke=True)  # deletes our key now instead of after the TTL

    async def _sleep(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), seconds)

    def _log_retry(self, state: object) -> None:
        self._step_down("store error")
        log.info("election %s: store error, campaigning again after backoff (%s)", self.key, state)

    async def _lease(self) -> LeaseKeeper:
        if self._keeper is not None and self._keeper.valid():
            return self._keeper
        if self._keeper is not None:
            await self._keeper.stop(revoke=False)
        keeper = LeaseKeeper(
            self._store, self.ttl, on_lost=lambda reason: self._step_down(f"lease lost: {reason}")
        )
        await keeper.start()
        self._keeper = keeper
        return keeper

    async def _session(self) -> None:
        """One campaign plus the wait until the key changes hands. Returns to campaign again."""
        if self._stopping.is_set():
            return
        keeper = await self._lease()
        result = await self._store.txn(
            [Compare.absent(self.key)], [Put(self.key, self._value, lease=keeper.lease_id)]
        )
        if self._stopping.is_set():
            return  # resign() raced the campaign; run()'s finally revokes the lease and the key
        if result.succeeded:
            self._become_leader(result.revision)
            watch_from = result.revision + 1
        else:
            listed = await self._store.range(self.key)
            kv = next((x for x in listed.items if x.key == self.key), None)
            if kv is None:
                return  # deleted between our txn and our read: campaign again at once
            if kv.value == self._value and kv.lease == keeper.lease_id:
                self._become_leader(kv.create_revision)  # our own key, e.g. after a store blip
            else:
                self._leader = kv.value.decode(errors="replace")
            watch_from = listed.revision + 1
        await self._follow(watch_from, keeper)

    async def _follow(self, watch_from: int, keeper: LeaseKeeper) -> None:
        watch = asyncio.create_task(self._watch_key(watch_from))
        lost = asyncio.create_task(keeper.lost.wait())
        stop = asyncio.create_task(self._stopping.wait())
        try:
            done, _ = await asyncio.wait({watch, lost, stop}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for t in (watch, lost, stop):
                t.cancel()
            # Bounded: a watch stuck in its transport must not keep a resigning candidate alive.
            await asyncio.wait({watch, lost, stop}, timeout=self.ttl)
        if watch in done and not watch.cancelled() and watch.exception() is not None:
            raise watch.exception()  # type: ignore[misc]  # a StoreError: back off, campaign again

    async def _watch_key(self, start_revision: int) -> None:
        async for batch in self._store.watch(self.key, start_revision=start_revision):
            for ev in batch:
                if ev.kv.key != self.key:
                    continue  # a prefix watch also sees "<key>x"
                if ev.type is EventType.DELETE:
                    self._step_down("leader key deleted")
                    self._leader = None
                    return
                if self._leading and (ev.kv.value != self._value or ev.kv.create_revision != self._term):
                    self._step_down("leader key overwritten")
                self._leader = ev.kv.value.decode(errors="replace")

    async def resign(self) -> None:
        """Stop leading (and campaigning) now; the key is deleted so others take over at once."""
        self._stopping.set()
        self._step_down("resigned")
        task = self._run_task
        if task is not None and task is not asyncio.current_task():
            with contextlib.suppress(asyncio.CancelledError, StoreError):
                await task
        elif self._keeper is not None:
            keeper, self._keeper = self._keeper, None
            await keeper.stop(revoke=True)
