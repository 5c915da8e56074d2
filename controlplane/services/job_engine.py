"""The leader's side of localisation jobs: send the RunJob of an admitted job to its site (placed
again first: the site chosen at creation may have gone), follow what the site reports, send the
CancelJob of a cancelled one. Every write carries the election's fence; every directive has a
deterministic id (from the job's uid), so a step re-run after a failover queues nothing twice.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from controlplane.domain.job_records import JobRecord, dataset_at, followed, place, variant_template, workload
from controlplane.domain.jobs import JobPhase
from controlplane.domain.records import SiteRecord
from controlplane.errors import FailedPrecondition, NotLeader, StargateError
from controlplane.services import variant_registry
from controlplane.services.directives import Directives
from controlplane.services.jobs import Jobs
from controlplane.services.registry import Registry
from controlplane.services.releases import Releases, signed_from_dict
from controlplane.store import Compare

log = logging.getLogger(__name__)
#: Namespace of the directive ids a job's uid determines.
_NS = uuid.UUID("5b1e4c8e-7a52-4c1f-9a55-3f0c2a9d6e11")


def directive_id(rec: JobRecord, what: str) -> str:
    return str(uuid.uuid5(_NS, f"{rec.uid}/{what}"))


def run_payload(rec: JobRecord) -> dict[str, Any]:
    """The RunJob payload (RunJobPayload fields) of ``rec`` at its chosen site."""
    spec, base = rec.spec, rec.base.get("release") or {}
    res, trainer, out = spec.get("resources") or {}, spec.get("trainer") or {}, spec.get("output") or {}
    return {
        "job_id": rec.job_id,
        "job": rec.name,
        "dataset": rec.dataset,
        "purpose": spec.get("purpose", ""),
        "image": trainer.get("image", ""),
        "command": list(trainer.get("command") or ()),
        "accelerator": res.get("accelerator", ""),
        "accelerators": int(res.get("accelerators") or 0),
        "max_hours": float(res.get("max_hours") or 0.0),
        "base_release": spec.get("base", ""),
        "base_model": base.get("model", ""),
        "base_digest": base.get("digest", ""),
        "output_name": out.get("name", ""),
        "output_version": out.get("version", ""),
        "publisher": rec.base.get("publisher", ""),
        **({"variant": rec.variant_template} if rec.variant_template else {}),
    }


@dataclass
class JobEngine:
    jobs: Jobs
    registry: Registry
    directives: Directives
    actor: str
    releases: Releases

    async def step(self, fence: Sequence[Compare]) -> None:
        active = [
            r for r in await self.jobs.list() if not r.final or self._cancel_due(r) or self._variant_due(r)
        ]
        if not active:
            return
        sites = {s.site_id: s for s in await self.registry.list()}
        for rec in active:
            try:
                await self._advance(rec, sites, tuple(fence))
            except NotLeader:
                raise
            except StargateError as e:  # one job's trouble must not stop the others
                log.warning("job %s not advanced: %s", rec.name, e.public)

    @staticmethod
    def _variant_due(rec: JobRecord) -> bool:
        return rec.phase == JobPhase.SUCCEEDED and bool(rec.variant_template) and not rec.variant

    async def _variant(self, rec: JobRecord, fence: tuple[Compare, ...]) -> tuple[str, str]:
        """(variant name, message) after registering ``rec``'s variant; ("", why) when it cannot be
        (the job stays Succeeded and the registration is retried next tick)."""
        try:
            name = await variant_registry.register(
                rec, self.releases, self.directives, self.registry, self.actor
            )
        except FailedPrecondition as e:
            return "", f"succeeded at {rec.sites[0]}; {e.public}"
        return name, f"succeeded at {rec.sites[0]}; variant {name} registered"

    async def _register_variant(self, rec: JobRecord, fence: tuple[Compare, ...]) -> None:
        name, message = await self._variant(rec, fence)
        await self.jobs.change(
            rec.name,
            self.actor,
            "job.variant",
            lambda r: r.replace(variant=name, message=message),
            fence=fence,
        )

    @staticmethod
    def _cancel_due(rec: JobRecord) -> bool:
        return rec.phase == JobPhase.CANCELLED and bool(rec.run_directive) and not rec.cancel_directive

    async def _advance(
        self, rec: JobRecord, sites: dict[str, SiteRecord], fence: tuple[Compare, ...]
    ) -> None:
        if self._variant_due(rec):
            await self._register_variant(rec, fence)
            return
        if self._cancel_due(rec):
            reason = rec.message[:200]
            d = await self.directives.issue(
                rec.sites[0],
                "CancelJob",
                {"job_id": rec.job_id, "reason": reason},
                self.actor,
                fence=fence,
                directive_id=directive_id(rec, "cancel"),
            )
            await self.jobs.change(
                rec.name,
                self.actor,
                "job.cancel-sent",
                lambda r: r.replace(cancel_directive=d.id),
                fence=fence,
            )
            return
        if rec.phase in (JobPhase.ADMITTED, JobPhase.PENDING) and rec.approved and not rec.run_directive:
            await self._send(rec, list(sites.values()), fence)
            return
        if rec.phase in (JobPhase.ADMITTED, JobPhase.RUNNING) and rec.run_directive:
            at = sites.get(rec.sites[0])
            report = next((j for j in (at.jobs if at else []) if j.get("job_id") == rec.job_id), None)
            run = await self.directives.get(rec.sites[0], rec.run_directive)
            state = (str(run.state), run.reason) if run is not None else None
            new = followed(rec, report, state)
            if new == rec:
                return
            action = f"job.{new.phase.lower()}" if new.phase != rec.phase else "job.progress"
            extra: dict[str, str] = {}
            if self._variant_due(new):
                # Registered before the phase is stored: whoever sees Succeeded sees the variant too.
                extra["variant"], extra["message"] = await self._variant(new, fence)

            def advanced(r: JobRecord) -> JobRecord:
                return followed(r, report, state).replace(**extra)

            await self.jobs.change(rec.name, self.actor, action, advanced, fence=fence)

    async def _send(self, rec: JobRecord, sites: list[SiteRecord], fence: tuple[Compare, ...]) -> None:
        """Place again (the chosen site first when it still qualifies) and queue the RunJob."""
        base = signed_from_dict(rec.base)
        plan = place(sites, workload(rec.spec, base, rec.dataset_country))
        if not plan.candidates:

            def pending(r: JobRecord) -> JobRecord:
                return r.replace(
                    phase=JobPhase.PENDING,
                    excluded=plan.excluded,
                    excluded_more=plan.excluded_more,
                    message="approved; no eligible site right now (placement is retried)",
                )

            await self.jobs.change(rec.name, self.actor, "job.pending", pending, fence=fence)
            return
        chosen = rec.sites[0] if rec.sites and rec.sites[0] in plan.candidates else plan.candidates[0]
        site = next(s for s in sites if s.site_id == chosen)
        ds = dataset_at(site, rec.want, str(rec.spec.get("purpose"))) or {}
        placed = rec.replace(
            sites=[chosen], dataset=str(ds.get("name", "")), dataset_languages=list(ds.get("languages") or ())
        )
        placed = placed.replace(variant_template=variant_template(placed, base, placed.dataset_languages))
        d = await self.directives.issue(
            chosen,
            "RunJob",
            run_payload(placed),
            self.actor,
            fence=fence,
            directive_id=directive_id(rec, "run"),
        )

        def sent(r: JobRecord) -> JobRecord:
            if r.phase == JobPhase.CANCELLED:
                return r.replace(sites=placed.sites, run_directive=d.id)  # its CancelJob goes next
            if r.phase not in (JobPhase.ADMITTED, JobPhase.PENDING):
                return r
            return r.replace(
                phase=JobPhase.ADMITTED,
                sites=placed.sites,
                dataset=placed.dataset,
                dataset_languages=placed.dataset_languages,
                excluded=plan.excluded,
                excluded_more=plan.excluded_more,
                run_directive=d.id,
                variant_template=placed.variant_template,
                message=f"admitted; RunJob sent to {chosen}",
            )

        await self.jobs.change(rec.name, self.actor, "job.run-sent", sent, fence=fence)
