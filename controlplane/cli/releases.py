"""stargatectl releases and publishers (rollouts: controlplane/cli/rollouts.py)."""

from __future__ import annotations

import argparse
import base64
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from google.protobuf import json_format

from controlplane.api.v1 import release_pb2 as rpb
from controlplane.api.v1 import rollouts_pb2 as opb
from controlplane.cli import rollouts
from controlplane.cli.common import OUTPUT, client
from controlplane.cli.output import OBJECT_OUTPUT, emit, emit_objects, iso, table
from controlplane.client import manifests
from controlplane.domain import releases as rel
from controlplane.errors import InvalidArgument
from controlplane.pki.keys import write_atomic


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
    emit_objects(
        {"items": items},
        args.output,
        kind="publisher",
        names=[p["name"] for p in items],
        render_table=lambda d: table(
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


def _releases_table(d: dict[str, Any], wide: bool = False) -> str:
    rows = []
    for r in d["items"]:
        rel_ = r["release"]
        row = [
            r["name"],
            rel_.get("model", ""),
            rel_.get("version", ""),
            rel_.get("riskTier", ""),
            r["publisher"],
        ]
        if wide:
            export = rel_.get("export", {})
            where = (
                "allow " + ",".join(export["allowCountries"])
                if export.get("allowCountries")
                else "deny " + ",".join(export["denyCountries"])
                if export.get("denyCountries")
                else "everywhere"
            )
            row += [rel_.get("digest", ""), where, ",".join(rel_.get("locales", [])) or "-"]
            row.append(rel_.get("variantOf", "") or "-")
        rows.append(row)
    head = ["NAME", "MODEL", "VERSION", "RISK", "PUBLISHER"]
    return table(rows, head + (["DIGEST", "EXPORT", "LOCALES", "VARIANT OF"] if wide else []))


def _emit_releases(data: dict[str, Any], fmt: str) -> None:
    emit_objects(
        data,
        fmt,
        kind="release",
        names=[r["name"] for r in data["items"]],
        render_table=_releases_table,
        render_wide=lambda d: _releases_table(d, wide=True),
    )


async def releases_create(args: argparse.Namespace) -> int:
    release = manifests.load_one(Path(args.file), rpb.ModelRelease)
    key = read_private_key(args.sign_key)
    signed = rpb.SignedRelease(release=release, publisher=args.publisher, signature=rel.sign(key, release))
    resp = await rcall(args, "CreateRelease", opb.CreateReleaseRequest(signed=signed))
    d = _release(resp.signed)
    emit_objects(
        d,
        args.output,
        kind="release",
        names=[d["name"]],
        render_table=lambda d: f"release {d['name']} registered, signed by {d['publisher']}",
    )
    return 0


async def releases_list(args: argparse.Namespace) -> int:
    resp = await rcall(args, "ListReleases", opb.ListReleasesRequest())
    _emit_releases({"items": [_release(s) for s in resp.releases]}, args.output)
    return 0


async def releases_get(args: argparse.Namespace) -> int:
    resp = await rcall(args, "GetRelease", opb.GetReleaseRequest(name=args.name))
    d = _release(resp.signed)
    if args.output in ("json", "yaml"):
        emit(d, args.output)
    else:
        _emit_releases({"items": [d]}, args.output)
    return 0


async def releases_delete(args: argparse.Namespace) -> int:
    resp = await rcall(args, "DeleteRelease", opb.DeleteReleaseRequest(name=args.name))
    d = _release(resp.signed)
    emit_objects(
        d,
        args.output,
        kind="release",
        names=[d["name"]],
        render_table=lambda d: f"release {d['name']} deleted",
    )
    return 0


def _out(p: argparse.ArgumentParser, choices: tuple[str, ...] = OUTPUT) -> None:
    p.add_argument("-o", "--output", choices=choices, default="table")


def register(sub: Any) -> None:
    releases = sub.add_parser("releases", help="signed model releases").add_subparsers(
        dest="cmd", required=True
    )
    p = releases.add_parser("keygen", help="generate a publisher Ed25519 key pair OUT.key (0600) and OUT.pub")
    p.add_argument("--out", required=True)
    _out(p)
    p.set_defaults(handler=keygen)
    p = releases.add_parser("create", help="sign a ModelRelease manifest and register it (admin)")
    p.add_argument("-f", "--file", required=True, help="a ModelRelease manifest; - reads standard input")
    p.add_argument("--sign-key", required=True, help="the publisher's private key (from keygen)")
    p.add_argument("--publisher", required=True, help="the registered publisher name of that key")
    _out(p, OBJECT_OUTPUT)
    p.set_defaults(handler=releases_create)
    p = releases.add_parser("list", help="list releases")
    _out(p, OBJECT_OUTPUT)
    p.set_defaults(handler=releases_list)
    p = releases.add_parser("get", help="show a release")
    p.add_argument("name")
    _out(p, OBJECT_OUTPUT)
    p.set_defaults(handler=releases_get)
    p = releases.add_parser("delete", help="delete a release no rollout references and no site runs (admin)")
    p.add_argument("name")
    _out(p, OBJECT_OUTPUT)
    p.set_defaults(handler=releases_delete)

    pubs = sub.add_parser("publishers", help="release publishers").add_subparsers(dest="cmd", required=True)
    p = pubs.add_parser("add", help="register a publisher's public key (admin)")
    p.add_argument("--name", required=True)
    p.add_argument("--public-key", required=True, help="OUT.pub from `releases keygen`")
    _out(p)
    p.set_defaults(handler=publishers_add)
    p = pubs.add_parser("list", help="list publishers")
    _out(p, OBJECT_OUTPUT)
    p.set_defaults(handler=publishers_list)

    rollouts.register(sub)
