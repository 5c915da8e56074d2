"""People's keys and certificates, made where they are used.

- ``keys create --out K``: the person's Ed25519 approval key (K, 0600) and K.pub (for the roster).
- ``users request --name N --out DIR``: the person's TLS key and CSR, made on their machine, the CSR
  signed with their approval key (DIR/N.approval.key unless ``--approval-key``): DIR/N.request.json.
- ``users issue --csr DIR/N.request.json --role R --out DIR`` (admin): the certificate, CA bundle
  and a config for the person (N.crt, ca.crt, stargatectl.yaml naming N.key and N.approval.key).
- ``users issue --name N --role R --out DIR --lab-generate-key``: a lab convenience that makes the
  TLS key on the admin's machine. The federation refuses it for any person the roster lists, and an
  admin certificate for a name it does not list: it cannot mint a second identity for an existing
  person, nor an admin that counts toward a threshold (controlplane/domain/roster.py).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from controlplane.api.v1 import federation_pb2 as fpb
from controlplane.cli.common import _out, client, context_of, duration
from controlplane.cli.output import emit, iso
from controlplane.client.config import write_config
from controlplane.client.people import person_request
from controlplane.domain import roster as rd
from controlplane.domain.validation import validate_dns_label
from controlplane.errors import InvalidArgument
from controlplane.pki import approval_key
from controlplane.pki.keys import write_atomic, write_private_key

_ROLES = {"admin": fpb.ROLE_ADMIN, "steward": fpb.ROLE_STEWARD, "auditor": fpb.ROLE_AUDITOR}
#: A request file holds a name, a CSR (~500 bytes) and a signature: 16 KiB is plenty.
MAX_REQUEST_BYTES = 16 * 1024


async def keys_create(args: argparse.Namespace) -> int:
    out = Path(args.out)
    key = approval_key.create(out, force=args.force)
    data = {
        "key": str(out),
        "public": str(approval_key.pub_path(out)),
        "public_key": approval_key.public_line(key.public_key()),
        "key_id": rd.key_id(key.public_key().public_bytes_raw()),
    }
    emit(data, args.output, lambda d: f"approval key {d['key_id']}: {d['key']} (public: {d['public']})")
    return 0


async def users_request(args: argparse.Namespace) -> int:
    validate_dns_label("--name", args.name)
    out = Path(args.out)
    akey = approval_key.load_private(
        Path(args.approval_key) if args.approval_key else out / f"{args.name}.approval.key", "--approval-key"
    )
    made = person_request(args.name, akey)
    request = {"name": args.name, "csr_pem": made.csr_pem, "signature": made.signature.hex()}
    out.mkdir(parents=True, exist_ok=True)
    write_private_key(out / f"{args.name}.key", made.key)
    path = out / f"{args.name}.request.json"
    write_atomic(path, json.dumps(request, indent=1).encode(), 0o644)
    emit(
        {"request": str(path)},
        args.output,
        lambda d: f"request written to {d['request']}: give it to an admin",
    )
    return 0


def _requested(d: dict[str, Any]) -> str:
    return f"request written to {d['request']}: give it to an admin"


def _issued(d: dict[str, Any]) -> str:
    return f"issued {d['role']} certificate for {d['name']} (until {d['not_after']}); config: {d['config']}"


def _read_request(path: Path) -> dict[str, str]:
    try:
        raw = path.read_bytes()
        if len(raw) > MAX_REQUEST_BYTES:
            raise InvalidArgument("--csr", f"{path} is larger than {MAX_REQUEST_BYTES} bytes")
        data = json.loads(raw)
        out = {k: data[k] for k in ("name", "csr_pem", "signature")}
        if not all(isinstance(v, str) for v in out.values()):
            raise TypeError
        bytes.fromhex(out["signature"])
    except OSError as e:
        raise InvalidArgument("--csr", f"cannot read {path}: {e.strerror}") from e
    except (ValueError, KeyError, TypeError) as e:
        raise InvalidArgument("--csr", f"{path} is not a request from `stargatectl users request`") from e
    return out


async def users_issue(args: argparse.Namespace) -> int:
    ctx = context_of(args)
    key = None
    if args.csr:
        req = _read_request(Path(args.csr))
        name, csr, signature = req["name"], req["csr_pem"], bytes.fromhex(req["signature"])
        if args.name and args.name != name:
            raise InvalidArgument("--name", f"the request is for {name}, not {args.name}")
    elif args.lab_generate_key:
        if not args.name:
            raise InvalidArgument("--name", "required with --lab-generate-key")
        lab = person_request(args.name, None)  # the lab convenience: the key is made here
        name, signature, key, csr = args.name, b"", lab.key, lab.csr_pem
    else:
        raise InvalidArgument(
            "--csr", "give the person's request (stargatectl users request), or --lab-generate-key"
        )
    request = fpb.IssueUserCertificateRequest(
        name=name,
        role=_ROLES[args.role],
        country=args.country or "",
        csr_pem=csr,
        ttl_seconds=args.ttl,
        csr_signature=signature,
    )
    async with client(args) as c:
        resp = await c.call("IssueUserCertificate", request)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    if key is not None:
        write_private_key(out / f"{name}.key", key)
    write_atomic(out / f"{name}.crt", resp.certificate_pem.encode(), 0o644)
    write_atomic(out / "ca.crt", resp.ca_bundle_pem.encode(), 0o644)
    write_config(
        out / "stargatectl.yaml",
        trust_domain=ctx.trust_domain or "stargate",
        user=name,
        servers=list(ctx.servers),
        enroll_server=ctx.enroll_server,
        cert_file=f"{name}.crt",
        key_file=f"{name}.key",
        approval_key=f"{name}.approval.key" if args.csr else "",
    )
    data = {
        "name": name,
        "role": args.role,
        "country": args.country or "",
        "config": str(out / "stargatectl.yaml"),
        "not_after": iso(resp.not_after),
    }
    emit(
        data,
        args.output,
        lambda d: (
            f"issued {d['role']} certificate for {d['name']} (until {d['not_after']}); config: {d['config']}"
        ),
    )
    return 0


def register(sub: Any) -> None:
    keys = sub.add_parser("keys", help="your approval key").add_subparsers(dest="cmd", required=True)
    p = keys.add_parser("create", help="make an Ed25519 approval key here: K (0600) and K.pub for the roster")
    p.add_argument("--out", required=True, help="path of the private key; the public one is OUT.pub")
    p.add_argument("--force", action="store_true", help="replace an existing key")
    _out(p)
    p.set_defaults(handler=keys_create)

    users = sub.add_parser("users", help="people's certificates").add_subparsers(dest="cmd", required=True)
    p = users.add_parser("request", help="make your TLS key and a CSR signed with your approval key")
    p.add_argument("--name", required=True, help="your roster person id")
    p.add_argument("--out", required=True, help="directory for NAME.key and NAME.request.json")
    p.add_argument("--approval-key", help="your approval key (default OUT/NAME.approval.key)")
    _out(p)
    p.set_defaults(handler=users_request)
    p = users.add_parser("issue", help="certify a person's request and write their config (admin)")
    p.add_argument("--csr", help="the person's NAME.request.json (stargatectl users request)")
    p.add_argument("--name", help="the person (checked against --csr; required with --lab-generate-key)")
    p.add_argument("--role", required=True, choices=sorted(_ROLES))
    p.add_argument("--country", help="required for stewards")
    p.add_argument("--out", required=True)
    p.add_argument("--ttl", type=duration, default=0, help="certificate lifetime (default 30d)")
    p.add_argument(
        "--lab-generate-key",
        action="store_true",
        help="lab only: make the person's TLS key here (refused for roster persons and for admins)",
    )
    _out(p)
    p.set_defaults(handler=users_issue)
