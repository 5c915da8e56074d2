"""Localised variants stay home (issue 15, part 4), end to end over mTLS with simulated sites: a
succeeded fine-tune registers a release variantOf its base, signed by the producing site's own
key (registered for its country only), its export locked to the data's country; placement keeps
it in that country with the export reason everywhere else; an ordinary rollout takes it to that
country's sites; widening its export needs that country's steward, explicitly and audited."""

from __future__ import annotations

import stat
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from controlplane.api.v1 import federation_pb2 as fpb
from controlplane.api.v1 import jobs_pb2 as jpb
from controlplane.api.v1 import release_pb2 as rpb
from controlplane.api.v1 import rollouts_pb2 as opb
from controlplane.api.v1 import types_pb2 as tpb
from controlplane.domain import releases as rel
from controlplane.domain.jobs import JobPhase
from controlplane.errors import FailedPrecondition, NotLeader, PermissionDenied
from controlplane.pki.identity import Role
from controlplane.store import Compare
from operators.agent.handlers import exported_here
from tests.integration.test_rollouts import spec as rollout_spec
from tests.support.federation import Federation
from tests.support.job_world import JobWorld, job_spec
from tests.support.requests import PUBLISHER, PUBLISHER_KEY

VARIANT = "atlas-1.2.0-fr"


@pytest.fixture
async def world(fed: Federation, tmp_path: Path) -> AsyncIterator[JobWorld]:
    w = await JobWorld(fed, tmp_path).start()
    try:
        await w.admin.call("CreateJob", jpb.CreateJobRequest(spec=job_spec()))
        async with w.person("claire", Role.STEWARD, "FR") as fr:
            await fr.call("ApproveJob", jpb.ApproveJobRequest(name="atlas-fr-news", country="FR"))
        await w.wait_job("atlas-fr-news", JobPhase.SUCCEEDED)

        async def registered() -> bool:
            return bool((await w.job("atlas-fr-news")).variant)

        await w.until(registered, 15, "the variant registered")
        yield w
    finally:
        await w.close()


async def _variant(w: JobWorld) -> rpb.SignedRelease:
    return (await w.admin.call("GetRelease", opb.GetReleaseRequest(name=VARIANT))).signed


async def test_a_succeeded_fine_tune_registers_a_variant_signed_at_its_site(world: JobWorld) -> None:
    job = await world.job("atlas-fr-news")
    assert job.variant == VARIANT and "variant atlas-1.2.0-fr registered" in job.message
    signed = await _variant(world)
    r = signed.release
    assert (r.variant_of, r.model, r.version) == ("atlas-1.2.0", "atlas", "1.2.0-fr.1")
    assert r.digest == job.progress.output_digest  # the trained artifact, which stays at the site
    assert list(r.locales) == ["fr"] and list(r.export.allow_countries) == ["FR"]
    assert signed.publisher == "s-fr-par-1"
    site = world.fed.sites["fr-par-1"]
    key_file = site.directory / "publisher.key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600  # generated at the site, kept there
    assert bytes(signed.publisher_key) == site.agent.variants.public_key()
    assert rel.verify(bytes(signed.publisher_key), bytes(signed.signature), r)
    # The site's key is trusted by the sites of its country only.
    for sid, trusted in (("fr-lyo-1", True), ("de-fra-1", False), ("jp-tyo-1", False)):
        agent = world.fed.sites[sid].agent

        async def learned(agent: Any = agent, trusted: bool = trusted) -> bool:
            # The new publisher set was applied (a Publishers directive after enrollment) ...
            applied = any(e.kind == "Publishers" and e.outcome == "applied" for e in agent.record.entries)
            # ... and holds the site's key, or does not.
            return applied and (bytes(signed.publisher_key) in agent.trust.publisher_keys()) is trusted

        await world.until(learned, 10, f"{sid}'s publisher set")
    # And at enrollment: a site joining later gets its own country's set.
    fr_new = await world.fed.add_site("fr-nce-1", "FR")
    de_new = await world.fed.add_site("de-ber-1", "DE")
    assert bytes(signed.publisher_key) in fr_new.agent.trust.publisher_keys()
    assert bytes(signed.publisher_key) not in de_new.agent.trust.publisher_keys()
    events = [(e.action, e.actor, e.object) for e in await world.audit()]
    controller = "controller/jobs@cp-0"
    assert ("publisher.add", controller, "publisher/s-fr-par-1") in events
    assert ("release.create", controller, f"release/{VARIANT}") in events
    assert ("job.succeeded", controller, "job/atlas-fr-news") in events


async def test_the_variant_is_placed_only_in_its_country_and_rolled_out_there(world: JobWorld) -> None:
    plan = await world.admin.call(
        "PlanRollout", opb.PlanRolloutRequest(spec=rollout_spec("fr-variant", VARIANT))
    )
    assert sorted(s.site for s in plan.selected) == ["fr-lyo-1", "fr-par-1"]
    reasons = {e.site: list(e.reasons) for e in plan.excluded}
    assert reasons == {
        "de-fra-1": ["export: DE not in allowCountries ['FR']"],
        "jp-tyo-1": ["export: JP not in allowCountries ['FR']"],
    }
    # A low-level deploy at a German site is refused by the same chain.
    req = fpb.DeployRequest(
        site_id="de-fra-1", release=VARIANT, deploy=tpb.DeployPayload(deployment_name="atlas-fr", replicas=1)
    )
    with pytest.raises(FailedPrecondition, match="export: DE not in allowCountries"):
        await world.admin.call("Deploy", req)
    # An ordinary gated rollout takes it to the French sites.
    await world.admin.call(
        "CreateRollout", opb.CreateRolloutRequest(spec=rollout_spec("fr-variant", VARIANT))
    )

    async def completed() -> bool:
        r = (await world.admin.call("GetRollout", opb.GetRolloutRequest(name="fr-variant"))).rollout
        assert r.phase not in ("Failed", "RolledBack", "Aborted"), r.message
        return r.phase == "Completed"

    await world.until(completed, 30, "the variant's rollout")
    running = {
        sid
        for sid, s in world.fed.sites.items()
        if any(w.release == VARIANT for w in s.backend.items.values())
    }
    assert running == {"fr-par-1", "fr-lyo-1"}


async def test_widening_a_variants_export_needs_its_countrys_steward(world: JobWorld) -> None:
    variant = (await _variant(world)).release

    def copy(name: str, allow: list[str]) -> opb.CreateReleaseRequest:
        r = rpb.ModelRelease(
            name=name, model=variant.model, version=variant.version, digest=variant.digest, risk_tier=1
        )
        r.export.allow_countries.extend(allow)
        return opb.CreateReleaseRequest(
            signed=rpb.SignedRelease(release=r, publisher=PUBLISHER, signature=rel.sign(PUBLISHER_KEY, r))
        )

    with pytest.raises(FailedPrecondition, match="its export stays FR unless the FR steward approves"):
        await world.admin.call("CreateRelease", copy("atlas-fr-anywhere", []))
    approve = jpb.ApproveVariantExportRequest(
        release=VARIANT, allow_countries=["FR", "BE"], reason="BE pilot"
    )
    async with world.person("dieter", Role.STEWARD, "DE") as de:
        with pytest.raises(PermissionDenied, match="steward of DE cannot approve for FR"):
            await de.call("ApproveVariantExport", approve)
    with pytest.raises(PermissionDenied):  # never an admin, whatever the rollout policy
        await world.admin.call("ApproveVariantExport", approve)
    async with world.person("claire", Role.STEWARD, "FR") as fr:
        resp = await fr.call("ApproveVariantExport", approve)
    assert (resp.country, list(resp.approved_exports)) == ("FR", ["BE,FR"])
    await world.admin.call("CreateRelease", copy("atlas-fr-be", ["BE", "FR"]))  # exactly what was approved
    with pytest.raises(FailedPrecondition, match="stays FR"):
        await world.admin.call("CreateRelease", copy("atlas-fr-de", ["FR", "DE"]))
    # Nobody but the federation registers a variant.
    forged = copy("atlas-fr-2", ["FR"])
    forged.signed.release.variant_of = "atlas-1.2.0"
    forged.signed.signature = rel.sign(PUBLISHER_KEY, forged.signed.release)
    with pytest.raises(FailedPrecondition, match="variantOf"):
        await world.admin.call("CreateRelease", forged)
    events = [(e.action, e.outcome, e.actor) for e in await world.audit() if e.object == f"release/{VARIANT}"]
    assert ("release.export-approve", "success", "spiffe://test.stargate/user/claire") in events
    assert sum(1 for a, o, _ in events if a == "release.export-approve" and o == "denied") == 2


def test_a_site_refuses_a_release_whose_signed_export_excludes_it() -> None:
    payload = {"signed_release": {"release": {"export": {"allow_countries": ["FR"]}}}}
    assert exported_here(payload, "FR") is None
    assert exported_here(payload, "DE") == "release: its signed export: DE not in allowCountries ['FR']"
    assert exported_here({"signed_release": {"release": {}}}, "DE") is None  # no rule: everywhere


async def test_a_deposed_leader_cannot_register_a_variants_publisher_or_release(world: JobWorld) -> None:
    """Every write of the variant's registration carries the leader's fence: with a fence that no
    longer holds, it is NotLeader, and nothing is stored."""
    rt = world.fed.cp.runtime  # type: ignore[union-attr]
    await rt.store.put("/stargate/test-fence", b"term-1")
    kv = await rt.store.get("/stargate/test-fence")
    assert kv is not None
    fence = [Compare.unchanged(kv)]
    await rt.store.put("/stargate/test-fence", b"term-2")  # another leader since
    with pytest.raises(NotLeader):
        await rt.releases.add_publisher("controller/jobs@old", "s-elsewhere", b"\1" * 32, ["FR"], fence=fence)
    assert "s-elsewhere" not in {p["name"] for p in await rt.releases.publishers()}
    r = rpb.ModelRelease(
        name="atlas-fenced", model="atlas", version="9", digest="sha256:" + "9a" * 32, risk_tier=1
    )
    signed = rpb.SignedRelease(release=r, publisher=PUBLISHER, signature=rel.sign(PUBLISHER_KEY, r))
    with pytest.raises(NotLeader):
        await rt.releases.create("controller/jobs@old", signed, fence=fence)
    assert "atlas-fenced" not in {s.release.name for s in await rt.releases.list()}
