"""How a safety action takes effect: one transaction with its audit events and, for a halt or a
resume, its signed directive in the safety lane (services/safety_lane.py), so that a crash can
never leave a halt effective but unsent. The requests that lead here are in services/safety.py.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import NoReturn

from controlplane.domain import safety as sd
from controlplane.domain.safety import ActionKind, FreezeRecord, SafetyActionRecord
from controlplane.errors import Conflict, FailedPrecondition, NotFound
from controlplane.services import artifact_index, cas, clock
from controlplane.services.audit import Entry
from controlplane.services.safety_lane import SafetyLane
from controlplane.store import Compare, Op, Put
from controlplane.store.base import Delete


class SafetyEffects(SafetyLane):
    _lane_lock: asyncio.Lock

    async def create(self, action: SafetyActionRecord, entry: Entry, fence: Sequence[Compare] = ()) -> None:
        key = sd.action_key(action.id)
        await self._commit_effect([*fence, Compare.absent(key)], [Put(key, action.to_json())], [entry], fence)

    async def _take_effect(
        self,
        action: SafetyActionRecord,
        entries: list[Entry],
        *,
        create: bool = False,
        expect: object = None,
        fence: Sequence[Compare] = (),
    ) -> SafetyActionRecord:
        """Make ``action`` effective in one transaction with its audit events (and, for a halt or
        resume, its signed directive in the lane)."""
        now = clock.now()
        key = sd.action_key(action.id)
        compares: list[Compare] = [*fence]
        compares.append(Compare.absent(key) if create else Compare.unchanged(expect))  # type: ignore[arg-type]
        ops: list[Op] = []
        obj = f"release/{action.release}" if action.release else f"scope/{action.scope}"
        if action.kind == ActionKind.HALT:
            action = action.replace(effective_at=now)
            index_cmp, index_ops = await artifact_index.index_ops(self._store, action, action)
            compares += index_cmp
            ops += index_ops
            if not create:
                entries.append(
                    Entry(
                        action.requested_by,
                        "safety.halt",
                        obj,
                        reason=action.reason,
                        details={"id": action.id},
                    )
                )
        elif action.kind == ActionKind.RESUME:
            halt_kv = await self._store.get(sd.action_key(action.related_id))
            if halt_kv is None:
                raise NotFound(f"halt {action.related_id!r} not found")
            halt = SafetyActionRecord.from_json(halt_kv.value)
            if halt.resumed_at:
                raise FailedPrecondition(f"halt {halt.id} was already resumed")
            action = action.replace(effective_at=now)
            compares.append(Compare.unchanged(halt_kv))
            ops.append(Put(halt_kv.key, halt.replace(resumed_at=now, related_id=action.id).to_json()))
            index_cmp, index_ops = await artifact_index.index_ops(self._store, action, halt)
            compares += index_cmp
            ops += index_ops
            entries.append(
                Entry(
                    action.requested_by,
                    "safety.resume",
                    obj,
                    reason=action.reason,
                    details={"id": action.id, "halt_id": halt.id, "approvers": ",".join(action.approvals)},
                )
            )
        elif action.kind in (ActionKind.FREEZE, ActionKind.UNFREEZE):
            action = action.replace(effective_at=now)
            fkey = sd.freeze_key(action.scope)
            existing = await self._store.get(fkey)
            if action.kind == ActionKind.FREEZE:
                if existing is not None:
                    raise FailedPrecondition(f"{action.scope} is already frozen")
                record = FreezeRecord(action.scope, action.id, now, action.reason, list(action.approvals))
                compares.append(Compare.absent(fkey))
                ops.append(Put(fkey, record.to_json()))
            else:
                if existing is None:
                    raise FailedPrecondition(f"{action.scope} is not frozen")
                compares.append(Compare.unchanged(existing))
                ops.append(Delete(fkey))
            entries.append(
                Entry(
                    action.requested_by,
                    f"safety.{action.kind.lower()}",
                    obj,
                    reason=action.reason,
                    details={"id": action.id, "approvers": ",".join(action.approvals)},
                )
            )
        ops.append(Put(key, action.to_json()))
        if action.kind not in (ActionKind.HALT, ActionKind.RESUME):
            await self._commit_effect(compares, ops, entries, fence)
            return action

        # The signed directive joins the lane in the same transaction; if another replica's
        # directive took the next sequence meanwhile, only the lane's compare failed: sign again at
        # the next one. Within a replica the lock takes turns (60 halts at once would otherwise
        # race each other through the compare: one winner per round).
        async def attempt() -> SafetyActionRecord | cas.Retry:
            seq_kv = await self.lane_seq()
            rec, lane_cmp, lane_ops = self.lane_write(action, seq_kv)
            result = await self._audit.commit([*compares, *lane_cmp], [*ops, *lane_ops], entries)
            if result.succeeded:
                self.publish(rec)
                return action
            if not await self._store.holds(lane_cmp):
                return cas.RETRY  # only the lane moved: sign again at the next sequence
            return await self._failed(fence)

        async with self._lane_lock:
            return await cas.retry(self._store, attempt)

    async def _commit_effect(
        self, compares: list[Compare], ops: list[Op], entries: list[Entry], fence: Sequence[Compare]
    ) -> None:
        result = await self._audit.commit(compares, ops, entries)
        if not result.succeeded:
            await self._failed(fence)

    async def _failed(self, fence: Sequence[Compare]) -> NoReturn:
        """A commit's own compare failed: the leader changed, or the action did (someone raced)."""
        await cas.check_fence(self._store, fence)
        raise Conflict()
