"""stargatectl releases, publishers and rollouts."""

from __future__ import annotations

import argparse
import asyncio
import base64
import sys
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from google.protobuf import json_format

from controlplane.api.v1 import release_pb2 as rpb
from controlplane.api.v1 import rollouts_pb2 as opb
from controlplane.cli.commands import OUTPUT, client
from controlplane.cli.output import emit, iso, table
from controlplane.client import manifests
from controlplane.domain import releases as rel
from controlplane.errors import InvalidArgument
from controlplane.pki.keys import write_atomic

_ACTIONS = {
    "pause": opb.ROLLOUT_ACTION_PAUSE,
    "resume": opb.ROLLOUT_ACTION_RESUME,
    "abort": opb.ROLLOUT_ACTION_ABORT,
    "rollback": opb.ROLLOUT_ACTION_ROLLBACK,
}


async def rcall(args: argparse.Namespace, method: str, request: Any) -> Any:
    async with client(args) as c:
        return await c.call(method, request)


# --- keys and publishers ------------------------------------------------------------------------------


def keygen(args: argparse.Namespace) -> int:
    key = Ed25519PrivateKey.generate()
    out = Path(args.out)
    raw_pub = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    write_atomic(Path(f"{out}.key"), pem, 0o600)
    write_atomic(Path(f"{out}.pub"), base64.b64encode(raw_pub) + b"\n", 0o644)
    emit(
        {"private_key": f"{out}.key", "public_key": f"{out}.pub", "key_id": rel.key_id(raw_pub)},
        args.output,
        lambda d: f"wrote {d['private_key']} (0600) and {d['public_key']}; key id {d['key_id']}",
    )
    return 0


def read_public_key(path: str) -> bytes:
    try:
        raw = base64.b64decode(Path(path).read_text().strip(), validate=True)
    except (OSError, ValueError) as e:
        raise InvalidArgument("--public-key", f"{path} is not a base64 Ed25519 public key file") from e
    return rel.validate_public_key(raw, "--public-key")


def read_private_key(path: str) -> Ed25519PrivateKey:
    try:
        key = serialization.load_pem_private_key(Path(path).read_bytes(), password=None)
    except (OSError, ValueError) as e:
        raise InvalidArgument("--sign-key", f"{path} is not a PEM private key") from e
    if not isinstance(key, Ed25519PrivateKey):
        raise InvalidArgument(
            "--sign-key", f"{path} is not an Ed25519 key (use `stargatectl releases keygen`)"
        )
    return key


def _publisher(p: Any) -> dict[str, Any]:
    return {"name": p.name, "key_id": p.key_id, "added_at": iso(p.added_at)}


async def publishers_add(args: argparse.Namespace) -> int:
    req = opb.AddPublisherRequest(name=args.name, public_key=read_public_key(args.public_key))
    resp = await rcall(args, "AddPublisher", req)
    emit(_publisher(resp.publisher), args.output, lambda d: f"publisher {d['name']} added ({d['key_id']})")
    return 0


async def publishers_list(args: argparse.Namespace) -> int:
    resp = await rcall(args, "ListPublishers", opb.ListPublishersRequest())
    items = [_publisher(p) for p in resp.publishers]
    emit(
        {"items": items},
        args.output,
        lambda d: table(
            [(p["name"], p["key_id"], p["added_at"]) for p in d["items"]], ["NAME", "KEY", "ADDED"]
        ),
    )
    return 0


# --- releases -----------------------------------------------------------------------------------------


def _release(s: Any) -> dict[str, Any]:
    r = json_format.MessageToDict(s.release)
    return {
        "name": s.release.name,
        "publisher": s.publisher,
        "key_id": rel.key_id(s.publisher_key) if s.publisher_key else "",
        "release": r,
    }


def _releases_table(d: dict[str, Any]) -> str:
    rows = [
        (
            r["name"],
            r["release"].get("model", ""),
            r["release"].get("version", ""),
            r["release"].get("riskTier", ""),
            r["publisher"],
        )
        for r in d["items"]
    ]
    return table(rows, ["NAME", "MODEL", "VERSION", "RISK", "PUBLISHER"])


async def releases_create(args: argparse.Namespace) -> int:
    release = manifests.load_one(Path(args.file), rpb.ModelRelease)
    key = read_private_key(args.sign_key)
    signed = rpb.SignedRelease(release=release, publisher=args.publisher, signature=rel.sign(key, release))
    resp = await rcall(args, "CreateRelease", opb.CreateReleaseRequest(signed=signed))
    emit(
        _release(resp.signed),
        args.output,
        lambda d: f"release {d['name']} registered, signed by {d['publisher']}",
    )
    return 0


async def releases_list(args: argparse.Namespace) -> int:
    resp = await rcall(args, "ListReleases", opb.ListReleasesRequest())
    emit({"items": [_release(s) for s in resp.releases]}, args.output, _releases_table)
    return 0


async def releases_get(args: argparse.Namespace) -> int:
    resp = await rcall(args, "GetRelease", opb.GetReleaseRequest(name=args.name))
    emit(_release(resp.signed), args.output, lambda d: _releases_table({"items": [d]}))
    return 0


# --- rollouts -----------------------------------------------------------------------------------------


def rollout_view(r: Any) -> dict[str, Any]:
    return {
        "name": r.spec.name,
        "release": r.spec.release,
        "phase": r.phase,
        "message": r.message,
        "waves": [
            {
                "name": w.name,
                "phase": w.phase,
                "gate": w.gate,
                "sites": [
                    {"site": s.site, "country": s.country, "state": s.state, "reason": s.reason}
                    for s in w.sites
                ],
            }
            for w in r.waves
        ],
        "approved_countries": list(r.approved_countries),
        "pending_countries": list(r.pending_countries),
        "excluded": [{"site": e.site, "country": e.country, "reasons": list(e.reasons)} for e in r.excluded],
        "created_by": r.created_by,
        "updated_at": iso(r.updated_at),
    }


def _bar(done: int, total: int, width: int = 20) -> str:
    filled = round(width * done / total) if total else width
    return "[" + "#" * filled + "." * (width - filled) + f"] {done}/{total}"


def render_status(d: dict[str, Any]) -> str:
    lines = [f"rollout {d['name']} ({d['release']}): {d['phase']} - {d['message']}"]
    for w in d["waves"]:
        ready = sum(1 for s in w["sites"] if s["state"] in ("Ready", "RolledBack"))
        lines.append(f"  {w['name']:<12} {w['phase']:<12} {_bar(ready, len(w['sites']))}  {w['gate']}")
        for s in w["sites"]:
            lines.append(f"      {s['site']:<16} {s['country']:<3} {s['state']:<18} {s['reason']}")
    if d["pending_countries"]:
        lines.append(f"  awaiting approval: {', '.join(d['pending_countries'])}")
    return "\n".join(lines)


async def rollouts_plan(args: argparse.Namespace) -> int:
    spec = manifests.load_one(Path(args.file), opb.RolloutSpec)
    resp = await rcall(args, "PlanRollout", opb.PlanRolloutRequest(spec=spec))
    data = {
        "selected": [{"site": s.site, "country": s.country, "replicas": s.replicas} for s in resp.selected],
        "excluded": [
            {"site": e.site, "country": e.country, "reasons": list(e.reasons)} for e in resp.excluded
        ],
    }
    emit(
        data,
        args.output,
        lambda d: table(
            [(s["site"], s["country"], s["replicas"], "selected") for s in d["selected"]]
            + [(e["site"], e["country"], "-", "; ".join(e["reasons"])) for e in d["excluded"]],
            ["SITE", "COUNTRY", "REPLICAS", "DECISION"],
        ),
    )
    return 0


async def rollouts_create(args: argparse.Namespace) -> int:
    spec = manifests.load_one(Path(args.file), opb.RolloutSpec)
    resp = await rcall(args, "CreateRollout", opb.CreateRolloutRequest(spec=spec))
    emit(rollout_view(resp.rollout), args.output, render_status)
    return 0


async def rollouts_get(args: argparse.Namespace) -> int:
    resp = await rcall(args, "GetRollout", opb.GetRolloutRequest(name=args.name))
    emit(rollout_view(resp.rollout), args.output, render_status)
    return 0


async def rollouts_list(args: argparse.Namespace) -> int:
    resp = await rcall(args, "ListRollouts", opb.ListRolloutsRequest())
    items = [rollout_view(r) for r in resp.rollouts]
    emit(
        {"items": items},
        args.output,
        lambda d: table(
            [(r["name"], r["release"], r["phase"], r["message"]) for r in d["items"]],
            ["NAME", "RELEASE", "PHASE", "MESSAGE"],
        ),
    )
    return 0


async def rollouts_status(args: argparse.Namespace) -> int:
    final = ("Completed", "RolledBack", "Aborted")
    while True:
        resp = await rcall(args, "GetRollout", opb.GetRolloutRequest(name=args.name))
        view = rollout_view(resp.rollout)
        if args.watch and args.output == "table" and sys.stdout.isatty():
            sys.stdout.write("\x1b[H\x1b[2J")  # a live view: redraw in place
        emit(view, args.output, render_status)
        if not args.watch or view["phase"] in final:
            return 0
        sys.stdout.flush()
        await asyncio.sleep(args.interval)


async def rollouts_act(args: argparse.Namespace) -> int:
    req = opb.UpdateRolloutRequest(name=args.name, action=_ACTIONS[args.action], reason=args.reason)
    resp = await rcall(args, "UpdateRollout", req)
    emit(rollout_view(resp.rollout), args.output, render_status)
    return 0


async def rollouts_approve(args: argparse.Namespace) -> int:
    resp = await rcall(
        args, "ApproveRollout", opb.ApproveRolloutRequest(name=args.name, country=args.country)
    )
    emit(rollout_view(resp.rollout), args.output, render_status)
    return 0


def _out(p: argparse.ArgumentParser) -> None:
    p.add_argument("-o", "--output", choices=OUTPUT, default="table")


def register(sub: Any) -> None:
    releases = sub.add_parser("releases", help="signed model releases").add_subparsers(
        dest="cmd", required=True
    )
    p = releases.add_parser("keygen", help="generate a publisher Ed25519 key pair OUT.key (0600) and OUT.pub")
    p.add_argument("--out", required=True)
    _out(p)
    p.set_defaults(handler=keygen)
    p = releases.add_parser("create", help="sign a ModelRelease manifest and register it (admin)")
    p.add_argument("-f", "--file", required=True)
    p.add_argument("--sign-key", required=True, help="the publisher's private key (from keygen)")
    p.add_argument("--publisher", required=True, help="the registered publisher name of that key")
    _out(p)
    p.set_defaults(handler=releases_create)
    p = releases.add_parser("list", help="list releases")
    _out(p)
    p.set_defaults(handler=releases_list)
    p = releases.add_parser("get", help="show a release")
    p.add_argument("name")
    _out(p)
    p.set_defaults(handler=releases_get)

    pubs = sub.add_parser("publishers", help="release publishers").add_subparsers(dest="cmd", required=True)
    p = pubs.add_parser("add", help="register a publisher's public key (admin)")
    p.add_argument("--name", required=True)
    p.add_argument("--public-key", required=True, help="OUT.pub from `releases keygen`")
    _out(p)
    p.set_defaults(handler=publishers_add)
    p = pubs.add_parser("list", help="list publishers")
    _out(p)
    p.set_defaults(handler=publishers_list)

    ro = sub.add_parser("rollouts", help="gated multi-country rollouts").add_subparsers(
        dest="cmd", required=True
    )
    for name, handler, hlp in (
        ("plan", rollouts_plan, "show where a rollout would go, and why not elsewhere"),
        ("create", rollouts_create, "start a rollout (admin)"),
    ):
        p = ro.add_parser(name, help=hlp)
        p.add_argument("-f", "--file", required=True)
        _out(p)
        p.set_defaults(handler=handler)
    p = ro.add_parser("get", help="show a rollout")
    p.add_argument("name")
    _out(p)
    p.set_defaults(handler=rollouts_get)
    p = ro.add_parser("list", help="list rollouts")
    _out(p)
    p.set_defaults(handler=rollouts_list)
    p = ro.add_parser("status", help="a rollout's waves and sites; --watch for a live view")
    p.add_argument("name")
    p.add_argument("--watch", action="store_true")
    p.add_argument("--interval", type=float, default=1.0)
    _out(p)
    p.set_defaults(handler=rollouts_status)
    for action in _ACTIONS:
        p = ro.add_parser(action, help=f"{action} a rollout (admin)")
        p.add_argument("name")
        p.add_argument("--reason", default="")
        _out(p)
        p.set_defaults(handler=rollouts_act, action=action)
    p = ro.add_parser("approve", help="consent for a country (its steward)")
    p.add_argument("name")
    p.add_argument("--country", required=True)
    _out(p)
    p.set_defaults(handler=rollouts_approve)
