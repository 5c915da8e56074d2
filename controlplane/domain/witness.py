"""A witness's one decision: may it cosign this checkpoint? Pure, tested as a table.

A witness remembers the largest checkpoint it cosigned (size and root). It cosigns a new one only
when the log signed it and a consistency proof shows it extends the remembered one; it never
cosigns a smaller tree after a larger one, nor two different roots for one size. What it
remembers is persisted before it answers (controlplane/client/witness.py), so a restart cannot
make it cosign anything it would have refused before.
"""

from __future__ import annotations

import base64
import hmac
import json
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from controlplane.domain.checkpoints import Checkpoint, verify_extends
from controlplane.domain.merkle import EMPTY_ROOT, ProofError

#: Refusals remembered (newest last), for the operator and across restarts.
KEEP_REFUSALS = 20


@dataclass(frozen=True)
class WitnessState:
    #: The log's verifier key this state belongs to.
    log_vkey: str
    size: int = 0
    root: bytes = EMPTY_ROOT
    #: The signed note of the checkpoint cosigned last ("" before the first).
    note: str = ""
    #: {"size", "root", "reason", "at"} of the latest refusals.
    refusals: tuple[dict[str, Any], ...] = field(default_factory=tuple)

    def to_json(self) -> bytes:
        body = {
            "log_vkey": self.log_vkey,
            "size": self.size,
            "root": base64.b64encode(self.root).decode(),
            "note": self.note,
            "refusals": list(self.refusals),
        }
        return json.dumps(body, indent=1, sort_keys=True).encode()

    @classmethod
    def from_json(cls, raw: bytes) -> WitnessState:
        d = json.loads(raw)
        return cls(
            str(d["log_vkey"]),
            int(d["size"]),
            base64.b64decode(d["root"]),
            str(d.get("note", "")),
            tuple(d.get("refusals", ())),
        )


@dataclass(frozen=True)
class Verdict:
    cosign: bool
    reason: str
    state: WitnessState


def refuse(state: WitnessState, cp: Checkpoint, reason: str, now: float) -> Verdict:
    entry = {"size": cp.size, "root": base64.b64encode(cp.root).decode(), "reason": reason, "at": now}
    return Verdict(False, reason, replace(state, refusals=(*state.refusals, entry)[-KEEP_REFUSALS:]))


def judge(state: WitnessState, cp: Checkpoint, note: str, proof: Sequence[bytes], now: float) -> Verdict:
    """Whether to cosign ``cp`` (its log signature already verified), given a consistency proof
    from the remembered size to its size; the state to persist before answering either way."""
    if cp.size < state.size:
        return refuse(state, cp, f"a smaller tree ({cp.size}) after a larger one ({state.size})", now)
    if cp.size == state.size:
        if not hmac.compare_digest(cp.root, state.root):
            return refuse(state, cp, f"two different roots for size {cp.size}: the log forked", now)
        return Verdict(True, "the checkpoint cosigned last", state)
    if state.size:
        old = Checkpoint(cp.origin, state.size, state.root)
        try:
            verify_extends(old, cp, proof)
        except ProofError as e:
            return refuse(state, cp, f"not consistent with size {state.size}: {e}", now)
    return Verdict(
        True, "extends the checkpoint cosigned last", replace(state, size=cp.size, root=cp.root, note=note)
    )
