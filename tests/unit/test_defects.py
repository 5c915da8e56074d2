"""Stored directive records read defensively (controlplane/domain/defects.py): every defect class
is named, and becomes a Failed placeholder instead of an exception."""

from __future__ import annotations

import json

import pytest

from controlplane.domain import defects
from controlplane.domain.records import DirectiveRecord, DirectiveState

GOOD = DirectiveRecord("fr-par-1", 3, "5e7c1f0e-0000-4000-8000-000000000001", "Deploy", {}, 10.0, 20.0, "x")


def _with(**changes: object) -> bytes:
    d = GOOD.to_dict() | changes
    return json.dumps({k: v for k, v in d.items() if v is not _DROP}).encode()


_DROP = object()


def test_a_good_record_reads_back() -> None:
    assert defects.directive("fr-par-1", 3, GOOD.to_json()) == GOOD


@pytest.mark.parametrize(
    ("raw", "why"),
    [
        (b"{not json", "not JSON"),
        (b"\xff\xfe", "not JSON"),
        (b"[1, 2]", "not a JSON object"),
        (b"7", "not a JSON object"),
        (b"[" * 100_000, "not JSON"),  # nesting deeper than the parser's recursion limit
        (_with(sequence=4), "names sequence 4, its key 3"),
        (_with(sequence="3"), "'sequence' has the wrong type"),
        (_with(site_id="de-fra-1"), "another site"),
        (_with(payload=_DROP), "'payload' is missing"),
        (_with(payload=[1]), "'payload' has the wrong type"),
        (_with(issued_at="yesterday"), "'issued_at' has the wrong type"),
        (_with(expires_at=9.3e18), "'expires_at' is not a time"),
        (
            b'{"site_id":"fr-par-1","sequence":3,"id":"a","kind":"Deploy","payload":{},"issuer":"x",'
            b'"issued_at":1,"expires_at":NaN}',
            "'expires_at' is not a time",
        ),
        (_with(state="Exploded"), "unknown state"),
        (_with(reason=7), "'reason' has the wrong type"),
        (_with(id=None), "'id' has the wrong type"),
    ],
)
def test_every_defect_is_named_and_becomes_a_failed_placeholder(raw: bytes, why: str) -> None:
    with pytest.raises(defects.Defect, match=why.replace("(", r"\(").replace("[", r"\[")):
        defects.directive("fr-par-1", 3, raw)
    p = defects.directive_or_placeholder("fr-par-1", 3, raw)
    assert isinstance(p, defects.UnreadableDirective)
    assert (p.site_id, p.sequence, p.state) == ("fr-par-1", 3, DirectiveState.FAILED)
    assert why.split("'")[0] in p.reason and defects.digest(raw)[:16] in p.reason
