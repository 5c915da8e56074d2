"""What a site decides about what it is shown of the transparency log (issue 13 part 5). Pure.

A site is a witness of its own history: it remembers the last checkpoint it accepted (``LogView``)
and takes a new one only when the log key signed it and a consistency proof ties the two together.
On evidence of a fork (one size with two roots, a consistency proof that does not verify, a
checkpoint the log key did not sign) it **alarms**: the alarm is kept until an operator clears it,
and every Deploy is refused meanwhile (fail closed). A missing or mismatched proof is not evidence
of anything: the checkpoint is just not taken (and a Deploy that needed it is refused).

A Deploy is applied only with an inclusion proof of its own audit event (``directive.issue`` naming
this site, directive id, sequence, kind and artifact digest) against a checkpoint cosigned by at
least ``min_witnesses`` of the witnesses the site trusts. A Halt is applied at once (safety first);
its event must be proven within ``HALT_PROOF_BOUND_S`` or the site alarms (record always).
"""

from __future__ import annotations

import base64
import hmac
import json
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any

from controlplane.domain.checkpoints import (
    Checkpoint,
    Verified,
    verify_checkpoint,
    verify_extends,
    verify_leaf,
)
from controlplane.domain.merkle import EMPTY_ROOT, ProofError
from controlplane.domain.notes import NoteError, Verifier

#: Seconds after applying a halt within which its audit event must be proven in the log.
HALT_PROOF_BOUND_S = 60.0
#: Halts awaiting their proof, kept at most (a site sees a few halts a day).
MAX_PENDING_HALTS = 256


class Outcome(StrEnum):
    ACCEPT = "accept"
    #: Not taken, no evidence against the log (a missing proof, too few cosignatures).
    REFUSE = "refuse"
    #: Evidence that the log forked or lied: kept until an operator clears it.
    ALARM = "alarm"


@dataclass(frozen=True)
class LogView:
    """What the site remembers of the log (persisted with its state)."""

    log_vkey: str = ""
    size: int = 0
    root: bytes = EMPTY_ROOT
    note: str = ""
    #: Why the site alarmed ("" while all is well); cleared only by an operator.
    alarm: str = ""
    #: Halt directive id -> when it was applied, until its audit event is proven.
    pending_halts: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "log_vkey": self.log_vkey,
            "size": self.size,
            "root": base64.b64encode(self.root).decode(),
            "note": self.note,
            "alarm": self.alarm,
            "pending_halts": dict(self.pending_halts),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> LogView:
        return cls(
            str(d.get("log_vkey", "")),
            int(d.get("size", 0)),
            base64.b64decode(d.get("root", "")) or EMPTY_ROOT,
            str(d.get("note", "")),
            str(d.get("alarm", "")),
            {str(k): float(v) for k, v in dict(d.get("pending_halts", {})).items()},
        )


@dataclass(frozen=True)
class Consistency:
    first: int
    second: int
    path: tuple[bytes, ...] = ()


@dataclass(frozen=True)
class EventProof:
    leaf_index: int
    leaf: bytes
    path: tuple[bytes, ...]
    note: str
    consistency: Consistency | None = None


@dataclass(frozen=True)
class Trust:
    """The log's key (from enrollment) and the witnesses the site chose (its SitePolicy)."""

    log: Verifier
    witnesses: tuple[Verifier, ...] = ()
    min_witnesses: int = 0


@dataclass(frozen=True)
class Verdict:
    outcome: Outcome
    reason: str
    view: LogView


def _alarm(view: LogView, reason: str) -> Verdict:
    return Verdict(Outcome.ALARM, reason, replace(view, alarm=view.alarm or reason))


def _proof_between(c: Consistency | None, first: int, second: int) -> Sequence[bytes] | None:
    if c is None or (c.first, c.second) != (first, second):
        return None
    return c.path


def check_checkpoint(view: LogView, note: str, consistency: Consistency | None, trust: Trust) -> Verdict:
    """Take ``note`` as the site's newest checkpoint if it extends the one the site has."""
    try:
        verified = verify_checkpoint(note, trust.log)
    except NoteError as e:
        return _alarm(view, f"log: a checkpoint not signed by the log key {trust.log.vkey}: {e}")
    return _against_view(view, verified, consistency)


def _against_view(view: LogView, verified: Verified, consistency: Consistency | None) -> Verdict:
    cp = verified.checkpoint
    mine = Checkpoint(cp.origin, view.size, view.root)
    if view.size == 0:
        return Verdict(
            Outcome.ACCEPT,
            "the first checkpoint",
            replace(view, size=cp.size, root=cp.root, note=verified.note),
        )
    if cp.size == view.size:
        if not hmac.compare_digest(cp.root, view.root):
            return _alarm(view, f"log: two different roots for size {cp.size}: the log forked")
        return Verdict(Outcome.ACCEPT, "the checkpoint the site has", view)
    old, new = (mine, cp) if cp.size > view.size else (cp, mine)
    path = _proof_between(consistency, old.size, new.size)
    if path is None:
        return Verdict(
            Outcome.REFUSE, f"log: no consistency proof between sizes {old.size} and {new.size}", view
        )
    try:
        verify_extends(old, new, path)
    except ProofError as e:
        what = "the site's" if old is mine else "this"
        return _alarm(view, f"log: checkpoint {new.size} does not extend {what} checkpoint {old.size}: {e}")
    if cp.size > view.size:
        return Verdict(
            Outcome.ACCEPT,
            "extends the site's checkpoint",
            replace(view, size=cp.size, root=cp.root, note=verified.note),
        )
    return Verdict(Outcome.ACCEPT, "an older checkpoint of the same history", view)


def _with_event(
    view: LogView, proof: EventProof | None, trust: Trust, expect: dict[str, str], what: str
) -> Verdict:
    """The common part of a Deploy's and a halt's proof: checkpoint, cosignatures, consistency with
    the site's, inclusion, and that the leaf is the event ``expect`` describes."""
    if proof is None:
        return Verdict(Outcome.REFUSE, f"log: the {what} carries no inclusion proof of its audit event", view)
    try:
        signed = verify_checkpoint(proof.note, trust.log)
    except NoteError as e:
        return _alarm(view, f"log: a checkpoint not signed by the log key {trust.log.vkey}: {e}")
    try:
        verified = verify_checkpoint(proof.note, trust.log, trust.witnesses, trust.min_witnesses)
    except NoteError as e:
        return Verdict(Outcome.REFUSE, f"log: {e}", view)
    del signed
    # Checked against the site's checkpoint, never adopted: the site's checkpoint moves only with
    # beacons, so that the federation's link always knows the size its proofs must start from.
    step = _against_view(view, verified, proof.consistency)
    if step.outcome != Outcome.ACCEPT:
        return step
    step = replace(step, view=view)
    try:
        verify_leaf(proof.leaf, proof.leaf_index, proof.path, verified.checkpoint)
    except ProofError as e:
        return Verdict(
            Outcome.REFUSE, f"log: the inclusion proof of the {what}'s event does not verify: {e}", step.view
        )
    reason = leaf_mismatch(proof.leaf, expect)
    if reason:
        return Verdict(Outcome.REFUSE, f"log: the proven event is not this {what}'s: {reason}", step.view)
    return Verdict(
        Outcome.ACCEPT, f"event {proof.leaf_index + 1} in checkpoint {verified.checkpoint.size}", step.view
    )


def leaf_mismatch(leaf: bytes, expect: dict[str, str]) -> str:
    """ "" when the audit event ``leaf`` has every ``expect`` value ("action", "object", and
    "details.<name>"), else which differs."""
    try:
        event = json.loads(leaf)
    except ValueError:
        return "the leaf is not an audit event"
    if not isinstance(event, dict) or not isinstance(event.get("details"), dict):
        return "the leaf is not an audit event"
    for name, want in expect.items():
        got = event["details"].get(name[8:]) if name.startswith("details.") else event.get(name)
        if got != want:
            return f"{name} is {str(got)[:80]!r}, expected {want[:80]!r}"
    return ""


def deploy_event(site_id: str, directive_id: str, sequence: int, digest: str) -> dict[str, str]:
    """What the ``directive.issue`` event of a Deploy says (services/directives.py)."""
    return {
        "action": "directive.issue",
        "object": f"site/{site_id}",
        "details.id": directive_id,
        "details.kind": "Deploy",
        "details.sequence": str(sequence),
        "details.digest": digest,
    }


def halt_event(halt_id: str, release: str) -> dict[str, str]:
    """What the ``safety.halt`` event of a halt says (services/safety.py)."""
    return {"action": "safety.halt", "object": f"release/{release}", "details.id": halt_id}


def check_deploy(view: LogView, proof: EventProof | None, trust: Trust, expect: dict[str, str]) -> Verdict:
    """Whether a Deploy may be applied, as far as the log is concerned."""
    if view.alarm:
        return Verdict(
            Outcome.REFUSE,
            f"log: the site alarmed and refuses deploys until an operator clears it: {view.alarm}",
            view,
        )
    return _with_event(view, proof, trust, expect, "Deploy")


def halt_applied(view: LogView, halt_id: str, now: float) -> LogView:
    """A halt was applied: its proof is now awaited (the oldest dropped past the bound count)."""
    if halt_id in view.pending_halts:
        return view
    pending = {**view.pending_halts, halt_id: now}
    while len(pending) > MAX_PENDING_HALTS:
        pending.pop(min(pending, key=pending.__getitem__))
    return replace(view, pending_halts=pending)


def check_halt_proof(
    view: LogView, halt_id: str, proof: EventProof | None, trust: Trust, expect: dict[str, str]
) -> Verdict:
    """A proof of an applied halt's audit event: proven takes it off the awaited list."""
    if halt_id not in view.pending_halts:
        return Verdict(Outcome.REFUSE, f"log: halt {halt_id} is not awaiting a proof", view)
    step = _with_event(view, proof, trust, expect, "halt")
    if step.outcome != Outcome.ACCEPT:
        return step
    pending = {k: v for k, v in step.view.pending_halts.items() if k != halt_id}
    return replace(step, view=replace(step.view, pending_halts=pending))


def overdue_halts(view: LogView, now: float, bound: float = HALT_PROOF_BOUND_S) -> Verdict:
    """Alarm when an applied halt's event was not proven within ``bound`` seconds."""
    late = sorted(h for h, at in view.pending_halts.items() if now - at > bound)
    if not late:
        return Verdict(Outcome.ACCEPT, "", view)
    pending = {k: v for k, v in view.pending_halts.items() if k not in late}
    reason = f"log: halt {late[0]} was not proven in the log within {bound:g} s of being applied"
    return _alarm(replace(view, pending_halts=pending), reason)


def clear_alarm(view: LogView) -> LogView:
    """An operator's decision after looking into an alarm: forget the alarm and the checkpoint
    (the next one is taken as the first)."""
    return LogView(log_vkey=view.log_vkey, pending_halts=dict(view.pending_halts))
