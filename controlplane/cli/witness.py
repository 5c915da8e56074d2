"""stargatectl witness keygen / run / add / remove / list: country witnesses of the audit log.

stargatectl witness keygen --name W --key K          # the witness's Ed25519 key, made here
stargatectl witness run --name W --key K --state DIR --log-key VKEY [--interval 2] [--once]
stargatectl witness add --vkey VKEY                  # admin: list a witness (audited)
stargatectl witness remove --name W                  # admin
stargatectl witness list [-o json]

``run`` uses the config's identity (any person: a country's steward or auditor) only to reach the
federation; what it cosigns is decided by its own checks (controlplane/client/witness.py).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from pathlib import Path
from typing import Any

from controlplane.api.v1 import audit_pb2 as apb
from controlplane.cli.common import _out, client, duration
from controlplane.cli.output import emit, iso, table
from controlplane.client.transparency import load_vkey
from controlplane.client.witness import Witness, generate_key, load_key
from controlplane.domain.notes import ED25519
from controlplane.errors import Unavailable

log = logging.getLogger(__name__)


def keygen(args: argparse.Namespace) -> int:
    v = generate_key(args.name, Path(args.key))
    emit(
        {"name": v.name, "key_file": args.key, "verifier_key": v.vkey},
        args.output,
        lambda d: d["verifier_key"],
    )
    return 0


async def run(args: argparse.Namespace) -> int:
    logging.getLogger("controlplane.client.witness").setLevel(logging.INFO)
    w = Witness(
        load_key(args.name, Path(args.key)), Path(args.state), load_vkey(args.log_key, "--log-key", ED25519)
    )
    for r in w.state.refusals[-3:]:
        print(f"refused earlier: size {r['size']}: {r['reason']}", file=sys.stderr)
    refused = False
    while True:
        try:
            async with client(args) as c:
                for o in await w.step(c):
                    refused |= not o.cosigned
                    verb = "cosigned" if o.cosigned else "REFUSED"
                    print(f"{verb} checkpoint {o.size}: {o.reason}", flush=True)
        except Unavailable as e:
            if args.once:
                raise
            log.warning("witness: %s", e.public)
        if args.once:
            return 1 if refused else 0
        await asyncio.sleep(args.interval)


async def add(args: argparse.Namespace) -> int:
    async with client(args) as c:
        resp = await c.call("AddWitness", apb.AddWitnessRequest(verifier_key=args.vkey))
    emit(_view(resp.witness), args.output, lambda d: f"witness {d['name']} listed")
    return 0


async def remove(args: argparse.Namespace) -> int:
    async with client(args) as c:
        await c.call("RemoveWitness", apb.RemoveWitnessRequest(name=args.name))
    emit({"name": args.name, "removed": True}, args.output, lambda d: f"witness {d['name']} removed")
    return 0


async def list_cmd(args: argparse.Namespace) -> int:
    async with client(args) as c:
        resp = await c.call("ListWitnesses", apb.ListWitnessesRequest())
    data = {"items": [_view(w) for w in resp.witnesses], "signed_list": resp.signed_list}
    emit(
        data,
        args.output,
        lambda d: table(
            [(w["name"], w["verifier_key"], w["added_by"], w["added_at"]) for w in d["items"]],
            ["NAME", "VERIFIER KEY", "ADDED BY", "ADDED"],
        ),
    )
    return 0


def _view(w: apb.Witness) -> dict[str, Any]:
    return {
        "name": w.name,
        "verifier_key": w.verifier_key,
        "added_by": w.added_by,
        "added_at": iso(w.added_at),
    }


def register(sub: Any) -> None:
    g = sub.add_parser("witness", help="country witnesses that cosign the audit log").add_subparsers(
        dest="cmd", required=True
    )
    p = g.add_parser("keygen", help="make a witness key here; prints its verifier key")
    p.add_argument("--name", required=True, help="the witness's name, e.g. witness.example.fr/w1")
    p.add_argument("--key", required=True, help="file to create for the private key (0600)")
    _out(p)
    p.set_defaults(handler=keygen)
    p = g.add_parser("run", help="check and cosign each new checkpoint, for ever (or --once)")
    p.add_argument("--name", required=True)
    p.add_argument("--key", required=True, help="the witness's private key (witness keygen)")
    p.add_argument("--state", required=True, help="directory of the witness's durable state")
    p.add_argument("--log-key", required=True, help="the log's verifier key, or a file holding it")
    p.add_argument("--interval", type=duration, default=2, help="between checks (default 2s)")
    p.add_argument("--once", action="store_true", help="one round; exit 1 if anything was refused")
    p.set_defaults(handler=run)
    p = g.add_parser("add", help="list a witness by its verifier key (admin)")
    p.add_argument("--vkey", required=True)
    _out(p)
    p.set_defaults(handler=add)
    p = g.add_parser("remove", help="remove a witness from the list (admin)")
    p.add_argument("--name", required=True)
    _out(p)
    p.set_defaults(handler=remove)
    p = g.add_parser("list", help="the listed witnesses and the list signed by the log key")
    _out(p)
    p.set_defaults(handler=list_cmd)
