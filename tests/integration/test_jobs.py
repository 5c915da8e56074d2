"""Work goes to the data (issue 15), end to end: a real federation over mTLS and simulated sites
holding datasets and running jobs. Datasets are reported as summaries only; a job is placed only
where its data is, with every other site's reasons; the data country's steward must consent; the
site may veto; progress comes back as aggregates; cancel and failure end a job."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from controlplane.api.v1 import jobs_pb2 as jpb
from controlplane.api.v1 import types_pb2 as tpb
from controlplane.domain.jobs import JobPhase, JobProgress, JobsPolicy
from controlplane.errors import FailedPrecondition, InvalidRequest, PermissionDenied
from controlplane.pki.identity import Role
from controlplane.server import job_servicer
from operators.agent import jobs as site_jobs
from operators.agent.policy import LocalPolicy
from operators.agent.sim_jobs import SimJobs
from tests.support.federation import Federation
from tests.support.job_world import JobWorld, job_spec


@pytest.fixture
async def world(fed: Federation, tmp_path: Path) -> AsyncIterator[JobWorld]:
    w = await JobWorld(fed, tmp_path).start()
    try:
        yield w
    finally:
        await w.close()


async def _approved(world: JobWorld, name: str) -> None:
    async with world.person("claire", Role.STEWARD, "FR") as fr:
        await fr.call("ApproveJob", jpb.ApproveJobRequest(name=name, country="FR"))


async def test_datasets_listed_as_summaries_and_a_foreign_jurisdiction_never_offered(world: JobWorld) -> None:
    resp = await world.admin.call("ListDatasets", jpb.ListDatasetsRequest())
    got = {(d.site_id, d.dataset.name) for d in resp.datasets}
    # de-fra-1 holds fr-leak under French law: the site never offers it, so the federation never hears of it.
    assert got == {("fr-par-1", "fr-news"), ("de-fra-1", "de-news")}
    fr = next(d for d in resp.datasets if d.dataset.name == "fr-news")
    assert (fr.country, fr.site_status, fr.dataset.jurisdiction) == ("FR", tpb.SITE_STATUS_READY, "FR")
    assert list(fr.dataset.languages) == ["fr"] and fr.dataset.size == "large"
    assert fr.dataset.classification == "personal" and list(fr.dataset.purposes) == ["fine-tune", "evaluate"]
    by_country = await world.admin.call("ListDatasets", jpb.ListDatasetsRequest(country="DE"))
    assert [d.dataset.name for d in by_country.datasets] == ["de-news"]
    by_language = await world.admin.call("ListDatasets", jpb.ListDatasetsRequest(language="fr"))
    assert [d.dataset.name for d in by_language.datasets] == ["fr-news"]
    # Nothing but the summary is stored: the claim and the steward's contact stayed at the site.
    rec = await world.fed.cp.runtime.registry.get("fr-par-1")  # type: ignore[union-attr]
    assert rec.datasets == [
        {
            "name": "fr-news",
            "jurisdiction": "FR",
            "classification": "personal",
            "languages": ["fr"],
            "purposes": ["fine-tune", "evaluate"],
            "size": "large",
        }
    ]
    with pytest.raises(InvalidRequest, match="country"):
        await world.admin.call("ListDatasets", jpb.ListDatasetsRequest(country="France"))


async def test_job_placed_only_where_the_data_is_with_every_other_sites_reasons(world: JobWorld) -> None:
    job = (await world.admin.call("CreateJob", jpb.CreateJobRequest(spec=job_spec()))).job
    assert job.phase == JobPhase.WAITING_FOR_APPROVAL
    assert list(job.sites) == ["fr-par-1"] and job.dataset == "fr-news" and job.dataset_country == "FR"
    assert list(job.pending_countries) == ["FR"]
    reasons = {e.site: list(e.reasons) for e in job.excluded}
    assert set(reasons) == {"fr-lyo-1", "de-fra-1", "jp-tyo-1"}
    assert reasons["fr-lyo-1"] == ["dataset: no dataset language fr in FR at this site"]
    assert "dataset: the data is in FR, this site in DE" in reasons["de-fra-1"]
    assert "dataset: the data is in FR, this site in JP" in reasons["jp-tyo-1"]
    assert "capacity: no h100 accelerators" in reasons["jp-tyo-1"]  # every failing filter is listed
    # By name, the country resolved from where the dataset is held.
    by_name = (
        await world.admin.call(
            "CreateJob", jpb.CreateJobRequest(spec=job_spec("by-name", dataset_name="fr-news", country=""))
        )
    ).job
    assert (list(by_name.sites), by_name.dataset_country) == (["fr-par-1"], "FR")
    # No site holds German data for French, nor a dataset of that name: Refused, with the reasons.
    none = (
        await world.admin.call(
            "CreateJob", jpb.CreateJobRequest(spec=job_spec("no-data", language="fr", country="DE"))
        )
    ).job
    assert none.phase == JobPhase.REFUSED and not none.sites and len(none.excluded) == 4
    assert "no eligible site" in none.message


async def test_steward_consent_required_and_another_countrys_steward_refused(world: JobWorld) -> None:
    await world.admin.call("CreateJob", jpb.CreateJobRequest(spec=job_spec()))
    async with world.person("dieter", Role.STEWARD, "DE") as de:
        with pytest.raises(PermissionDenied, match="steward of DE cannot approve for FR"):
            await de.call("ApproveJob", jpb.ApproveJobRequest(name="atlas-fr-news", country="FR"))
        with pytest.raises(FailedPrecondition, match="needs the consent of FR, not DE"):
            await de.call("ApproveJob", jpb.ApproveJobRequest(name="atlas-fr-news", country="DE"))
    with pytest.raises(PermissionDenied, match="only the country's steward"):
        await world.admin.call("ApproveJob", jpb.ApproveJobRequest(name="atlas-fr-news", country="FR"))
    async with world.person("ada", Role.AUDITOR) as auditor:
        with pytest.raises(PermissionDenied):
            await auditor.call("ApproveJob", jpb.ApproveJobRequest(name="atlas-fr-news", country="FR"))
        with pytest.raises(PermissionDenied):
            await auditor.call("CreateJob", jpb.CreateJobRequest(spec=job_spec("x")))
        assert (await auditor.call("GetJob", jpb.GetJobRequest(name="atlas-fr-news"))).job.phase
    await asyncio.sleep(0.5)  # nothing moves without consent: no RunJob was sent
    job = await world.job("atlas-fr-news")
    assert job.phase == JobPhase.WAITING_FOR_APPROVAL
    assert not world.fed.sites["fr-par-1"].backend.runs
    denied = [(e.action, e.outcome, e.actor) for e in await world.audit() if e.action == "job.approve"]
    assert sum(1 for _, o, a in denied if o == "denied" and a.endswith("dieter")) == 1
    assert sum(1 for _, o, a in denied if o == "denied" and "admin" in a) == 1


async def test_consented_job_runs_at_the_data_and_reports_aggregates(world: JobWorld) -> None:
    await world.admin.call("CreateJob", jpb.CreateJobRequest(spec=job_spec()))
    await _approved(world, "atlas-fr-news")
    running = await world.wait_job("atlas-fr-news", JobPhase.RUNNING)
    assert list(running.sites) == ["fr-par-1"]
    done = await world.wait_job("atlas-fr-news", JobPhase.SUCCEEDED)
    assert done.progress.step == 100 and 0 < done.progress.loss < 1.0
    assert 0 < done.progress.eval_score <= 1 and done.progress.output_digest.startswith("sha256:")
    site = world.fed.sites["fr-par-1"].backend
    assert list(site.runs) == [done.job_id]
    assert done.progress.output_digest in site.trained  # the artifact stays at the site
    for other in ("fr-lyo-1", "de-fra-1", "jp-tyo-1"):
        assert not world.fed.sites[other].backend.runs, other
    actions = [e.action for e in await world.audit() if e.object == "job/atlas-fr-news"]
    assert actions[0] == "job.create" and "job.approve" in actions and "job.run-sent" in actions
    assert "job.running" in actions and actions[-1] == "job.succeeded"


async def test_cancel_sends_a_signed_cancel_to_the_site(fed: Federation, tmp_path: Path) -> None:
    world = await JobWorld(fed, tmp_path).start(jobs=SimJobs(duration=60), extra=False)
    try:
        await world.admin.call("CreateJob", jpb.CreateJobRequest(spec=job_spec()))
        await _approved(world, "atlas-fr-news")
        await world.wait_job("atlas-fr-news", JobPhase.RUNNING)
        async with world.person("claire", Role.STEWARD, "FR") as fr:
            with pytest.raises(PermissionDenied):  # admins cancel
                await fr.call("CancelJob", jpb.CancelJobRequest(name="atlas-fr-news"))
        job = (
            await world.admin.call(
                "CancelJob", jpb.CancelJobRequest(name="atlas-fr-news", reason="wrong data")
            )
        ).job
        assert job.phase == JobPhase.CANCELLED and "wrong data" in job.message
        backend = world.fed.sites["fr-par-1"].backend

        async def stopped() -> bool:
            return all(r.cancelled for r in backend.runs.values())

        await world.until(stopped, 10, "the run cancelled at the site")
        with pytest.raises(FailedPrecondition, match="nothing to cancel"):
            await world.admin.call("CancelJob", jpb.CancelJobRequest(name="atlas-fr-news"))
        assert (await world.job("atlas-fr-news")).phase == JobPhase.CANCELLED
    finally:
        await world.close()


async def test_failed_run_fails_the_job_with_the_sites_reason(fed: Federation, tmp_path: Path) -> None:
    world = await JobWorld(fed, tmp_path).start(
        jobs=SimJobs(duration=0.5, outcome=JobPhase.FAILED), extra=False
    )
    try:
        await world.admin.call("CreateJob", jpb.CreateJobRequest(spec=job_spec()))
        await _approved(world, "atlas-fr-news")
        job = await world.wait_job("atlas-fr-news", JobPhase.FAILED)
        assert "trainer exited with status 1" in job.message and not job.progress.output_digest
    finally:
        await world.close()


async def test_site_policy_veto_at_the_site_and_in_placement(fed: Federation, tmp_path: Path) -> None:
    world = await JobWorld(fed, tmp_path).start(extra=False)
    try:
        # A policy the federation does not know yet (tightened after the site's Hello): the site
        # itself vetoes the RunJob, and the job is Refused with the site's reason.
        site = world.fed.sites["fr-par-1"]
        site.agent.policy = LocalPolicy(jobs=JobsPolicy(max_hours=4))
        await world.admin.call("CreateJob", jpb.CreateJobRequest(spec=job_spec("long-one")))
        await _approved(world, "long-one")
        refused = await world.wait_job("long-one", JobPhase.REFUSED)
        assert "refused by fr-par-1: policy: jobs.maxHours is 4, the job asks for 12 hours" in refused.message
        assert not site.backend.runs
        # Once the site reconnects, its Hello carries the policy and placement skips it with the reason.
        site.agent.policy = LocalPolicy(jobs=JobsPolicy(allow_purposes=frozenset({"evaluate"})))
        await site.stop()
        site.start()
        await site.wait_connected(10)

        async def known() -> bool:
            rec = await world.fed.cp.runtime.registry.get("fr-par-1")  # type: ignore[union-attr]
            return bool(rec.policy.get("jobs", {}).get("allow_purposes"))

        await world.until(known, 10, "the policy reported")
        job = (await world.admin.call("CreateJob", jpb.CreateJobRequest(spec=job_spec()))).job
        assert job.phase == JobPhase.REFUSED
        assert [list(e.reasons) for e in job.excluded] == [
            ["site policy: jobs.allowPurposes ['evaluate'] does not include fine-tune"]
        ]
    finally:
        await world.close()


async def test_site_keeps_running_a_job_when_its_link_is_gone(fed: Federation, tmp_path: Path) -> None:
    world = await JobWorld(fed, tmp_path).start(jobs=SimJobs(duration=1.5), extra=False)
    try:
        await world.admin.call("CreateJob", jpb.CreateJobRequest(spec=job_spec()))
        await _approved(world, "atlas-fr-news")
        await world.wait_job("atlas-fr-news", JobPhase.RUNNING)
        site = world.fed.sites["fr-par-1"]
        await site.stop()  # the link is gone; the run is the site's
        await asyncio.sleep(1.6)
        assert [p.phase for p in await site.backend.job_progress()] == [JobPhase.SUCCEEDED]
        assert (await world.job("atlas-fr-news")).phase == JobPhase.RUNNING  # the federation waits
        site.start()
        await world.wait_job("atlas-fr-news", JobPhase.SUCCEEDED)
    finally:
        await world.close()


async def test_a_site_claiming_another_countrys_data_is_refused_and_audited(
    fed: Federation, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A modified site agent that offers everything it holds: the federation keeps only what is
    under the site's own law, refuses the rest naming the field, and audits it (bounded)."""

    async def everything(backend: Any, country: str, warned: Any = None) -> list[Any]:
        return list(await backend.datasets())

    monkeypatch.setattr(site_jobs, "offered", everything)
    world = await JobWorld(fed, tmp_path).start()
    try:

        async def audited() -> bool:
            return any(
                e.action == "link.refused" and "jurisdiction" in e.reason and e.object == "site/de-fra-1"
                for e in await world.audit()
            )

        await world.until(audited, 10, "the refusal audited")
        resp = await world.admin.call("ListDatasets", jpb.ListDatasetsRequest())
        assert ("de-fra-1", "fr-leak") not in {(d.site_id, d.dataset.name) for d in resp.datasets}
        assert ("de-fra-1", "de-news") in {(d.site_id, d.dataset.name) for d in resp.datasets}
        refusals = [
            e for e in await world.audit() if e.action == "link.refused" and e.object == "site/de-fra-1"
        ]
        await asyncio.sleep(1.0)  # three more heartbeats: still one event per window, not one each
        assert (
            len(
                [e for e in await world.audit() if e.action == "link.refused" and e.object == "site/de-fra-1"]
            )
            <= len(refusals) + 1
        )
    finally:
        await world.close()


async def test_another_site_cannot_report_progress_for_a_job_it_does_not_run(
    world: JobWorld, monkeypatch: pytest.MonkeyPatch
) -> None:
    """de-fra-1 claims the French job succeeded (with a digest): the federation follows only the
    site the job was sent to."""
    await world.admin.call("CreateJob", jpb.CreateJobRequest(spec=job_spec()))
    job = await world.job("atlas-fr-news")
    liar = world.fed.sites["de-fra-1"].backend

    async def lies() -> list[JobProgress]:
        return [
            JobProgress(job.job_id, JobPhase.SUCCEEDED, 100, 0.1, 0.99, output_digest="sha256:" + "ee" * 32)
        ]

    monkeypatch.setattr(liar, "job_progress", lies)

    async def reported() -> bool:
        rec = await world.fed.cp.runtime.registry.get("de-fra-1")  # type: ignore[union-attr]
        return any(j["job_id"] == job.job_id for j in rec.jobs)

    await world.until(reported, 10, "the false report stored as de-fra-1's")
    await _approved(world, "atlas-fr-news")
    done = await world.wait_job("atlas-fr-news", JobPhase.SUCCEEDED)
    assert done.progress.output_digest != "sha256:" + "ee" * 32  # fr-par-1's own result
    assert list(done.sites) == ["fr-par-1"]


async def test_an_approved_job_waits_pending_while_no_site_qualifies(fed: Federation, tmp_path: Path) -> None:
    world = await JobWorld(fed, tmp_path).start(extra=False)
    try:
        await world.admin.call("CreateJob", jpb.CreateJobRequest(spec=job_spec()))
        site = world.fed.sites["fr-par-1"]
        await site.stop()

        async def unreachable() -> bool:
            rec = await world.fed.cp.runtime.registry.get("fr-par-1")  # type: ignore[union-attr]
            return rec.status == "Unreachable"

        await world.until(unreachable, 10, "fr-par-1 unreachable")
        await _approved(world, "atlas-fr-news")
        pending = await world.wait_job("atlas-fr-news", JobPhase.PENDING)
        assert "no eligible site" in pending.message
        assert [list(e.reasons) for e in pending.excluded] == [["status: Unreachable, not Ready"]]
        assert not site.backend.runs
        site.start()  # back: placed again, sent, run
        await world.wait_job("atlas-fr-news", JobPhase.SUCCEEDED)
    finally:
        await world.close()


async def test_listing_datasets_is_bounded(world: JobWorld, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(job_servicer, "MAX_LISTED", 1)
    resp = await world.admin.call("ListDatasets", jpb.ListDatasetsRequest())
    assert (len(resp.datasets), resp.more) == (1, 1)
