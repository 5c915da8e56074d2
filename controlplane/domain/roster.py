"""The roster: who may approve what, and how many must. Pure logic (canonical bytes, validation,
the chain rule, counting signed approvals); no I/O.

A roster is a versioned document of persons (id, role, country, Ed25519 approval public key) and a
threshold per action class. Version 1 is made by ``init`` from the first admins' public keys and is
trusted because its hash is pinned out of band (like the CA certificate). Version N+1 is valid only
when signed by at least version N's ``roster-change`` threshold of version N's admins, over its
canonical bytes, which name version N's hash: a roster cannot be rewritten, only succeeded.

An approval is an Ed25519 signature by a person's approval key over an *approval statement*: a
domain-separated canonical JSON naming the action class and everything the action does. A site
counts approvals itself (``tally``): each signature must verify under the key the roster lists for
the person it names; a person or a key appearing twice, or a person who is not an admin, refuses
the whole set (no quiet deduplication that could hide an attempt). The federation's own count of
approvals is never trusted.
"""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from controlplane.domain.validation import validate_country, validate_dns_label
from controlplane.errors import InvalidArgument

ROSTER_CONTEXT = b"stargate-roster-v1\n"
APPROVAL_CONTEXT = b"stargate-approval-v1\n"
CSR_CONTEXT = b"stargate-user-csr-v1\n"
#: Bounds on a roster document (a person entry is ~150 bytes): 256 persons is a large federation.
MAX_PERSONS = 256
MAX_ROSTER_BYTES = 128 * 1024
MAX_VERSION = 2**31 - 1
_HASH = re.compile(r"sha256:[0-9a-f]{64}")
ROLES = ("admin", "steward", "auditor")
#: Where init keeps version 1 in the PKI directory, and where a site keeps its pinned roster.
ROSTER_FILE = "roster.json"


class ActionClass(StrEnum):
    GLOBAL_HALT = "global-halt"
    RESUME = "resume"
    FREEZE = "freeze"  # freeze and unfreeze
    ROSTER_CHANGE = "roster-change"
    PUBLISHER = "publisher"  # add and remove
    SAFETY_KEY_ROTATION = "safety-key-rotation"


#: What a federation of two or more admins starts with; ``first_roster`` lowers each to the number
#: of admins (a single-admin federation, which says so everywhere it matters).
DEFAULT_THRESHOLDS: dict[str, int] = {
    ActionClass.GLOBAL_HALT: 1,  # stopping is the safe direction
    ActionClass.RESUME: 2,
    ActionClass.FREEZE: 2,
    ActionClass.ROSTER_CHANGE: 2,
    ActionClass.PUBLISHER: 2,
    ActionClass.SAFETY_KEY_ROTATION: 2,
}


def key_id(raw: bytes) -> str:
    """``ak-`` + 16 hex of the SHA-256 of a raw Ed25519 approval public key."""
    return "ak-" + hashlib.sha256(raw).hexdigest()[:16]


def _b64(value: str, field_name: str) -> bytes:
    try:
        raw = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError) as e:
        raise InvalidArgument(field_name, "is not base64") from e
    if len(raw) != 32:
        raise InvalidArgument(field_name, f"must be a 32-byte Ed25519 public key, got {len(raw)} bytes")
    return raw


@dataclass(frozen=True)
class Person:
    id: str
    role: str
    key: str  # base64 of the raw 32-byte Ed25519 approval public key
    country: str = ""

    @property
    def raw_key(self) -> bytes:
        return base64.b64decode(self.key)

    def as_dict(self) -> dict[str, str]:
        return {"id": self.id, "role": self.role, "country": self.country, "key": self.key}


@dataclass(frozen=True)
class Roster:
    version: int
    persons: tuple[Person, ...]
    thresholds: Mapping[str, int]
    #: ``sha256:…`` of the previous version's canonical bytes; empty for version 1.
    previous: str = ""

    def canonical_bytes(self) -> bytes:
        body = {
            "version": self.version,
            "previous": self.previous,
            "persons": sorted((p.as_dict() for p in self.persons), key=lambda p: p["id"]),
            "thresholds": {k: int(v) for k, v in sorted(self.thresholds.items())},
        }
        return ROSTER_CONTEXT + json.dumps(body, sort_keys=True, separators=(",", ":")).encode()

    def hash(self) -> str:
        return self._hash

    @functools.cached_property
    def _hash(self) -> str:
        # Memoized: a site keys its memory of verified approvals by it, once per Resume (~60 us of
        # canonical JSON and SHA-256 for two persons, measured with 1,000 sites in one process).
        return "sha256:" + hashlib.sha256(self.canonical_bytes()).hexdigest()

    def person(self, person_id: str) -> Person | None:
        return next((p for p in self.persons if p.id == person_id), None)

    def admins(self) -> list[Person]:
        return [p for p in self.persons if p.role == "admin"]

    def threshold(self, action: ActionClass | str) -> int:
        return int(self.thresholds.get(str(action), DEFAULT_THRESHOLDS.get(str(action), 2)))

    @property
    def single_admin(self) -> bool:
        return len(self.admins()) < 2


@dataclass(frozen=True)
class Signature:
    person: str
    signature: bytes


@dataclass(frozen=True)
class SignedRoster:
    roster: Roster
    signatures: tuple[Signature, ...] = field(default_factory=tuple)

    def to_json(self) -> bytes:
        r = self.roster
        return json.dumps(
            {
                "version": r.version,
                "previous": r.previous,
                "persons": [p.as_dict() for p in r.persons],
                "thresholds": dict(r.thresholds),
                "signatures": [{"person": s.person, "signature": s.signature.hex()} for s in self.signatures],
            },
            sort_keys=True,
            indent=1,
        ).encode()

    @classmethod
    def from_json(cls, raw: bytes) -> SignedRoster:
        """Parse and validate (``validate``); InvalidArgument naming the field otherwise."""
        if len(raw) > MAX_ROSTER_BYTES:
            raise InvalidArgument("roster", f"larger than {MAX_ROSTER_BYTES} bytes")
        try:
            data = json.loads(raw)
        except (ValueError, UnicodeDecodeError) as e:
            raise InvalidArgument("roster", "is not JSON") from e
        if not isinstance(data, dict):
            raise InvalidArgument("roster", "is not a JSON object")
        try:
            persons = tuple(
                Person(str(p["id"]), str(p["role"]), str(p["key"]), str(p.get("country", "")))
                for p in data.get("persons", [])
            )
            sigs = tuple(
                Signature(str(s["person"]), bytes.fromhex(str(s["signature"])))
                for s in data.get("signatures", [])
            )
            version = data.get("version")
            thresholds = data.get("thresholds", {})
            if not isinstance(version, int) or not isinstance(thresholds, dict):
                raise TypeError
            roster = Roster(
                version,
                persons,
                {str(k): v for k, v in thresholds.items()},
                str(data.get("previous", "")),
            )
        except (KeyError, TypeError, ValueError, AttributeError) as e:
            raise InvalidArgument("roster", "fields do not match a roster document") from e
        validate(roster)
        return cls(roster, sigs)


def validate(r: Roster) -> Roster:
    """A roster that can be used: ids are DNS labels, each person and each key once, thresholds
    between 1 and the number of admins."""
    if not 1 <= r.version <= MAX_VERSION:
        raise InvalidArgument("roster.version", f"must be 1..{MAX_VERSION}")
    if (r.version == 1) != (r.previous == ""):
        raise InvalidArgument("roster.previous", "is empty exactly for version 1")
    if r.previous and not _HASH.fullmatch(r.previous):
        raise InvalidArgument("roster.previous", "must be sha256:<64 hex>")
    if not 1 <= len(r.persons) <= MAX_PERSONS:
        raise InvalidArgument("roster.persons", f"must list 1..{MAX_PERSONS} persons")
    ids: set[str] = set()
    keys: set[bytes] = set()
    for i, p in enumerate(r.persons):
        where = f"roster.persons[{i}]"
        validate_dns_label(f"{where}.id", p.id)
        if p.role not in ROLES:
            raise InvalidArgument(f"{where}.role", f"must be one of {', '.join(ROLES)}")
        if p.country:
            validate_country(p.country, f"{where}.country")
        raw = _b64(p.key, f"{where}.key")
        if p.id in ids:
            raise InvalidArgument(f"{where}.id", f"person {p.id} is listed twice")
        if raw in keys:
            raise InvalidArgument(f"{where}.key", f"key {key_id(raw)} is listed twice")
        ids.add(p.id)
        keys.add(raw)
    admins = len(r.admins())
    if admins < 1:
        raise InvalidArgument("roster.persons", "must list at least one admin")
    for name in r.thresholds:
        if name not in set(ActionClass):
            raise InvalidArgument(f"roster.thresholds.{name[:40]}", "is not an action class")
    for action in ActionClass:
        t = r.thresholds.get(action)
        if not isinstance(t, int) or isinstance(t, bool) or not 1 <= t <= admins:
            raise InvalidArgument(f"roster.thresholds.{action}", f"must be 1..{admins} (the admins listed)")
    return r


def first_roster(
    admin_keys: Sequence[tuple[str, bytes]], countries: Mapping[str, str] | None = None
) -> Roster:
    """Version 1 from the first admins' (id, raw public key): the default thresholds, each lowered
    to the number of admins."""
    persons = tuple(
        Person(pid, "admin", base64.b64encode(raw).decode(), (countries or {}).get(pid, ""))
        for pid, raw in admin_keys
    )
    n = len(persons)
    return validate(Roster(1, persons, {k: min(v, max(n, 1)) for k, v in DEFAULT_THRESHOLDS.items()}))


# --- signatures ---------------------------------------------------------------------------------------


def _verifies(raw_key: bytes, signature: bytes, data: bytes) -> bool:
    try:
        Ed25519PublicKey.from_public_bytes(raw_key).verify(signature, data)
    except (InvalidSignature, ValueError):
        return False
    return True


@dataclass(frozen=True)
class Tally:
    """Who validly approved, or why the set is refused (``problem``)."""

    persons: tuple[str, ...] = ()
    problem: str = ""


def tally(roster: Roster, data: bytes, signatures: Iterable[Signature], *, role: str = "admin") -> Tally:
    """Count the distinct persons of ``role`` whose signature over ``data`` verifies under their
    roster key. Any signature that does not count refuses the whole set, with the reason."""
    seen_persons: set[str] = set()
    seen_keys: set[bytes] = set()
    out: list[str] = []
    for s in signatures:
        shown = s.person[:64]
        p = roster.person(s.person)
        if p is None:
            return Tally(problem=f"{shown!r} is not a person of roster v{roster.version}")
        if p.role != role:
            return Tally(problem=f"{shown} is a {p.role}, not an {role}")
        if p.id in seen_persons:
            return Tally(problem=f"{shown} is listed twice")
        raw = p.raw_key
        if raw in seen_keys:
            return Tally(problem=f"key {key_id(raw)} is used twice")
        if not _verifies(raw, s.signature, data):
            return Tally(problem=f"the signature of {shown} does not verify with their roster key")
        seen_persons.add(p.id)
        seen_keys.add(raw)
        out.append(p.id)
    return Tally(tuple(out))


def meets(roster: Roster, action: ActionClass, data: bytes, signatures: Iterable[Signature]) -> str | None:
    """None when the signatures meet the roster's threshold for ``action``, else the reason."""
    t = tally(roster, data, signatures)
    if t.problem:
        return t.problem
    need = roster.threshold(action)
    if len(t.persons) < need:
        return (
            f"{action} needs {need} distinct admins of roster v{roster.version}; "
            f"{len(t.persons)} signed ({', '.join(t.persons) or 'none'})"
        )
    return None


def successor_problem(current: Roster, new: SignedRoster) -> str | None:
    """Why ``new`` may not follow ``current`` (None: it may): version N+1, naming N's hash, valid,
    and signed by N's roster-change threshold of N's admins over the new canonical bytes."""
    r = new.roster
    if r.version != current.version + 1:
        return f"version {r.version} does not follow {current.version}"
    if r.previous != current.hash():
        return f"names previous {r.previous[:80]!r}, not v{current.version}'s hash"
    try:
        validate(r)
    except InvalidArgument as e:
        return str(e)
    return meets(current, ActionClass.ROSTER_CHANGE, r.canonical_bytes(), new.signatures)


def approval_statement(action: ActionClass, **fields: str) -> bytes:
    """The bytes a person signs to approve an action: its class and what it does. For a resume:
    ``halt_id``, ``release``, ``scope`` (a halt id is a UUID resumed at most once, so a signature
    cannot be replayed for another resume)."""
    body = {"class": str(action), **{k: str(v) for k, v in sorted(fields.items())}}
    return APPROVAL_CONTEXT + json.dumps(body, sort_keys=True, separators=(",", ":")).encode()


def resume_statement(*, halt_id: str, release: str, scope: str) -> bytes:
    return approval_statement(ActionClass.RESUME, halt_id=halt_id, release=release, scope=scope)


def csr_statement(*, name: str, csr_pem: str) -> bytes:
    """What ``users request`` signs with the person's approval key: their name and their CSR."""
    return CSR_CONTEXT + json.dumps({"name": name, "csr": csr_pem}, sort_keys=True).encode()


def issuance_problem(roster: Roster, *, name: str, role: str, csr_pem: str, signature: bytes) -> str | None:
    """Why a certificate for ``name`` with ``role`` may not be issued (None: it may). A certificate
    names a roster person: an admin certificate only for a roster admin, a listed person's only with
    their role and against a CSR signed with their approval key; a name the roster does not list
    gets a steward or auditor certificate (it approves nothing)."""
    person = roster.person(name)
    if person is None:
        if role == "admin":
            return (
                f"{name} is not an admin of roster v{roster.version}: an admin certificate names a "
                "roster admin (add them with a roster change first)"
            )
        return None
    if person.role != role:
        return f"{name} is listed as {person.role} in roster v{roster.version}, not {role}"
    if not signature:
        return (
            f"{name} is a person of roster v{roster.version}: their certificate is issued only against a "
            "CSR signed with their approval key (stargatectl users request)"
        )
    if not _verifies(person.raw_key, signature, csr_statement(name=name, csr_pem=csr_pem)):
        return f"the CSR's signature does not verify with {name}'s roster approval key"
    return None


def signatures_from(items: Iterable[Mapping[str, Any]]) -> tuple[Signature, ...]:
    """From stored ``{"person", "signature" (hex)}`` dicts; malformed entries raise ValueError."""
    return tuple(Signature(str(i["person"]), bytes.fromhex(str(i["signature"]))) for i in items)


def follow_chain(current: Roster | None, chain: Sequence[SignedRoster], pinned: str = "") -> Roster:
    """The newest roster reachable from ``current`` along ``chain`` (oldest first). Without a
    ``current`` (enrollment), the chain's version 1 must hash to ``pinned`` when one is given.
    Versions at or below ``current`` are skipped; a version that does not chain refuses the rest
    (InvalidArgument naming why): a site never moves to a roster its own roster did not sign."""
    if current is None:
        if not chain or chain[0].roster.version != 1:
            raise InvalidArgument("roster", "the federation sent no roster version 1")
        if pinned and chain[0].roster.hash() != pinned:
            raise InvalidArgument(
                "roster-hash", f"roster v1 hashes to {chain[0].roster.hash()}, not the pinned {pinned}"
            )
        current = chain[0].roster
    for signed in chain:
        if signed.roster.version <= current.version:
            continue
        why = successor_problem(current, signed)
        if why is not None:
            raise InvalidArgument("roster", f"v{signed.roster.version} refused: {why}")
        current = signed.roster
    return current
