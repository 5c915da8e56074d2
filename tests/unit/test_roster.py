"""The roster as pure logic, as tables: validation, counting signed approvals, the chain rule
(version N+1 needs version N's roster-change threshold), issuance, pinning."""

from __future__ import annotations

import base64
import dataclasses
from typing import Any

import pytest

from controlplane.domain import roster as rd
from controlplane.errors import InvalidArgument
from tests.support.roster import keys, roster_of, sign_roster

PEOPLE = keys("alice", "bob", "carol")
V1 = roster_of(PEOPLE)  # three admins: resume and roster-change thresholds 2
STATEMENT = rd.resume_statement(halt_id="h-1", release="atlas-r1", scope="global")


def sig(name: str, key: str | None = None, data: bytes = STATEMENT) -> rd.Signature:
    return rd.Signature(name, PEOPLE[key or name].sign(data))


def with_persons(r: rd.Roster, **changes: Any) -> rd.Roster:
    return dataclasses.replace(r, **changes)


@pytest.mark.parametrize(
    ("change", "field"),
    [
        (lambda r: with_persons(r, version=0), "roster.version"),
        (lambda r: with_persons(r, previous="sha256:" + "0" * 64), "roster.previous"),
        (lambda r: with_persons(r, persons=()), "roster.persons"),
        (lambda r: with_persons(r, persons=(*r.persons, r.persons[0])), "roster.persons[3].id"),
        (
            lambda r: with_persons(r, persons=(*r.persons, dataclasses.replace(r.persons[0], id="dave"))),
            "roster.persons[3].key",
        ),
        (
            lambda r: with_persons(r, persons=(dataclasses.replace(r.persons[0], id="Bad_Id"),)),
            "persons[0].id",
        ),
        (
            lambda r: with_persons(r, persons=(dataclasses.replace(r.persons[0], role="root"),)),
            "persons[0].role",
        ),
        (
            lambda r: with_persons(r, persons=(dataclasses.replace(r.persons[0], key="AAAA"),)),
            "persons[0].key",
        ),
        (lambda r: with_persons(r, thresholds={**r.thresholds, "resume": 4}), "roster.thresholds.resume"),
        (lambda r: with_persons(r, thresholds={**r.thresholds, "resume": 0}), "roster.thresholds.resume"),
        (lambda r: with_persons(r, thresholds={**r.thresholds, "launch": 1}), "roster.thresholds.launch"),
        (
            lambda r: with_persons(
                r, persons=tuple(dataclasses.replace(p, role="steward") for p in r.persons)
            ),
            "roster.persons",
        ),
    ],
    ids=[
        "version-0",
        "v1-with-previous",
        "nobody",
        "person-twice",
        "key-twice",
        "bad-id",
        "bad-role",
        "short-key",
        "threshold-above-admins",
        "threshold-0",
        "unknown-class",
        "no-admin",
    ],
)
def test_an_unusable_roster_is_refused_naming_the_field(change: Any, field: str) -> None:
    with pytest.raises(InvalidArgument) as e:
        rd.validate(change(V1))
    assert field in e.value.field


@pytest.mark.parametrize(
    ("signatures", "problem"),
    [
        ([sig("alice"), sig("bob")], None),
        ([sig("alice"), sig("bob"), sig("carol")], None),
        ([sig("alice")], "resume needs 2 distinct admins of roster v1; 1 signed (alice)"),
        ([], "resume needs 2 distinct admins of roster v1; 0 signed (none)"),
        ([sig("alice"), sig("alice")], "alice is listed twice"),
        ([sig("alice"), sig("bob", key="alice")], "the signature of bob does not verify"),
        ([sig("alice"), rd.Signature("mallory", b"x" * 64)], "'mallory' is not a person of roster v1"),
        ([sig("alice"), sig("bob", data=b"another statement")], "the signature of bob does not verify"),
    ],
    ids=["two", "three", "one", "none", "twice", "wrong-key", "stranger", "other-statement"],
)
def test_approvals_count_distinct_roster_admins_with_valid_signatures(
    signatures: list[rd.Signature], problem: str | None
) -> None:
    why = rd.meets(V1, rd.ActionClass.RESUME, STATEMENT, signatures)
    assert why == problem if problem is None else (why or "").startswith(problem), why


def test_a_shared_key_counts_once_and_a_steward_never() -> None:
    shared = with_persons(
        V1,
        persons=(*V1.persons, rd.Person("dave", "steward", base64.b64encode(b"\x01" * 32).decode(), "FR")),
    )
    rd.validate(shared)
    assert (
        rd.tally(shared, STATEMENT, [rd.Signature("dave", b"\x00" * 64)]).problem
        == "dave is a steward, not an admin"
    )
    r = roster_of(keys("solo"))
    assert r.single_admin and all(r.threshold(a) == 1 for a in rd.ActionClass)
    assert not V1.single_admin and V1.threshold(rd.ActionClass.GLOBAL_HALT) == 1


def _v2(**thresholds: int) -> rd.Roster:
    return roster_of(
        {"alice": PEOPLE["alice"], "bob": PEOPLE["bob"]}, version=2, previous=V1.hash(), **thresholds
    )


@pytest.mark.parametrize(
    ("make", "problem"),
    [
        (lambda: sign_roster(_v2(), [("alice", PEOPLE["alice"]), ("carol", PEOPLE["carol"])]), None),
        (
            lambda: sign_roster(_v2(), [("alice", PEOPLE["alice"])]),
            "roster-change needs 2 distinct admins of roster v1; 1 signed",
        ),
        (
            lambda: sign_roster(_v2(), [("alice", PEOPLE["alice"]), ("alice", PEOPLE["alice"])]),
            "alice is listed twice",
        ),
        (
            lambda: sign_roster(
                dataclasses.replace(_v2(), version=3), [("alice", PEOPLE["alice"]), ("bob", PEOPLE["bob"])]
            ),
            "version 3 does not follow 1",
        ),
        (
            lambda: sign_roster(
                dataclasses.replace(_v2(), previous="sha256:" + "1" * 64),
                [("alice", PEOPLE["alice"]), ("bob", PEOPLE["bob"])],
            ),
            "names previous",
        ),
        (
            # Signed by two persons v2 adds, whom v1 does not list: a roster cannot appoint its signers.
            lambda: sign_roster(
                (n := roster_of(keys("eve", "frank"), version=2, previous=V1.hash())),
                [(p.id, k) for p, k in zip(n.persons, [keys("x")["x"]] * 2, strict=True)],
            ),
            "'eve' is not a person of roster v1",
        ),
    ],
    ids=["valid", "below-threshold", "same-signer-twice", "skips-a-version", "wrong-previous", "new-signers"],
)
def test_version_n_plus_1_needs_the_roster_change_threshold_of_version_n(
    make: Any, problem: str | None
) -> None:
    why = rd.successor_problem(V1, make())
    assert why == problem if problem is None else (why or "").startswith(problem), why


def test_the_chain_is_followed_from_the_pinned_hash_and_stops_at_a_bad_link() -> None:
    v1 = rd.SignedRoster(V1)
    v2 = sign_roster(_v2(), [("alice", PEOPLE["alice"]), ("bob", PEOPLE["bob"])])
    assert rd.follow_chain(None, [v1, v2], V1.hash()).version == 2
    assert rd.follow_chain(V1, [v1, v2]).version == 2
    with pytest.raises(InvalidArgument, match="roster v1 hashes to"):
        rd.follow_chain(None, [v1, v2], "sha256:" + "2" * 64)
    bad = sign_roster(_v2(), [("alice", PEOPLE["alice"])])
    with pytest.raises(InvalidArgument, match="v2 refused: roster-change needs 2"):
        rd.follow_chain(V1, [v1, bad])
    # Round trip through the stored form, signatures included.
    assert rd.SignedRoster.from_json(v2.to_json()) == v2
    for raw, why in (
        (b"[]", "not a JSON object"),
        (b"{", "not JSON"),
        (b"x" * (rd.MAX_ROSTER_BYTES + 1), "larger"),
    ):
        with pytest.raises(InvalidArgument, match=why):
            rd.SignedRoster.from_json(raw)


CSR = "-----BEGIN CERTIFICATE REQUEST-----\nMIIB\n-----END CERTIFICATE REQUEST-----\n"


@pytest.mark.parametrize(
    ("name", "role", "signer", "problem"),
    [
        ("alice", "admin", "alice", None),
        ("claire", "steward", None, None),
        ("admin-alt", "admin", None, "admin-alt is not an admin of roster v1"),
        ("alice", "admin", None, "alice is a person of roster v1: their certificate is issued only against"),
        ("alice", "admin", "bob", "the CSR's signature does not verify with alice's roster approval key"),
        ("alice", "steward", "alice", "alice is listed as admin in roster v1, not steward"),
    ],
    ids=[
        "roster-admin-signed",
        "non-roster-steward",
        "self-minted-admin",
        "unsigned",
        "impersonated",
        "other-role",
    ],
)
def test_a_certificate_names_a_roster_person(
    name: str, role: str, signer: str | None, problem: str | None
) -> None:
    signature = PEOPLE[signer].sign(rd.csr_statement(name=name, csr_pem=CSR)) if signer else b""
    why = rd.issuance_problem(V1, name=name, role=role, csr_pem=CSR, signature=signature)
    assert why == problem if problem is None else (why or "").startswith(problem), why


async def test_links_keep_the_last_roster_read_while_the_store_is_down(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from controlplane.errors import Unavailable
    from controlplane.services import roster as rs
    from controlplane.services.audit import AuditLog
    from controlplane.store.memory import MemoryStore

    store = MemoryStore()
    roster = rs.RosterStore(store, AuditLog(store), rd.SignedRoster(V1))
    current, chain = await roster.wire_chain()
    assert current == V1.hash() and len(chain) == 1

    async def down(*args: Any, **kwargs: Any) -> Any:
        raise Unavailable("state store unavailable")

    monkeypatch.setattr(store, "range", down)
    monkeypatch.setattr(rs, "CACHE_S", 0.0)  # every pass re-reads: the outage is met at once
    assert await roster.wire_chain() == (current, chain)  # served from memory, no error
