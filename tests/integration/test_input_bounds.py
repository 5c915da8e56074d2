"""Numbers out of range are refused before anything is stored; a directive the link cannot send is
marked Failed and never stops the queue; an admin can cancel a queued directive (issue #12, part 4)."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import json
import math
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from controlplane.api.v1 import federation_pb2 as fpb
from controlplane.api.v1 import rollouts_pb2 as opb
from controlplane.api.v1 import safety_pb2 as xpb
from controlplane.api.v1 import types_pb2 as tpb
from controlplane.domain.records import DIRECTIVE_SEQ, DirectiveRecord, directive_key
from controlplane.errors import FailedPrecondition, InvalidRequest, PermissionDenied
from controlplane.pki.ca import CertificateAuthority
from controlplane.pki.identity import Identity, Kind, Role
from controlplane.pki.keys import certificate_pem, private_key_pem
from controlplane.services import clock
from tests.support.federation import TD, Federation
from tests.support.requests import DIGEST, deploy_request
from tests.support.requests import deploy as send_deploy


async def _until(check: Callable[[], Awaitable[Any]], timeout: float = 10.0) -> Any:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        if result := await check():
            return result
        if loop.time() > deadline:
            raise AssertionError(f"condition not met in {timeout}s")
        await asyncio.sleep(0.05)


async def _directives(fed: Federation, site: str) -> list[tpb.DirectiveRecord]:
    async with fed.client() as c:
        return list((await c.call("ListDirectives", fpb.ListDirectivesRequest(site_id=site))).directives)


async def _audit(fed: Federation) -> list[fpb.AuditEvent]:
    async with fed.client() as c:
        return list((await c.call("ListAuditEvents", fpb.ListAuditEventsRequest())).events)


async def _acked(fed: Federation, site: str, directive_id: str) -> bool:
    return any(
        r.directive.id == directive_id and r.state == tpb.DIRECTIVE_STATE_ACKED
        for r in await _directives(fed, site)
    )


async def test_a_deploy_ttl_of_2_63_is_refused_nothing_is_stored_and_the_site_keeps_receiving(
    fed: Federation,
) -> None:
    site = await fed.add_site("fr-par-1", "FR")
    before = len(await _audit(fed))
    async with fed.client() as c:
        with pytest.raises(InvalidRequest) as e:
            await send_deploy(c, deploy_request("fr-par-1", ttl=2**63 - 1))
        assert e.value.public.startswith("ttl_seconds: must be 0..2592000")
        assert await _directives(fed, "fr-par-1") == []
        assert not [ev for ev in (await _audit(fed))[before:] if ev.action == "directive.issue"]
        good = (await send_deploy(c, deploy_request("fr-par-1", "good"))).directive
    await _until(lambda: _acked(fed, "fr-par-1", good.id))
    assert "good" in site.backend.items


@pytest.mark.parametrize(
    ("method", "request_", "field"),
    [
        (
            "CreateJoinToken",
            fpb.CreateJoinTokenRequest(site_id="x-1", country="FR", ttl_seconds=2**62),
            "ttl_seconds",
        ),
        (
            "IssueUserCertificate",
            fpb.IssueUserCertificateRequest(name="eve", role=fpb.ROLE_AUDITOR, ttl_seconds=2**40),
            "ttl_seconds",
        ),
        (
            "Undeploy",
            fpb.UndeployRequest(site_id="fr-par-1", deployment_name="a", ttl_seconds=-1),
            "ttl_seconds",
        ),
        ("ListAuditEvents", fpb.ListAuditEventsRequest(limit=-7), "limit"),
        ("Halt", xpb.HaltRequest(release="atlas", scope="global", ttl_seconds=2**63 - 1), "ttl_seconds"),
        ("ListSafetyActions", xpb.ListSafetyActionsRequest(limit=2**31 - 1), "limit"),
        (
            "CreateRollout",
            opb.CreateRolloutRequest(
                spec=opb.RolloutSpec(
                    name="r", release="atlas", waves=[opb.Wave(name="w", percent=100, bake_seconds=math.inf)]
                )
            ),
            "spec.waves[0].bake_seconds",
        ),
        (
            "PlanRollout",
            opb.PlanRolloutRequest(spec=opb.RolloutSpec(gates=opb.Gates(max_error_rate=math.nan))),
            "spec.gates.max_error_rate",
        ),
    ],
)
async def test_numbers_out_of_range_are_invalid_argument_naming_the_field(
    fed: Federation, method: str, request_: Any, field: str
) -> None:
    await fed.add_site("fr-par-1", "FR")
    before = await _audit(fed)
    async with fed.client() as c:
        with pytest.raises(InvalidRequest) as e:
            await c.call(method, request_)
    assert e.value.public.startswith(f"{field}: must be"), e.value.public
    assert len(await _audit(fed)) == len(before)  # nothing happened, so nothing was recorded


async def _poison(fed: Federation, site: str, raw: bytes) -> int:
    """Queue ``raw`` as the site's next directive, as someone with store access (or an older
    version) could: the sequence counter moves on, as ``Directives.issue`` would move it."""
    kv = await fed.store.get(DIRECTIVE_SEQ + site)
    seq = (int(kv.value) if kv else 0) + 1
    await fed.store.put(DIRECTIVE_SEQ + site, str(seq).encode())
    await fed.store.put(directive_key(site, seq), raw)
    return seq


def _record(site: str, seq: int, **changes: Any) -> bytes:
    now = clock.now()
    rec = DirectiveRecord(
        site,
        seq,
        f"0d9a3c1e-0000-4000-8000-{seq:012d}",
        "Deploy",
        {"deployment_name": "bad", "model": "m", "version": "1", "digest": DIGEST},
        now,
        now + 60,
        "someone",
    )
    return json.dumps(rec.to_dict() | changes).encode()


async def test_directives_the_link_cannot_send_are_marked_failed_and_never_stop_the_queue(
    fed: Federation,
) -> None:
    site = await fed.add_site("fr-par-1", "FR")
    await site.stop()  # queue everything while the site is away, so the link meets it in one pass
    kv = await fed.store.get(DIRECTIVE_SEQ + "fr-par-1")
    nxt = (int(kv.value) if kv else 0) + 1
    bad = {
        await _poison(fed, "fr-par-1", b"{not json"): "not JSON",
        await _poison(fed, "fr-par-1", _record("fr-par-1", nxt + 1, expires_at=1e300)): "expires_at",
        await _poison(fed, "fr-par-1", _record("fr-par-1", 77)): "names sequence 77",
        await _poison(
            fed, "fr-par-1", _record("fr-par-1", nxt + 3, payload={"replicas": "many"})
        ): "cannot be sent",
        await _poison(fed, "fr-par-1", b"[]"): "not a JSON object",
    }
    async with fed.client() as c:
        good = (await send_deploy(c, deploy_request("fr-par-1", "good"))).directive
    # directives list works whatever is stored (today: one record breaks it for the whole site)
    assert len(await _directives(fed, "fr-par-1")) == len(bad) + 1
    site.start()
    await _until(lambda: _acked(fed, "fr-par-1", good.id))
    recs = {r.directive.sequence: r for r in await _directives(fed, "fr-par-1")}
    for seq, why in bad.items():
        assert recs[seq].state == tpb.DIRECTIVE_STATE_FAILED, (seq, recs[seq])
        assert why in recs[seq].reason, (seq, recs[seq].reason)
    assert list(site.backend.items) == ["good"]
    failed = [e for e in await _audit(fed) if e.action == "directive.fail"]
    assert sorted(int(e.details["sequence"]) for e in failed) == sorted(bad)
    assert all(e.outcome == "failed" and len(e.details["sha256"]) == 64 for e in failed)


def _steward(fed: Federation) -> tuple[bytes, bytes]:
    ca = CertificateAuthority.load(fed.dir)
    key, cert = ca.issue(Identity(TD, Kind.USER, "claire", Role.STEWARD, "FR"), ttl=dt.timedelta(hours=1))
    return private_key_pem(key), certificate_pem(cert)


async def test_a_cancelled_directive_is_never_delivered_and_the_cancel_is_audited(fed: Federation) -> None:
    site = await fed.add_site("fr-par-1", "FR")
    await site.stop()
    async with fed.client() as c:
        first = (await send_deploy(c, deploy_request("fr-par-1", "first"))).directive
        second = (await send_deploy(c, deploy_request("fr-par-1", "second"))).directive
        third = (await send_deploy(c, deploy_request("fr-par-1", "third"))).directive
        by_id = (
            await c.call(
                "CancelDirective",
                fpb.CancelDirectiveRequest(site_id="fr-par-1", id=first.id, reason="wrong model"),
            )
        ).directive
        assert (by_id.state, by_id.reason) == (tpb.DIRECTIVE_STATE_CANCELLED, "wrong model")
        await c.call(
            "CancelDirective", fpb.CancelDirectiveRequest(site_id="fr-par-1", sequence=second.sequence)
        )
        with pytest.raises(FailedPrecondition, match="only a Pending directive"):
            await c.call("CancelDirective", fpb.CancelDirectiveRequest(site_id="fr-par-1", id=first.id))
        with pytest.raises(InvalidRequest, match=r"^id: must be a UUID"):
            await c.call("CancelDirective", fpb.CancelDirectiveRequest(site_id="fr-par-1", id="../x"))
    key, cert = _steward(fed)
    (fed.dir / "claire.key").write_bytes(key)
    (fed.dir / "claire.crt").write_bytes(cert)
    steward = dataclasses.replace(
        fed.context(), cert_file=fed.dir / "claire.crt", key_file=fed.dir / "claire.key"
    )
    async with fed.client(steward) as c:
        with pytest.raises(PermissionDenied):
            await c.call("CancelDirective", fpb.CancelDirectiveRequest(site_id="fr-par-1", id=third.id))
    site.start()
    await _until(lambda: _acked(fed, "fr-par-1", third.id))
    assert list(site.backend.items) == ["third"]
    states = {r.directive.id: r.state for r in await _directives(fed, "fr-par-1")}
    assert states[first.id] == states[second.id] == tpb.DIRECTIVE_STATE_CANCELLED
    cancels = [e for e in await _audit(fed) if e.action == "directive.cancel"]
    assert [e.details["id"] for e in cancels] == [first.id, second.id]
    assert cancels[0].actor.endswith("/user/admin") and cancels[0].reason == "wrong model"


async def test_a_rollout_treats_a_cancelled_deploy_as_refused_by_that_site(
    fed: Federation, tmp_path: Any
) -> None:
    from tests.integration.test_rollouts import Rig, release, states

    rig = Rig(fed, tmp_path)
    site = await fed.add_site("fr-par-1", "FR")
    await site.stop()  # the Deploy stays queued
    await rig.publish(release("atlas-1-2-0", "1.2.0"))
    spec = opb.RolloutSpec(
        name="one",
        release="atlas-1-2-0",
        placement=opb.Placement(replicas_per_site=1),
        waves=[opb.Wave(name="all", percent=100)],
        gates=opb.Gates(min_ready_ratio=1.0, timeout_seconds=30),
    )
    async with fed.client() as c:
        await c.call("CreateRollout", opb.CreateRolloutRequest(spec=spec))
        # Wait until the site is also unreachable ("Lost"): a cancel is final even then.
        await rig.wait("one", lambda r: states(r).get("fr-par-1") == "Lost")
        # The rig's publisher reached the site as a Publishers directive; the rollout's Deploy follows.
        (queued,) = [
            d for d in await _directives(fed, "fr-par-1") if d.directive.kind == tpb.DIRECTIVE_KIND_DEPLOY
        ]
        await c.call(
            "CancelDirective",
            fpb.CancelDirectiveRequest(site_id="fr-par-1", id=queued.directive.id, reason="not now"),
        )
    r = await rig.wait("one", lambda r: states(r).get("fr-par-1") == "Refused")
    assert [s.reason for w in r.waves for s in w.sites] == ["not now"]
