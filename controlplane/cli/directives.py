"""stargatectl directives list / cancel: a site's queue, and taking a directive out of delivery."""

from __future__ import annotations

import argparse
from typing import Any

from controlplane.api.v1 import federation_pb2 as fpb
from controlplane.cli.args import limited
from controlplane.cli.common import OUTPUT, call
from controlplane.cli.output import emit, table
from controlplane.client import views
from controlplane.domain.limits import SEQUENCE
from controlplane.errors import InvalidArgument


async def directives_list(args: argparse.Namespace) -> int:
    resp = await call(args, "ListDirectives", fpb.ListDirectivesRequest(site_id=args.site))
    items = [views.directive_record(r) for r in resp.directives]
    emit(
        {"items": items},
        args.output,
        lambda d: table(
            [(i["sequence"], i["kind"], i["state"], i["id"], i["reason"] or "-") for i in d["items"]],
            ["SEQ", "KIND", "STATE", "ID", "REASON"],
        ),
    )
    return 0


async def directives_cancel(args: argparse.Namespace) -> int:
    if bool(args.id) == bool(args.sequence):
        raise InvalidArgument("--id", "name the directive by exactly one of --id or --sequence")
    req = fpb.CancelDirectiveRequest(
        site_id=args.site, id=args.id or "", sequence=args.sequence or 0, reason=args.reason
    )
    resp = await call(args, "CancelDirective", req)
    emit(
        views.directive_record(resp.directive),
        args.output,
        lambda d: f"directive {d['id']} (sequence {d['sequence']}) of {d['site']} cancelled: {d['reason']}",
    )
    return 0


def register(sub: Any) -> None:
    d = sub.add_parser("directives", help="directive queues").add_subparsers(dest="cmd", required=True)
    p = d.add_parser("list", help="a site's directives and their delivery state")
    p.add_argument("--site", required=True)
    p.add_argument("-o", "--output", choices=OUTPUT, default="table")
    p.set_defaults(handler=directives_list)
    p = d.add_parser(
        "cancel",
        help="take a Pending directive out of delivery (admin; audited); one already sent may still apply",
    )
    p.add_argument("--site", required=True)
    p.add_argument("--id", default="", help="the directive's id (UUID)")
    p.add_argument("--sequence", type=limited(SEQUENCE), default=0, help="or its per-site sequence")
    p.add_argument("--reason", default="", help="why, for the audit log and the directive's record")
    p.add_argument("-o", "--output", choices=OUTPUT, default="table")
    p.set_defaults(handler=directives_cancel)
