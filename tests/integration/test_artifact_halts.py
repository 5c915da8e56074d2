"""Halts bind the artifact (model and digest), not a name: over real mTLS, a real control plane and
simulated sites running the real site-agent core; the low-level deploy through the real CLI."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from controlplane.api.v1 import federation_pb2 as fpb
from controlplane.api.v1 import safety_pb2 as xpb
from controlplane.api.v1 import types_pb2 as tpb
from controlplane.client.federation import FederationClient
from controlplane.domain import artifact_halts as ah
from controlplane.errors import FailedPrecondition
from controlplane.pki.identity import Role
from controlplane.services.low_level_deploy import release_payload
from tests.integration.test_safety import action
from tests.support.federation import Federation, approve
from tests.support.federation import resume as signed_resume
from tests.support.procs import Result, run
from tests.support.requests import register_release
from tests.support.wait import until

DIGEST = "sha256:" + "a1" * 32
OTHER = "sha256:" + "b2" * 32


async def send_deploy(c: FederationClient, name: str, release: str) -> tpb.Directive:
    """A low-level Deploy of the registered ``release`` as ``name`` (one replica)."""
    req = fpb.DeployRequest(
        site_id="fr-par-1", deploy=tpb.DeployPayload(deployment_name=name, replicas=1), release=release
    )
    return (await c.call("Deploy", req)).directive


async def _cli(fed: Federation, *args: str) -> Result:
    return await asyncio.to_thread(run, "--server", fed.address, *args, config=fed.dir / "stargatectl.yaml")


async def _queue(c: FederationClient, site: str) -> list[tpb.DirectiveRecord]:
    return list((await c.call("ListDirectives", fpb.ListDirectivesRequest(site_id=site))).directives)


async def _halted(c: FederationClient, release: str) -> xpb.SafetyAction:
    halt = (await c.call("Halt", xpb.HaltRequest(release=release, scope="global", reason="sev1"))).action
    await until(lambda: _state_is(c, halt.id, "Halted"), what=f"halt of {release} settled")
    return halt


async def _state_is(c: FederationClient, aid: str, state: str) -> bool:
    return (await action(c, aid)).state == state


async def _setup(fed: Federation) -> tuple[FederationClient, object]:
    site = await fed.add_site("fr-par-1", "FR")
    c = fed.client()
    await c.__aenter__()
    await register_release(c, "atlas-r1", "atlas", "1.0.0", DIGEST)
    await register_release(c, "atlas-copy", "atlas", "1.0.0", DIGEST)  # the same artifact, renamed
    await register_release(c, "atlas-r2", "atlas", "2.0.0", OTHER)  # another digest
    return c, site


async def test_low_level_deploy_of_halted_digest_refused_at_federation(fed: Federation) -> None:
    c, site = await _setup(fed)
    try:
        await send_deploy(c, "atlas", "atlas-r1")
        await until(lambda: "atlas" in site.backend.items, what="atlas deployed")  # type: ignore[attr-defined]
        await _halted(c, "atlas-r1")
        before = await _queue(c, "fr-par-1")

        # The same model and digest under another deployment name and another release name: refused.
        r = await _cli(fed, "deploy", "--site", "fr-par-1", "--name", "sneaky", "--release", "atlas-copy")
        assert r.code != 0 and "Traceback" not in r.err and len(r.err.strip().splitlines()) == 1, r.err
        assert "is halted" in r.err and "atlas" in r.err and "resume that halt first" in r.err, r.err
        # So is the halted release itself under another name, straight over gRPC.
        with pytest.raises(FailedPrecondition, match="is halted"):
            await send_deploy(c, "other-name", "atlas-r1")
        assert await _queue(c, "fr-par-1") == before  # nothing queued
        events = (await c.call("ListAuditEvents", fpb.ListAuditEventsRequest())).events
        denied = [e for e in events if e.action == "directive.issue" and e.outcome == "denied"]
        assert len(denied) == 2 and all("is halted" in e.reason for e in denied)

        # A release with another digest is not affected.
        r = await _cli(fed, "deploy", "--site", "fr-par-1", "--name", "atlas-v2", "--release", "atlas-r2")
        assert r.code == 0, r.err
        await until(lambda: "atlas-v2" in site.backend.items, what="atlas-v2 deployed")  # type: ignore[attr-defined]
        assert not site.backend.items["atlas-v2"].halted  # type: ignore[attr-defined]
        # Free-text release names are gone: the caller cannot set the payload's release.
        payload = tpb.DeployPayload(deployment_name="x", release="atlas-r2")
        req = fpb.DeployRequest(site_id="fr-par-1", deploy=payload, release="atlas-r2")
        with pytest.raises(Exception, match=r"deploy\.release: is set by the federation"):
            await c.call("Deploy", req)
    finally:
        await c.__aexit__(None, None, None)


async def test_site_refuses_deploy_of_halted_digest(fed: Federation) -> None:
    c, site = await _setup(fed)
    try:
        await _halted(c, "atlas-r1")
        # The federation's check is bypassed (its halt record deleted by someone with store access;
        # or a Deploy queued by a replica that had not seen the halt): a correctly signed Deploy
        # of the halted artifact under another name reaches the site.
        assert await fed.store.get(ah.artifact_key("atlas", DIGEST)) is not None
        await fed.store.delete(ah.artifact_key("atlas", DIGEST))
        assert fed.cp is not None and fed.cp.runtime is not None
        rt = fed.cp.runtime
        payload = await release_payload(
            rt.releases, "atlas-copy", {"deployment_name": "renamed", "replicas": 1}
        )
        d = await rt.directives.issue("fr-par-1", "Deploy", payload, "spiffe://test/user/admin")
        await until(lambda: site.agent.record.get(d.id) is not None, what="the site's answer")  # type: ignore[attr-defined]
        entry = site.agent.record.get(d.id)  # type: ignore[attr-defined]
        assert entry.outcome == "rejected" and entry.reason.startswith("safety: artifact atlas@sha256:a1a1")
        assert "renamed" not in site.backend.items  # type: ignore[attr-defined]
        recs = {r.directive.id: r for r in await _queue(c, "fr-par-1")}
        await until(lambda: _rejected(c, d.id), what="the reject stored at the federation")
        assert recs[d.id].directive.directive_signature  # it was validly signed: the halt refused it
    finally:
        await c.__aexit__(None, None, None)


async def _rejected(c: FederationClient, did: str) -> bool:
    recs = {r.directive.id: r for r in await _queue(c, "fr-par-1")}
    return recs[did].state == tpb.DIRECTIVE_STATE_REJECTED and "is halted" in recs[did].reason


async def test_resume_clears_exactly_what_its_halt_set_and_another_digest_is_unaffected(
    fed: Federation, tmp_path: Path
) -> None:
    c, site = await _setup(fed)
    items = site.backend.items  # type: ignore[attr-defined]
    try:
        async with fed.person(tmp_path, "bob", Role.ADMIN) as bob:
            for name, release in (("atlas", "atlas-r1"), ("copy", "atlas-copy"), ("v2", "atlas-r2")):
                await send_deploy(c, name, release)
            await until(lambda: {"atlas", "copy", "v2"} <= set(items), what="three deployed")
            first = await _halted(c, "atlas-r1")
            # Every workload of the artifact, whatever its name or release; not the other digest.
            assert items["atlas"].halted and items["copy"].halted and not items["v2"].halted
            second = await _halted(c, "atlas-copy")  # a second halt of the same artifact

            async def resume(halt: xpb.SafetyAction) -> None:
                res = await signed_resume(c, halt.id, "ok")  # signed with admin's approval key
                await approve(bob, res.id)  # and bob's: the two people the roster needs
                await until(lambda: _state_is(c, res.id, "Resumed"), what="resumed")

            await resume(first)
            # The other halt still holds the artifact: nothing runs again, Deploys still refused.
            assert items["atlas"].halted and items["copy"].halted and not items["v2"].halted
            assert site.agent.safety.state.halted_artifacts == {f"atlas@{DIGEST}": [second.id]}  # type: ignore[attr-defined]
            with pytest.raises(FailedPrecondition, match=second.id):
                await send_deploy(c, "again", "atlas-r1")
            await resume(second)
            await until(lambda: not items["atlas"].halted and not items["copy"].halted, what="running again")
            assert site.agent.safety.state.halted_artifacts == {}  # type: ignore[attr-defined]
            assert await fed.store.get(ah.artifact_key("atlas", DIGEST)) is None
            await send_deploy(c, "again", "atlas-r1")

            # A halt no longer sticks to a workload that later carries another release.
            await _halted(c, "atlas-r1")
            assert items["atlas"].halted
            await send_deploy(c, "atlas", "atlas-r2")
            await until(lambda: items["atlas"].digest == OTHER, what="atlas now runs atlas-r2")
            assert not items["atlas"].halted and items["atlas"].ready_replicas == 1
    finally:
        await c.__aexit__(None, None, None)
