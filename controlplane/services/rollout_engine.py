"""The rollout engine: a leader-only controller that moves every active rollout one step per tick.

Each step reads the rollout record, the registry and the directive outcomes, decides, issues the
directives it needs with ids derived from (rollout, site, action) - so a step repeated after a
crash or a failover re-finds the directive instead of queueing a second one - and writes the new
record with a compare on its revision plus the election's fence. A deposed leader's step fails
as a whole; the new leader redoes it from the stored state.
"""

from __future__ import annotations

import dataclasses
import logging
import uuid
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from controlplane.domain import rollouts as ro
from controlplane.domain.records import DirectiveRecord, DirectiveState, SiteRecord, SiteStatus
from controlplane.domain.rollouts import RolloutRecord, SiteState, WaveState
from controlplane.errors import Conflict, NotLeader, StargateError
from controlplane.services import clock
from controlplane.services.audit import AuditLog, Entry
from controlplane.services.directives import Directives
from controlplane.services.registry import Registry
from controlplane.services.releases import signed_from_dict, signed_to_dict
from controlplane.services.rollouts import Rollouts, spec_from_dict
from controlplane.store import Compare, Put, Store

log = logging.getLogger(__name__)
_NS = uuid.UUID("6b1f7c1e-3d2a-4f0b-9a7e-5c4d3b2a1f00")
#: Returns why a rollout may not move now (a safety freeze), or None. Called with the rollout's
#: (site, country) pairs; see controlplane/domain/safety.py for the freeze contract.
FreezeCheck = Callable[[list[tuple[str, str]]], Awaitable[str | None]]


def directive_id(rollout: str, site: str, action: str) -> str:
    return str(uuid.uuid5(_NS, f"{rollout}/{site}/{action}"))


class RolloutEngine:
    def __init__(
        self,
        store: Store,
        audit: AuditLog,
        registry: Registry,
        directives: Directives,
        rollouts: Rollouts,
        actor: str,
        freeze: FreezeCheck | None = None,
    ) -> None:
        self._store = store
        self._audit = audit
        self._registry = registry
        self._directives = directives
        self._rollouts = rollouts
        self.actor = actor
        self._freeze = freeze

    async def tick(self, fence: Sequence[Compare]) -> None:
        active = [r for r in await self._rollouts.list() if r.phase not in ro.FINAL and r.phase != "Paused"]
        if not active:
            return
        sites = {s.site_id: s for s in await self._registry.list()}
        for rec in active:
            try:
                await self._step(rec.name, sites, fence)
            except (Conflict, NotLeader):
                raise
            except StargateError as e:
                log.warning("rollout %s: %s", rec.name, e.public)

    async def _step(self, name: str, sites: dict[str, SiteRecord], fence: Sequence[Compare]) -> None:
        kv, rec = await self._rollouts.get_kv(name)
        if rec.phase in ro.FINAL or rec.phase == "Paused":
            return
        waves = rec.wave_states()
        entries: list[Entry] = []
        if self._freeze is not None:
            # A freeze holds the whole rollout "where it is" when any of its sites is in scope:
            # no new directive, no rollback either, until it is lifted (checked every tick).
            reason = await self._freeze([(s.site, s.country) for w in waves for s in w.sites])
            if reason:
                if rec.message != reason:
                    await self._save(kv, rec.replace(message=reason), waves, fence, [])
                return
        if rec.phase == "RollingBack":
            phase, message = await self._rollback(rec, waves, fence, entries)
        else:
            phase, message = await self._advance(rec, waves, sites, fence, entries)
        new = rec.replace(phase=phase, message=message)
        if (
            new != rec
            or entries
            or any(dataclasses.asdict(w) != o for w, o in zip(waves, rec.waves, strict=True))
        ):
            await self._save(kv, new, waves, fence, entries)

    async def _save(
        self,
        kv: Any,
        rec: RolloutRecord,
        waves: list[WaveState],
        fence: Sequence[Compare],
        entries: list[Entry],
    ) -> None:
        new = rec.replace(waves=[dataclasses.asdict(w) for w in waves], updated_at=clock.now())
        result = await self._audit.commit(
            [*fence, Compare.unchanged(kv)], [Put(kv.key, new.to_json())], entries
        )
        if not result.succeeded:
            if fence and not await self._store.holds(fence):
                raise NotLeader()
            raise Conflict()

    # --- forward -------------------------------------------------------------------------------

    async def _advance(
        self,
        rec: RolloutRecord,
        waves: list[WaveState],
        sites: dict[str, SiteRecord],
        fence: Sequence[Compare],
        entries: list[Entry],
    ) -> tuple[str, str]:
        spec = spec_from_dict(rec.spec)
        now = clock.now()
        timeout = spec.gates.timeout_seconds or ro.DEFAULT_GATE_TIMEOUT_S
        current = next((i for i, w in enumerate(waves) if w.phase != "Completed"), len(waves))
        for i, wave in enumerate(waves[: current + 1]):
            if i == current and wave.phase == "Pending":
                wave.phase, wave.started_at = "Progressing", now
                entries.append(self._entry(rec, "rollout.wave.start", wave.name))
            for s in wave.sites:
                await self._site_step(rec, s, sites.get(s.site), fence, entries)
        if current == len(waves):
            states = [s for w in waves for s in w.sites]
            if any(s.state == "WaitingForApproval" for s in states):
                countries = sorted({s.country for s in states if s.state == "WaitingForApproval"})
                return "WaitingForApproval", f"waiting for approval: {', '.join(countries)}"
            unfinished = [s.site for s in states if s.state not in ro.SITE_DONE]
            if unfinished:  # sites approved after their wave, or lost ones that came back
                return "Progressing", f"all waves done; {len(unfinished)} sites still deploying"
            if rec.phase != "Completed":
                entries.append(self._entry(rec, "rollout.complete", ""))
            return "Completed", "all waves completed"
        wave = waves[current]
        live = [s for s in wave.sites if s.state not in ("WaitingForApproval", "Refused", "Lost", "Skipped")]
        if wave.phase == "Progressing" and all(s.state == "Ready" for s in live):
            reports = [self._report(rec, sites.get(s.site)) for s in live]
            result = ro.evaluate_gates(spec.gates, reports, max((s.replicas for s in live), default=1))
            wave.gate = result.detail
            if result.outcome == "pass":
                wave.phase, wave.bake_until = "Baking", now + wave.bake_seconds
                entries.append(self._entry(rec, "rollout.gate.pass", wave.name))
            elif result.outcome == "fail":
                wave.phase = "Failed"
                entries.append(self._entry(rec, "rollout.gate.fail", wave.name, result.detail))
                return "RollingBack", f"wave {wave.name}: gate {result.detail}; rolling back"
            elif now - wave.started_at > timeout:
                entries.append(self._entry(rec, "rollout.gate.inconclusive", wave.name, result.detail))
                return "Paused", f"wave {wave.name}: gate {result.detail}; paused for a human"
        elif wave.phase == "Progressing" and now - wave.started_at > timeout:
            slow = [s.site for s in live if s.state != "Ready"]
            detail = f"inconclusive: {len(slow)} sites not ready after {timeout:.0f}s"
            wave.gate = detail
            entries.append(self._entry(rec, "rollout.gate.inconclusive", wave.name, detail))
            return "Paused", f"wave {wave.name}: {detail}; paused for a human"
        if wave.phase == "Baking" and now >= wave.bake_until:
            wave.phase = "Completed"
            entries.append(self._entry(rec, "rollout.wave.complete", wave.name))
        pending = [c for c in rec.needs_approval if c not in rec.approved]
        return "Progressing", (
            f"wave {wave.name}: {wave.phase}"
            + (f"; awaiting approval from {', '.join(pending)}" if pending else "")
        )

    def _entry(self, rec: RolloutRecord, action: str, wave: str, reason: str = "") -> Entry:
        details = {"wave": wave} if wave else {}
        return Entry(
            self.actor,
            action,
            f"rollout/{rec.name}",
            "failed" if "fail" in action else "success",
            reason,
            details,
        )

    def _report(self, rec: RolloutRecord, site: SiteRecord | None) -> dict[str, Any] | None:
        if site is None:
            return None
        for d in site.deployments:
            if d.get("release") == rec.spec["release"]:
                return d
        return None

    async def _site_step(
        self,
        rec: RolloutRecord,
        s: SiteState,
        site: SiteRecord | None,
        fence: Sequence[Compare],
        entries: list[Entry],
    ) -> None:
        needs = s.country in rec.needs_approval and s.country not in rec.approved
        if s.state == "Pending" and needs:
            s.state, s.reason = "WaitingForApproval", f"awaiting the {s.country} steward's approval"
            return
        if s.state == "WaitingForApproval" and not needs:
            s.state, s.reason = "Pending", ""
        if s.state == "Pending":
            s.previous = await self._previous(rec, s.site)
            d = await self._directives.issue(
                s.site,
                "Deploy",
                self._payload(rec, s),
                self.actor,
                fence=fence,
                directive_id=directive_id(rec.name, s.site, "deploy"),
            )
            s.state, s.directive_id, s.reason = "Deploying", d.id, ""
            return
        if s.state in ("Deploying", "Lost"):
            current = await self._directives.get(s.site, s.directive_id)
            undelivered = current is not None and current.state in DirectiveState.UNDELIVERED
            if site is not None and site.status == SiteStatus.UNREACHABLE and not undelivered:
                s.state, s.reason = "Lost", "site unreachable; its part of the wave waits"
                return
            # Failed (unsendable) or cancelled by an admin: this site will not get it either.
            if current is not None and current.state in (
                DirectiveState.REJECTED,
                *DirectiveState.UNDELIVERED,
            ):
                s.state, s.reason = "Refused", current.reason
                entries.append(
                    Entry(
                        self.actor,
                        "rollout.site.refused",
                        f"rollout/{rec.name}",
                        "denied",
                        current.reason,
                        {"site": s.site},
                    )
                )
                return
            s.state = "Deploying"
            report = self._report(rec, site)
            if (
                current is not None
                and current.state == DirectiveState.ACKED
                and report is not None
                and int(report.get("ready_replicas", 0)) >= s.replicas
            ):
                s.state, s.reason = "Ready", ""

    async def _previous(self, rec: RolloutRecord, site_id: str) -> str:
        """Id of the acked Deploy of the same model the site ran before this rollout ("" if none)."""
        model = rec.release["release"]["model"]
        history: list[DirectiveRecord] = await self._directives.list(site_id)
        for d in reversed(history):
            if d.state != DirectiveState.ACKED or d.payload.get("deployment_name") != model:
                continue
            if d.kind == "Undeploy":
                return ""
            if d.kind == "Deploy" and d.payload.get("release") != rec.spec["release"]:
                return d.id
        return ""

    def _payload(self, rec: RolloutRecord, s: SiteState) -> dict[str, Any]:
        r = rec.release["release"]
        res = r.get("resources", {})
        return {
            "deployment_name": r["model"],
            "model": r["model"],
            "version": r["version"],
            "digest": r["digest"],
            "replicas": s.replicas,
            "accelerator": res.get("accelerator", ""),
            "accelerators_per_replica": int(res.get("accelerators_per_replica", 0)),
            "locale": (r.get("locales") or [""])[0],
            "release": r["name"],
            "risk_tier": int(r.get("risk_tier", 0)),
            "signed_release": signed_to_dict(signed_from_dict(rec.release)),
            "rollout": rec.name,
        }

    # --- backward ------------------------------------------------------------------------------

    async def _rollback(
        self, rec: RolloutRecord, waves: list[WaveState], fence: Sequence[Compare], entries: list[Entry]
    ) -> tuple[str, str]:
        """Restore the previous release (or undeploy) at every site this rollout reached."""
        busy = 0
        for wave in waves:
            for s in wave.sites:
                if s.state in ("Deploying", "Ready", "Lost"):
                    before = await self._directives.get(s.site, s.previous) if s.previous else None
                    action, payload = (
                        ("Deploy", before.payload)
                        if before is not None
                        else ("Undeploy", {"deployment_name": rec.release["release"]["model"]})
                    )
                    d = await self._directives.issue(
                        s.site,
                        action,
                        payload,
                        self.actor,
                        fence=fence,
                        directive_id=directive_id(rec.name, s.site, "rollback"),
                    )
                    s.state, s.rollback_id = "RollingBack", d.id
                    s.reason = (
                        "restoring the previous release"
                        if before is not None
                        else "undeploying (no previous release)"
                    )
                if s.state == "RollingBack":
                    d2 = await self._directives.get(s.site, s.rollback_id)
                    if d2 is not None and d2.state != DirectiveState.PENDING:
                        s.state = "RolledBack"
                    else:
                        busy += 1
                elif s.state in ("Pending", "WaitingForApproval"):
                    s.state, s.reason = "Skipped", "rollout rolled back before this site was reached"
            if wave.phase != "Pending":
                wave.phase = "RolledBack"
        cause = rec.message.split(" | ")[0] or "rolled back"  # why it rolls back stays in view
        if busy:
            return "RollingBack", f"{cause} | {busy} sites to confirm"
        entries.append(self._entry(rec, "rollout.rolledback", "", cause))
        return "RolledBack", cause
