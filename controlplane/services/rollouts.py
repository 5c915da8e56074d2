"""Rollouts as people see them: plan, create, read, pause/resume/abort/rollback, approve.

The leader's engine (rollout_engine.py) moves them forward; everything here is a person's action,
audited with the person's verified identity.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from google.protobuf import json_format

from controlplane.api.v1 import rollouts_pb2 as opb
from controlplane.domain import placement, rollouts
from controlplane.domain.records import ROLLOUTS
from controlplane.domain.rollouts import RolloutRecord, SiteState, WaveState
from controlplane.domain.validation import validate_country, validate_dns_label
from controlplane.errors import (
    AlreadyExists,
    Conflict,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    PermissionDenied,
)
from controlplane.pki.identity import Identity, Role
from controlplane.services import clock
from controlplane.services.audit import AuditLog, Entry
from controlplane.services.registry import Registry
from controlplane.services.releases import Releases, signed_to_dict
from controlplane.store import Compare, KeyValue, Put, Store

CAS_ATTEMPTS = 20


def spec_to_dict(spec: opb.RolloutSpec) -> dict[str, Any]:
    return json_format.MessageToDict(spec, preserving_proto_field_name=True)


def spec_from_dict(d: dict[str, Any]) -> opb.RolloutSpec:
    return json_format.ParseDict(d, opb.RolloutSpec(), ignore_unknown_fields=True)


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
        signed, _ = await self._releases.get(spec.release)
        sizes = rollouts.assign_waves(spec.waves, len(p.selected))
        waves, i = [], 0
        for w, n in zip(spec.waves, sizes, strict=True):
            sites = [SiteState(c.site, c.country, c.replicas) for c in p.selected[i : i + n]]
            waves.append(dataclasses.asdict(WaveState(w.name, w.bake_seconds, sites)))
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
        )
        key = ROLLOUTS + spec.name
        result = await self._audit.commit(
            [Compare.absent(key)],
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
            raise AlreadyExists(f"rollout {spec.name!r} exists")
        return rec

    async def get_kv(self, name: str) -> tuple[KeyValue, RolloutRecord]:
        validate_dns_label("name", name)
        kv = await self._store.get(ROLLOUTS + name)
        if kv is None:
            raise NotFound(f"rollout {name!r} not found")
        return kv, RolloutRecord.from_json(kv.value)

    async def get(self, name: str) -> RolloutRecord:
        return (await self.get_kv(name))[1]

    async def list(self) -> list[RolloutRecord]:
        return [RolloutRecord.from_json(kv.value) for kv in (await self._store.range(ROLLOUTS)).items]

    async def _change(
        self, name: str, actor: str, action: str, mutate: Any, reason: str = ""
    ) -> RolloutRecord:
        for _ in range(CAS_ATTEMPTS):
            kv, rec = await self.get_kv(name)
            new = mutate(rec)
            new = new.replace(updated_at=clock.now())
            result = await self._audit.commit(
                [Compare.unchanged(kv)],
                [Put(kv.key, new.to_json())],
                [Entry(actor, action, f"rollout/{name}", reason=reason)],
            )
            if result.succeeded:
                return new
        raise Conflict()

    async def act(self, actor: str, name: str, action: int, reason: str = "") -> RolloutRecord:
        def mutate(rec: RolloutRecord) -> RolloutRecord:
            if rec.phase in rollouts.FINAL:
                raise FailedPrecondition(f"rollout is {rec.phase}; nothing to change")
            if action == opb.ROLLOUT_ACTION_PAUSE:
                if rec.phase == "Paused":
                    return rec
                return rec.replace(phase="Paused", paused_from=rec.phase, message=f"paused by {actor}")
            if action == opb.ROLLOUT_ACTION_RESUME:
                if rec.phase != "Paused":
                    raise FailedPrecondition(f"rollout is {rec.phase}, not Paused")
                return rec.replace(phase=rec.paused_from or "Progressing", paused_from="", message="resumed")
            if action == opb.ROLLOUT_ACTION_ABORT:
                return rec.replace(phase="Aborted", message=f"aborted by {actor}: {reason}".rstrip(": "))
            if action == opb.ROLLOUT_ACTION_ROLLBACK:
                return rec.replace(phase="RollingBack", message=f"rollback requested by {actor}")
            raise InvalidArgument("action", "must be pause, resume, abort or rollback")

        names = {1: "pause", 2: "resume", 3: "abort", 4: "rollback"}
        return await self._change(name, actor, f"rollout.{names.get(action, 'unknown')}", mutate, reason)

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
