"""``stargate-controlplane``: init a federation's PKI, or serve one replica. Thin: logic lives in
controlplane.server.{bootstrap,app} and controlplane.store."""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import logging
import sys
from pathlib import Path

from controlplane.domain.roster import ROSTER_FILE, SignedRoster
from controlplane.domain.safety_rules import DEFAULT_RULES, IncidentRule, parse_rules
from controlplane.errors import StargateError
from controlplane.pki.ca import CertificateAuthority
from controlplane.pki.directive_key import ensure_directive_key
from controlplane.pki.log_key import ensure_log_key
from controlplane.server.app import ControlPlane, ServerConfig, serve_until_signal
from controlplane.server.bootstrap import InitOptions, init, parse_admin_key, write_first_roster
from controlplane.server.metrics import install as install_metrics
from controlplane.server.stores import StoreOptions, open_store
from controlplane.store.instrumented import InstrumentedStore
from controlplane.telemetry import logs
from controlplane.telemetry.metrics import parse_listen

log = logging.getLogger(__name__)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="stargate-controlplane", description="Stargate Federation control plane")
    sub = p.add_subparsers(dest="command", required=True)
    i = sub.add_parser(
        "init", help="create the federation CA, server and admin certificates, and stargatectl.yaml"
    )
    i.add_argument("--dir", required=True, type=Path)
    i.add_argument("--trust-domain", required=True)
    i.add_argument(
        "--server-address", default="127.0.0.1:7443", help="HOST:PORT clients use for the mTLS API"
    )
    i.add_argument(
        "--enroll-address", default="", help="HOST:PORT of the enrollment port (default: API port + 1)"
    )
    i.add_argument(
        "--hostname", action="append", default=[], help="extra DNS name or IP for the server certificate"
    )
    i.add_argument(
        "--force", action="store_true", help="replace an existing CA (invalidates every certificate)"
    )
    i.add_argument(
        "--admin-key",
        action="append",
        default=[],
        metavar="[NAME=]PUB",
        help="an admin's approval public key (stargatectl keys create); repeat for each first admin; "
        "the first is --admin's. Without it: one lab key here, a single-admin federation",
    )
    i.add_argument("--admin", default="admin", help="name of the admin whose config init writes")
    r = sub.add_parser(
        "roster", help="write roster v1 (roster.json) in a PKI directory made before rosters existed"
    )
    r.add_argument("--dir", required=True, type=Path, help="PKI directory written by init")
    r.add_argument("--admin", default="admin", help="name of the admin whose config init wrote")
    r.add_argument("--admin-key", action="append", default=[], metavar="[NAME=]PUB")
    k = sub.add_parser(
        "log-key", help="create log.key/log.vkey in a PKI directory made before the log existed"
    )
    k.add_argument("--dir", required=True, type=Path, help="PKI directory written by init")
    k = sub.add_parser(
        "directive-key", help="create directive.key/directive.pub in a PKI directory made before them"
    )
    k.add_argument("--dir", required=True, type=Path, help="PKI directory written by init")
    s = sub.add_parser("serve", help="serve one control-plane replica")
    s.add_argument("--dir", required=True, type=Path, help="PKI directory written by init")
    s.add_argument("--listen", default="127.0.0.1:7443", help="HOST:PORT of the mTLS API")
    s.add_argument(
        "--enroll-listen", default="", help="HOST:PORT of the enrollment port (default: API port + 1)"
    )
    s.add_argument(
        "--advertise", default="", help="address other replicas and status report for this replica"
    )
    s.add_argument("--replica-id", default="cp-0")
    s.add_argument("--heartbeat-interval", type=float, default=5.0, help="seconds between site heartbeats")
    s.add_argument("--lease-ttl", type=int, default=5, help="seconds; leader and replica leases")
    s.add_argument(
        "--site-cert-ttl", type=float, default=24.0, help="hours a site certificate lives (default 24)"
    )
    s.add_argument(
        "--global-halt-approvals",
        type=int,
        choices=[1, 2],
        default=1,
        help="admins who must approve a global halt before it takes effect (default 1: the requester)",
    )
    s.add_argument(
        "--safety-rules", type=Path, help="incident rules file (JSON or YAML list); default: docs/safety.md"
    )
    s.add_argument(
        "--beacon-interval",
        type=float,
        default=0.0,
        help="seconds between signed beacons (default: heartbeat)",
    )
    s.add_argument(
        "--checkpoint-interval",
        type=float,
        default=1.0,
        help="least seconds between two signed checkpoints of the audit log (default 1)",
    )
    s.add_argument(
        "--metrics-listen",
        default="",
        help="HOST:PORT (or PORT: loopback) to serve Prometheus /metrics on; default: none",
    )
    StoreOptions.add_arguments(s)
    p.add_argument("--log-level", default="INFO")
    p.add_argument("--log-format", choices=logs.FORMATS, default="text", help="text (default) or json lines")
    return p


def _rules(path: Path | None) -> tuple[IncidentRule, ...]:
    if path is None:
        return DEFAULT_RULES
    from controlplane.client import yamlfile  # JSON is YAML; read within bounds

    return parse_rules(yamlfile.load(path, "--safety-rules"))


async def _serve(args: argparse.Namespace) -> None:
    if args.metrics_listen:
        parse_listen(args.metrics_listen)  # a bad address fails before the store is opened
    opened = await open_store(StoreOptions.from_args(args), args.dir)
    # stores.open_store has logged the memory store's warning (through the logger: json too).
    store = InstrumentedStore(opened.store)
    log.info("state store: %s", opened.note)
    config = ServerConfig(
        dir=args.dir,
        listen=args.listen,
        enroll_listen=args.enroll_listen,
        replica_id=args.replica_id,
        heartbeat_interval=args.heartbeat_interval,
        lease_ttl=args.lease_ttl,
        advertise=args.advertise,
        site_cert_ttl=dt.timedelta(hours=args.site_cert_ttl),
        global_halt_approvals=args.global_halt_approvals,
        safety_rules=_rules(args.safety_rules),
        beacon_interval=args.beacon_interval,
        checkpoint_interval=args.checkpoint_interval,
    )
    cp = ControlPlane(config, store)
    stop_metrics = install_metrics(cp, args.dir, args.metrics_listen) if args.metrics_listen else None
    try:
        await serve_until_signal(cp)
    finally:
        if stop_metrics is not None:
            stop_metrics()
        await opened.close()


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        logs.setup(args.log_level, args.log_format)
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    try:
        if args.command == "init":
            cfg = init(
                InitOptions(
                    args.dir,
                    args.trust_domain,
                    args.server_address,
                    args.enroll_address,
                    args.hostname,
                    admin=args.admin,
                    force=args.force,
                    admin_keys=[parse_admin_key(k) for k in args.admin_key],
                )
            )
            print(f"federation initialised in {args.dir}; admin config: {cfg}")
            roster = SignedRoster.from_json((args.dir / ROSTER_FILE).read_bytes()).roster
            admins = ", ".join(p.id for p in roster.admins())
            print(f"roster v1 (admins: {admins}); give sites its hash: --roster-hash {roster.hash()}")
            if roster.single_admin:
                print("warning: a single-admin federation: the two-person rule cannot hold", file=sys.stderr)
            # Countries verify the audit log with this key alone: hand it out, out of band.
            vkey = (args.dir / "log.vkey").read_text().strip()
            print(f"audit log verifier key (also in {args.dir / 'log.vkey'}): {vkey}")
        elif args.command == "roster":
            roster = write_first_roster(args.dir, args.admin, [parse_admin_key(k) for k in args.admin_key])
            print(
                f"roster v1 in {args.dir / ROSTER_FILE}; give sites its hash: --roster-hash {roster.hash()}"
            )
            if not args.admin_key:
                print(f"lab: {args.admin}'s approval key is {args.dir / (args.admin + '.approval.key')}")
        elif args.command == "log-key":
            # Never replaces a key: an existing log.key is loaded and its verifier key printed.
            trust_domain = CertificateAuthority.load(args.dir).trust_domain
            print(ensure_log_key(args.dir, trust_domain).vkey)
        elif args.command == "directive-key":
            # Never replaces a key: an existing directive.key is loaded and its id printed.
            print(ensure_directive_key(args.dir).key_id)
        else:
            asyncio.run(_serve(args))
    except StargateError as e:
        print(f"error: {e.public}", file=sys.stderr)
        return 1
    except (OSError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
