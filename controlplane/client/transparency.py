"""Checking the federation's audit log on the client, trusting nothing the server says.

The server supplies checkpoints, events and proofs; everything is verified here with the log's
verifier key (obtained out of band) and, if asked, a quorum of witness keys the caller chose.
Used by ``stargatectl audit verify`` and the witness; sites will use the same domain functions.
"""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from controlplane.api.v1 import audit_pb2 as apb
from controlplane.api.v1 import federation_pb2 as fpb
from controlplane.client.federation import FederationClient
from controlplane.domain.checkpoints import (
    Checkpoint,
    Verified,
    verify_checkpoint,
    verify_extends,
    verify_leaf,
)
from controlplane.domain.merkle import ProofError
from controlplane.domain.notes import NoteError, Verifier, parse_vkey
from controlplane.errors import InvalidArgument, StargateError

#: Proofs fetched at once while verifying a page of events.
CONCURRENCY = 16


def load_vkey(value: str, field_name: str, alg: int | None = None) -> Verifier:
    """A verifier key given inline or as the path of a file holding it."""
    text = value
    path = Path(value)
    if "+" not in value or path.is_file():
        try:
            text = path.read_text().strip()
        except OSError as e:
            raise InvalidArgument(field_name, f"cannot read {value}: {e.strerror}") from e
    try:
        v = parse_vkey(text, field_name)
    except NoteError as e:
        raise InvalidArgument(field_name, str(e).removeprefix(f"{field_name}: ")) from e
    if alg is not None and v.alg != alg:
        raise InvalidArgument(field_name, f"must be a key of type 0x{alg:02x}, got 0x{v.alg:02x}")
    return v


class VerificationFailed(StargateError):
    """The log does not check out; the message says what failed (exit code 1)."""


async def verified_checkpoint(
    c: FederationClient, log: Verifier, witnesses: Sequence[Verifier] = (), min_witnesses: int = 0
) -> Verified:
    resp = await c.call("GetCheckpoint", apb.GetCheckpointRequest(min_cosignatures=min_witnesses))
    try:
        return verify_checkpoint(resp.checkpoint.note, log, witnesses, min_witnesses)
    except NoteError as e:
        raise VerificationFailed(f"the federation's checkpoint does not verify: {e}") from e


async def check_consistent(c: FederationClient, a: Checkpoint, b: Checkpoint) -> None:
    """Raise VerificationFailed unless one of ``a``, ``b`` extends the other (the log served to
    whoever saved ``a`` is the log served now)."""
    small, large = (a, b) if a.size <= b.size else (b, a)
    path: list[bytes] = []
    if 0 < small.size < large.size:
        try:
            resp = await c.call(
                "GetConsistencyProof", apb.GetConsistencyProofRequest(first=small.size, second=large.size)
            )
        except StargateError as e:
            raise VerificationFailed(
                f"no consistency proof from size {small.size} to {large.size} ({e.public}): "
                "the log no longer holds the history that was checkpointed"
            ) from e
        path = list(resp.consistency_path)
    try:
        verify_extends(small, large, path)
    except ProofError as e:
        raise VerificationFailed(
            f"the checkpoints of size {a.size} and {b.size} are inconsistent: {e}; "
            "the log's history was rewritten or forked"
        ) from e


def _leaf_matches(event: fpb.AuditEvent) -> str:
    """Why the listed event's fields are not its leaf's, or ""."""
    try:
        d = json.loads(event.leaf)
    except ValueError:
        return "its leaf is not JSON"
    shown = {
        "sequence": event.sequence,
        "actor": event.actor,
        "action": event.action,
        "object": event.object,
        "outcome": event.outcome,
        "reason": event.reason,
        "details": dict(event.details),
        "hash": event.hash,
        "prev_hash": event.prev_hash,
    }
    wrong = sorted(k for k, v in shown.items() if d.get(k) != v)
    return f"the listed {', '.join(wrong)} differ from its leaf" if wrong else ""


@dataclass
class EventReport:
    verified: list[int] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    #: Events newer than the checkpoint (not verifiable yet).
    later: int = 0


async def verify_events(c: FederationClient, cp: Checkpoint, after: int, limit: int) -> EventReport:
    """Check every listed event after ``after`` (at most ``limit``) is its leaf of ``cp``'s tree,
    and that none the checkpoint covers is missing from the listing."""
    report = EventReport()
    want = list(range(after + 1, min(after + limit, cp.size) + 1))
    events: list[fpb.AuditEvent] = []
    cursor = after
    while cursor < after + limit:
        page = await c.call(
            "ListAuditEvents",
            fpb.ListAuditEventsRequest(after_sequence=cursor, limit=min(1000, after + limit - cursor)),
        )
        if not page.events:
            break
        events += page.events
        cursor = page.events[-1].sequence
    listed = {e.sequence: e for e in events if e.sequence <= cp.size}
    report.later = sum(1 for e in events if e.sequence > cp.size)
    missing = [s for s in want if s not in listed]
    if missing:
        report.failures.append(
            f"events {_ranges(missing)} are in the checkpoint of size {cp.size} but the federation "
            "did not list them (removed or renumbered)"
        )
    gate = asyncio.Semaphore(CONCURRENCY)

    async def one(e: fpb.AuditEvent) -> None:
        why = _leaf_matches(e)
        if not why:
            async with gate:
                try:
                    proof = await c.call(
                        "GetInclusionProof",
                        apb.GetInclusionProofRequest(sequence=e.sequence, tree_size=cp.size),
                    )
                    verify_leaf(e.leaf, e.sequence - 1, list(proof.inclusion_path), cp)
                    report.verified.append(e.sequence)
                    return
                except ProofError as err:
                    why = f"it is not in the checkpoint's tree ({err})"
                except StargateError as err:
                    why = f"the federation gave no proof ({err.public})"
        report.failures.append(f"event {e.sequence}: {why}")

    await asyncio.gather(*(one(e) for e in listed.values()))
    report.verified.sort()
    report.failures.sort(key=_failure_order)
    return report


def _failure_order(text: str) -> tuple[int, str]:
    head = text.split(":")[0].removeprefix("event ")
    return (int(head), text) if head.isdigit() else (-1, text)


def _ranges(seqs: list[int]) -> str:
    out: list[str] = []
    start = prev = seqs[0]
    for s in [*seqs[1:], None]:
        if s is not None and s == prev + 1:
            prev = s
            continue
        out.append(f"{start}" if start == prev else f"{start}-{prev}")
        if s is not None:
            start = prev = s
    return ", ".join(out[:10]) + (" ..." if len(out) > 10 else "")


def checkpoint_view(v: Verified) -> dict[str, Any]:
    cp = v.checkpoint
    return {
        "origin": cp.origin,
        "tree_size": cp.size,
        "root_hash": base64.b64encode(cp.root).decode(),
        "cosigners": sorted(v.cosigners),
    }
