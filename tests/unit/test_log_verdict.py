"""The site's pure decisions about what it is shown of the log (operators/agent/log_verdict.py),
as tables: which checkpoints it takes, when it alarms, which Deploys and halt proofs it accepts."""

from __future__ import annotations

import json

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from controlplane.domain.checkpoints import Checkpoint
from controlplane.domain.merkle import build_proof, consistency_ranges, inclusion_ranges, leaf_hash, node_hash
from controlplane.domain.notes import COSIGNATURE_V1, Signer, sign_note
from controlplane.pki.log_key import LogKey
from operators.agent import log_verdict as lv

KEY = LogKey.generate("t.example")
OTHER = LogKey.generate("t.example")  # same origin, another key
WITNESS = Signer("w.fr/w1", Ed25519PrivateKey.generate(), COSIGNATURE_V1)
STRANGER = Signer("w.xx/w9", Ed25519PrivateKey.generate(), COSIGNATURE_V1)
SITE, DID, DIGEST = "fr-par-1", "0b7e1d2c-3f4a-4b5c-8d6e-7f8091a2b3c4", "sha256:" + "ab" * 32


def event(seq: int, **over: object) -> bytes:
    e = {"sequence": seq, "action": "token.create", "object": "site/x", "details": {}}
    if seq == 7:  # the Deploy's own event
        e = {
            "sequence": 7,
            "action": "directive.issue",
            "object": f"site/{SITE}",
            "details": {"id": DID, "kind": "Deploy", "sequence": "3", "digest": DIGEST},
        }
    e.update(over)
    return json.dumps(e, sort_keys=True).encode()


LEAVES = [leaf_hash(event(i + 1)) for i in range(32)]


def node(n: tuple[int, int]) -> bytes:
    height, index = n
    if height == 0:
        return LEAVES[index]
    return node_hash(node((height - 1, 2 * index)), node((height - 1, 2 * index + 1)))


def root(size: int) -> bytes:
    return build_proof([(0, size)], node)[0]


def note(size: int, r: bytes | None = None, key: LogKey = KEY, cosigners: tuple[Signer, ...] = ()) -> str:
    text = Checkpoint(KEY.origin, size, root(size) if r is None else r).body()
    signed = sign_note(text, key.signer)
    return signed + "".join(w.signature_line(text, 1_700_000_000) for w in cosigners)


def cons(first: int, second: int, bad: bool = False) -> lv.Consistency:
    path = build_proof(consistency_ranges(first, second), node)
    if bad:
        path[0] = bytes(32)
    return lv.Consistency(first, second, tuple(path))


def view(size: int, alarm: str = "") -> lv.LogView:
    return lv.LogView(KEY.vkey, size, root(size) if size else lv.EMPTY_ROOT, "", alarm)


TRUST = lv.Trust(KEY.verifier)
FORK = b"\x07" * 32


@pytest.mark.parametrize(
    ("held", "shown", "consistency", "outcome", "why", "size_after"),
    [
        (0, note(5), None, "accept", "first", 5),
        (5, note(5), None, "accept", "has", 5),
        (5, note(9), cons(5, 9), "accept", "extends", 9),
        (9, note(5), cons(5, 9), "accept", "older", 9),  # a stale replica: consistent, kept
        (5, note(9), None, "refuse", "no consistency proof", 5),
        (5, note(9), cons(4, 9), "refuse", "no consistency proof", 5),  # a proof for another size
        (5, note(5, FORK), None, "alarm", "two different roots", 5),
        (5, note(9, FORK), cons(5, 9), "alarm", "does not extend", 5),
        (5, note(9), cons(5, 9, bad=True), "alarm", "does not extend", 5),
        (9, note(5, FORK), cons(5, 9), "alarm", "does not extend", 9),  # a smaller, forked tree
        (5, note(9, key=OTHER), cons(5, 9), "alarm", "not signed by the log key", 5),
    ],
)
def test_check_checkpoint(
    held: int, shown: str, consistency: lv.Consistency | None, outcome: str, why: str, size_after: int
) -> None:
    v = lv.check_checkpoint(view(held), shown, consistency, TRUST)
    assert (v.outcome, v.view.size) == (outcome, size_after) and why in v.reason, v.reason
    assert bool(v.view.alarm) is (outcome == "alarm")


def proof(size: int, index: int = 6, leaf: bytes | None = None, **kw: object) -> lv.EventProof:
    path = tuple(build_proof(inclusion_ranges(index, size), node))
    return lv.EventProof(index, event(index + 1) if leaf is None else leaf, path, **kw)  # type: ignore[arg-type]


EXPECT = lv.deploy_event(SITE, DID, 3, DIGEST)
W1 = lv.Trust(KEY.verifier, (WITNESS.verifier,), 1)


@pytest.mark.parametrize(
    ("held", "p", "trust", "outcome", "why"),
    [
        (0, proof(8, note=note(8)), TRUST, "accept", "event 7 in checkpoint 8"),
        (8, proof(8, note=note(8)), TRUST, "accept", "event 7"),
        (5, proof(8, note=note(8), consistency=cons(5, 8)), TRUST, "accept", "event 7"),
        (9, proof(8, note=note(8), consistency=cons(8, 9)), TRUST, "accept", "event 7"),  # older cp
        (0, None, TRUST, "refuse", "carries no inclusion proof"),
        (0, proof(8, note=note(8)), W1, "refuse", "cosigned by 0 of the trusted witnesses"),
        (0, proof(8, note=note(8, cosigners=(STRANGER,))), W1, "refuse", "cosigned by 0"),
        (0, proof(8, note=note(8, cosigners=(WITNESS,))), W1, "accept", "event 7"),
        (5, proof(8, note=note(8)), TRUST, "refuse", "no consistency proof"),
        (0, proof(8, index=5, note=note(8)), TRUST, "refuse", "is not this Deploy's"),  # another event
        (
            0,
            proof(8, leaf=event(7, object="site/de-fra-1"), note=note(8)),
            TRUST,
            "refuse",
            "does not verify",
        ),
        (0, proof(8, note=note(9)), TRUST, "refuse", "does not verify"),  # path for another size
        (8, proof(8, note=note(8, FORK)), TRUST, "alarm", "two different roots"),
        (0, proof(8, note=note(8, key=OTHER)), TRUST, "alarm", "not signed by the log key"),
        (8, proof(8, note=note(8)), TRUST, "refuse", "alarmed"),  # with an alarm already raised
    ],
)
def test_check_deploy(held: int, p: lv.EventProof | None, trust: lv.Trust, outcome: str, why: str) -> None:
    before = view(held, alarm="log: earlier" if why == "alarmed" else "")
    v = lv.check_deploy(before, p, trust, EXPECT)
    assert v.outcome == outcome and why in v.reason, v.reason
    assert v.view.size == held  # only beacons move the site's checkpoint


def test_leaf_must_match_every_field_of_the_directive() -> None:
    for field, value in [("details.id", "x"), ("details.sequence", "4"), ("details.digest", "sha256:00")]:
        expect = {**EXPECT, field: value}
        assert field in lv.leaf_mismatch(event(7), expect)
    assert lv.leaf_mismatch(event(7), EXPECT) == ""
    assert lv.leaf_mismatch(b"not json", EXPECT) == "the leaf is not an audit event"


def test_halt_proven_within_the_bound_or_alarm() -> None:
    halt = lv.halt_event("h1", "atlas")
    leaf = json.dumps({"action": "safety.halt", "object": "release/atlas", "details": {"id": "h1"}}).encode()
    v0 = lv.halt_applied(view(0), "h1", now=100.0)
    assert lv.overdue_halts(v0, 150.0, bound=60).outcome == "accept"  # not yet due
    late = lv.overdue_halts(v0, 161.0, bound=60)
    assert late.outcome == "alarm" and "halt h1 was not proven in the log within 60 s" in late.view.alarm
    assert "h1" not in late.view.pending_halts  # alarmed once; the alarm stays
    # Proven: a one-leaf tree holding the halt's event.
    text = Checkpoint(KEY.origin, 1, leaf_hash(leaf)).body()
    ok = lv.check_halt_proof(v0, "h1", lv.EventProof(0, leaf, (), sign_note(text, KEY.signer)), TRUST, halt)
    assert ok.outcome == "accept" and not ok.view.pending_halts
    wrong = lv.check_halt_proof(
        v0, "h1", lv.EventProof(0, leaf, (), sign_note(text, KEY.signer)), TRUST, lv.halt_event("h2", "atlas")
    )
    assert wrong.outcome == "refuse" and "h1" in wrong.view.pending_halts
    assert lv.check_halt_proof(view(0), "h1", None, TRUST, halt).outcome == "refuse"  # not awaited


def test_view_survives_serialisation_and_clearing_keeps_pending_halts() -> None:
    v = lv.halt_applied(view(9, alarm="log: x"), "h1", 5.0)
    again = lv.LogView.from_dict(json.loads(json.dumps(v.to_dict())))
    assert again == v
    cleared = lv.clear_alarm(again)
    assert (cleared.alarm, cleared.size, cleared.pending_halts) == ("", 0, {"h1": 5.0})
