"""Every directive is signed end to end by the control plane's directive key, and sites refuse
anything else: records planted straight into the store (real etcd, written with etcdctl), altered,
replayed from another site's queue, or signed with another key; and Deploys of a release no
trusted publisher signed. Real control plane, real mTLS, simulated sites on the real agent core."""

from __future__ import annotations

import asyncio
import time
import uuid
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from controlplane.api.v1 import federation_pb2 as fpb
from controlplane.api.v1 import release_pb2 as rpb
from controlplane.api.v1 import types_pb2 as tpb
from controlplane.domain import releases as rel
from controlplane.domain.records import DIRECTIVE_SEQ, DirectiveRecord, directive_id_key, directive_key
from controlplane.pki.directive_key import DirectiveKey
from controlplane.services.directive_wire import signed
from controlplane.services.releases import signed_to_dict
from operators.sim import SimulatedSite
from tests.support.etcd_tls import running_etcd
from tests.support.federation import Federation
from tests.support.requests import DIGEST, deploy, deploy_request
from tests.support.wait import until

ADMIN = "spiffe://test.stargate/user/admin"


def evil(site_id: str, sequence: int, **payload: Any) -> DirectiveRecord:
    now = time.time()
    body = {"deployment_name": "evil", "model": "evil", "version": "1", "digest": DIGEST, "replicas": 4}
    return DirectiveRecord(
        site_id, sequence, str(uuid.uuid4()), "Deploy", body | payload, now, now + 3600, ADMIN
    )


async def next_sequence(fed: Federation, site_id: str) -> int:
    kv = await fed.store.get(DIRECTIVE_SEQ + site_id)
    return (int(kv.value) if kv else 0) + 1


def planted(rec: DirectiveRecord) -> list[tuple[str, bytes]]:
    """The keys a queued directive occupies, as someone with store access writes them."""
    return [
        (DIRECTIVE_SEQ + rec.site_id, str(rec.sequence).encode()),
        (directive_id_key(rec.site_id, rec.id), str(rec.sequence).encode()),
        (directive_key(rec.site_id, rec.sequence), rec.to_json()),
    ]


async def plant(fed: Federation, rec: DirectiveRecord) -> None:
    for key, value in planted(rec):
        await fed.store.put(key, value)


async def refused(fed: Federation, site: SimulatedSite, rec: DirectiveRecord) -> str:
    """Wait for the site's answer to ``rec``; it must be a refusal, also recorded upstream."""
    await until(
        lambda: site.agent.record.get(rec.id) is not None, what=f"the site's answer to {rec.sequence}"
    )
    entry = site.agent.record.get(rec.id)
    assert entry is not None and entry.outcome == "rejected", entry

    async def stored() -> bool:
        async with fed.client() as c:
            recs = (await c.call("ListDirectives", fpb.ListDirectivesRequest(site_id=rec.site_id))).directives
        return any(r.directive.id == rec.id and r.state == tpb.DIRECTIVE_STATE_REJECTED for r in recs)

    await until(stored, what="the reject recorded by the federation")
    return entry.reason


async def test_unsigned_deploy_written_into_etcd_never_runs(tmp_path: Path) -> None:
    from tests.integration.test_transparency_etcd import Etcdctl

    async with running_etcd(tmp_path / "etcd") as (etcd, tls):
        fed = await Federation(tmp_path / "fed", tls.store(etcd.client_urls)).start()
        try:
            site = await fed.add_site("fr-par-1", "FR")
            assert fed.cp is not None and fed.cp.runtime is not None
            # A planted Deploy has no audit event to prove: the link sends it after this wait
            # (services/log_proofs.py; 30 s by default) and the site judges it.
            fed.cp.runtime.deploy_proof_wait = 0.5
            etcdctl = Etcdctl(etcd, tls)
            # Unsigned, as the issue's attack wrote it: 4 replicas of model "evil", put with etcdctl.
            rec = evil("fr-par-1", await next_sequence(fed, "fr-par-1"))
            for key, value in planted(rec):
                await asyncio.to_thread(etcdctl, "put", key, stdin=value)
            reason = await refused(fed, site, rec)
            assert reason.startswith("signature: the directive is not signed"), reason
            # Signed, but with a key that is not the control plane's.
            other = signed(evil("fr-par-1", rec.sequence + 1), DirectiveKey.generate())
            for key, value in planted(other):
                await asyncio.to_thread(etcdctl, "put", key, stdin=value)
            assert (await refused(fed, site, other)).startswith("signature: signed by unknown directive key")
            assert "evil" not in site.backend.items  # never ran
            async with fed.client() as c:
                events = (await c.call("ListAuditEvents", fpb.ListAuditEventsRequest())).events
                rejects = [e for e in events if e.action == "directive.reject"]
                assert {e.details["id"] for e in rejects} == {rec.id, other.id}
                assert all(e.reason.startswith("signature:") for e in rejects)
                # The site keeps receiving what the federation queues.
                d = (await deploy(c, deploy_request("fr-par-1", "atlas"))).directive
            await until(lambda: "atlas" in site.backend.items, what="a real deploy after the planted ones")
            assert site.agent.record.get(d.id).outcome == "applied"  # type: ignore[union-attr]
        finally:
            await fed.stop()
            await fed.store.close()


async def test_mis_signed_directive_refused_by_site(fed: Federation) -> None:
    fr = await fed.add_site("fr-par-1", "FR")
    await fed.add_site("de-fra-1", "DE")
    assert fed.cp is not None and fed.cp.runtime is not None
    fed.cp.runtime.deploy_proof_wait = 0.5  # planted Deploys have no audit event to prove
    key = fed.cp.runtime.directive_key

    # An altered field: signed by the real key, then the replicas changed in the store.
    good = signed(evil("fr-par-1", await next_sequence(fed, "fr-par-1"), replicas=1), key)
    altered = good.replace(payload=good.payload | {"replicas": 64})
    await plant(fed, altered)
    assert (await refused(fed, fr, altered)).startswith("signature: does not verify"), "altered"

    # Another site's directive replayed into this site's queue (same sequence, same bytes).
    seq = await next_sequence(fed, "fr-par-1")
    for_de = signed(evil("de-fra-1", seq), key)
    replayed = for_de.replace(site_id="fr-par-1")
    await plant(fed, replayed)
    assert (await refused(fed, fr, replayed)).startswith("signature: does not verify"), "replayed"

    # The same directive moved to another place in this site's queue (the sequence is signed).
    moved = signed(evil("fr-par-1", 999), key).replace(sequence=await next_sequence(fed, "fr-par-1"))
    await plant(fed, moved)
    assert (await refused(fed, fr, moved)).startswith("signature: does not verify"), "moved"

    # Another key, claiming the real key's id.
    impostor = signed(evil("fr-par-1", await next_sequence(fed, "fr-par-1")), DirectiveKey.generate())
    impostor = impostor.replace(key_id=key.key_id)
    await plant(fed, impostor)
    assert (await refused(fed, fr, impostor)).startswith("signature: does not verify"), "impostor"
    assert "evil" not in fr.backend.items


async def test_a_deploy_not_signed_by_a_trusted_publisher_is_refused_at_the_site(fed: Federation) -> None:
    site = await fed.add_site("fr-par-1", "FR")
    assert fed.cp is not None and fed.cp.runtime is not None
    rt = fed.cp.runtime
    # Correctly signed by the directive key (as if queued by a replica), but the release inside
    # was signed by a key no registered publisher holds.
    stranger = Ed25519PrivateKey.generate()
    r = rpb.ModelRelease(name="evil-1", model="evil", version="1", digest=DIGEST, risk_tier=1)
    sr = rpb.SignedRelease(
        release=r,
        publisher="tests",
        signature=rel.sign(stranger, r),
        publisher_key=stranger.public_key().public_bytes_raw(),
    )
    base = {"deployment_name": "evil", "model": "evil", "version": "1", "digest": DIGEST, "replicas": 1}
    full = base | {"release": "evil-1", "risk_tier": 1, "signed_release": signed_to_dict(sr)}
    d = await rt.directives.issue("fr-par-1", "Deploy", full, ADMIN)
    await until(lambda: site.agent.record.get(d.id) is not None, what="the site's answer")
    reason = site.agent.record.get(d.id).reason  # type: ignore[union-attr]
    assert reason.startswith("release: publisher key ed25519:") and "not trusted" in reason, reason
    # No signed release at all (what a low-level deploy was before): refused too.
    bare = await rt.directives.issue("fr-par-1", "Deploy", base, ADMIN)
    await until(lambda: site.agent.record.get(bare.id) is not None, what="the site's answer")
    assert site.agent.record.get(bare.id).reason.startswith("release: a Deploy must carry")  # type: ignore[union-attr]
    assert "evil" not in site.backend.items

    # A publisher added later reaches the site in a signed Publishers directive: then it deploys.
    async with fed.client() as c:
        from controlplane.api.v1 import rollouts_pb2 as opb

        pub = stranger.public_key().public_bytes_raw()
        await c.call("AddPublisher", opb.AddPublisherRequest(name="newcomer", public_key=pub))
    await until(lambda: pub in site.agent.trust.publisher_keys(), what="the new publisher set applied")
    again = await rt.directives.issue("fr-par-1", "Deploy", full, ADMIN)
    await until(lambda: site.agent.record.get(again.id) is not None, what="the site's answer")
    assert site.agent.record.get(again.id).outcome == "applied"  # type: ignore[union-attr]
