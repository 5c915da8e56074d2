"""One admission point: a low-level Deploy passes the same admission chain as a rollout's
placement (issue #14, part 3), so the export rule, the security tier, the site's policy and any
filter registered later cannot be bypassed by deploying to a site directly."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from controlplane.api.v1 import federation_pb2 as fpb
from controlplane.api.v1 import release_pb2 as rpb
from controlplane.api.v1 import rollouts_pb2 as opb
from controlplane.api.v1 import types_pb2 as tpb
from controlplane.domain import admission
from controlplane.domain import releases as rel
from controlplane.domain.records import SiteRecord
from controlplane.errors import FailedPrecondition
from tests.support.federation import Federation
from tests.support.requests import DIGEST, PUBLISHER, PUBLISHER_KEY, add_publisher


async def _release(fed: Federation, name: str, **fields: object) -> None:
    r = rpb.ModelRelease(name=name, model="atlas", version="1.2.0", digest=DIGEST, risk_tier=1, **fields)  # type: ignore[arg-type]
    async with fed.client() as c:
        await add_publisher(c)
        signed = rpb.SignedRelease(release=r, publisher=PUBLISHER, signature=rel.sign(PUBLISHER_KEY, r))
        await c.call("CreateRelease", opb.CreateReleaseRequest(signed=signed))


def _deploy(site: str, release: str) -> fpb.DeployRequest:
    payload = tpb.DeployPayload(deployment_name="atlas", replicas=1)
    return fpb.DeployRequest(site_id=site, deploy=payload, release=release)


async def _queued(fed: Federation, site: str) -> list[str]:
    async with fed.client() as c:
        resp = await c.call("ListDirectives", fpb.ListDirectivesRequest(site_id=site))
    return [r.directive.kind for r in resp.directives if r.directive.kind == tpb.DIRECTIVE_KIND_DEPLOY]


async def test_a_low_level_deploy_obeys_the_export_rule(fed: Federation) -> None:
    await fed.add_site("fr-par-1", "FR")
    await _release(fed, "atlas-no-fr", export=rpb.ExportRule(deny_countries=["FR"]))
    async with fed.client() as c:
        with pytest.raises(FailedPrecondition, match="export: FR in denyCountries"):
            await c.call("Deploy", _deploy("fr-par-1", "atlas-no-fr"))
    assert await _queued(fed, "fr-par-1") == []


@pytest.fixture
def residency() -> Iterator[None]:
    @admission.filter_plugin("residency")
    def _residency(site: SiteRecord, w: admission.Workload) -> str | None:
        return None if site.labels.get("residency") == "eu" else "residency: not an EU-resident site"

    yield
    admission.unregister("residency")


async def test_a_filter_registered_once_binds_low_level_deploys_too(fed: Federation, residency: None) -> None:
    await fed.add_site("fr-par-1", "FR")
    await _release(fed, "atlas-1.2.0")
    async with fed.client() as c:
        with pytest.raises(FailedPrecondition, match="residency: not an EU-resident site"):
            await c.call("Deploy", _deploy("fr-par-1", "atlas-1.2.0"))
    assert await _queued(fed, "fr-par-1") == []


async def test_an_admitted_low_level_deploy_is_queued_even_to_a_cordoned_site(fed: Federation) -> None:
    """The admin names the site: placement's own choices (cordon, status) do not apply."""
    await fed.add_site("fr-par-1", "FR")
    await _release(fed, "atlas-1.2.0")
    async with fed.client() as c:
        await c.call("CordonSite", fpb.CordonSiteRequest(site_id="fr-par-1", reason="maintenance"))
        await c.call("Deploy", _deploy("fr-par-1", "atlas-1.2.0"))
    assert await _queued(fed, "fr-par-1") == [tpb.DIRECTIVE_KIND_DEPLOY]
