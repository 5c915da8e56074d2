"""Compare-and-set, once: how often a contended write is tried again, and the one place a failed
fence becomes ``NotLeader`` (client-go's ``RetryOnConflict``, with the policy as data).

Every read-modify-write of the federation's state is an *attempt*: read, decide, commit one
transaction whose compares pin what was read. An attempt returns its result, or ``RETRY`` when
its commit lost a race (another writer changed a key it read). ``retry`` runs attempts under a
``CasPolicy``; after each lost race it checks the caller's *fence* (the leader lease's compare): a
fence that no longer holds means this replica is not the leader any more, and trying again would
be refused as well, so ``NotLeader`` ends it at once. ``mutate`` is the common case of one key::

    async def cordon(rec: SiteRecord) -> Write[SiteRecord] | SiteRecord:
        new = rec.replace(cordoned=True)
        return rec if new == rec else Write(new.to_json(), new, [Entry(...)])

    await cas.mutate(store, audit.commit, site_key(id), decode_then(cordon), fence=fence)
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final, Generic, TypeVar

from controlplane.errors import Conflict, NotLeader, Unavailable
from controlplane.store import Compare, KeyValue, Op, Put, Store, TxnResult

if TYPE_CHECKING:  # the audit log retries with this module too: annotations only, no circle
    from controlplane.services.audit import Entry

T = TypeVar("T")


class Retry:
    """The type of ``RETRY`` (for an attempt's annotation: ``-> Record | cas.Retry``)."""

    def __repr__(self) -> str:
        return "RETRY"


#: What an attempt returns when its commit lost a race and it should run again.
RETRY: Final = Retry()


@dataclass(frozen=True)
class CasPolicy:
    """How many attempts before giving up, and what giving up raises."""

    attempts: int
    exhausted: Callable[[], Exception] = Conflict


#: One record a person or a controller changes (a site, a rollout, a safety action): writers of
#: one record are few (an admin, the leader's controller, a site's heartbeat), so 20 lost races in
#: a row means something is wrong, not busy.
RECORD = CasPolicy(20)
#: A site's directive queue: a rollout wave, a publisher update and admins may all append to one
#: site's sequence at once, and each lost race means another writer's directive went in; 50 lets a
#: burst of 50 writers to one site all land.
QUEUE = CasPolicy(50)
#: The audit log's head, which every audited commit of the federation extends: a head that moves on
#: every attempt means heavy contention between replicas; 50 tries at ~1 ms each is far beyond what
#: 3 replicas produce, and exhaustion is UNAVAILABLE (the client retries), not a conflict.
AUDIT_HEAD = CasPolicy(50, lambda: Unavailable("audit log contended, retry"))


async def check_fence(store: Store, fence: Sequence[Compare]) -> None:
    """Raise ``NotLeader`` when ``fence`` no longer holds: the one place a failed fence is mapped.
    Call it after a commit whose compares included the fence failed."""
    if fence and not await store.holds(fence):
        raise NotLeader()


async def retry(
    store: Store,
    attempt: Callable[[], Awaitable[T | Retry]],
    *,
    fence: Sequence[Compare] = (),
    policy: CasPolicy = RECORD,
) -> T:
    """Run ``attempt`` until it returns something other than ``RETRY``, at most
    ``policy.attempts`` times; between attempts, ``check_fence``."""
    for _ in range(policy.attempts):
        out = await attempt()
        if not isinstance(out, Retry):
            return out
        await check_fence(store, fence)
    raise policy.exhausted()


@dataclass(frozen=True)
class Write(Generic[T]):
    """What a ``mutate`` function decided: store ``value`` at the key, with ``entries`` in the
    audit log and ``compares`` beyond the key's own, and return ``result``."""

    value: bytes
    result: T
    entries: Sequence[Entry] = ()
    compares: Sequence[Compare] = ()
    ops: Sequence[Op] = field(default_factory=tuple)


Commit = Callable[[Sequence[Compare], Sequence[Op], Sequence["Entry"]], Awaitable[TxnResult]]


async def mutate(
    store: Store,
    commit: Commit,
    key: str,
    fn: Callable[[KeyValue | None], Awaitable[Write[T] | T] | Write[T] | T],
    *,
    fence: Sequence[Compare] = (),
    policy: CasPolicy = RECORD,
) -> T:
    """Read ``key``, let ``fn`` decide (it may raise, or return a plain result to change nothing),
    and commit its ``Write`` if the key is as read and the fence holds; race: read again."""

    async def attempt() -> T | Retry:
        kv = await store.get(key)
        decided: Any = fn(kv)
        if isinstance(decided, Awaitable):
            decided = await decided
        if not isinstance(decided, Write):
            return decided  # type: ignore[no-any-return]
        pinned = Compare.unchanged(kv) if kv is not None else Compare.absent(key)
        result = await commit(
            [*fence, pinned, *decided.compares], [Put(key, decided.value), *decided.ops], decided.entries
        )
        return decided.result if result.succeeded else RETRY  # type: ignore[no-any-return]

    return await retry(store, attempt, fence=fence, policy=policy)
