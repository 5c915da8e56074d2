"""What a replica shows sites of the log (controlplane/services/log_proofs.py), on the memory store:
a Deploy's proof is found through the index its issuer writes, a halt's by a bounded scan that
reads each event once (a site asking for ids that do not exist cannot make it rescan), and the
checkpoint chosen carries the cosignatures of the witnesses the site named."""

from __future__ import annotations

from typing import Any

from controlplane.domain.checkpoints import checkpoint_text, verify_leaf
from controlplane.pki.log_key import LogKey
from controlplane.services.audit import AuditLog, Entry
from controlplane.services.checkpoints import Checkpoints
from controlplane.services.log_proofs import LogProofs, index_directive
from controlplane.services.witnesses import AdminWitnessList
from controlplane.store.memory import MemoryStore


class CountingStore(MemoryStore):
    def __init__(self) -> None:
        super().__init__()
        self.ranges = 0

    async def range(self, prefix: str, **kw: Any) -> Any:
        if "audit/events" in prefix:
            self.ranges += 1
        return await super().range(prefix, **kw)


async def setup() -> tuple[CountingStore, AuditLog, LogProofs]:
    store = CountingStore()
    audit = AuditLog(store)
    cps = Checkpoints(store, audit.tree, LogKey.generate("t.example"), AdminWitnessList(store, audit))
    return store, audit, LogProofs(store, cps, audit.tree)


async def test_halt_lookup_reads_each_event_once() -> None:
    store, audit, proofs = await setup()
    for i in range(5):
        await audit.record(Entry("a", "token.create", f"site/s{i}"))
    await audit.record(Entry("a", "safety.halt", "release/x", details={"id": "h1"}))
    assert await proofs.halt_event("h1") == 6
    before = store.ranges
    for i in range(50):  # a hostile site asking for halts that do not exist
        assert await proofs.halt_event(f"nope-{i}") == 0
    assert store.ranges == before  # no new events: nothing read again
    await audit.record(Entry("a", "safety.halt", "release/y", details={"id": "h2"}))
    assert await proofs.halt_event("h2") == 7 and store.ranges == before + 1


async def test_a_deploy_is_proven_through_its_index_against_a_signed_checkpoint() -> None:
    store, audit, proofs = await setup()
    _, seqs = await audit.commit_sequenced(
        [], [], [Entry("a", "directive.issue", "site/s1", details={"id": "d1", "kind": "Deploy"})]
    )
    await index_directive(store, "s1", 1, seqs)
    event = await proofs.directive_event("s1", 1)
    assert event == seqs[0] == 1 and await proofs.directive_event("s1", 2) == 0
    proof, why = await proofs.prove(event, frozenset(), 0)  # none required: signed on demand
    assert proof is not None and why == "", why
    verify_leaf(proof.leaf, proof.leaf_index, proof.path, checkpoint_text(proof.checkpoint.note))
    # One cosignature of a named witness required: none exists, and it says so.
    none, why = await proofs.prove(event, frozenset({"w.fr/w1"}), 1)
    assert none is None and "with 1 cosignatures of the site's witnesses" in why
