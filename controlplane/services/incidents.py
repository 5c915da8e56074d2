"""Incidents: metadata and a count from sites, evaluated by the leader against the incident rules
(controlplane/domain/safety_rules.py); a firing rule halts automatically, fenced. Also the
record of a site's local (fail-closed) halts. Incidents older than their retention are pruned by
the leader (services/controllers.py: IncidentPruning), so a pass of the rules scans a bounded set.
"""

from __future__ import annotations

import contextlib
import secrets
import uuid
from collections.abc import Sequence
from typing import TYPE_CHECKING

from controlplane.domain import safety as sd
from controlplane.domain.safety import ActionKind, IncidentRecord, SafetyActionRecord
from controlplane.domain.safety_rules import evaluate
from controlplane.domain.validation import validate_dns_label, validate_dns_subdomain
from controlplane.errors import Conflict, InvalidArgument
from controlplane.services import clock
from controlplane.services.audit import AuditLog, Entry
from controlplane.store import Compare, Put, Store
from controlplane.store.base import Delete

if TYPE_CHECKING:
    from controlplane.services.safety import Safety

MAX_INCIDENT_COUNT = 10_000
#: Incidents older than this are deleted by the leader (longer than any rule's window).
INCIDENT_RETENTION_S = 7 * 24 * 3600.0
#: Namespace of derived ids (automatic and local halts): the same inputs, the same id.
NAMESPACE = uuid.UUID("9d1c6f0e-5b7a-4b8e-9f7e-2f6a7c3d1e55")


class Incidents:
    def __init__(self, store: Store, audit: AuditLog, safety: Safety) -> None:
        self._store = store
        self._audit = audit
        self._safety = safety

    async def report_incident(
        self,
        actor: str,
        site_id: str,
        release: str,
        severity: int,
        category: str,
        count: int,
        observed_at: float = 0.0,
    ) -> IncidentRecord:
        validate_dns_subdomain("incident.release", release)
        validate_dns_label("incident.category", category)
        if not 1 <= severity <= 4:
            raise InvalidArgument("incident.severity", "must be 1..4")
        if not 1 <= count <= MAX_INCIDENT_COUNT:
            raise InvalidArgument("incident.count", f"must be 1..{MAX_INCIDENT_COUNT}")
        now = clock.now()  # the federation's clock: a site cannot place incidents outside a window
        rec = IncidentRecord(site_id, release, severity, category, count, now, actor)
        key = f"{sd.incident_prefix(release)}{int(now * 1e9):020d}-{site_id}-{secrets.token_hex(4)}"
        await self._audit.commit(
            [Compare.absent(key)],
            [Put(key, rec.to_json())],
            [
                Entry(
                    actor,
                    "incident.report",
                    f"release/{release}",
                    details={
                        "site": site_id,
                        "severity": str(severity),
                        "category": category,
                        "count": str(count),
                        "observed_at": f"{observed_at:.3f}",
                    },
                )
            ],
        )
        return rec

    async def local_halt(
        self, actor: str, site_id: str, tier: int, releases: Sequence[str], halted_at: float, tolerance: float
    ) -> list[SafetyActionRecord]:
        """Record that a site halted ``releases`` (risk tier ``tier``) after missing beacons. One
        LocalHalt action per release (resumable like a halt, under the two-person rule);
        idempotent for a repeated report."""
        out: list[SafetyActionRecord] = []
        details = {"site": site_id, "risk_tier": str(tier), "tolerance_s": f"{tolerance:g}"}
        if not releases:
            await self._audit.record(
                Entry(actor, "safety.local_halt", f"site/{site_id}", details=details | {"releases": ""})
            )
            return out
        for release in releases:
            validate_dns_subdomain("local_halt.releases", release)
            aid = str(uuid.uuid5(NAMESPACE, f"local/{site_id}/{release}/{int(halted_at * 1000)}"))
            if await self._store.get(sd.action_key(aid)) is not None:
                continue
            action = SafetyActionRecord(
                id=aid,
                kind=ActionKind.LOCAL_HALT,
                scope=f"site:{site_id}",
                requested_by=actor,
                created_at=clock.now(),
                release=release,
                reason=f"no fresh beacon for {tolerance:g}s (risk tier {tier})",
                effective_at=halted_at or clock.now(),
                targets=[site_id],
                automatic=True,
                details=details,
            )
            with contextlib.suppress(Conflict):
                await self._safety.create(
                    action,
                    Entry(
                        actor,
                        "safety.local_halt",
                        f"release/{release}",
                        reason=action.reason,
                        details=details | {"id": aid},
                    ),
                )
                out.append(action)
        return out

    async def run_rules(self, actor: str, fence: Sequence[Compare] = ()) -> list[SafetyActionRecord]:
        """One pass of the incident rules (leader only; every write carries ``fence``)."""
        rules = self._safety.settings.rules
        now = clock.now()
        res = await self._store.range(sd.INCIDENTS)
        incidents: list[IncidentRecord] = []
        first_key: dict[str, str] = {}
        horizon = now - max(r.window_s for r in rules)
        for kv in res.items:
            rec = IncidentRecord.from_json(kv.value)
            if rec.at >= horizon:
                incidents.append(rec)
                first_key.setdefault(rec.release, kv.key)
        if not incidents:
            return []
        actions = await self._safety.actions(10_000)
        not_before: dict[str, float] = {}
        active: set[tuple[str, str]] = set()
        for a in actions:
            if a.kind != ActionKind.HALT:
                continue
            if a.resumed_at:
                not_before[a.release] = max(not_before.get(a.release, 0.0), a.resumed_at)
            else:
                active.add((a.release, a.scope))
        fired = []
        for f in evaluate(rules, incidents, now, not_before=not_before):
            scope = str(sd.parse_scope(f.rule.scope))
            if (f.release, scope) in active:
                continue
            aid = str(uuid.uuid5(NAMESPACE, f"rule/{f.rule.name}/{f.release}/{first_key[f.release]}"))
            reason = (
                f"rule {f.rule.name}: {f.incidents} incidents of severity <= {f.rule.max_severity} "
                f"from {len(f.sites)} sites within {f.rule.window_s:g}s"
            )
            try:
                action = await self._safety.halt(
                    actor,
                    f.release,
                    scope,
                    reason,
                    automatic=True,
                    fence=fence,
                    action_id=aid,
                    details={"rule": f.rule.name, "sites": ",".join(f.sites)},
                )
            except Conflict:
                continue  # already fired (an earlier pass or leader)
            active.add((f.release, scope))
            fired.append(action)
        return fired

    async def prune_incidents(self, fence: Sequence[Compare] = ()) -> int:
        cutoff = clock.now() - INCIDENT_RETENTION_S
        old = [
            kv
            for kv in (await self._store.range(sd.INCIDENTS)).items
            if IncidentRecord.from_json(kv.value).at < cutoff
        ]
        for start in range(0, len(old), 100):
            await self._store.txn(list(fence), [Delete(kv.key) for kv in old[start : start + 100]])
        return len(old)
