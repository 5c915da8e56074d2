"""stargatectl audit checkpoint / prove / consistency / verify: the log as a transparency log.

stargatectl audit checkpoint [--vkey] [--min-witnesses K] [--log-key VKEY] [-o json]
stargatectl audit prove --event SEQ [--tree-size N] [--log-key VKEY] -o json
stargatectl audit consistency --first M --second N -o json
stargatectl audit verify --log-key VKEY [--witness VKEY]... [--min-witnesses K]
                         [--after N] [--limit L] [--since FILE] [--save FILE]

``verify`` trusts nothing the federation says: it checks the checkpoint's signature with the log
key given here (obtained out of band: ``stargate-controlplane init`` writes it to log.vkey), the
witnesses' cosignatures with the keys given here, every listed event against the checkpoint with
an inclusion proof, and with ``--since`` that a checkpoint saved earlier is consistent with the
latest. JSON shapes of ``prove`` and ``consistency`` are fixed (docs/security.md).
"""

from __future__ import annotations

import argparse
import base64
import sys
from pathlib import Path
from typing import Any

from controlplane.api.v1 import audit_pb2 as apb
from controlplane.cli.common import _out, client
from controlplane.cli.output import emit, emit_lines
from controlplane.client.transparency import (
    VerificationFailed,
    check_consistent,
    checkpoint_view,
    load_vkey,
    verified_checkpoint,
    verify_events,
)
from controlplane.domain.checkpoints import checkpoint_text, verify_checkpoint, verify_leaf
from controlplane.domain.merkle import ProofError
from controlplane.domain.notes import COSIGNATURE_V1, ED25519, NoteError
from controlplane.errors import InvalidArgument
from controlplane.pki.keys import write_atomic


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _log_key(args: argparse.Namespace, required: bool = False) -> Any:
    if not args.log_key:
        if required:
            raise InvalidArgument(
                "--log-key",
                "required: the log's verifier key (or a file holding it), obtained out of band "
                "(stargate-controlplane init writes it to log.vkey)",
            )
        return None
    return load_vkey(args.log_key, "--log-key", ED25519)


async def checkpoint(args: argparse.Namespace) -> int:
    async with client(args) as c:
        if args.vkey:
            info = await c.call("GetLogInfo", apb.GetLogInfoRequest())
            print(info.verifier_key)
            return 0
        info = await c.call("GetLogInfo", apb.GetLogInfoRequest())
        if info.alarm:  # the answering replica stopped signing: say so, whatever is printed next
            print(f"warning: the federation stopped signing checkpoints: {info.alarm}", file=sys.stderr)
        resp = await c.call("GetCheckpoint", apb.GetCheckpointRequest(min_cosignatures=args.min_witnesses))
    cp = resp.checkpoint
    log = _log_key(args)
    if log is not None:
        try:
            verify_checkpoint(cp.note, log)
        except NoteError as e:
            raise VerificationFailed(f"the checkpoint does not verify with --log-key: {e}") from e
    body = checkpoint_text(cp.note)
    data = {
        "origin": body.origin,
        "tree_size": cp.tree_size,
        "root_hash": b64(cp.root_hash),
        "cosigners": list(cp.cosigners),
        "note": cp.note,
    }
    if args.output in ("json", "yaml"):
        emit(data, args.output)
    else:  # the signed note as it is, so that it can be saved and checked by other tools
        emit_lines(cp.note.rstrip("\n"))
    return 0


async def prove(args: argparse.Namespace) -> int:
    async with client(args) as c:
        resp = await c.call(
            "GetInclusionProof", apb.GetInclusionProofRequest(sequence=args.event, tree_size=args.tree_size)
        )
    log = _log_key(args)
    try:
        cp = (
            verify_checkpoint(resp.checkpoint.note, log).checkpoint
            if log
            else checkpoint_text(resp.checkpoint.note)
        )
        leaf_hash = verify_leaf(resp.leaf, resp.leaf_index, list(resp.inclusion_path), cp)
    except (NoteError, ProofError) as e:
        raise VerificationFailed(f"the federation's proof of event {args.event} does not verify: {e}") from e
    data = {
        "leaf_index": resp.leaf_index,
        "tree_size": resp.tree_size,
        "leaf_hash": b64(leaf_hash),
        "inclusion_path": [b64(h) for h in resp.inclusion_path],
        "checkpoint": resp.checkpoint.note,
    }
    emit(
        data,
        args.output,
        lambda d: (
            f"event {args.event} is leaf {d['leaf_index']} of the tree of size {d['tree_size']} "
            f"({len(d['inclusion_path'])} hashes; checked against the checkpoint's root"
            f"{' and the log key' if log else ', signature not checked: pass --log-key'})"
        ),
    )
    return 0


async def consistency(args: argparse.Namespace) -> int:
    async with client(args) as c:
        resp = await c.call(
            "GetConsistencyProof", apb.GetConsistencyProofRequest(first=args.first, second=args.second)
        )
    data = {
        "first": resp.first,
        "second": resp.second,
        "consistency_path": [b64(h) for h in resp.consistency_path],
    }
    emit(data, args.output, lambda d: "\n".join(d["consistency_path"]) or "(empty proof)")
    return 0


async def verify(args: argparse.Namespace) -> int:
    log = _log_key(args, required=True)
    witnesses = [load_vkey(w, "--witness", COSIGNATURE_V1) for w in args.witness]
    if args.min_witnesses > len(witnesses):
        raise InvalidArgument(
            "--min-witnesses", f"{args.min_witnesses} exceeds the {len(witnesses)} --witness keys"
        )
    saved = None
    if args.since:
        try:
            saved = verify_checkpoint(Path(args.since).read_text(), log)
        except OSError as e:
            raise InvalidArgument("--since", f"cannot read {args.since}: {e.strerror}") from e
        except NoteError as e:
            raise VerificationFailed(
                f"--since {args.since}: not a checkpoint signed by the log key ({e})"
            ) from e
    async with client(args) as c:
        latest = await verified_checkpoint(c, log, witnesses, args.min_witnesses)
        if saved is not None:
            await check_consistent(c, saved.checkpoint, latest.checkpoint)
        report = await verify_events(c, latest.checkpoint, args.after, args.limit)
    if args.save and not report.failures:
        write_atomic(Path(args.save), latest.note.encode(), 0o644)
    data = {
        "checkpoint": checkpoint_view(latest),
        "since": {"tree_size": saved.checkpoint.size, "consistent": True} if saved else None,
        "events_verified": len(report.verified),
        "first": report.verified[0] if report.verified else None,
        "last": report.verified[-1] if report.verified else None,
        "not_yet_in_a_checkpoint": report.later,
        "failures": report.failures,
    }
    emit(data, args.output, _verify_text)
    if report.failures:
        print(f"error: {len(report.failures)} verification failures (see above)", file=sys.stderr)
        return 1
    return 0


def _verify_text(d: dict[str, Any]) -> str:
    cp = d["checkpoint"]
    lines = [
        f"checkpoint: {cp['origin']} size {cp['tree_size']} root {cp['root_hash']}, signed by the log key"
        + (f", cosigned by {', '.join(cp['cosigners'])}" if cp["cosigners"] else "")
    ]
    if d["since"]:
        lines.append(f"consistent with the saved checkpoint of size {d['since']['tree_size']}")
    if d["events_verified"]:
        lines.append(
            f"events {d['first']}-{d['last']}: {d['events_verified']} verified against the checkpoint"
        )
    if d["not_yet_in_a_checkpoint"]:
        lines.append(f"{d['not_yet_in_a_checkpoint']} newer events are not in a checkpoint yet")
    lines += [f"FAILED: {f}" for f in d["failures"][:20]]
    return "\n".join(lines)


def register(audit: Any) -> None:
    """Subcommands of ``stargatectl audit`` (the group is made in cli/commands.py)."""
    p = audit.add_parser("checkpoint", help="the latest signed checkpoint with its cosignatures")
    p.add_argument(
        "--vkey", action="store_true", help="print the log's verifier key (as the server states it)"
    )
    p.add_argument(
        "--min-witnesses", type=int, default=0, help="the newest checkpoint with this many cosignatures"
    )
    p.add_argument("--log-key", help="verify the checkpoint with this verifier key (or file)")
    _out(p)
    p.set_defaults(handler=checkpoint)
    p = audit.add_parser("prove", help="an event's inclusion proof against a checkpoint")
    p.add_argument("--event", type=int, required=True, help="the event's sequence")
    p.add_argument(
        "--tree-size", type=int, default=0, help="against the checkpoint of this size (default: newest)"
    )
    p.add_argument("--log-key", help="also verify the checkpoint's signature with this key (or file)")
    _out(p)
    p.set_defaults(handler=prove)
    p = audit.add_parser("consistency", help="a consistency proof between two tree sizes")
    p.add_argument("--first", type=int, required=True)
    p.add_argument("--second", type=int, required=True)
    _out(p)
    p.set_defaults(handler=consistency)
    p = audit.add_parser("verify", help="verify the log client-side with its key, never the server's word")
    p.add_argument("--log-key", help="the log's verifier key, or a file holding it (obtained out of band)")
    p.add_argument(
        "--witness", action="append", default=[], help="a witness's verifier key (or file); repeat"
    )
    p.add_argument("--min-witnesses", type=int, default=0, help="cosignatures required from --witness keys")
    p.add_argument("--after", type=int, default=0, help="verify the events after this sequence")
    p.add_argument("--limit", type=int, default=1000, help="at most this many events")
    p.add_argument(
        "--since", help="a checkpoint saved earlier (e.g. by --save): must be consistent with the latest"
    )
    p.add_argument("--save", help="write the verified checkpoint here (for a later --since)")
    _out(p)
    p.set_defaults(handler=verify)
