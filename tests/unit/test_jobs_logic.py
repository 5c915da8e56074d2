"""The pure decisions of localisation jobs, as tables: what a site may report of its datasets,
where a job may be admitted, what the site's jobs policy vetoes, what a site vetoes at RunJob,
how a job's phase follows its site, and the simulated run."""

from __future__ import annotations

from typing import Any

import pytest

from controlplane.api.v1 import release_pb2 as rpb
from controlplane.api.v1 import types_pb2 as tpb
from controlplane.domain import admission, job_spec
from controlplane.domain import releases as rel
from controlplane.domain.datasets import Dataset, DatasetSummary, DatasetWant
from controlplane.domain.job_records import JobRecord, followed, place, workload
from controlplane.domain.jobs import JobPhase, JobRun, JobsPolicy
from controlplane.domain.records import SiteRecord, SiteStatus
from controlplane.domain.site_input import accepted_datasets, validate_job_statuses
from controlplane.errors import InvalidArgument
from operators.agent import jobs as site_jobs
from operators.agent.backend import MemoryBackend, Refused
from operators.agent.policy import LocalPolicy
from operators.agent.sim_jobs import SimJobs, SimRun, progress
from operators.agent.variants import SiteVariants

FR_NEWS = {
    "name": "fr-news",
    "jurisdiction": "FR",
    "classification": "personal",
    "languages": ["fr", "fr-CA"],
    "purposes": ["fine-tune", "evaluate"],
    "size": "large",
}
IMAGE = "registry.example/trainer@sha256:" + "7e" * 32


def site(sid: str, country: str, datasets: list[dict[str, Any]] | None = None, **kw: Any) -> SiteRecord:
    return SiteRecord(
        site_id=sid,
        country=country,
        status=SiteStatus.READY,
        capacity={"h100": {"total": 16, "free": 16}},
        security_tier=3,
        datasets=datasets or [],
        **kw,
    )


def base(allow: tuple[str, ...] = (), tier: int = 1) -> rpb.SignedRelease:
    r = rpb.ModelRelease(name="atlas-1.2.0", model="atlas", version="1.2.0", risk_tier=tier)
    r.export.allow_countries.extend(allow)
    return rpb.SignedRelease(release=r, publisher="acme")


def spec(**over: Any) -> dict[str, Any]:
    d: dict[str, Any] = {
        "name": "atlas-fr",
        "base": "atlas-1.2.0",
        "dataset": {"language": "fr", "country": "FR"},
        "purpose": "fine-tune",
        "trainer": {"image": IMAGE, "command": ["train"]},
        "resources": {"accelerator": "h100", "accelerators": 8, "max_hours": 12},
        "output": {"name": "atlas-1.2.0-fr", "version": "1.2.0-fr.1"},
    }
    d.update(over)
    return d


@pytest.mark.parametrize(
    ("item", "field"),
    [
        (FR_NEWS | {"jurisdiction": "DE"}, "heartbeat.datasets[0].jurisdiction"),
        (FR_NEWS | {"name": "Bad Name"}, "heartbeat.datasets[0].name"),
        (FR_NEWS | {"languages": ["\x1b[2J"]}, "heartbeat.datasets[0].languages[0]"),
        (FR_NEWS | {"languages": []}, "heartbeat.datasets[0].languages"),
        (FR_NEWS | {"purposes": ["train-anything"]}, "heartbeat.datasets[0].purposes[0]"),
        (FR_NEWS | {"classification": "secret"}, "heartbeat.datasets[0].classification"),
        (FR_NEWS | {"size": "1234567 records"}, "heartbeat.datasets[0].size"),
    ],
)
def test_a_bad_dataset_summary_is_refused_naming_the_field(item: dict[str, Any], field: str) -> None:
    ok, refused = accepted_datasets("heartbeat.datasets", [item, FR_NEWS | {"name": "fr-web"}], "FR")
    assert [d["name"] for d in ok] == ["fr-web"]  # the good one is kept
    assert [e.field for e in refused] == [field]


def test_a_dataset_reported_twice_is_kept_once() -> None:
    ok, refused = accepted_datasets("d", [FR_NEWS, FR_NEWS], "FR")
    assert len(ok) == 1 and refused[0].field == "d[1].name"


def test_job_statuses_bounded_and_checked() -> None:
    validate_job_statuses("j", [{"job_id": "a-1", "phase": "Running"}])
    with pytest.raises(InvalidArgument, match="at most 64"):
        validate_job_statuses("j", [{"job_id": f"a-{i}", "phase": "Running"} for i in range(65)])
    with pytest.raises(InvalidArgument) as e:
        validate_job_statuses("j", [{"job_id": "a-1", "phase": "Admitted"}])
    assert e.value.field == "j[0].phase"
    with pytest.raises(InvalidArgument) as e:
        validate_job_statuses("j", [{"job_id": "a-1", "phase": "Succeeded", "output_digest": "md5:x"}])
    assert e.value.field == "j[0].output_digest"


@pytest.mark.parametrize(
    ("want", "held", "ok"),
    [
        (DatasetWant(language="fr", country="FR"), FR_NEWS, True),
        (DatasetWant(language="fr-CA", country="FR"), FR_NEWS, True),
        (DatasetWant(language="f", country="FR"), FR_NEWS, False),  # a prefix is not a language
        (DatasetWant(language="de", country="FR"), FR_NEWS, False),
        (DatasetWant(language="fr", country="DE"), FR_NEWS, False),
        (DatasetWant(name="fr-news"), FR_NEWS, True),
        (DatasetWant(name="fr-web"), FR_NEWS, False),
    ],
)
def test_dataset_matching(want: DatasetWant, held: dict[str, Any], ok: bool) -> None:
    assert want.matches(held) is ok


FR_POLICY = {"jobs": {"allow_purposes": ["evaluate"]}}


@pytest.mark.parametrize(
    ("s", "w_over", "reasons"),
    [
        (site("fr-1", "FR", [FR_NEWS]), {}, []),
        (site("fr-2", "FR"), {}, ["dataset: no dataset language fr in FR at this site"]),
        (
            site("de-1", "DE", [FR_NEWS | {"jurisdiction": "DE"}]),
            {},
            ["dataset: the data is in FR, this site in DE"],
        ),
        (
            site("fr-3", "FR", [FR_NEWS | {"purposes": ["evaluate"]}]),
            {},
            ["dataset: fr-news does not allow purpose fine-tune"],
        ),
        (
            site("fr-4", "FR", [FR_NEWS], policy=FR_POLICY),
            {},
            ["site policy: jobs.allowPurposes ['evaluate'] does not include fine-tune"],
        ),
        (
            site(
                "fr-5", "FR", [FR_NEWS], policy={"jobs": {"max_accelerators": 4, "allow_images": ["other/"]}}
            ),
            {},
            ["site policy: jobs.allowImages does not allow " + IMAGE],  # the first veto is the reason
        ),
        (site("fr-6", "FR", [FR_NEWS]), {"allow": ("DE",)}, ["export: FR not in allowCountries ['DE']"]),
        (site("fr-7", "FR", [FR_NEWS]), {"tier": 4}, ["security: site tier 3 < release risk tier 4"]),
        (
            site("fr-8", "FR", [FR_NEWS]).replace(capacity={"h100": {"total": 16, "free": 2}}),
            {},
            ["capacity: needs 8 h100, 2 free for the federation"],
        ),
    ],
)
def test_job_admission_table(s: SiteRecord, w_over: dict[str, Any], reasons: list[str]) -> None:
    w = workload(spec(), base(w_over.get("allow", ()), w_over.get("tier", 1)), "FR")
    assert admission.reasons(s, w) == reasons


def test_a_release_without_dataset_is_not_judged_by_the_job_filters() -> None:
    w = admission.Workload(risk_tier=1)
    assert admission.reasons(site("fr-2", "FR", policy=FR_POLICY), w) == []


def test_place_lists_the_eligible_best_first_and_every_other_with_reasons() -> None:
    sites = [site("fr-b", "FR", [FR_NEWS]), site("fr-a", "FR", [FR_NEWS]), site("de-1", "DE")]
    plan = place(sites, workload(spec(), base(), "FR"))
    assert plan.candidates == ["fr-a", "fr-b"]
    assert [e["site"] for e in plan.excluded] == ["de-1"]


@pytest.mark.parametrize(
    ("over", "field"),
    [
        ({"name": "Bad"}, "metadata.name"),
        ({"base": ""}, "spec.base"),
        ({"dataset": {}}, "spec.dataset.name"),
        ({"dataset": {"language": "fr"}}, "spec.dataset.country"),
        ({"dataset": {"language": "french", "country": "FR"}}, "spec.dataset.language"),
        ({"purpose": "train"}, "spec.purpose"),
        ({"trainer": {"image": "registry.example/trainer:latest"}}, "spec.trainer.image"),
        ({"trainer": {"image": IMAGE, "command": ["x"] * 65}}, "spec.trainer.command"),
        ({"resources": {"accelerators": 8}}, "spec.resources.accelerator"),
        ({"output": {}}, "spec.output"),
        ({"output": {"name": "atlas-1.2.0", "version": "1"}}, "spec.output.name"),
    ],
)
def test_job_spec_errors_name_the_field(over: dict[str, Any], field: str) -> None:
    with pytest.raises(InvalidArgument) as e:
        job_spec.validate(spec(**over))
    assert e.value.field == field


def test_an_evaluation_needs_no_output() -> None:
    assert job_spec.validate(spec(purpose="evaluate", output={})) == DatasetWant("", "fr", "FR")


@pytest.mark.parametrize(
    ("policy", "kw", "veto"),
    [
        (JobsPolicy(), {}, None),
        (JobsPolicy(allow_publishers=frozenset({"acme"})), {"publisher": "other"}, "jobs.allowPublishers"),
        (JobsPolicy(allow_images=frozenset({"registry.example/"})), {}, None),
        (JobsPolicy(allow_images=frozenset({"registry.example"})), {}, "jobs.allowImages"),  # not a prefix
        (JobsPolicy(max_accelerators=8), {}, None),
        (JobsPolicy(max_accelerators=4), {}, "jobs.maxAccelerators is 4, the job needs 8"),
        (JobsPolicy(max_hours=12), {}, None),
        (JobsPolicy(max_hours=12), {"hours": 0.0}, "asks for no time limit"),
        (JobsPolicy(max_hours=6), {}, "jobs.maxHours is 6"),
    ],
)
def test_jobs_policy_table(policy: JobsPolicy, kw: dict[str, Any], veto: str | None) -> None:
    args = {
        "purpose": "fine-tune",
        "publisher": "acme",
        "image": IMAGE,
        "accelerators": 8,
        "hours": 12.0,
    } | kw
    why = policy.check(**args)
    assert (why is None) if veto is None else (why is not None and veto in why)


def _payload(**over: Any) -> tpb.RunJobPayload:
    d = {
        "job_id": "atlas-fr-1",
        "job": "atlas-fr",
        "dataset": "fr-news",
        "purpose": "fine-tune",
        "image": IMAGE,
    }
    d.update(over)
    return tpb.RunJobPayload(**d)


def _backend(*datasets: dict[str, Any]) -> MemoryBackend:
    return MemoryBackend(datasets=[Dataset(DatasetSummary.parse(d)) for d in datasets], jobs=SimJobs())


@pytest.mark.parametrize(
    ("held", "policy", "payload", "veto"),
    [
        ((FR_NEWS,), LocalPolicy(), _payload(), None),
        ((), LocalPolicy(), _payload(), "dataset: 'fr-news' is not held at this site"),
        (
            (FR_NEWS | {"jurisdiction": "DE"},),
            LocalPolicy(),
            _payload(),
            "jurisdiction DE is not this site's country",
        ),
        (
            (FR_NEWS | {"purposes": ["evaluate"]},),
            LocalPolicy(),
            _payload(),
            "allows evaluate, not fine-tune",
        ),
        (
            (FR_NEWS,),
            LocalPolicy(jobs=JobsPolicy(max_accelerators=2)),
            _payload(accelerators=4),
            "maxAccelerators",
        ),
        ((FR_NEWS,), LocalPolicy(refusal="policy: unreadable"), _payload(), "policy: unreadable"),
    ],
)
async def test_run_job_vetoes_at_the_site(
    held: tuple[dict[str, Any], ...], policy: LocalPolicy, payload: tpb.RunJobPayload, veto: str | None
) -> None:
    backend = _backend(*held)
    if veto is None:
        await site_jobs.run_job(backend, policy, "FR", payload)
        assert list(backend.runs) == ["atlas-fr-1"]
        await site_jobs.run_job(backend, policy, "FR", payload)  # idempotent on the run id
        assert len(backend.runs) == 1
    else:
        with pytest.raises(Refused, match=veto):
            await site_jobs.run_job(backend, policy, "FR", payload)
        assert not backend.runs


async def test_summaries_sent_upstream_are_only_the_sites_own_jurisdiction() -> None:
    backend = _backend(FR_NEWS, FR_NEWS | {"name": "de-data", "jurisdiction": "DE"})
    sent = await site_jobs.summaries(backend, "FR")
    assert [s.name for s in sent] == ["fr-news"]
    assert set(tpb.DatasetSummary.DESCRIPTOR.fields_by_name) == {
        "name", "jurisdiction", "classification", "languages", "purposes", "size"
    }  # fmt: skip


def test_simulated_run_progress() -> None:
    run = SimRun(JobRun("j-1", "j", "fr-news", "fine-tune", IMAGE), started=100.0)
    model = SimJobs(duration=10.0)
    half = progress(run, model, now=105.0)
    assert (half.phase, half.step) == (JobPhase.RUNNING, 50) and half.eval_score is None
    start_loss = progress(run, model, now=100.0).loss
    assert start_loss is not None and half.loss is not None and start_loss > half.loss
    end = progress(run, model, now=111.0)
    assert end.phase is JobPhase.SUCCEEDED and end.output_digest.startswith("sha256:") and end.eval_score
    failed = progress(run, SimJobs(10.0, JobPhase.FAILED), now=111.0)
    assert failed.phase is JobPhase.FAILED and not failed.output_digest


def _admitted() -> JobRecord:
    return JobRecord(
        name="j", spec=spec(), phase=JobPhase.ADMITTED, job_id="j-1", sites=["fr-1"], run_directive="d-1"
    )


@pytest.mark.parametrize(
    ("report", "directive", "phase", "message"),
    [
        (None, ("Pending", ""), JobPhase.ADMITTED, ""),
        (None, ("Rejected", "policy: no"), JobPhase.REFUSED, "refused by fr-1: policy: no"),
        (None, ("Failed", "cannot be sent"), JobPhase.FAILED, "directive was failed"),
        ({"phase": "Running", "step": 3}, ("Acked", ""), JobPhase.RUNNING, "running at fr-1"),
        ({"phase": "Succeeded", "step": 100}, ("Acked", ""), JobPhase.SUCCEEDED, "succeeded at fr-1"),
        ({"phase": "Failed", "reason": "oom"}, ("Acked", ""), JobPhase.FAILED, "failed at fr-1: oom"),
        ({"phase": "Bogus"}, ("Acked", ""), JobPhase.ADMITTED, ""),
    ],
)
def test_a_job_follows_its_site(
    report: dict[str, Any] | None, directive: tuple[str, str], phase: JobPhase, message: str
) -> None:
    new = followed(_admitted(), report, directive)
    assert new.phase == phase and message in new.message


def test_a_final_job_follows_nothing() -> None:
    done = _admitted().replace(phase=JobPhase.CANCELLED)
    assert followed(done, {"phase": "Succeeded"}, ("Acked", "")) == done


@pytest.mark.parametrize(
    ("allow", "variant_of", "veto"),
    [
        (["FR"], "atlas-1.2.0", None),
        ([], "atlas-1.2.0", "must allow only FR"),
        (["FR", "DE"], "atlas-1.2.0", "must allow only FR"),
        (["DE"], "atlas-1.2.0", "must allow only FR"),
        (["FR"], "other-1.0.0", "is not the job's base"),
    ],
)
async def test_the_site_signs_only_a_variant_that_stays_in_its_country(
    tmp_path: Any, allow: list[str], variant_of: str, veto: str | None
) -> None:
    variant = rpb.ModelRelease(
        name="atlas-1.2.0-fr", model="atlas", version="1", risk_tier=1, variant_of=variant_of
    )
    variant.export.allow_countries.extend(allow)
    payload = _payload(base_release="atlas-1.2.0", variant=variant)
    backend, variants = _backend(FR_NEWS), SiteVariants(tmp_path)
    if veto is not None:
        with pytest.raises(Refused, match=veto):
            await site_jobs.run_job(backend, LocalPolicy(), "FR", payload, variants)
        return
    await site_jobs.run_job(backend, LocalPolicy(), "FR", payload, variants)
    backend.jobs = SimJobs(duration=0.0)  # done at once
    [status] = await site_jobs.statuses(backend, variants)
    signed = rpb.ModelRelease()
    signed.CopyFrom(variant)
    signed.digest = status.output_digest
    assert rel.verify(bytes(status.publisher_key), bytes(status.variant_signature), signed)
    assert (tmp_path / "publisher.key").exists()  # made here; only the public half is in the status
