"""The rollout engine: a leader-only controller that moves every active rollout one step per tick.

The decision is pure (``controlplane.domain.rollout_step.step``); this module does the I/O around
it. Each step reads the rollout record, the registry and the outcomes of the directives in flight,
decides, issues the directives it needs with ids derived from (rollout, site, action) - so a step
repeated after a crash or a failover re-finds the directive instead of queueing a second one - and
writes the new record with a compare on its revision plus the election's fence. A deposed leader's
step fails as a whole; the new leader redoes it from the stored state.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from controlplane.api.directive_kinds import DEPLOY, UNDEPLOY
from controlplane.domain import rollouts as ro
from controlplane.domain.gates import Report, SiteView
from controlplane.domain.records import DirectiveRecord, DirectiveState, SiteRecord, SiteStatus
from controlplane.domain.rollout_step import Audit, Deploy, DirectiveOutcome, Restore, Step, step
from controlplane.domain.rollouts import Phase, RolloutRecord, SitePhase, SiteState
from controlplane.errors import Conflict, NotLeader, StargateError, StoreError, Unavailable
from controlplane.services import cas, clock
from controlplane.services.audit import AuditLog, Entry
from controlplane.services.directives import Directives
from controlplane.services.registry import Registry
from controlplane.services.releases import signed_from_dict, signed_to_dict
from controlplane.services.rollouts import Rollouts
from controlplane.store import Compare, KeyValue, Put, Store
from controlplane.telemetry import logs, metrics

log = logging.getLogger(__name__)
#: Returns why a rollout may not move now (a safety freeze), or None. Called with the rollout's
#: (site, country) pairs; see controlplane/domain/safety.py for the freeze contract.
FreezeCheck = Callable[[list[tuple[str, str]]], Awaitable[str | None]]
#: Directive reads in flight at once while gathering outcomes (one etcd round trip each).
READS_IN_FLIGHT = 64
#: Directives issued at once by one step.
ISSUES_IN_FLIGHT = 64
#: Errors of one site's ``issue`` that are not that site's refusal: the whole step is retried.
TRANSIENT = (Conflict, Unavailable, StoreError)

directive_id = ro.directive_id  # re-exported: tests and tools derive the ids the engine uses


def site_view(site: SiteRecord) -> SiteView:
    """What the engine may rely on about a site (controlplane/domain/gates.py, "evidence")."""
    return SiteView(
        site.site_id,
        site.status == SiteStatus.READY,
        site.reported_sequence,
        tuple(Report.from_dict(d) for d in site.deployments),
    )


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
        #: site id -> (the registry's record object, its view): the registry hands out the same
        #: object while a site's key is unchanged, so a view is rebuilt only for sites that changed.
        self._views: dict[str, tuple[SiteRecord, SiteView]] = {}

    def _site_views(self, records: list[SiteRecord]) -> dict[str, SiteView]:
        views: dict[str, tuple[SiteRecord, SiteView]] = {}
        for rec in records:
            known = self._views.get(rec.site_id)
            views[rec.site_id] = known if known is not None and known[0] is rec else (rec, site_view(rec))
        self._views = views
        return {k: v for k, (_, v) in views.items()}

    async def tick(self, fence: Sequence[Compare]) -> None:
        active = [
            (kv, r)
            for kv, r in await self._rollouts.list_kv()
            if r.phase in ro.ACTIVE and r.phase != Phase.PAUSED
        ]
        if not active:
            return
        sites = self._site_views(await self._registry.list())
        for kv, rec in active:
            try:
                with logs.context(rollout=rec.name):
                    await self._step(kv, rec, sites, fence)
            except (Conflict, NotLeader):
                raise
            except StargateError as e:
                log.warning("rollout %s: %s", rec.name, e.public)

    async def _step(
        self, kv: KeyValue, rec: RolloutRecord, sites: dict[str, SiteView], fence: Sequence[Compare]
    ) -> None:
        if self._freeze is not None:
            # A freeze holds the whole rollout "where it is" when any of its sites is in scope:
            # no new directive, no rollback either, until it is lifted (checked every tick).
            reason = await self._freeze([(s["site"], s["country"]) for w in rec.waves for s in w["sites"]])
            if reason:
                if rec.message != reason:
                    await self._save(kv, rec.replace(message=reason), fence, [])
                return
        out = step(rec, sites, await self._outcomes(rec), clock.now())
        await self._carry_out(rec, out, fence)
        new = out.record.with_waves(out.waves) if out.intents else out.record
        if new.phase != rec.phase or new.message != rec.message or out.audits or new.waves != rec.waves:
            entries = [
                Entry(
                    self.actor,
                    a.action,
                    f"rollout/{rec.name}",
                    a.outcome,
                    a.reason,
                    {k: v for k, v in (("wave", a.wave), ("site", a.site)) if v},
                )
                for a in out.audits
            ]
            await self._save(kv, new, fence, entries)
            _count(rec.phase, new.phase, [a.action for a in out.audits])

    async def _outcomes(self, rec: RolloutRecord) -> dict[str, DirectiveOutcome]:
        """The delivery state of every directive the next step may look at (those in flight)."""
        wanted: list[tuple[str, str]] = []
        for w in rec.waves:
            for s in w["sites"]:
                state = s["state"]
                if state in (SitePhase.DEPLOYING, SitePhase.LOST) and s.get("directive_id"):
                    wanted.append((s["site"], s["directive_id"]))
                elif state == SitePhase.ROLLING_BACK and s.get("rollback_id"):
                    wanted.append((s["site"], s["rollback_id"]))
        sem = asyncio.Semaphore(READS_IN_FLIGHT)

        async def read(site: str, did: str) -> DirectiveRecord | None:
            async with sem:
                return await self._directives.get(site, did)

        found = await asyncio.gather(*(read(site, did) for site, did in wanted))
        return {d.id: DirectiveOutcome(d.state, d.reason, d.sequence) for d in found if d is not None}

    async def _save(
        self, kv: KeyValue, rec: RolloutRecord, fence: Sequence[Compare], entries: list[Entry]
    ) -> None:
        new = rec.replace(updated_at=clock.now())
        result = await self._audit.commit(
            [*fence, Compare.unchanged(kv)], [Put(kv.key, new.to_json())], entries
        )
        if not result.succeeded:
            await cas.check_fence(self._store, fence)
            raise Conflict()

    # --- intents ---------------------------------------------------------------------------------

    async def _carry_out(self, rec: RolloutRecord, out: Step, fence: Sequence[Compare]) -> None:
        """Issue the step's directives, ``ISSUES_IN_FLIGHT`` at a time: each is its own commit,
        and commits in flight together share the audit log's group commit (a wave of 500 sites
        issued one after another waited for 500 transactions in a row)."""
        by_site = {s.site: s for w in out.waves for s in w.sites}
        sem = asyncio.Semaphore(ISSUES_IN_FLIGHT)

        async def one(intent: Deploy | Restore) -> None:
            s = by_site[intent.site]
            async with sem:
                try:
                    if isinstance(intent, Deploy):
                        await self._deploy(rec, s, intent, fence)
                    else:
                        await self._restore(rec, s, intent, fence)
                except TRANSIENT:
                    raise
                except StargateError as e:
                    # The federation refused this one site's directive (e.g. a halted artifact):
                    # that site is refused with the reason; the rest of the step goes on.
                    refused = SitePhase.REFUSED if isinstance(intent, Deploy) else SitePhase.ROLLBACK_FAILED
                    s.state, s.reason = refused, f"federation: {e.public}"
                    action = (
                        "rollout.site.refused"
                        if refused == SitePhase.REFUSED
                        else "rollout.site.rollback_failed"
                    )
                    out.audits.append(Audit(action, reason=s.reason, outcome="denied", site=s.site))

        results = await asyncio.gather(*(one(i) for i in out.intents), return_exceptions=True)
        for r in results:
            if isinstance(r, BaseException):
                raise r  # transient (or a fence lost): the whole step is retried from the store

    async def _deploy(
        self, rec: RolloutRecord, s: SiteState, intent: Deploy, fence: Sequence[Compare]
    ) -> None:
        s.previous = await self._previous(rec, s.site)
        d = await self._directives.issue(
            s.site,
            DEPLOY.name,
            self._payload(rec, s),
            self.actor,
            fence=fence,
            directive_id=intent.directive_id,
        )
        s.deploy_sequence = d.sequence

    async def _restore(
        self, rec: RolloutRecord, s: SiteState, intent: Restore, fence: Sequence[Compare]
    ) -> None:
        before = await self._directives.get(s.site, intent.previous) if intent.previous else None
        if before is not None:
            action, payload = DEPLOY.name, before.payload
            s.restore_digest, s.restore_version = (
                str(payload.get("digest", "")),
                str(payload.get("version", "")),
            )
            s.restore_replicas = int(payload.get("replicas", 0))
        else:
            action, payload = UNDEPLOY.name, {"deployment_name": rec.release["release"]["model"]}
            s.restore_digest = s.restore_version = ""
            s.restore_replicas = 0
        d = await self._directives.issue(
            s.site, action, payload, self.actor, fence=fence, directive_id=intent.directive_id
        )
        s.rollback_sequence = d.sequence

    async def _previous(self, rec: RolloutRecord, site_id: str) -> str:
        """Id of the acked Deploy of the same model the site ran before this rollout ("" if none)."""
        model = rec.release["release"]["model"]
        history: list[DirectiveRecord] = await self._directives.list(site_id)
        for d in reversed(history):
            if d.state != DirectiveState.ACKED or d.payload.get("deployment_name") != model:
                continue
            if d.kind == UNDEPLOY.name:
                return ""
            if d.kind == DEPLOY.name and d.payload.get("release") != rec.spec["release"]:
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


def _count(before: str, after: str, actions: list[str]) -> None:
    """Metrics of one saved step: a phase entered, gate decisions (``rollout.gate.<outcome>``)."""
    if after != before:
        metrics.ROLLOUT_PHASES.labels(phase=str(after)).inc()
    for a in actions:
        if a.startswith("rollout.gate."):
            metrics.GATES.labels(outcome=a.removeprefix("rollout.gate.")).inc()
