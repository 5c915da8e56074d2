"""``stargatectl roster show|propose|sign|apply``: the roster of who may approve what.

A change is a file passed from admin to admin: ``propose`` writes the next version (the current
one's hash, changes applied, no signatures), each admin ``sign``s it on their own machine with the
approval key in their config, and ``apply`` hands it to the federation, which stores it only if the
current version's roster-change threshold signed it; every site checks the same before using it.
"""

from __future__ import annotations

import argparse
import base64
import dataclasses
from pathlib import Path
from typing import Any

from controlplane.api.v1 import federation_pb2 as fpb
from controlplane.cli.common import _out, call, context_of
from controlplane.cli.output import emit, table
from controlplane.client import approvals
from controlplane.domain import roster as rd
from controlplane.errors import InvalidArgument
from controlplane.pki import approval_key
from controlplane.pki.keys import write_atomic


def view(r: rd.Roster) -> dict[str, Any]:
    return {
        "version": r.version,
        "hash": r.hash(),
        "previous": r.previous,
        "single_admin": r.single_admin,
        "persons": [
            {"id": p.id, "role": p.role, "country": p.country, "key_id": rd.key_id(p.raw_key)}
            for p in r.persons
        ],
        "thresholds": dict(sorted(r.thresholds.items())),
    }


def _text(d: dict[str, Any]) -> str:
    people = table(
        [(p["id"], p["role"], p["country"] or "-", p["key_id"]) for p in d["persons"]],
        ["PERSON", "ROLE", "COUNTRY", "KEY"],
    )
    limits = ", ".join(f"{k} {v}" for k, v in d["thresholds"].items())
    warn = (
        "\nwarning: a single-admin federation: the two-person rule does not hold" if d["single_admin"] else ""
    )
    return f"roster v{d['version']} {d['hash']}\n{people}\nthresholds: {limits}{warn}"


async def _current(args: argparse.Namespace) -> rd.Roster:
    resp = await call(args, "GetRoster", fpb.GetRosterRequest())
    return rd.SignedRoster.from_json(resp.chain[-1]).roster


async def show(args: argparse.Namespace) -> int:
    emit(view(await _current(args)), args.output, _text)
    return 0


def _load(path: Path) -> rd.SignedRoster:
    try:
        raw = path.read_bytes()
    except OSError as e:
        raise InvalidArgument("FILE", f"cannot read {path}: {e.strerror}") from e
    return rd.SignedRoster.from_json(raw)


async def propose(args: argparse.Namespace) -> int:
    current = await _current(args)
    persons = {p.id: p for p in current.persons}
    for name in args.remove:
        if persons.pop(name, None) is None:
            raise InvalidArgument("--remove", f"{name} is not in roster v{current.version}")
    for text in args.add:
        spec, _, country = text.partition("@")
        who, sep, pub = spec.partition("=")
        name, _, role = who.partition(":")
        if not sep or (role and role not in rd.ROLES):
            raise InvalidArgument("--add", "must be NAME[:ROLE]=PUB[@COUNTRY], e.g. carol:admin=carol.pub")
        raw = approval_key.load_public(Path(pub), "--add")
        persons[name] = rd.Person(name, role or "admin", base64.b64encode(raw).decode(), country)
    thresholds = dict(current.thresholds)
    for text in args.threshold:
        name, sep, value = text.partition("=")
        if not sep or not value.isdigit():
            raise InvalidArgument("--threshold", "must be CLASS=N, e.g. resume=2")
        thresholds[name] = int(value)
    nxt = rd.validate(rd.Roster(current.version + 1, tuple(persons.values()), thresholds, current.hash()))
    write_atomic(Path(args.out), rd.SignedRoster(nxt).to_json(), 0o644)
    emit(
        view(nxt),
        args.output,
        lambda d: (
            f"proposed roster v{d['version']} in {args.out}: "
            f"admins sign it with `stargatectl roster sign {args.out}`"
        ),
    )
    return 0


async def sign(args: argparse.Namespace) -> int:
    path = Path(args.file)
    signed = _load(path)
    mine = approvals.sign(context_of(args), signed.roster.canonical_bytes())
    others = tuple(s for s in signed.signatures if s.person != mine.person)
    out = dataclasses.replace(signed, signatures=(*others, rd.Signature(mine.person, bytes(mine.signature))))
    write_atomic(path, out.to_json(), 0o644)
    data = {
        "file": str(path),
        "version": signed.roster.version,
        "signers": [s.person for s in out.signatures],
    }
    emit(
        data,
        args.output,
        lambda d: f"signed roster v{d['version']} in {d['file']}; signers: {', '.join(d['signers'])}",
    )
    return 0


async def apply(args: argparse.Namespace) -> int:
    signed = _load(Path(args.file))
    resp = await call(args, "ApplyRoster", fpb.ApplyRosterRequest(roster=signed.to_json()))
    emit(
        {"version": resp.version, "hash": resp.hash},
        args.output,
        lambda d: f"roster v{d['version']} applied: {d['hash']}",
    )
    return 0


def register(sub: Any) -> None:
    r = sub.add_parser("roster", help="who may approve what, and how many must").add_subparsers(
        dest="cmd", required=True
    )
    p = r.add_parser("show", help="the current roster")
    _out(p)
    p.set_defaults(handler=show)
    p = r.add_parser("propose", help="write the next roster version to a file, unsigned")
    p.add_argument("--out", required=True)
    p.add_argument(
        "--add", action="append", default=[], metavar="NAME[:ROLE]=PUB[@CC]", help="add or replace a person"
    )
    p.add_argument("--remove", action="append", default=[], metavar="NAME")
    p.add_argument(
        "--threshold",
        action="append",
        default=[],
        metavar="CLASS=N",
        help=f"one of {', '.join(rd.ActionClass)}",
    )
    _out(p)
    p.set_defaults(handler=propose)
    p = r.add_parser("sign", help="add your signature (your config's approval key) to a proposed roster")
    p.add_argument("file")
    _out(p)
    p.set_defaults(handler=sign)
    p = r.add_parser("apply", help="hand a signed roster to the federation (admin)")
    p.add_argument("file")
    _out(p)
    p.set_defaults(handler=apply)
