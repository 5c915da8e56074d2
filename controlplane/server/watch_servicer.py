"""WatchService: an object's state, then its state after every change, from one store watch.

Kinds are registrations (``KINDS``): the Get call whose authorisation they share, the prefixes
whose changes can change the object, and how to read the object as its wire message. A safety
action's view also depends on its sites' reachability, so that kind re-reads every 5 s even when
none of its keys changed (``refresh``).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import TypeAlias

import grpc

from controlplane.api.v1 import watch_pb2 as wpb
from controlplane.api.v1 import watch_pb2_grpc as wgrpc
from controlplane.domain import safety as sd
from controlplane.domain.job_records import job_key
from controlplane.domain.records import ROLLOUTS
from controlplane.domain.validation import validate_dns_subdomain
from controlplane.errors import InvalidArgument, NotFound, ResourceExhausted
from controlplane.pki.identity import Identity
from controlplane.server.auth import authorize
from controlplane.server.job_servicer import job_to_pb
from controlplane.server.release_servicer import rollout_to_pb
from controlplane.server.rpc import streaming
from controlplane.server.runtime import Runtime
from controlplane.server.safety_servicer import action_to_pb
from controlplane.store import EventType

Ctx: TypeAlias = grpc.aio.ServicerContext

#: Watches one replica serves at once: each holds one store watch per prefix of its kind.
MAX_WATCHES = 256
#: Changes within this window are sent once, as the latest state (a rollout step writes its
#: record once per tick; a 1,000-site halt's acks land in ~50 batches within ~0.3 s).
COALESCE_S = 0.05


@dataclass(frozen=True)
class Kind:
    get_method: str
    #: The prefixes whose changes can change the object (the first is the object's own key).
    prefixes: Callable[[str], tuple[str, ...]]
    read: Callable[[Runtime, str], Awaitable[wpb.WatchResponse]]
    refresh: float = 0.0


async def _rollout(rt: Runtime, name: str) -> wpb.WatchResponse:
    return wpb.WatchResponse(rollout=rollout_to_pb(await rt.rollouts.get(name)))


async def _safety_action(rt: Runtime, action_id: str) -> wpb.WatchResponse:
    return wpb.WatchResponse(safety_action=await action_to_pb(rt, await rt.safety.get(action_id)))


def _action_prefixes(action_id: str) -> tuple[str, ...]:
    if not action_id or len(action_id) > 64 or "/" in action_id:
        raise InvalidArgument("name", "must be a safety action id")
    return sd.action_key(action_id), sd.acks_prefix(action_id)


async def _job(rt: Runtime, name: str) -> wpb.WatchResponse:
    return wpb.WatchResponse(job=job_to_pb(await rt.jobs.get(name)))


def _job_prefixes(name: str) -> tuple[str, ...]:
    validate_dns_subdomain("name", name)
    return (job_key(name),)


def _rollout_prefixes(name: str) -> tuple[str, ...]:
    validate_dns_subdomain("name", name)
    return (ROLLOUTS + name,)


KINDS: dict[int, Kind] = {
    wpb.WATCH_KIND_ROLLOUT: Kind("GetRollout", _rollout_prefixes, _rollout),
    wpb.WATCH_KIND_SAFETY_ACTION: Kind("GetSafetyAction", _action_prefixes, _safety_action, refresh=5.0),
    wpb.WATCH_KIND_JOB: Kind("GetJob", _job_prefixes, _job),
}


class WatchServicer(wgrpc.WatchServiceServicer):
    def __init__(self, rt: Runtime) -> None:
        self.rt = rt
        self.trust_domain = rt.ca.trust_domain
        self.refusals = rt.refusals
        self._active = 0

    @streaming("Watch")
    async def Watch(
        self, request: wpb.WatchRequest, context: Ctx, caller: Identity
    ) -> AsyncIterator[wpb.WatchResponse]:
        kind = KINDS.get(request.kind)
        if kind is None:
            raise InvalidArgument(
                "kind", "must be WATCH_KIND_ROLLOUT, WATCH_KIND_SAFETY_ACTION or WATCH_KIND_JOB"
            )
        authorize(caller, kind.get_method)
        prefixes = kind.prefixes(request.name)
        if self._active >= MAX_WATCHES:
            raise ResourceExhausted(f"this replica serves {MAX_WATCHES} watches already")
        self._active += 1
        try:
            async for response in self._follow(kind, request.name, prefixes, int(request.after_revision)):
                yield response
        finally:
            self._active -= 1

    async def _follow(
        self, kind: Kind, name: str, prefixes: tuple[str, ...], after: int
    ) -> AsyncIterator[wpb.WatchResponse]:
        store = self.rt.store
        revision = await store.current_revision()
        current = await kind.read(self.rt, name)  # NotFound ends the call before any stream
        changes: asyncio.Queue[tuple[int, bool]] = asyncio.Queue()
        failed: list[BaseException] = []

        async def pump(prefix: str, own: bool) -> None:
            try:
                async for batch in store.watch(prefix, start_revision=revision + 1):
                    for ev in batch:
                        gone = own and ev.type is EventType.DELETE and ev.kv.key == prefix
                        changes.put_nowait((ev.kv.mod_revision, gone))
            except Exception as e:  # the stream ends UNAVAILABLE; the caller watches again
                failed.append(e)
                changes.put_nowait((0, False))

        pumps = [asyncio.create_task(pump(p, i == 0)) for i, p in enumerate(prefixes)]
        try:
            last = b""
            if revision > after:
                current.revision, last = revision, current.SerializeToString(deterministic=True)
                yield current
            while True:
                try:
                    rev, gone = await asyncio.wait_for(changes.get(), kind.refresh or None)
                except TimeoutError:
                    rev, gone = revision, False
                await asyncio.sleep(COALESCE_S)
                while not changes.empty():
                    more_rev, more_gone = changes.get_nowait()
                    rev, gone = max(rev, more_rev), gone or more_gone
                if failed:
                    raise failed[0]
                revision = max(revision, rev)
                if gone:
                    yield wpb.WatchResponse(revision=revision, deleted=True)
                    return
                try:
                    state = await kind.read(self.rt, name)
                except NotFound:
                    yield wpb.WatchResponse(revision=revision, deleted=True)
                    return
                body = state.SerializeToString(deterministic=True)
                if body != last:
                    state.revision, last = revision, body
                    yield state
        finally:
            for t in pumps:
                t.cancel()
            for t in pumps:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await t
