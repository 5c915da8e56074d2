"""AuditService over real mTLS: who may call it, bad cosignatures refused and audited in bounded
volume (a witness in a loop must not grow the log it watches), accepted ones not audited at all."""

from __future__ import annotations

import time

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from controlplane.api.v1 import audit_pb2 as apb
from controlplane.api.v1 import federation_pb2 as fpb
from controlplane.client.config import Context
from controlplane.domain.checkpoints import checkpoint_text
from controlplane.domain.notes import COSIGNATURE_V1, Signer
from controlplane.errors import InvalidRequest, PermissionDenied
from tests.support.federation import Federation


async def audit_actions(fed: Federation) -> list[tuple[str, str]]:
    async with fed.client() as c:
        events = (await c.call("ListAuditEvents", fpb.ListAuditEventsRequest(limit=10_000))).events
    return [(e.action, e.outcome) for e in events]


async def test_cosignatures_refused_in_bounded_volume_accepted_silently(fed: Federation) -> None:
    await fed.token("fr-par-1", "FR")
    w = Signer("witness.fr/w1", Ed25519PrivateKey.generate(), COSIGNATURE_V1)
    async with fed.client() as c:
        await c.call("AddWitness", apb.AddWitnessRequest(verifier_key=w.verifier.vkey))
        cp = (await c.call("GetCheckpoint", apb.GetCheckpointRequest())).checkpoint
        body = checkpoint_text(cp.note).body()
        for _ in range(5):  # a witness offering a bad cosignature, in a loop
            bad = w.signature_line(body.replace(f"\n{cp.tree_size}\n", "\n1\n"), int(time.time()))
            req = apb.AddCosignatureRequest(tree_size=cp.tree_size, cosignature=bad)
            with pytest.raises(InvalidRequest, match="cosignature"):
                await c.call("AddCosignature", req)
        before = await audit_actions(fed)
        good = w.signature_line(body, int(time.time()))
        resp = await c.call(
            "AddCosignature", apb.AddCosignatureRequest(tree_size=cp.tree_size, cosignature=good)
        )
        assert list(resp.checkpoint.cosigners) == ["witness.fr/w1"] and resp.checkpoint.note.endswith(good)
    after = await audit_actions(fed)
    assert before.count(("audit.cosign", "denied")) == 1  # five refusals, one event
    assert after == before  # an accepted cosignature is no event (it would need a new checkpoint)


async def test_a_site_may_not_read_the_log_and_is_audited(fed: Federation) -> None:
    site = await fed.add_site("de-fra-1", "DE")
    d = site.directory
    ctx = Context("site", (fed.address,), "", d / "ca.crt", d / "site.crt", d / "site.key")
    async with fed.client(ctx) as c:
        with pytest.raises(PermissionDenied, match="may not call GetCheckpoint"):
            await c.call("GetCheckpoint", apb.GetCheckpointRequest())
    assert ("rpc.GetCheckpoint", "denied") in await audit_actions(fed)
