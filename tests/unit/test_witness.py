"""The witness's decision as a table, and its state across a restart (controlplane/domain/witness.py,
controlplane/client/witness.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from controlplane.client.witness import STATE_FILE, Witness, generate_key, load_key
from controlplane.domain.checkpoints import Checkpoint
from controlplane.domain.merkle import build_proof, consistency_ranges
from controlplane.domain.witness import WitnessState, judge
from controlplane.errors import FailedPrecondition, InvalidArgument
from controlplane.pki.log_key import LogKey
from tests.unit.test_merkle import big_node, big_root

ORIGIN = "t/audit"


def cp(size: int, root: bytes | None = None) -> Checkpoint:
    return Checkpoint(ORIGIN, size, big_root(size) if root is None else root)


def proof(first: int, second: int) -> list[bytes]:
    return (
        build_proof(consistency_ranges(first, second), lambda n: big_node(*n)) if 0 < first < second else []
    )


def state(size: int) -> WitnessState:
    c = cp(size) if size else None
    return WitnessState("vkey", size, c.root if c else WitnessState("vkey").root)


FORKED = bytes(32)


@pytest.mark.parametrize(
    ("remembered", "offered", "path", "cosign", "why"),
    [
        (0, cp(5), [], True, "extends"),  # the first checkpoint a witness sees
        (5, cp(9), proof(5, 9), True, "extends"),
        (5, cp(5), [], True, "cosigned last"),  # the same checkpoint again
        (9, cp(5), [], False, "smaller tree"),  # truncated
        (5, cp(5, FORKED), [], False, "forked"),  # two roots for one size
        (5, cp(9, FORKED), proof(5, 9), False, "not consistent"),  # rewritten below 5
        (5, cp(9), proof(4, 9), False, "not consistent"),  # a proof for another size
        (5, cp(9), [], False, "not consistent"),  # no proof at all
    ],
)
def test_judge(remembered: int, offered: Checkpoint, path: list[bytes], cosign: bool, why: str) -> None:
    before = state(remembered)
    v = judge(before, offered, "note", path, now=1.0)
    assert v.cosign is cosign and why in v.reason
    if cosign:
        assert v.state.size == max(remembered, offered.size) and not v.state.refusals
    else:  # refusals change nothing but the record of refusals
        assert (v.state.size, v.state.root) == (before.size, before.root)
        assert v.state.refusals[-1]["size"] == offered.size and why in v.state.refusals[-1]["reason"]


def test_refusals_are_bounded() -> None:
    s = state(9)
    for _ in range(50):
        s = judge(s, cp(5), "n", [], now=1.0).state
    assert len(s.refusals) == 20


def test_state_survives_a_restart(tmp_path: Path) -> None:
    key = tmp_path / "w.key"
    v = generate_key("witness.example/w1", key)
    assert (key.stat().st_mode & 0o777) == 0o600 and v.vkey.startswith("witness.example/w1+")
    with pytest.raises(InvalidArgument, match="never replaced"):
        generate_key("witness.example/w1", key)
    log = LogKey.generate("t")
    w = Witness(load_key("witness.example/w1", key), tmp_path / "state", log.verifier)
    w._persist(judge(w.state, cp(5), "n", [], now=2.0))  # cosigned 5
    w._persist(judge(w.state, cp(7, FORKED), "n", [], now=3.0))  # refused 7
    again = Witness(load_key("witness.example/w1", key), tmp_path / "state", log.verifier)
    assert again.state == w.state and again.state.size == 5 and again.state.refusals[-1]["size"] == 7
    assert WitnessState.from_json((tmp_path / "state" / STATE_FILE).read_bytes()) == w.state
    with pytest.raises(FailedPrecondition, match="belongs to the log"):
        Witness(load_key("witness.example/w1", key), tmp_path / "state", LogKey.generate("t").verifier)
