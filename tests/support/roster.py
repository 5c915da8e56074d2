"""Rosters and signed approvals for tests: real Ed25519 keys, the product's canonical bytes."""

from __future__ import annotations

import base64

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from controlplane.api.v1 import safety_pb2 as xpb
from controlplane.domain import roster as rd


def keys(*names: str) -> dict[str, Ed25519PrivateKey]:
    return {n: Ed25519PrivateKey.generate() for n in names}


def roster_of(
    people: dict[str, Ed25519PrivateKey], version: int = 1, previous: str = "", **thresholds: int
) -> rd.Roster:
    persons = tuple(
        rd.Person(n, "admin", base64.b64encode(k.public_key().public_bytes_raw()).decode())
        for n, k in people.items()
    )
    t = {k: min(v, len(persons)) for k, v in rd.DEFAULT_THRESHOLDS.items()}
    t.update({k.replace("_", "-"): v for k, v in thresholds.items()})
    return rd.validate(rd.Roster(version, persons, t, previous))


def resume_approvals(
    signers: list[tuple[str, Ed25519PrivateKey]], *, halt_id: str, release: str, scope: str
) -> list[xpb.PersonApproval]:
    statement = rd.resume_statement(halt_id=halt_id, release=release, scope=scope)
    return [xpb.PersonApproval(person=p, signature=k.sign(statement)) for p, k in signers]


def sign_roster(r: rd.Roster, signers: list[tuple[str, Ed25519PrivateKey]]) -> rd.SignedRoster:
    data = r.canonical_bytes()
    return rd.SignedRoster(r, tuple(rd.Signature(p, k.sign(data)) for p, k in signers))
