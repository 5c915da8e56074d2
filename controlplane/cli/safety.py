"""stargatectl safety ... (the kill switch, two-person approvals, freezes) and incidents report.

stargatectl safety halt --release NAME --scope global|country:CC|site:ID --reason TEXT [-o json]
stargatectl safety status ID [--watch] [-o json]
stargatectl safety list
stargatectl safety resume ID --reason TEXT          # then a second admin: safety approve ID
stargatectl safety freeze --scope SCOPE --reason TEXT / unfreeze --scope SCOPE
stargatectl safety approve ID
stargatectl incidents report --release NAME --severity 1..4 --category LABEL [--count N]
    (with a config whose user is the site's certificate)
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from controlplane.api.v1 import safety_pb2 as xpb
from controlplane.api.v1 import site_pb2 as spb
from controlplane.api.v1 import watch_pb2 as wpb
from controlplane.cli.args import limited
from controlplane.cli.common import _out, client, context_of
from controlplane.cli.output import emit, iso, table
from controlplane.client import approvals
from controlplane.client.channel import check_client_certificate
from controlplane.domain import limits
from controlplane.errors import InvalidArgument
from controlplane.pki.identity import identity_from_certificate

_KIND = {
    v: k.removeprefix("SAFETY_ACTION_KIND_").replace("_", "").title() for k, v in xpb.SafetyActionKind.items()
}
_KIND[xpb.SAFETY_ACTION_KIND_LOCAL_HALT] = "LocalHalt"
#: States after which `status --watch` stops.
SETTLED = frozenset({"Halted", "Resumed", "Frozen", "Unfrozen"})


def action_view(a: xpb.SafetyAction) -> dict[str, Any]:
    """The documented JSON of a safety action (docs/safety.md)."""
    return {
        "id": a.id,
        "kind": _KIND.get(a.kind, "Unknown"),
        "state": a.state,
        "release": a.release,
        "scope": a.scope,
        "reason": a.reason,
        "requested_by": a.requested_by,
        "automatic": a.automatic,
        "acked": a.acked,
        "pending": a.pending,
        "unreachable": a.unreachable,
        "rejected": a.rejected,
        "approvals": list(a.approvals),
        "approvals_required": a.approvals_required,
        "roster_version": a.roster_version,
        "single_admin": a.single_admin,
        "related_id": a.related_id,
        "created_at": iso(a.created_at),
        "effective_at": iso(a.effective_at),
        "sites": [
            {"site": s.site_id, "state": s.state, **({"reason": s.reason} if s.reason else {})}
            for s in a.sites
        ],
    }


def _line(d: dict[str, Any]) -> str:
    head = f"{d['kind'].lower()} {d['id']}: {d['state']}"
    if d["kind"] in ("Halt", "Resume", "LocalHalt"):
        head += (
            f" (release {d['release']}, scope {d['scope']}; acked {d['acked']}, pending {d['pending']}, "
            f"unreachable {d['unreachable']}, rejected {d['rejected']})"
        )
    else:
        head += f" (scope {d['scope']})"
    if d.get("single_admin"):
        head += "; single-admin federation: the two-person rule does not hold"
    if d["state"] == "PendingApproval":
        n, need = len(d["approvals"]), d["approvals_required"]
        head += f"; approvals {n}/{need}: a second admin runs `stargatectl safety approve {d['id']}`"
    return head


def _status_table(d: dict[str, Any]) -> str:
    rows = [(s["site"], s["state"], s.get("reason", "") or "-") for s in d["sites"]]
    return _line(d) + ("\n" + table(rows, ["SITE", "STATE", "REASON"]) if rows else "")


async def _call(args: argparse.Namespace, method: str, request: Any) -> Any:
    async with client(args) as c:
        return await c.call(method, request)


async def halt(args: argparse.Namespace) -> int:
    req = xpb.HaltRequest(release=args.release, scope=args.scope, reason=args.reason, ttl_seconds=args.ttl)
    resp = await _call(args, "Halt", req)
    emit(action_view(resp.action), args.output, _line)
    return 0


async def resume(args: argparse.Namespace) -> int:
    async with client(args) as c:  # signed here, with this person's approval key
        approval = await approvals.for_resume(c, context_of(args), args.id)
        resp = await c.call(
            "Resume", xpb.ResumeRequest(halt_id=args.id, reason=args.reason, approval=approval)
        )
    emit(action_view(resp.action), args.output, _line)
    return 0


async def freeze(args: argparse.Namespace) -> int:
    if args.lift:
        resp = await _call(args, "Unfreeze", xpb.UnfreezeRequest(scope=args.scope, reason=args.reason))
    else:
        resp = await _call(args, "Freeze", xpb.FreezeRequest(scope=args.scope, reason=args.reason))
    emit(action_view(resp.action), args.output, _line)
    return 0


async def approve(args: argparse.Namespace) -> int:
    async with client(args) as c:
        approval = await approvals.for_action(c, context_of(args), args.id)
        resp = await c.call(
            "ApproveSafetyAction", xpb.ApproveSafetyActionRequest(id=args.id, approval=approval)
        )
    emit(action_view(resp.action), args.output, _line)
    return 0


async def status(args: argparse.Namespace) -> int:
    """An action's delivery; with --watch, each change (streamed by WatchService) until it settles."""
    async with client(args) as c:
        if not args.watch:
            resp = await c.call("GetSafetyAction", xpb.GetSafetyActionRequest(id=args.id))
            emit(action_view(resp.action), args.output, _status_table)
            return 0
        last: dict[str, Any] | None = None
        async for event in c.watch(wpb.WATCH_KIND_SAFETY_ACTION, args.id):
            if event.deleted:
                print(f"error: safety action {args.id} was deleted", file=sys.stderr)
                return 1
            data = action_view(event.safety_action)
            if data != last:
                if args.output == "json":
                    sys.stdout.write(json.dumps(data) + "\n")  # one JSON object per change
                    sys.stdout.flush()
                else:
                    emit(data, args.output, _status_table)
                last = data
            if data["state"] in SETTLED:
                return 0
    return 1


async def list_actions(args: argparse.Namespace) -> int:
    resp = await _call(args, "ListSafetyActions", xpb.ListSafetyActionsRequest(limit=args.limit))
    items = [action_view(a) for a in resp.actions]
    emit(
        {"items": items},
        args.output,
        lambda d: table(
            [
                (i["id"], i["kind"], i["state"], i["release"] or "-", i["scope"], iso_short(i["created_at"]))
                for i in d["items"]
            ],
            ["ID", "KIND", "STATE", "RELEASE", "SCOPE", "CREATED"],
        ),
    )
    return 0


def iso_short(when: str) -> str:
    return when[:19] if when else "-"


async def incidents_report(args: argparse.Namespace) -> int:
    ctx = context_of(args)
    ca, _, cert = ctx.read_tls()
    identity = identity_from_certificate(check_client_certificate(cert, ca))
    if identity.kind.value != "site":
        raise InvalidArgument("--config", "incidents are reported with a site's certificate (site role)")
    inc = xpb.IncidentReport(
        site_id=identity.name,
        release=args.release,
        severity=args.severity,  # type: ignore[arg-type]
        category=args.category,
        count=args.count,
    )
    inc.observed_at.GetCurrentTime()
    resp = await _call(args, "ReportIncident", spb.ReportIncidentRequest(incident=inc))
    data = {
        "site": identity.name,
        "release": args.release,
        "severity": args.severity,
        "category": args.category,
        "count": args.count,
        "recorded": resp.recorded,
    }
    emit(
        data,
        args.output,
        lambda d: f"reported {d['count']} severity-{d['severity']} incident(s) for {d['release']}",
    )
    return 0


def register(sub: Any) -> None:
    s = sub.add_parser("safety", help="kill switch, approvals and freezes").add_subparsers(
        dest="cmd", required=True
    )
    p = s.add_parser("halt", help="halt a release now, signed, ahead of everything queued (admin)")
    p.add_argument("--release", required=True)
    p.add_argument("--scope", required=True, help="global, country:CC or site:ID")
    p.add_argument("--reason", required=True)
    p.add_argument(
        "--ttl",
        type=limited(limits.HALT_TTL),
        default=0,
        help="seconds the signed halt stays valid (default 7 days)",
    )
    _out(p)
    p.set_defaults(handler=halt)
    p = s.add_parser("resume", help="request lifting a halt; takes effect after a second admin approves")
    p.add_argument("id", help="id of the halt")
    p.add_argument("--reason", default="")
    _out(p)
    p.set_defaults(handler=resume)
    for name, lift in (("freeze", False), ("unfreeze", True)):
        p = s.add_parser(
            name, help=f"request to {name} rollouts in a scope; takes effect after a second admin"
        )
        p.add_argument("--scope", required=True, help="global, country:CC or site:ID")
        p.add_argument("--reason", default="")
        _out(p)
        p.set_defaults(handler=freeze, lift=lift)
    p = s.add_parser("approve", help="approve a pending safety action (a second, distinct admin)")
    p.add_argument("id")
    _out(p)
    p.set_defaults(handler=approve)
    p = s.add_parser("status", help="a safety action and its per-site state")
    p.add_argument("id")
    p.add_argument("--watch", action="store_true", help="print each change until the action settles")
    p.add_argument("--interval", type=float, default=0.5, help=argparse.SUPPRESS)
    _out(p)
    p.set_defaults(handler=status)
    p = s.add_parser("list", help="safety actions, newest first")
    p.add_argument("--limit", type=limited(limits.LIST_LIMIT), default=100)
    _out(p)
    p.set_defaults(handler=list_actions)

    inc = sub.add_parser("incidents", help="incidents (sites)").add_subparsers(dest="cmd", required=True)
    p = inc.add_parser("report", help="report incidents as a site: metadata and a count only (site role)")
    p.add_argument("--release", required=True)
    p.add_argument("--severity", type=int, required=True, choices=[1, 2, 3, 4], help="1 is the most severe")
    p.add_argument("--category", required=True, help="a label, e.g. harmful-output")
    p.add_argument("--count", type=limited(limits.INCIDENT_COUNT), default=1)
    _out(p)
    p.set_defaults(handler=incidents_report)
