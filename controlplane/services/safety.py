"""Safety controls: the signed kill switch, the two-person rule, freezes, incidents and beacons.

- **Halt**: an admin (or an incident rule) names a release and a scope. The federation signs one
  Halt directive for that scope with its safety key (Ed25519) and appends it to the safety lane
  (``/stargate/safety/lane/<seq>``, a federation-wide rising sequence) in the same transaction that
  makes the halt effective, so a crash can never leave a halt effective but unsent. Every link in
  scope sends the lane before any ordinary directive, and again first after a reconnect
  (``Hello.last_safety_sequence``); each site checks that the scope covers it
  (services/safety_lane.py has the hot path).
- **Two-person rule**: resume, freeze and unfreeze take effect only once two distinct admins
  approved (the requester is the first). A global halt needs two as well when the federation is
  configured so (``global_halt_approvals=2``); otherwise a halt takes effect at once.
- **Freezes**: ``/stargate/safety/freezes/<scope>``; ``is_frozen`` is the rollout engine's check
  (contract in ``controlplane/domain/safety.py``).
- **Incidents** (services/incidents.py): metadata and a count from sites, evaluated by the
  leader against the incident rules; a firing rule halts automatically, fenced.
- **Taking effect** (services/safety_effects.py): one transaction per action, with its audit
  events and, for a halt or resume, its signed directive in the lane.
- **Beacons**: ``beacon`` signs the liveness beacon a link sends; see operators/agent/safety.py for
  what a site does without one.

Every change commits together with its audit event (``AuditLog.commit``).
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from controlplane.domain import roster as rd
from controlplane.domain import safety as sd
from controlplane.domain.records import SiteStatus
from controlplane.domain.safety import (
    ActionKind,
    ActionView,
    FreezeRecord,
    SafetyActionRecord,
)
from controlplane.domain.safety_rules import DEFAULT_RULES, IncidentRule
from controlplane.domain.validation import validate_dns_subdomain
from controlplane.errors import (
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    StargateError,
)
from controlplane.pki.identity import Identity, Role
from controlplane.pki.safety_key import SafetyKey
from controlplane.services import approvals, artifact_index, cas, clock
from controlplane.services.audit import AuditLog, Entry
from controlplane.services.registry import Registry
from controlplane.services.roster import RosterStore
from controlplane.services.safety_effects import SafetyEffects
from controlplane.services.safety_lane import LaneCache, Subscriber, _PendingAck
from controlplane.store import Compare, Put, Store

log = logging.getLogger(__name__)

DEFAULT_HALT_TTL_S = 7 * 24 * 3600.0


@dataclass
class SafetySettings:
    #: Approvals a *global* halt needs before it takes effect (1: the requester alone; 2: a second admin).
    global_halt_approvals: int = 1
    rules: tuple[IncidentRule, ...] = DEFAULT_RULES
    #: Seconds between beacons on each link.
    beacon_interval: float = 5.0


class Safety(SafetyEffects):
    def __init__(
        self,
        store: Store,
        audit: AuditLog,
        registry: Registry,
        key: SafetyKey,
        settings: SafetySettings | None = None,
        ack_actor: str = "controller/safety",
    ) -> None:
        self._store = store
        self._audit = audit
        self._registry = registry
        self.key = key
        self.settings = settings or SafetySettings()
        self.lane = LaneCache()
        self._subscribers: set[Subscriber] = set()
        self._acks: list[_PendingAck] = []
        self._lane_lock = asyncio.Lock()
        self._ack_worker: asyncio.Task[None] | None = None
        self.ack_actor = ack_actor
        #: Test hook and operational switch: stop signing beacons (sites then fail closed).
        self.beacons_paused = False
        #: Who may approve and how many must (set by the runtime; None: no approvals possible).
        self.roster: RosterStore | None = None

    # --- reads ------------------------------------------------------------------------------------------

    async def get(self, action_id: str) -> SafetyActionRecord:
        try:
            uuid.UUID(action_id)
        except ValueError as e:
            raise InvalidArgument("id", "must be a UUID") from e
        kv = await self._store.get(sd.action_key(action_id))
        if kv is None:
            raise NotFound(f"safety action {action_id!r} not found")
        return SafetyActionRecord.from_json(kv.value)

    async def actions(self, limit: int = 100) -> list[SafetyActionRecord]:
        res = await self._store.range(sd.ACTIONS)
        actions = [SafetyActionRecord.from_json(kv.value) for kv in res.items]
        actions.sort(key=lambda a: (a.created_at, a.id), reverse=True)
        return actions[: max(1, min(limit or 100, 10_000))]

    async def view(self, action: SafetyActionRecord) -> ActionView:
        """The state of an action. A halt or resume covers every site in its scope *now* (a site
        enrolled after it took effect gets it too, first thing on its link) and every site that
        answered it."""
        sites = await self._registry.list()
        reachable = {s.site_id for s in sites if s.status == SiteStatus.READY}
        if action.kind not in (ActionKind.HALT, ActionKind.RESUME) or not action.effective_at:
            return sd.action_view(action, {}, reachable)
        deliveries = await self.deliveries(action.id)
        scope = sd.parse_scope(action.scope)
        in_scope = {s.site_id for s in sites if scope.covers(site_id=s.site_id, country=s.country)}
        targets = sorted(in_scope | set(action.targets))
        return sd.action_view(action.replace(targets=targets), deliveries, reachable, clock.now())

    async def freezes(self) -> list[FreezeRecord]:
        return [FreezeRecord.from_json(kv.value) for kv in (await self._store.range(sd.FREEZES)).items]

    async def is_frozen(self, *, site_id: str = "", country: str = "") -> FreezeRecord | None:
        """The freeze that holds a rollout step at this site / country, or None (contract:
        controlplane/domain/safety.py)."""
        return sd.is_frozen(await self.freezes(), site_id=site_id, country=country)

    async def frozen_reason(self, sites: Sequence[tuple[str, str]]) -> str | None:
        """Why a rollout step over ``sites`` (site id, country) is held by a freeze, or None (the
        rollout engine's check; the freezes are read once for all the sites)."""
        freezes = await self.freezes()
        for site_id, country in sites:
            f = sd.is_frozen(freezes, site_id=site_id, country=country)
            if f is not None:
                return f"frozen by safety control {f.action_id} ({f.scope}): {f.reason}".rstrip(": ")
        return None

    # --- requests by people -------------------------------------------------------------------------

    async def halt(
        self,
        actor: str,
        release: str,
        scope: str,
        reason: str,
        *,
        ttl_s: float = 0.0,
        automatic: bool = False,
        fence: Sequence[Compare] = (),
        action_id: str = "",
        details: dict[str, str] | None = None,
    ) -> SafetyActionRecord:
        validate_dns_subdomain("release", release)  # release names are DNS subdomains (atlas-1.2.0)
        parsed = sd.parse_scope(scope)
        if ttl_s < 0 or ttl_s > 90 * 86400:
            raise InvalidArgument("ttl_seconds", "must be 0..90 days")
        need = self.settings.global_halt_approvals if parsed.kind == "global" and not automatic else 1
        model, digest = await artifact_index.artifact_of(self._store, release)
        now = clock.now()
        action = SafetyActionRecord(
            id=action_id or str(uuid.uuid4()),
            kind=ActionKind.HALT,
            scope=str(parsed),
            requested_by=actor,
            created_at=now,
            release=release,
            reason=reason[:512],
            approvals=[] if automatic else [actor],
            approvals_required=0 if automatic else need,
            automatic=automatic,
            ttl_s=ttl_s or DEFAULT_HALT_TTL_S,
            details=dict(details or {}),
            model=model,
            digest=digest,
        )
        entry = Entry(
            actor,
            "safety.halt.request" if need > 1 else "safety.halt",
            f"release/{release}",
            reason=action.reason,
            details={"id": action.id, "scope": action.scope, "automatic": str(automatic).lower()}
            | dict(details or {}),
        )
        if need > 1:
            await self.create(action, entry, fence)
            return action
        return await self._take_effect(action, [entry], create=True, fence=fence)

    async def resume(
        self, caller: Identity, halt_id: str, reason: str, approval: rd.Signature | None = None
    ) -> SafetyActionRecord:
        halt = await self.get(halt_id)
        if halt.kind not in (ActionKind.HALT, ActionKind.LOCAL_HALT) or not halt.effective_at:
            raise FailedPrecondition(f"{halt_id} is not a halt in effect")
        if halt.resumed_at:
            raise FailedPrecondition(f"halt {halt_id} was already resumed")
        roster = await self._roster()
        statement = rd.resume_statement(halt_id=halt.id, release=halt.release, scope=halt.scope)
        first = await self._approval_or_refuse(caller, f"safety/{halt_id}", roster, statement, approval, [])
        need = roster.threshold(rd.ActionClass.RESUME)
        action = SafetyActionRecord(
            id=str(uuid.uuid4()),
            kind=ActionKind.RESUME,
            scope=halt.scope,
            requested_by=caller.spiffe_id,
            created_at=clock.now(),
            release=halt.release,
            reason=reason[:512],
            approvals=[caller.spiffe_id],
            approvals_required=need,
            targets=list(halt.targets),
            related_id=halt.id,
            ttl_s=halt.ttl_s,
            model=halt.model,
            digest=halt.digest,
            signed_approvals=[first],
            roster_version=roster.version,
            single_admin=roster.single_admin,
        )
        entry = Entry(
            caller.spiffe_id,
            "safety.resume.request",
            f"release/{halt.release}",
            reason=action.reason,
            details={"id": action.id, "halt_id": halt.id, "approvals_required": str(need)}
            | ({"single_admin": "true"} if roster.single_admin else {}),
        )
        if need <= 1:  # a single-admin roster: says so in the action and its audit event
            return await self._take_effect(action, [entry], create=True)
        await self.create(action, entry)
        return action

    async def freeze(
        self, caller: Identity, scope: str, reason: str, *, lift: bool = False
    ) -> SafetyActionRecord:
        parsed = sd.parse_scope(scope)
        existing = await self._store.get(sd.freeze_key(str(parsed)))
        if lift and existing is None:
            raise FailedPrecondition(f"{parsed} is not frozen")
        if not lift and existing is not None:
            raise FailedPrecondition(f"{parsed} is already frozen")
        kind = ActionKind.UNFREEZE if lift else ActionKind.FREEZE
        roster = await self._roster()
        approvals.roster_admin(caller, roster)
        action = SafetyActionRecord(
            id=str(uuid.uuid4()),
            kind=kind,
            scope=str(parsed),
            requested_by=caller.spiffe_id,
            created_at=clock.now(),
            reason=reason[:512],
            approvals=[caller.spiffe_id],
            approvals_required=(need := roster.threshold(rd.ActionClass.FREEZE)),
            roster_version=roster.version,
            single_admin=roster.single_admin,
        )
        entry = Entry(
            caller.spiffe_id,
            f"safety.{kind.lower()}.request",
            f"scope/{parsed}",
            reason=action.reason,
            details={"id": action.id, "approvals_required": str(need)},
        )
        if need <= 1:
            return await self._take_effect(action, [entry], create=True)
        await self.create(action, entry)
        return action

    async def _roster(self) -> rd.Roster:
        if self.roster is None:
            raise FailedPrecondition("this federation has no roster: approvals cannot be checked")
        return await self.roster.current()

    async def _approval_or_refuse(
        self,
        caller: Identity,
        obj: str,
        roster: rd.Roster,
        statement: bytes,
        approval: rd.Signature | None,
        prior: list[dict[str, str]],
    ) -> dict[str, str]:
        try:
            return approvals.signed(caller, roster, statement, approval, prior)
        except StargateError as e:
            await self._audit.record(Entry(caller.spiffe_id, "safety.approve", obj, "denied", e.public[:512]))
            raise

    async def approve(
        self, caller: Identity, action_id: str, approval: rd.Signature | None = None
    ) -> SafetyActionRecord:
        """Add ``caller``'s approval; the action takes effect with the last one needed. Refusals
        (a wrong role, the same person twice, nothing to approve) are audited and raised."""
        action = await self.get(action_id)
        obj = f"safety/{action_id}"

        async def refuse(err: StargateError, why: str) -> None:
            await self._audit.record(Entry(caller.spiffe_id, "safety.approve", obj, "denied", why))
            raise err

        if caller.role is not Role.ADMIN:
            await refuse(
                PermissionDenied(f"role {caller.role.value} may not approve safety actions"),
                f"role {caller.role.value} is not admin",
            )
        if action.effective_at:
            await refuse(FailedPrecondition(f"{action_id} is already in effect"), "already in effect")
        if caller.spiffe_id in action.approvals:
            await refuse(
                FailedPrecondition("already approved by this person: a second, distinct admin must approve"),
                "same approver twice",
            )
        roster = await self._roster()
        signed: list[dict[str, str]] = []
        if action.kind == ActionKind.RESUME:  # the sites verify these signatures themselves
            halt = await self.get(action.related_id)
            statement = rd.resume_statement(halt_id=halt.id, release=halt.release, scope=halt.scope)
            prior = list(action.signed_approvals)
            signed = [await self._approval_or_refuse(caller, obj, roster, statement, approval, prior)]
        else:  # freezes and halts stay at the federation: a roster admin, by certificate
            try:
                approvals.roster_admin(caller, roster)
            except PermissionDenied as e:
                await refuse(e, e.public[:512])

        async def attempt() -> SafetyActionRecord | cas.Retry:
            kv = await self._store.get(sd.action_key(action_id))
            if kv is None:
                raise NotFound(f"safety action {action_id!r} not found")
            action = SafetyActionRecord.from_json(kv.value)
            if caller.spiffe_id in action.approvals or action.effective_at:
                await refuse(FailedPrecondition(f"{action_id} changed; re-read it"), "raced")
            approved = action.replace(
                approvals=[*action.approvals, caller.spiffe_id],
                signed_approvals=[*action.signed_approvals, *signed],
            )
            entry = Entry(
                caller.spiffe_id,
                "safety.approve",
                obj,
                details={"kind": action.kind, "approvals": str(len(approved.approvals))},
            )
            if len(approved.approvals) < approved.approvals_required:
                result = await self._audit.commit(
                    [Compare.unchanged(kv)], [Put(kv.key, approved.to_json())], [entry]
                )
                return approved if result.succeeded else cas.RETRY
            return await self._take_effect(approved, [entry], expect=kv)

        return await cas.retry(self._store, attempt)
