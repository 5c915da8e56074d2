"""The audit hash chain detects any edit, reordering or removal inside the chain."""

from __future__ import annotations

import dataclasses
import itertools
from typing import Any

import pytest

from controlplane.domain.audit import event_hash, seal, verify_chain
from controlplane.domain.records import AuditEvent

GENESIS = ""


def chain(n: int = 5) -> list[AuditEvent]:
    events, prev = [], GENESIS
    for i in range(1, n + 1):
        e = seal(
            AuditEvent(
                sequence=i,
                time=1_700_000_000.0 + i,
                actor=f"spiffe://stargate.example/user/admin{i}",
                action="CreateJoinToken",
                object=f"site/fr-par-{i}",
                outcome="ok",
                reason="",
                details={"country": "FR"},
            ),
            prev,
        )
        events.append(e)
        prev = e.hash
    return events


def changed(value: Any) -> Any:
    if isinstance(value, bool):
        return not value
    if isinstance(value, int):
        return value + 1
    if isinstance(value, float):
        return value + 0.5
    if isinstance(value, str):
        return value + "x"
    if isinstance(value, dict):
        return {**value, "injected": "1"}
    raise AssertionError(f"no mutation for {type(value)}")


FIELDS = [f.name for f in dataclasses.fields(AuditEvent)]


def test_a_sealed_chain_verifies() -> None:
    events = chain()
    assert verify_chain(events, GENESIS)
    assert verify_chain(events)
    assert verify_chain(events[2:], events[1].hash)  # a page in the middle, anchored
    assert verify_chain(events[2:])  # a page in the middle, taking its first event's word
    assert verify_chain([], GENESIS)


def test_seal_links_and_hashes() -> None:
    events = chain(3)
    assert events[0].prev_hash == GENESIS
    for before, after in itertools.pairwise(events):
        assert after.prev_hash == before.hash
    for e in events:
        assert len(e.hash) == 64 and e.hash == event_hash(e)
    assert len({e.hash for e in events}) == 3


def test_seal_ignores_a_stale_hash_on_input() -> None:
    e = chain(1)[0]
    assert seal(e.replace(hash="bogus"), GENESIS) == e


@pytest.mark.parametrize("field", FIELDS)
@pytest.mark.parametrize("index", [0, 2, 4])
def test_changing_any_field_of_any_event_fails(field: str, index: int) -> None:
    events = chain()
    events[index] = events[index].replace(**{field: changed(getattr(events[index], field))})
    assert not verify_chain(events, GENESIS)
    # Also detected without an anchor (a forged first prev_hash still breaks that event's own hash).
    assert not verify_chain(events)


@pytest.mark.parametrize("field", [f for f in FIELDS if f != "hash"])
def test_resealing_an_edited_event_breaks_the_next_link(field: str) -> None:
    events = chain()
    edited = events[2].replace(**{field: changed(getattr(events[2], field))})
    events[2] = seal(edited, edited.prev_hash if field == "prev_hash" else events[1].hash)
    assert not verify_chain(events, GENESIS)


def test_editing_the_details_map_in_place_fails() -> None:
    events = chain()
    events[1].details["country"] = "DE"  # frozen dataclass, mutable dict
    assert not verify_chain(events, GENESIS)


@pytest.mark.parametrize(("i", "j"), [(0, 1), (1, 3), (3, 4), (0, 4)])
def test_reordering_fails(i: int, j: int) -> None:
    events = chain()
    events[i], events[j] = events[j], events[i]
    assert not verify_chain(events, GENESIS)
    assert not verify_chain(events)


@pytest.mark.parametrize("dropped", [1, 2, 3])
def test_dropping_an_event_in_the_middle_fails(dropped: int) -> None:
    events = chain()
    del events[dropped]
    assert not verify_chain(events, GENESIS)
    assert not verify_chain(events)


def test_dropping_the_first_event_fails_against_the_anchor() -> None:
    events = chain()
    assert not verify_chain(events[1:], GENESIS)


def test_duplicating_an_event_fails() -> None:
    events = chain()
    events.insert(2, events[1])
    assert not verify_chain(events, GENESIS)


def test_a_chain_from_another_history_fails_against_the_anchor() -> None:
    events = chain()
    assert not verify_chain(events[3:], events[1].hash)
