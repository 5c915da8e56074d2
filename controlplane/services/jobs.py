"""Localisation jobs as people see them: create (placed through the admission chain), read,
approve (the data country's steward), cancel. Every action is audited with the person's verified
identity; the leader's JobEngine (services/job_engine.py) sends the directives and follows the site.
"""

from __future__ import annotations

import builtins
import uuid
from collections.abc import Callable, Sequence

from google.protobuf import json_format

from controlplane.api.v1 import jobs_pb2 as jpb
from controlplane.domain import job_spec
from controlplane.domain.datasets import language_matches, validate_language
from controlplane.domain.job_records import JobRecord, data_countries, dataset_at, job_key, place, workload
from controlplane.domain.jobs import JobPhase
from controlplane.domain.records import JOBS, SiteRecord
from controlplane.domain.site_input import clean_text
from controlplane.domain.validation import validate_country, validate_dns_subdomain
from controlplane.errors import (
    AlreadyExists,
    Conflict,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
)
from controlplane.pki.identity import Identity
from controlplane.services import cas, clock
from controlplane.services.audit import AuditLog, Entry
from controlplane.services.consent import check_approver
from controlplane.services.registry import Registry
from controlplane.services.releases import Releases, signed_to_dict
from controlplane.store import Compare, KeyValue, Put, Store


def spec_to_dict(spec: jpb.LocalizationJobSpec) -> dict[str, object]:
    return json_format.MessageToDict(spec, preserving_proto_field_name=True)


def datasets(sites: list[SiteRecord], country: str = "", language: str = "") -> list[tuple[SiteRecord, dict]]:
    """(site, summary) of every dataset reported, of ``country`` and holding ``language``."""
    out = []
    for s in sorted(sites, key=lambda s: s.site_id):
        for d in sorted(s.datasets, key=lambda d: str(d.get("name"))):
            if country and d.get("jurisdiction") != country:
                continue
            if language and not any(language_matches(language, str(x)) for x in d.get("languages") or ()):
                continue
            out.append((s, d))
    return out


class Jobs:
    def __init__(
        self,
        store: Store,
        audit: AuditLog,
        registry: Registry,
        releases: Releases,
        admin_may_approve: Callable[[], bool] = lambda: False,
    ) -> None:
        self._store = store
        self._audit = audit
        self._registry = registry
        self._releases = releases
        self._admin_may_approve = admin_may_approve

    async def list_datasets(self, country: str = "", language: str = "") -> list[tuple[SiteRecord, dict]]:
        if country:
            validate_country(country)
        if language:
            validate_language(language)
        return datasets(await self._registry.list(), country, language)

    async def create(self, actor: str, spec: jpb.LocalizationJobSpec) -> JobRecord:
        d = spec_to_dict(spec)
        want = job_spec.validate(d)
        try:
            base_kv, base, _ = await self._releases.get_kv(spec.base)
        except NotFound as e:
            raise InvalidArgument("spec.base", f"release {spec.base!r} is not registered") from e
        sites = await self._registry.list()
        country = want.country
        if not country:
            held = data_countries(sites, want)
            if len(held) > 1:
                raise InvalidArgument(
                    "spec.dataset.country", f"{want.name} is held in {', '.join(held)}: name the country"
                )
            country = held[0] if held else ""
        plan = place(sites, workload(d, base, country))
        now, uid = clock.now(), str(uuid.uuid4())
        rec = JobRecord(
            name=spec.name,
            spec=d,
            uid=uid,
            job_id=f"{spec.name}-{uid[:8]}",
            base=signed_to_dict(base),
            dataset_country=country,
            excluded=plan.excluded,
            excluded_more=plan.excluded_more,
            created_at=now,
            updated_at=now,
            created_by=actor,
        )
        if plan.candidates:
            site = next(s for s in sites if s.site_id == plan.candidates[0])
            ds = dataset_at(site, rec.want, str(d.get("purpose"))) or {}
            rec = rec.replace(
                phase=JobPhase.WAITING_FOR_APPROVAL,
                sites=[site.site_id],
                dataset=str(ds.get("name", "")),
                dataset_languages=list(ds.get("languages") or ()),
                needs_approval=[country],
                message=f"placed at {site.site_id}; waiting for the consent of the {country} steward",
            )
        else:
            where = f"dataset {want.describe()}" + (f" in {country}" if country and not want.country else "")
            rec = rec.replace(
                phase=JobPhase.REFUSED,
                message=f"placement: no eligible site for {where} (every site's reasons are listed)",
            )
        key = job_key(spec.name)
        details = {"base": spec.base, "phase": rec.phase, "country": country, "sites": ",".join(rec.sites)}
        result = await self._audit.commit(
            [Compare.absent(key), Compare.unchanged(base_kv)],
            [Put(key, rec.to_json())],
            [Entry(actor, "job.create", f"job/{spec.name}", details=details)],
        )
        if not result.succeeded:
            if await self._store.get(key) is None:
                raise Conflict()
            raise AlreadyExists(f"job {spec.name!r} exists")
        return rec

    async def get_kv(self, name: str) -> tuple[KeyValue, JobRecord]:
        validate_dns_subdomain("name", name)
        kv = await self._store.get(job_key(name))
        if kv is None:
            raise NotFound(f"job {name!r} not found")
        return kv, JobRecord.from_json(kv.value)

    async def get(self, name: str) -> JobRecord:
        return (await self.get_kv(name))[1]

    async def list_kv(self) -> list[tuple[KeyValue, JobRecord]]:
        return [(kv, JobRecord.from_json(kv.value)) for kv in (await self._store.range(JOBS)).items]

    async def list(self) -> list[JobRecord]:
        return sorted((r for _, r in await self.list_kv()), key=lambda r: (-r.created_at, r.name))

    async def change(
        self,
        name: str,
        actor: str,
        action: str,
        mutate: Callable[[JobRecord], JobRecord],
        reason: str = "",
        fence: Sequence[Compare] = (),
    ) -> JobRecord:
        """Compare-and-set ``mutate`` on the job, with its audit event (none when nothing changed)."""
        validate_dns_subdomain("name", name)

        def decide(kv: KeyValue | None) -> cas.Write[JobRecord] | JobRecord:
            if kv is None:
                raise NotFound(f"job {name!r} not found")
            rec = JobRecord.from_json(kv.value)
            new = mutate(rec)
            if new == rec:
                return rec
            new = new.replace(updated_at=clock.now())
            details = {"phase": new.phase} | ({"sites": ",".join(new.sites)} if new.sites else {})
            entry = Entry(actor, action, f"job/{name}", reason=reason, details=details)
            return cas.Write(new.to_json(), new, [entry])

        return await cas.mutate(self._store, self._audit.commit, job_key(name), decide, fence=fence)

    async def approve(self, caller: Identity, name: str, country: str) -> JobRecord:
        await check_approver(
            self._audit,
            caller,
            "job.approve",
            f"job/{name}",
            country,
            admin_may_approve=self._admin_may_approve(),
        )

        def mutate(rec: JobRecord) -> JobRecord:
            if country not in rec.needs_approval:
                needed = ", ".join(rec.needs_approval) or "no country"
                raise FailedPrecondition(f"country: job {name} needs the consent of {needed}, not {country}")
            if country in rec.approved:
                return rec
            if rec.phase != JobPhase.WAITING_FOR_APPROVAL:
                raise FailedPrecondition(f"job is {rec.phase}; only a job WaitingForApproval can be approved")
            approved = sorted({*rec.approved, country})
            if set(rec.needs_approval) <= set(approved):
                msg = f"admitted with the consent of {', '.join(approved)}; RunJob to {rec.sites[0]}"
                return rec.replace(approved=approved, phase=JobPhase.ADMITTED, message=msg)
            return rec.replace(approved=approved)

        return await self.change(name, caller.spiffe_id, "job.approve", mutate, f"country {country}")

    async def cancel(self, actor: str, name: str, reason: str) -> JobRecord:
        reason = clean_text(reason, 256)

        def mutate(rec: JobRecord) -> JobRecord:
            if rec.final:
                raise FailedPrecondition(f"job is {rec.phase}; nothing to cancel")
            msg = f"cancelled by {actor}" + (f": {reason}" if reason else "")
            return rec.replace(phase=JobPhase.CANCELLED, message=msg)

        return await self.change(name, actor, "job.cancel", mutate, reason)

    async def approve_variant_export(
        self, caller: Identity, release: str, allow: Sequence[str], reason: str
    ) -> tuple[str, builtins.list[str]]:
        """The data country's steward (and only they: never an admin) consents to one more export
        rule for a variant's artifact; returns (country, every rule consented to)."""
        signed, _ = await self._releases.get(release)
        r = signed.release
        if not r.variant_of:
            raise FailedPrecondition(
                f"release {release} is not a variant; its export rule is its publisher's"
            )
        country = r.export.allow_countries[0] if r.export.allow_countries else ""
        await check_approver(
            self._audit,
            caller,
            "release.export-approve",
            f"release/{release}",
            country,
            admin_may_approve=False,
        )
        for i, cc in enumerate(allow):
            validate_country(cc, f"allow_countries[{i}]")
        if country not in allow:
            raise InvalidArgument("allow_countries", f"must include the data's country {country}")
        return country, await self._releases.grant_export(
            caller.spiffe_id, release, allow, clean_text(reason, 256)
        )
