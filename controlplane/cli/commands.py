"""stargatectl commands for sites, tokens, joins, directives, people, audit and status."""

from __future__ import annotations

import argparse
import uuid
from pathlib import Path
from typing import Any

from controlplane.api.v1 import federation_pb2 as fpb
from controlplane.api.v1 import types_pb2 as tpb
from controlplane.cli.args import limited, pairs
from controlplane.cli.common import _out, call, duration
from controlplane.cli.output import age, emit, iso, table
from controlplane.client import views
from controlplane.client.enroll import Facts, join
from controlplane.domain import limits
from controlplane.domain.tokens import parse_token
from controlplane.errors import InvalidArgument

# --- sites ---------------------------------------------------------------------------------------


def _sites_table(data: dict[str, Any]) -> str:
    rows = [
        (
            s["id"],
            s["country"],
            s["region"] or "-",
            s["status"],
            age(s["last_heartbeat"]),
            ",".join(f"{k}:{v['free']}/{v['total']}" for k, v in s["capacity"].items()) or "-",
            s["last_applied_sequence"],
        )
        for s in data["items"]
    ]
    return table(
        rows, ["ID", "COUNTRY", "REGION", "STATUS", "HEARTBEAT", "ACCELERATORS(free/total)", "APPLIED"]
    )


async def sites_list(args: argparse.Namespace) -> int:
    resp = await call(args, "ListSites", fpb.ListSitesRequest(country=args.country or ""))
    emit({"items": [views.site(s) for s in resp.sites]}, args.output, _sites_table)
    return 0


async def sites_get(args: argparse.Namespace) -> int:
    resp = await call(args, "GetSite", fpb.GetSiteRequest(site_id=args.site_id))
    emit(views.site(resp.site), args.output, lambda d: _sites_table({"items": [d]}))
    return 0


async def sites_cordon(args: argparse.Namespace) -> int:
    if args.cordon:
        resp = await call(args, "CordonSite", fpb.CordonSiteRequest(site_id=args.site_id, reason=args.reason))
    else:
        resp = await call(args, "UncordonSite", fpb.UncordonSiteRequest(site_id=args.site_id))
    emit(views.site(resp.site), args.output, lambda d: _sites_table({"items": [d]}))
    return 0


async def token_create(args: argparse.Namespace) -> int:
    req = fpb.CreateJoinTokenRequest(site_id=args.site_id, country=args.country, ttl_seconds=args.ttl)
    resp = await call(args, "CreateJoinToken", req)
    data = {
        "token": resp.token,
        "site_id": resp.site_id,
        "country": resp.country,
        "expires_at": iso(resp.expires_at),
    }
    emit(
        data,
        args.output,
        lambda d: table(
            [(d["token"], d["site_id"], d["country"], d["expires_at"])],
            ["TOKEN", "SITE", "COUNTRY", "EXPIRES"],
        ),
    )
    return 0


async def join_cmd(args: argparse.Namespace) -> int:
    site_id, country = parse_token(args.token)
    site_id, country = args.site_id or site_id, args.country or country
    if not site_id or not country:
        raise InvalidArgument("--token", "does not name a site; pass --site-id and --country")
    try:
        ca = Path(args.ca_file).read_bytes()
    except OSError as e:
        raise InvalidArgument("--ca-file", f"cannot read {args.ca_file}: {e.strerror}") from e
    labels = {k: str(v) for k, v in pairs("--label", args.label).items()}
    count = limited(limits.ACCELERATOR_COUNT)
    accels = {k: int(v) for k, v in pairs("--accelerator", args.accelerator, count).items()}
    facts = Facts(site_id, country, args.region, labels, accels, args.security_tier, "stargatectl")
    out = await join(args.server_addr, ca, args.token, facts, Path(args.out), roster_hash=args.roster_hash)
    emit(
        {
            "site_id": site_id,
            "country": country,
            "dir": str(out),
            "files": ["site.key", "site.crt", "ca.crt", "roster.json"],
        },
        args.output,
        lambda d: f"site {d['site_id']} ({d['country']}) enrolled; credentials in {d['dir']}",
    )
    return 0


# --- directives ------------------------------------------------------------------------------------


async def deploy(args: argparse.Namespace) -> int:
    payload = tpb.DeployPayload(
        deployment_name=args.name,
        model=args.model or "",
        version=args.version or "",
        digest=args.digest or "",
        replicas=args.replicas,
        accelerator=args.accelerator,
        accelerators_per_replica=args.accelerators_per_replica,
        locale=args.locale,
    )
    resp = await call(
        args,
        "Deploy",
        fpb.DeployRequest(
            site_id=args.site, deploy=payload, release=args.release, request_id=str(uuid.uuid4())
        ),
    )
    emit(views.directive(resp.directive), args.output, _directive_line)
    return 0


async def undeploy(args: argparse.Namespace) -> int:
    resp = await call(
        args,
        "Undeploy",
        fpb.UndeployRequest(site_id=args.site, deployment_name=args.name, request_id=str(uuid.uuid4())),
    )
    emit(views.directive(resp.directive), args.output, _directive_line)
    return 0


def _directive_line(d: dict[str, Any]) -> str:
    return f"directive {d['id']} ({d['kind']}, sequence {d['sequence']}) queued"


async def whoami(args: argparse.Namespace) -> int:
    resp = await call(args, "WhoAmI", fpb.WhoAmIRequest())
    data = {
        "identity": resp.identity,
        "role": fpb.Role.Name(resp.role).removeprefix("ROLE_").lower(),
        "country": resp.country,
    }
    emit(
        data,
        args.output,
        lambda d: f"{d['identity']} ({d['role']}{' ' + d['country'] if d['country'] else ''})",
    )
    return 0


# --- audit and status -------------------------------------------------------------------------------


async def audit_list(args: argparse.Namespace) -> int:
    resp = await call(
        args, "ListAuditEvents", fpb.ListAuditEventsRequest(after_sequence=args.after, limit=args.limit)
    )
    data = {"items": [views.audit_event(e) for e in resp.events], "chain_verified": resp.chain_verified}
    emit(
        data,
        args.output,
        lambda d: (
            table(
                [
                    (
                        e["sequence"],
                        e["time"],
                        e["actor"],
                        e["action"],
                        e["object"],
                        e["outcome"],
                        e["reason"] or "-",
                    )
                    for e in d["items"]
                ],
                ["SEQ", "TIME", "ACTOR", "ACTION", "OBJECT", "OUTCOME", "REASON"],
            )
            + f"\nchain verified: {d['chain_verified']}"
        ),
    )
    return 0 if resp.chain_verified else 1


async def status(args: argparse.Namespace) -> int:
    resp = await call(args, "GetStatus", fpb.GetStatusRequest())
    data = {
        "leader": resp.leader,
        "replicas": [
            {"id": r.id, "leader": r.leader, "address": r.address, "connected_sites": r.connected_sites}
            for r in resp.replicas
        ],
        "store": {
            "kind": resp.store.kind,
            "endpoints": list(resp.store.endpoints),
            "healthy": resp.store.healthy,
        },
        "persistent": resp.persistent,
        "answered_by": resp.replica_id,
        "version": resp.version,
        "enroll_address": resp.enroll_address,
        "roster": {
            "version": resp.roster_version,
            "hash": resp.roster_hash,
            "single_admin": resp.single_admin,
        },
    }
    emit(
        data,
        args.output,
        lambda d: (
            table(
                [
                    (r["id"], "yes" if r["leader"] else "", r["address"], r["connected_sites"])
                    for r in d["replicas"]
                ],
                ["REPLICA", "LEADER", "ADDRESS", "SITES"],
            )
            + f"\nstore: {d['store']['kind']} healthy={d['store']['healthy']} persistent={d['persistent']}"
            + ("" if d["persistent"] else "\nwarning: state is not persistent: a restart loses it all")
            + f"\nroster: v{d['roster']['version']} {d['roster']['hash']}"
            + (
                "\nwarning: a single-admin federation: the two-person rule does not hold"
                if d["roster"]["single_admin"]
                else ""
            )
        ),
    )
    return 0


def register(sub: Any) -> None:
    sites = sub.add_parser("sites", help="the site registry and join tokens").add_subparsers(
        dest="cmd", required=True
    )
    p = sites.add_parser("list", help="list sites")
    p.add_argument("--country", help="only this country")
    _out(p)
    p.set_defaults(handler=sites_list)
    p = sites.add_parser("get", help="show one site")
    p.add_argument("site_id")
    _out(p)
    p.set_defaults(handler=sites_get)
    for name, cordon in (("cordon", True), ("uncordon", False)):
        p = sites.add_parser(name, help=f"{name} a site (admin)")
        p.add_argument("site_id")
        p.add_argument("--reason", default="")
        _out(p)
        p.set_defaults(handler=sites_cordon, cordon=cordon)
    token = sites.add_parser("token", help="join tokens").add_subparsers(dest="tcmd", required=True)
    p = token.add_parser("create", help="create a one-time join token bound to a site id and country (admin)")
    p.add_argument("--site-id", required=True)
    p.add_argument("--country", required=True)
    p.add_argument("--ttl", type=duration, default=3600, help="lifetime, e.g. 1h (default), 15m, 7d max")
    _out(p)
    p.set_defaults(handler=token_create)

    p = sub.add_parser(
        "join", help="enroll this site: generate its key here, send a CSR, write site.key/site.crt/ca.crt"
    )
    p.add_argument("--server", dest="server_addr", required=True, help="HOST:PORT of the enrollment port")
    p.add_argument("--ca-file", required=True, help="the federation CA certificate (obtained out of band)")
    p.add_argument("--token", required=True)
    p.add_argument(
        "--roster-hash",
        default="",
        help="sha256:… of the federation's roster v1 (obtained out of band, like the CA certificate); "
        "without it the site trusts the roster it is sent first",
    )
    p.add_argument("--out", required=True, help="directory for the site's credentials")
    p.add_argument("--site-id", default="", help="default: the site id the token names")
    p.add_argument("--country", default="", help="default: the country the token names")
    p.add_argument("--region", default="")
    p.add_argument("--label", action="append", default=[], help="KEY=VALUE")
    p.add_argument("--accelerator", action="append", default=[], help="TYPE=COUNT, e.g. h100=64")
    p.add_argument("--security-tier", type=limited(limits.Range(1, 4)), default=1)
    _out(p)
    p.set_defaults(handler=join_cmd)

    p = sub.add_parser("deploy", help="queue a low-level Deploy of a registered release for one site (admin)")
    p.add_argument("--site", required=True)
    p.add_argument("--name", required=True, help="deployment name at the site")
    p.add_argument(
        "--release", required=True, help="registered release to run (its model, version and digest)"
    )
    p.add_argument("--model", help="optional: must equal the release's model")
    p.add_argument("--version", help="optional: must equal the release's version")
    p.add_argument("--digest", help="optional: must equal the release's digest (sha256:<64 hex>)")
    p.add_argument("--replicas", type=limited(limits.REPLICAS), default=1)
    p.add_argument("--accelerator", default="")
    p.add_argument("--accelerators-per-replica", type=limited(limits.ACCELERATORS_PER_REPLICA), default=0)
    p.add_argument("--locale", default="")
    _out(p)
    p.set_defaults(handler=deploy)
    p = sub.add_parser("undeploy", help="queue a low-level Undeploy directive for one site (admin)")
    p.add_argument("--site", required=True)
    p.add_argument("--name", required=True)
    _out(p)
    p.set_defaults(handler=undeploy)

    p = sub.add_parser("whoami", help="your identity as the federation sees it")
    _out(p)
    p.set_defaults(handler=whoami)

    audit = sub.add_parser("audit", help="the audit log, a transparency log").add_subparsers(
        dest="cmd", required=True
    )
    p = audit.add_parser("list", help="list audit events (admin, auditor)")
    p.add_argument(
        "--after", type=limited(limits.SEQUENCE), default=0, help="only events after this sequence"
    )
    p.add_argument("--limit", type=limited(limits.LIST_LIMIT), default=1000)
    _out(p)
    p.set_defaults(handler=audit_list)
    from controlplane.cli import audit as transparency  # checkpoint, prove, consistency, verify

    transparency.register(audit)

    p = sub.add_parser("status", help="control-plane replicas, leader and store")
    _out(p)
    p.set_defaults(handler=status)
    cp = sub.add_parser("controlplane", help="the control plane").add_subparsers(dest="cmd", required=True)
    p = cp.add_parser("status", help="replicas, leader and store")
    _out(p)
    p.set_defaults(handler=status)
