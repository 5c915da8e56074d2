"""What someone with write access to the store can do to the audit log (test infrastructure).

The three rewrites of issue 13, each recomputed so that everything the store holds agrees with
itself afterwards: the hash chain, the Merkle tiles, the tree record and the head. Only a
checkpoint signed before the rewrite (or a witness that saw one) can tell.
"""

from __future__ import annotations

import json
from collections.abc import Callable

from controlplane.domain.audit import seal
from controlplane.domain.merkle import leaf_hash
from controlplane.domain.records import AUDIT_HEAD, AUDIT_TREE, AuditEvent, audit_key
from controlplane.domain.tiles import TreeEdge
from controlplane.services.log_tree import tile_puts, tree_record


def rechain(events: list[AuditEvent]) -> list[bytes]:
    """The events renumbered from 1 and re-linked, as stored bytes."""
    out, prev = [], ""
    for i, e in enumerate(events, start=1):
        sealed = seal(e.replace(sequence=i, prev_hash="", hash=""), prev)
        prev = sealed.hash
        out.append(sealed.to_json())
    return out


def log_state(raws: list[bytes]) -> dict[str, bytes]:
    """Every key of a self-consistent audit log holding ``raws`` (events, tiles, tree, head)."""
    edge, touched = TreeEdge.empty().append([leaf_hash(r) for r in raws])
    state = {audit_key(i): raw for i, raw in enumerate(raws, start=1)}
    state |= {put.key: put.value for put in tile_puts(TreeEdge.empty(), touched)}
    last = json.loads(raws[-1]) if raws else {"hash": ""}
    state[AUDIT_HEAD] = json.dumps({"sequence": len(raws), "hash": last["hash"]}).encode()
    state[AUDIT_TREE] = tree_record(edge)
    return state


def truncate_newest(k: int) -> Callable[[list[AuditEvent]], list[AuditEvent]]:
    return lambda events: events[:-k]


def edit(sequence: int, **changes: object) -> Callable[[list[AuditEvent]], list[AuditEvent]]:
    return lambda events: [e.replace(**changes) if e.sequence == sequence else e for e in events]


def delete_and_renumber(sequence: int) -> Callable[[list[AuditEvent]], list[AuditEvent]]:
    return lambda events: [e for e in events if e.sequence != sequence]


REWRITES = {
    "truncate-newest": truncate_newest(2),
    "edit-and-recompute": edit(3, actor="spiffe://t/user/someone-else", reason="edited"),
    "delete-and-renumber": delete_and_renumber(3),
}


def rewritten(
    stored: dict[str, bytes], rewrite: Callable[[list[AuditEvent]], list[AuditEvent]]
) -> tuple[dict[str, bytes], list[str]]:
    """Given the audit keys as stored (key -> value), the puts and deletes of the rewrite."""
    events = sorted(
        (AuditEvent.from_json(v) for k, v in stored.items() if k.startswith(audit_key(0)[:-20])),
        key=lambda e: e.sequence,
    )
    state = log_state(rechain(rewrite(events)))
    puts = {k: v for k, v in state.items() if stored.get(k) != v}
    deletes = [k for k in stored if k not in state and (k.startswith(audit_key(0)[:-20]) or "/tiles/" in k)]
    return puts, deletes
