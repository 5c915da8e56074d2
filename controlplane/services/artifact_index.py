"""The halted-artifact index in the store (domain/artifact_halts.py): what a halt or resume writes."""

from __future__ import annotations

import json

from controlplane.domain import artifact_halts as ah
from controlplane.domain.records import RELEASES
from controlplane.domain.safety import ActionKind, SafetyActionRecord
from controlplane.errors import FailedPrecondition
from controlplane.store import Compare, Op, Put, Store
from controlplane.store.base import Delete


async def artifact_of(store: Store, release: str) -> tuple[str, str]:
    """The model and digest of the registered release ``release`` ("", "" when it is not
    registered: the halt then stops that release name at the sites, and nothing else)."""
    kv = await store.get(RELEASES + release)
    if kv is None:
        return "", ""
    try:
        r = json.loads(kv.value)["signed"]["release"]
        return str(r["model"]), str(r["digest"])
    except (ValueError, KeyError, TypeError) as e:
        why = f"release {release!r} has an unreadable record: cannot halt its artifact"
        raise FailedPrecondition(why) from e


async def index_ops(
    store: Store, action: SafetyActionRecord, halt: SafetyActionRecord
) -> tuple[list[Compare], list[Op]]:
    """The compare and write that add (``action`` is the halt) or remove (``action`` resumes
    ``halt``) the halt's entry in its artifact's record, for the transaction that makes it effective."""
    if not halt.model or not halt.digest:
        return [], []
    key = ah.artifact_key(halt.model, halt.digest)
    kv = await store.get(key)
    try:
        index = ah.ArtifactHalts.from_json(kv.value) if kv is not None else None
    except (ValueError, TypeError):
        index = None  # an unreadable record is replaced by one that holds what is known
    new: ah.ArtifactHalts | None
    if action.kind == ActionKind.HALT:
        new = ah.with_halt(
            index,
            halt_id=halt.id,
            scope=halt.scope,
            release=halt.release,
            model=halt.model,
            digest=halt.digest,
        )
    else:
        new = ah.without_halt(index, halt.id)
    cmp = Compare.absent(key) if kv is None else Compare.unchanged(kv)
    return [cmp], [Put(key, new.to_json()) if new is not None else Delete(key)]
