"""Rollouts as people see them: plan, create, read, pause/resume/abort/rollback/promote/undo,
approve, delete (and deleting the releases they reference).

The leader's engine (rollout_engine.py) moves them forward; everything here is a person's action,
audited with the person's verified identity.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

from google.protobuf import json_format

from controlplane.api.v1 import release_pb2 as rpb
from controlplane.api.v1 import rollouts_pb2 as opb
from controlplane.domain import placement, rollouts
from controlplane.domain.records import ROLLOUTS
from controlplane.domain.rollouts import Phase, RolloutRecord, SitePhase, SiteState, WavePhase, WaveState
from controlplane.domain.validation import validate_country, validate_dns_label, validate_dns_subdomain
from controlplane.errors import (
    AlreadyExists,
    Conflict,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    PermissionDenied,
)
from controlplane.pki.identity import Identity, Role
from controlplane.services import cas, clock
from controlplane.services.audit import AuditLog, Entry
from controlplane.services.registry import Registry
from controlplane.services.releases import Releases, signed_to_dict
from controlplane.store import Compare, Delete, KeyValue, Put, Store

_NAMES: dict[int, str] = {
    opb.ROLLOUT_ACTION_PAUSE: "pause",
    opb.ROLLOUT_ACTION_RESUME: "resume",
    opb.ROLLOUT_ACTION_ABORT: "abort",
    opb.ROLLOUT_ACTION_ROLLBACK: "rollback",
    opb.ROLLOUT_ACTION_PROMOTE: "promote",
    opb.ROLLOUT_ACTION_UNDO: "undo",
}


def spec_to_dict(spec: opb.RolloutSpec) -> dict[str, Any]:
    return json_format.MessageToDict(spec, preserving_proto_field_name=True)


def spec_from_dict(d: dict[str, Any]) -> opb.RolloutSpec:
    return json_format.ParseDict(d, opb.RolloutSpec(), ignore_unknown_fields=True)


def _list(names: list[str], limit: int = 5) -> str:
    return ", ".join(names[:limit]) + (f" (+{len(names) - limit} more)" if len(names) > limit else "")


class Rollouts:
    def __init__(
        self,
        store: Store,
        audit: AuditLog,
        registry: Registry,
        releases: Releases,
        *,
        admin_may_approve: bool = False,
    ) -> None:
        self._store = store
        self._audit = audit
        self._registry = registry
        self._releases = releases
        self.admin_may_approve = admin_may_approve
        #: key -> (mod revision, parsed record): the engine lists every tick, and a rollout of
        #: 1,000 sites is ~400 KB of JSON; only changed records are parsed again.
        self._parsed: dict[str, tuple[int, RolloutRecord]] = {}

    async def plan(self, spec: opb.RolloutSpec) -> placement.Plan:
        rollouts.validate_spec(spec)
        try:
            signed, _ = await self._releases.get(spec.release)
        except NotFound as e:
            raise InvalidArgument("spec.release", f"release {spec.release!r} is not registered") from e
        return placement.plan(await self._registry.list(), signed.release, spec.placement)

    async def create(self, actor: str, spec: opb.RolloutSpec) -> RolloutRecord:
        p = await self.plan(spec)
        if not p.selected:
            raise FailedPrecondition(
                "placement: no eligible site (run `stargatectl rollouts plan` to see every reason)"
            )
        release_kv, signed, _ = await self._releases.get_kv(spec.release)
        sizes = rollouts.assign_waves(spec.waves, len(p.selected))
        waves, i = [], 0
        for w, n in zip(spec.waves, sizes, strict=True):
            sites = [SiteState(c.site, c.country, c.replicas) for c in p.selected[i : i + n]]
            waves.append(WaveState(w.name, w.bake_seconds, sites).to_dict())
            i += n
        countries = sorted({c.country for c in p.selected})
        now = clock.now()
        rec = RolloutRecord(
            name=spec.name,
            spec=spec_to_dict(spec),
            release=signed_to_dict(signed),
            waves=waves,
            needs_approval=countries if spec.approvals.country_steward else [],
            excluded=[{"site": e.site, "country": e.country, "reasons": list(e.reasons)} for e in p.excluded],
            created_at=now,
            updated_at=now,
            created_by=actor,
            uid=str(uuid.uuid4()),
        )
        key = ROLLOUTS + spec.name
        result = await self._audit.commit(
            # The release must still be there as read: a concurrent delete fails one of the two.
            [Compare.absent(key), Compare.unchanged(release_kv)],
            [Put(key, rec.to_json())],
            [
                Entry(
                    actor,
                    "rollout.create",
                    f"rollout/{spec.name}",
                    details={
                        "release": spec.release,
                        "sites": str(len(p.selected)),
                        "waves": str(len(waves)),
                    },
                )
            ],
        )
        if not result.succeeded:
            if await self._store.get(key) is None:
                raise Conflict()  # the release changed meanwhile (deleted): try again
            raise AlreadyExists(f"rollout {spec.name!r} exists")
        return rec

    async def get_kv(self, name: str) -> tuple[KeyValue, RolloutRecord]:
        validate_dns_subdomain("name", name)
        kv = await self._store.get(ROLLOUTS + name)
        if kv is None:
            raise NotFound(f"rollout {name!r} not found")
        return kv, RolloutRecord.from_json(kv.value)

    async def get(self, name: str) -> RolloutRecord:
        return (await self.get_kv(name))[1]

    async def list_kv(self) -> list[tuple[KeyValue, RolloutRecord]]:
        parsed: dict[str, tuple[int, RolloutRecord]] = {}
        out = []
        for kv in (await self._store.range(ROLLOUTS)).items:
            known = self._parsed.get(kv.key)
            rec = (
                known[1]
                if known is not None and known[0] == kv.mod_revision
                else RolloutRecord.from_json(kv.value)
            )
            parsed[kv.key] = (kv.mod_revision, rec)
            out.append((kv, rec))
        self._parsed = parsed
        return out

    async def list(self) -> list[RolloutRecord]:
        return [rec for _, rec in await self.list_kv()]

    async def _change(
        self,
        name: str,
        actor: str,
        action: str,
        mutate: Callable[[RolloutRecord], RolloutRecord],
        reason: str = "",
        details: dict[str, str] | None = None,
    ) -> RolloutRecord:
        async def attempt() -> RolloutRecord | cas.Retry:
            kv, rec = await self.get_kv(name)
            new = mutate(rec).replace(updated_at=clock.now())
            result = await self._audit.commit(
                [Compare.unchanged(kv)],
                [Put(kv.key, new.to_json())],
                [Entry(actor, action, f"rollout/{name}", reason=reason, details=details or {})],
            )
            return new if result.succeeded else cas.RETRY

        return await cas.retry(self._store, attempt)

    async def act(
        self, actor: str, name: str, action: int, reason: str = "", wave: str = ""
    ) -> RolloutRecord:
        if action not in _NAMES:
            raise InvalidArgument("action", "must be pause, resume, abort, rollback, promote or undo")
        if action == opb.ROLLOUT_ACTION_PROMOTE:
            validate_dns_label("wave", wave)
            if not reason.strip():
                raise InvalidArgument("reason", "is required to promote a wave (it goes to the audit log)")
        if action == opb.ROLLOUT_ACTION_UNDO:
            await self._check_undo(await self.get(name))

        def mutate(rec: RolloutRecord) -> RolloutRecord:
            if action == opb.ROLLOUT_ACTION_UNDO:
                if rec.phase not in rollouts.UNDOABLE:
                    raise FailedPrecondition(
                        f"rollout is {rec.phase}; undo backs out a Completed, Failed or Aborted rollout "
                        "(use rollback while it is active)"
                    )
                return rec.replace(
                    phase=Phase.ROLLING_BACK, message=f"undo requested by {actor}", paused_from=""
                )
            if rec.phase in rollouts.FINAL:
                raise FailedPrecondition(f"rollout is {rec.phase}; nothing to change")
            if action == opb.ROLLOUT_ACTION_PAUSE:
                if rec.phase == Phase.PAUSED:
                    return rec
                return rec.replace(phase=Phase.PAUSED, paused_from=rec.phase, message=f"paused by {actor}")
            if action == opb.ROLLOUT_ACTION_RESUME:
                if rec.phase != Phase.PAUSED:
                    raise FailedPrecondition(f"rollout is {rec.phase}, not Paused")
                return _resumed(rec)
            if action == opb.ROLLOUT_ACTION_ABORT:
                return rec.replace(phase=Phase.ABORTED, message=f"aborted by {actor}: {reason}".rstrip(": "))
            if action == opb.ROLLOUT_ACTION_ROLLBACK:
                return rec.replace(phase=Phase.ROLLING_BACK, message=f"rollback requested by {actor}")
            return _promoted(rec, actor, wave, reason)

        details = {"wave": wave} if action == opb.ROLLOUT_ACTION_PROMOTE else None
        return await self._change(name, actor, f"rollout.{_NAMES[action]}", mutate, reason, details)

    async def _check_undo(self, rec: RolloutRecord) -> None:
        """Undo restores what each site ran before this rollout: refused when a later rollout of the
        same model may have replaced it since (undoing this one would overwrite that one)."""
        model = rec.release["release"]["model"]
        later = [
            r.name
            for r in await self.list()
            if r.name != rec.name
            and r.release["release"]["model"] == model
            and r.created_at > rec.created_at
            and r.phase != Phase.ROLLED_BACK
        ]
        if later:
            raise FailedPrecondition(
                f"rollout {', '.join(sorted(later))} (created later) deploys model {model} too; "
                "undo or roll that back first"
            )

    async def delete(self, actor: str, name: str) -> RolloutRecord:
        kv, rec = await self.get_kv(name)
        if rec.phase not in rollouts.FINAL:
            raise FailedPrecondition(
                f"rollout is {rec.phase}; only a Completed, Failed, RolledBack or Aborted rollout can be "
                "deleted (abort it first)"
            )
        result = await self._audit.commit(
            [Compare.unchanged(kv)], [Delete(kv.key)], [Entry(actor, "rollout.delete", f"rollout/{name}")]
        )
        if not result.succeeded:
            raise Conflict()
        return rec

    async def delete_release(self, actor: str, name: str) -> rpb.SignedRelease:
        """Delete a release no rollout references and no site runs; otherwise say where."""
        validate_dns_subdomain("name", name)
        problems = []
        refs = sorted(r.name for r in await self.list() if r.spec.get("release") == name)
        if refs:
            problems.append(f"referenced by rollouts {_list(refs)} (delete them first)")
        running = sorted(
            s.site_id
            for s in await self._registry.list()
            if any(d.get("release") == name for d in s.deployments)
        )
        if running:
            problems.append(f"running at sites {_list(running)}")
        why = f"release {name}: {'; '.join(problems)}" if problems else None
        return await self._releases.delete(actor, name, why)

    async def approve(self, caller: Identity, name: str, country: str) -> RolloutRecord:
        validate_country(country)

        async def refuse(public: str, why: str) -> None:
            await self._audit.record(
                Entry(caller.spiffe_id, "rollout.approve", f"rollout/{name}", "denied", why)
            )
            raise PermissionDenied(public)

        if caller.role is Role.STEWARD and caller.country != country:
            await refuse(
                f"country: a steward of {caller.country} cannot approve for {country}",
                f"steward of {caller.country} cannot approve for {country}",
            )
        if caller.role is Role.ADMIN and not self.admin_may_approve:
            await refuse(
                "only the country's steward may approve (federation policy)",
                "admin approval is disabled by federation policy",
            )

        def mutate(rec: RolloutRecord) -> RolloutRecord:
            if country not in rec.needs_approval:
                raise FailedPrecondition(f"country: {country} has no sites awaiting approval in this rollout")
            if country in rec.approved:
                return rec
            return rec.replace(approved=sorted({*rec.approved, country}))

        return await self._change(name, caller.spiffe_id, "rollout.approve", mutate, f"country {country}")


def _resumed(rec: RolloutRecord) -> RolloutRecord:
    """Resume a Paused rollout. From a rollback that a site refused: retry those sites' restores
    (new directives). Otherwise the current wave's analysis window restarts: measurements,
    failures and the inconclusive and progress clocks count from now."""
    waves, now = rec.wave_states(), clock.now()
    if rec.paused_from == Phase.ROLLING_BACK:
        for s in (s for w in waves for s in w.sites if s.state == SitePhase.ROLLBACK_FAILED):
            s.state, s.rollback_id, s.reason = SitePhase.ROLLING_BACK, "", "retrying the restore"
            s.rollback_attempt += 1
    else:
        cur = rollouts.current_wave(waves)
        w = waves[min(cur, len(waves) - 1)]
        w.window_start, w.measurements, w.failures = now, 0, 0
        w.inconclusive_since, w.next_check_at, w.evidence = 0.0, 0.0, ""
    return rec.with_waves(waves).replace(
        phase=rec.paused_from or Phase.PROGRESSING, paused_from="", message="resumed"
    )


def _promoted(rec: RolloutRecord, actor: str, wave: str, reason: str) -> RolloutRecord:
    """Pass the current wave by hand (like Argo Rollouts' promote); resumes a Paused rollout."""
    if rec.phase == Phase.ROLLING_BACK or rec.paused_from == Phase.ROLLING_BACK:
        raise FailedPrecondition("rollout is rolling back; nothing to promote")
    waves = rec.wave_states()
    cur = rollouts.current_wave(waves)
    names = [w.name for w in waves]
    if wave not in names:
        raise InvalidArgument("wave", f"rollout has no wave {wave!r} (waves: {', '.join(names)})")
    if cur == len(waves) or waves[cur].name != wave:
        now_at = waves[cur].name if cur < len(waves) else "none: every wave passed"
        raise FailedPrecondition(f"wave: only the current wave can be promoted (current: {now_at})")
    w = waves[cur]
    w.phase, w.promoted = WavePhase.COMPLETED, f"{actor}: {reason}"
    w.gate = f"promoted by {actor}: {reason}"
    phase = (rec.paused_from or Phase.PROGRESSING) if rec.phase == Phase.PAUSED else rec.phase
    return rec.with_waves(waves).replace(
        phase=phase, paused_from="", message=f"wave {wave} promoted by {actor}"
    )


__all__ = ["Rollouts", "spec_from_dict", "spec_to_dict"]
