"""A safety-lane record that cannot be used never holds back the directives after it, whatever its
defect (issue #12: a record whose stored sequence differed from its key held every later halt
Pending until a restart). Each defect is tried at sequence 1, arriving in the first read and
through the watch; the halt committed after it (sequence 2) must be sent at once."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

import pytest

from controlplane.domain import defects
from controlplane.domain import safety as sd
from controlplane.pki.safety_key import SafetyKey
from controlplane.services.audit import AuditLog
from controlplane.services.registry import Registry
from controlplane.services.safety import Safety
from controlplane.store.memory import MemoryStore

Mutation = Callable[[dict[str, Any]], Any]


def _drop(name: str) -> Mutation:
    return lambda d: d.pop(name)


def _set(name: str, value: Any) -> Mutation:
    return lambda d: d.__setitem__(name, value)


def _payload(name: str, value: Any) -> Mutation:
    return lambda d: d["payload"].__setitem__(name, value)


DEFECTS: dict[str, Mutation | bytes] = {
    "bad JSON": b"{not json",
    "not UTF-8": b"\xff\xfe\x00",
    "a JSON list": b"[1]",
    "wrong seq (lower)": _set("safety_sequence", 0),
    "wrong seq (higher: the next halt's)": _set("safety_sequence", 2),
    "seq as a string": _set("safety_sequence", "1"),
    "bad scope": _set("scope", "region:eu"),
    "payload scope differs": _payload("scope", "global"),
    "missing id": _drop("id"),
    "missing payload": _drop("payload"),
    "missing signature": _drop("signature"),
    "payload without halt_id": lambda d: d["payload"].pop("halt_id"),
    "kind unknown": _set("kind", "Explode"),
    "issued_at a string": _set("issued_at", "now"),
    "expires_at past year 9999": _set("expires_at", 1e300),
    "payload a list": _set("payload", []),
    "approvers not a list": _payload("approvers", "alice"),
    "signature not hex": _set("signature", "zz" * 64),
    "signature odd length": _set("signature", "a" * 127),
    "signature too short": _set("signature", "ab" * 32),
    "signature upper-case hex": lambda d: d.__setitem__("signature", d["signature"].upper()),
}


def _defect(key: SafetyKey, how: Mutation | bytes) -> bytes:
    if isinstance(how, bytes):
        return how
    action = sd.SafetyActionRecord("a1", "Halt", "country:FR", "spiffe://t/user/x", 1.0, release="atlas-r1")
    safety = Safety(MemoryStore(), AuditLog(MemoryStore()), None, key)  # type: ignore[arg-type]
    data = json.loads(safety.signed_directive(action, 1).to_json())
    how(data)
    return json.dumps(data).encode()


async def _top(safety: Safety, n: int) -> None:
    """Until the lane cache has every sequence up to ``n`` (sent or skipped)."""
    for _ in range(400):
        if safety.lane.top >= n:
            return
        await asyncio.sleep(0.005)
    raise AssertionError(f"the lane reached {safety.lane.top}, not {n}")


@pytest.mark.parametrize("arrives", ["in-the-first-read", "through-the-watch"])
@pytest.mark.parametrize("defect", list(DEFECTS))
async def test_a_lane_record_with_any_defect_never_holds_back_the_next_halt(
    defect: str, arrives: str
) -> None:
    store = MemoryStore()
    audit = AuditLog(store)
    key = SafetyKey.generate()
    safety = Safety(store, audit, Registry(store, audit), key)
    raw = _defect(key, DEFECTS[defect])
    with pytest.raises(defects.Defect):
        defects.lane_directive(1, raw)

    async def bad_first() -> None:
        await store.put(sd.LANE_SEQ, b"1")
        await store.put(sd.lane_key(1), raw)

    if arrives == "in-the-first-read":
        await bad_first()
    watch = asyncio.create_task(safety.run_lane_watch())
    try:
        await asyncio.wait_for(safety.lane.loaded.wait(), 2)
        if arrives == "through-the-watch":
            await bad_first()
            await _top(safety, 1)  # the watch saw it (its sequence is taken; the halt gets 2)
        halt = await safety.halt("spiffe://t/user/alice", "atlas-r1", "global", "after it")
        await _top(safety, 2)
        sent = await safety.lane_after(0, site_id="fr-par-1", country="FR")
        assert safety.lane.top == 2 and [(e.record.safety_sequence, e.record.id) for e in sent] == [
            (2, halt.id)
        ]
        assert not watch.done()
    finally:
        watch.cancel()
        await store.close()


async def test_a_copy_under_a_non_canonical_key_neither_fills_nor_displaces_a_sequence() -> None:
    store = MemoryStore()
    audit = AuditLog(store)
    safety = Safety(store, audit, Registry(store, audit), SafetyKey.generate())
    watch = asyncio.create_task(safety.run_lane_watch())
    try:
        await asyncio.wait_for(safety.lane.loaded.wait(), 2)
        first = await safety.halt("spiffe://t/user/alice", "atlas-r1", "global", "one")
        raw = (await store.get(sd.lane_key(1))).value  # type: ignore[union-attr]
        # The same record again, as a duplicate of sequence 1 under other keys: a short key, and the
        # next sequence's key (claiming 1). Neither may displace 1 nor stand for 2.
        await store.put(sd.LANE + "1", raw)
        await store.put(sd.LANE_SEQ, b"2")
        await store.put(sd.lane_key(2), raw)
        second = await safety.halt("spiffe://t/user/alice", "atlas-r2", "global", "two")
        await _top(safety, 3)
        sent = await safety.lane_after(0, site_id="fr-par-1", country="FR")
        assert [(e.record.safety_sequence, e.record.id) for e in sent] == [(1, first.id), (3, second.id)]
    finally:
        watch.cancel()
        await store.close()
