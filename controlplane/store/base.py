"""The store interface. Every backend (memory, etcd) MUST pass tests/contract/test_store_contract.py.

The model is etcd's: one global revision that every successful write transaction increments by
exactly one; each key carries the revision that created it and the one that last modified it;
a watch replays every change of a prefix from a revision, in revision order; leases expire keys.
Keys are ``str`` (UTF-8 in etcd), values ``bytes``.
"""

from __future__ import annotations

import abc
import enum
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Literal


@dataclass(frozen=True, slots=True)
class KeyValue:
    key: str
    value: bytes
    create_revision: int
    mod_revision: int
    version: int
    lease: int = 0


@dataclass(frozen=True, slots=True)
class RangeResult:
    items: list[KeyValue]
    #: Store revision at which the range was read; watch from ``revision + 1`` to miss nothing.
    revision: int


@dataclass(frozen=True, slots=True)
class Compare:
    """``key``'s ``target`` equals ``value``. A missing key has mod/create revision and version 0."""

    key: str
    target: Literal["mod_revision", "create_revision", "version", "value"]
    value: int | bytes

    @classmethod
    def absent(cls, key: str) -> Compare:
        return cls(key, "create_revision", 0)

    @classmethod
    def unchanged(cls, kv: KeyValue) -> Compare:
        return cls(kv.key, "mod_revision", kv.mod_revision)


@dataclass(frozen=True, slots=True)
class Put:
    key: str
    value: bytes
    lease: int = 0


@dataclass(frozen=True, slots=True)
class Delete:
    key: str


Op = Put | Delete


@dataclass(frozen=True, slots=True)
class TxnResult:
    succeeded: bool
    #: Store revision after the transaction (unchanged when it failed).
    revision: int


class EventType(enum.Enum):
    PUT = "put"
    DELETE = "delete"


@dataclass(frozen=True, slots=True)
class WatchEvent:
    type: EventType
    #: For DELETE: value is b"" and mod_revision is the revision of the delete.
    kv: KeyValue


class Store(abc.ABC):
    """Asynchronous, linearizable key-value state.

    Implementations MUST make every method safe to call concurrently from one event loop and MUST
    NOT block the loop. Errors MUST be ``controlplane.errors.StoreError`` subclasses:
    ``StoreUnavailable`` when the backend cannot be reached (nothing was written, or the caller
    cannot know - callers re-read before retrying a non-idempotent write), ``CompactedError`` for a
    watch from a compacted revision, ``LeaseNotFound`` for an expired or revoked lease.
    """

    #: "memory" or "etcd"
    kind: str = ""
    #: etcd client URLs; empty for memory.
    endpoints: tuple[str, ...] = ()
    #: Whether what is stored survives the process (shown by GetStatus; false unless a backend says).
    persistent: bool = False

    @abc.abstractmethod
    async def get(self, key: str) -> KeyValue | None:
        """The current value of ``key``, or None. MUST be linearizable (no stale read)."""

    @abc.abstractmethod
    async def range(self, prefix: str, *, start: str | None = None, limit: int = 0) -> RangeResult:
        """Keys starting with ``prefix`` in byte order, from ``start`` (inclusive) when given.

        ``limit`` 0 means all. MUST return the revision the read was served at.
        """

    @abc.abstractmethod
    async def txn(self, compares: Sequence[Compare], ops: Sequence[Op]) -> TxnResult:
        """Apply all ``ops`` atomically if every compare holds, else nothing.

        A successful transaction with at least one op MUST advance the revision by exactly one,
        and all its ops MUST carry that revision. A failed one MUST NOT change anything.
        A Put with an unknown or expired lease MUST raise LeaseNotFound and change nothing.
        """

    async def put(self, key: str, value: bytes, *, lease: int = 0) -> int:
        """Unconditional put; returns the new revision."""
        return (await self.txn((), (Put(key, value, lease),))).revision

    async def create(self, key: str, value: bytes, *, lease: int = 0) -> bool:
        """Put only if ``key`` does not exist. Returns whether it was created."""
        return (await self.txn((Compare.absent(key),), (Put(key, value, lease),))).succeeded

    async def cas(self, key: str, value: bytes, expected_mod_revision: int) -> bool:
        """Put only if ``key`` was last modified at ``expected_mod_revision`` (0: absent)."""
        result = await self.txn((Compare(key, "mod_revision", expected_mod_revision),), (Put(key, value),))
        return result.succeeded

    async def holds(self, compares: Sequence[Compare]) -> bool:
        """Whether every compare holds now (a plain read, not atomic with anything: use it to
        explain why a transaction failed, e.g. a fence that no longer holds)."""
        for c in compares:
            kv = await self.get(c.key)
            if c.target == "value":
                if kv is None or kv.value != c.value:
                    return False
            elif (0 if kv is None else getattr(kv, c.target)) != c.value:
                return False
        return True

    async def delete(self, key: str) -> bool:
        """Delete ``key``; returns whether it existed."""
        existing = await self.get(key)
        if existing is None:
            return False
        return (await self.txn((Compare.unchanged(existing),), (Delete(key),))).succeeded

    @abc.abstractmethod
    def watch(self, prefix: str, *, start_revision: int) -> AsyncIterator[list[WatchEvent]]:
        """Every change under ``prefix`` with revision >= ``start_revision``, in revision order.

        Yields batches (one batch never splits a transaction). MUST NOT skip or repeat an event.
        If ``start_revision`` is compacted, MUST raise CompactedError (before yielding anything):
        the caller re-lists and watches from the list's revision + 1. Closing the iterator (aclose
        or cancelling the consumer) MUST release the watch. If the backend connection is lost the
        iterator MUST raise StoreUnavailable rather than silently stop.
        """

    @abc.abstractmethod
    async def grant_lease(self, ttl: int) -> int:
        """A new lease of ``ttl`` seconds (>= 1). Keys put with it are deleted when it expires."""

    @abc.abstractmethod
    async def refresh_lease(self, lease_id: int) -> int:
        """Keep ``lease_id`` alive for another TTL; returns the TTL. LeaseNotFound if gone."""

    @abc.abstractmethod
    async def revoke_lease(self, lease_id: int) -> None:
        """Expire ``lease_id`` now, deleting its keys. No error if it is already gone."""

    @abc.abstractmethod
    async def compact(self, revision: int) -> None:
        """Discard history before ``revision``; watches from older revisions then fail."""

    @abc.abstractmethod
    async def current_revision(self) -> int:
        """The store's current revision."""

    async def healthy(self) -> bool:
        """Whether a linearizable read succeeds now. MUST NOT raise."""
        try:
            await self.current_revision()
        except Exception:
            return False
        return True

    @abc.abstractmethod
    async def close(self) -> None:
        """Release connections and background tasks. Idempotent."""
