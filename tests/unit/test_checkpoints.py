"""Signed checkpoints (services/checkpoints.py) on the memory store: what they sign, how often,
what they refuse to sign after a rewrite, cosignatures from listed witnesses only, and proofs
that verify with nothing but the log's verifier key."""

from __future__ import annotations

import asyncio
import time

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from controlplane.domain import checkpoints as cpd
from controlplane.domain.merkle import ProofError
from controlplane.domain.notes import COSIGNATURE_V1, Signer
from controlplane.domain.records import AUDIT_CHECKPOINTS, WITNESSES, checkpoint_key
from controlplane.errors import FailedPrecondition, InvalidArgument, InvalidRequest, NotFound
from controlplane.pki.log_key import LogKey, ensure_log_key
from controlplane.services.audit import AuditLog, Entry
from controlplane.services.checkpoints import Checkpoints
from controlplane.services.witnesses import AdminWitnessList, signed_list
from controlplane.store import Delete, Put
from controlplane.store.memory import MemoryStore
from tests.support.rewrite import REWRITES, rewritten

ADMIN = "spiffe://t/user/admin"


class Log:
    def __init__(self, interval: float = 0.05) -> None:
        self.store = MemoryStore()
        self.audit = AuditLog(self.store)
        self.key = LogKey.generate("t")
        self.witnesses = AdminWitnessList(self.store, self.audit)
        self.cp = Checkpoints(self.store, self.audit.tree, self.key, self.witnesses, interval=interval)
        self.audit.subscribe(self.cp.notify)

    async def events(self, n: int) -> None:
        for i in range(n):
            await self.audit.record(Entry(ADMIN, "test.event", f"thing/{i}"))

    async def keys(self, prefix: str) -> dict[str, bytes]:
        return {kv.key: kv.value for kv in (await self.store.range(prefix)).items}


def witness(name: str = "witness.example/w1") -> Signer:
    return Signer(name, Ed25519PrivateKey.generate(), COSIGNATURE_V1)


async def test_a_checkpoint_signs_the_committed_tree() -> None:
    log = Log()
    await log.events(10)
    rec = await log.cp.sign_latest()
    assert rec is not None
    v = cpd.verify_checkpoint(rec.signed_note(), log.key.verifier)
    assert (v.checkpoint.size, v.checkpoint.root) == await log.audit.tree.state()
    assert v.checkpoint.origin == "t/audit" and rec.note.startswith("t/audit\n10\n")
    assert await log.cp.sign_latest() == rec  # nothing new: the same one
    proof = await log.cp.prove_event(4)
    cpd.verify_leaf(proof.leaf, proof.leaf_index, proof.path, v.checkpoint)
    with pytest.raises(ProofError):
        edited = proof.leaf.replace(b"thing/3", b"thing/9")
        cpd.verify_leaf(edited, proof.leaf_index, proof.path, v.checkpoint)


async def test_commits_cost_at_most_one_signature_per_interval() -> None:
    log = Log(interval=0.3)
    runner = asyncio.create_task(log.cp.run())
    try:
        t0, commits = time.monotonic(), 0
        while time.monotonic() - t0 < 0.6:  # a commit every few ms for 0.6 s
            await log.events(1)
            commits += 1
            await asyncio.sleep(0.005)
        size = (await log.audit.tree.state())[0]
        for _ in range(500):  # the last commit is covered within an interval (bounded wait)
            retained = await log.cp.retained()
            if retained and retained[-1].size == size:
                break
            await asyncio.sleep(0.01)
        elapsed = time.monotonic() - t0
        assert retained[-1].size == size
        # One signature per 0.3 s of commits (and the one at the start), not one per commit.
        assert 1 <= len(retained) <= elapsed / 0.3 + 2 and commits >= 3 * len(retained), (commits, retained)
    finally:
        runner.cancel()


@pytest.mark.parametrize("name", sorted(REWRITES))
async def test_the_log_refuses_to_sign_a_rewritten_store(name: str) -> None:
    log = Log()
    await log.events(8)
    signed = await log.cp.sign_latest()
    puts, deletes = rewritten(await log.keys("/stargate/audit/"), REWRITES[name])
    assert deletes or name == "edit-and-recompute"
    await log.store.txn([], [*(Put(k, v) for k, v in puts.items()), *(Delete(k) for k in deletes)])
    await log.events(3)  # the log goes on from the rewritten head
    for cp in (log.cp, Checkpoints(log.store, AuditLog(log.store).tree, log.key, log.witnesses)):
        with pytest.raises(FailedPrecondition, match=r"rewritten|does not extend"):
            await cp.sign_latest()
        assert cp.alarm
    assert [r.size for r in await log.cp.retained()] == [signed.size]  # nothing more was signed


async def test_a_replica_with_another_log_key_refuses_to_sign() -> None:
    log = Log()
    await log.events(3)
    await log.cp.sign_latest()
    await log.events(1)
    other = Checkpoints(log.store, log.audit.tree, LogKey.generate("t"), log.witnesses)
    with pytest.raises(FailedPrecondition, match=r"same log\.key"):
        await other.sign_latest()


async def test_only_the_newest_checkpoints_are_kept() -> None:
    log = Log()
    log.cp.RETAIN = 3
    for _ in range(5):
        await log.events(1)
        await log.cp.sign_latest()
    assert [r.size for r in await log.cp.retained()] == [3, 4, 5]
    assert len(await log.keys(AUDIT_CHECKPOINTS)) == 3
    with pytest.raises(NotFound):
        await log.cp.at(1)


async def test_cosignatures_from_listed_witnesses_only() -> None:
    log = Log()
    await log.events(4)
    rec = await log.cp.sign_latest()
    w, stranger = witness(), witness("witness.example/w2")
    await log.witnesses.add(ADMIN, w.verifier.vkey)
    body = rec.note[: rec.note.index("\n\n") + 1]
    now = int(time.time())
    good = w.signature_line(body, now)
    added = await log.cp.add_cosignature(4, good)
    assert added.cosignatures == {w.name: good}
    v = cpd.verify_checkpoint(added.signed_note(), log.key.verifier, [w.verifier], min_witnesses=1)
    assert v.cosigners == {w.name: now}
    bad = [
        stranger.signature_line(body, now),  # not listed
        w.signature_line(body.replace("\n4\n", "\n5\n"), now),  # another checkpoint
        w.signature_line(body, now + 3600),  # from the future
        good.rstrip("\n") + "\n" + good,  # two lines in one
    ]
    for line in bad:
        with pytest.raises(InvalidRequest):
            await log.cp.add_cosignature(4, line)
    with pytest.raises(NotFound):
        await log.cp.add_cosignature(99, good)
    assert (await log.cp.at(4)).cosignatures == {w.name: good}
    # What a site will check before acting on a directive (part 5): the proof against a
    # checkpoint cosigned by a witness it trusts.
    proof = await log.cp.prove_event(2, min_cosignatures=1)
    note = proof.checkpoint.signed_note()
    cpd.verify_event_proof(proof.leaf, proof.leaf_index, proof.path, note, log.key.verifier, [w.verifier], 1)
    with pytest.raises(cpd.NoteError, match="1 required"):
        cpd.verify_event_proof(proof.leaf, 1, proof.path, note, log.key.verifier, [stranger.verifier], 1)
    with pytest.raises(ProofError):
        cpd.verify_event_proof(proof.leaf, 2, proof.path, note, log.key.verifier, [w.verifier], 1)


async def test_the_witness_list_is_admin_managed_audited_and_signed() -> None:
    log = Log()
    w = witness()
    with pytest.raises(InvalidArgument, match="0x04"):
        await log.witnesses.add(ADMIN, log.key.vkey)  # a note key is not a cosigner key
    with pytest.raises(InvalidArgument, match="verifier_key"):
        await log.witnesses.add(ADMIN, "nonsense")
    await log.witnesses.add(ADMIN, w.verifier.vkey)
    note = signed_list(log.key, await log.witnesses.verifiers())
    parsed, signers = cpd.open_note(note, [log.key.verifier])
    assert parsed.text == f"t/audit/witnesses\n{w.verifier.vkey}\n" and "t/audit" in signers
    await log.witnesses.remove(ADMIN, w.name)
    assert await log.witnesses.verifiers() == [] and not await log.keys(WITNESSES)
    actions = [e.action for e in (await log.audit.list())[0]]
    assert actions == ["witness.add", "witness.remove"]


async def test_a_proof_is_against_a_checkpoint_that_covers_the_event() -> None:
    log = Log()
    await log.events(5)
    first = await log.cp.sign_latest()
    await log.events(2)
    proof = await log.cp.prove_event(7)  # signs a covering checkpoint on demand
    assert proof.tree_size == 7 and first.size == 5
    with pytest.raises(FailedPrecondition, match="with 1 cosignatures covers event 7"):
        await log.cp.prove_event(7, min_cosignatures=1)
    old = await log.cp.prove_event(2, tree_size=5)
    cpd.verify_leaf(old.leaf, 1, old.path, cpd.checkpoint_text(old.checkpoint.note))
    with pytest.raises(InvalidArgument, match="not in the checkpoint"):
        await log.cp.prove_event(6, tree_size=5)
    assert await log.store.get(checkpoint_key(7)) is not None


def test_init_makes_the_log_key_once(tmp_path) -> None:
    a = ensure_log_key(tmp_path, "t")
    b = ensure_log_key(tmp_path, "t")
    assert a.vkey == b.vkey == (tmp_path / "log.vkey").read_text().strip()
    assert (tmp_path / "log.key").stat().st_mode & 0o777 == 0o600
    assert a.vkey.startswith("t/audit+")


def test_a_log_key_that_cannot_be_created_is_a_clear_refusal(tmp_path) -> None:
    with pytest.raises(FailedPrecondition, match=r"log\.key is missing and cannot be created.*log-key --dir"):
        ensure_log_key(tmp_path / "absent", "t")
