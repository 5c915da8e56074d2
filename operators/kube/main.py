"""``stargate-site-operator``: the site operator's entry point (the Helm chart runs it).

kopf watches the cluster-scoped FederationLink and SitePolicy, and ModelDeployments, Deployments
and Datasets only in the federation namespaces (the only namespaces the chart's RBAC lets it write
to). Local ModelDeployments elsewhere are read for the heartbeat through the operator's own client.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Sequence
from typing import Any

import kopf

from controlplane.process import tune_gc
from controlplane.telemetry import logs
from operators.agent import telemetry
from operators.kube.registry import build_registry
from operators.kube.runtime import Runtime
from operators.kube.settings import Settings


def login_handler(runtime: Runtime, registry: kopf.OperatorRegistry) -> None:
    """In-cluster ServiceAccount first, then a kubeconfig; the operator's own client reuses it."""

    @kopf.on.login(registry=registry)
    def login(**kwargs: Any) -> kopf.ConnectionInfo | None:
        info = kopf.login_with_service_account(**kwargs) or kopf.login_with_kubeconfig(**kwargs)
        if info is not None:
            runtime.connection = info
        return info


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="stargate-site-operator", description="The Stargate site operator.")
    p.add_argument(
        "--liveness", default="", help="serve kopf's health endpoint, e.g. http://0.0.0.0:8080/healthz"
    )
    p.add_argument(
        "--metrics-listen",
        default=os.environ.get("STARGATE_METRICS_LISTEN", ""),
        help="HOST:PORT (or PORT: loopback) to serve Prometheus /metrics on; default: none",
    )
    p.add_argument(
        "--log-format",
        choices=logs.FORMATS,
        default=os.environ.get("STARGATE_LOG_FORMAT", "text"),
        help="text (default) or json lines",
    )
    args = p.parse_args(argv)
    settings = Settings.from_env()
    try:
        logs.setup(settings.log_level, args.log_format)
        runtime = Runtime(settings)
        server = (
            telemetry.install(lambda: runtime.agent, args.metrics_listen) if args.metrics_listen else None
        )
    except (ValueError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    registry = build_registry(runtime)
    login_handler(runtime, registry)
    tune_gc()
    try:
        asyncio.run(
            kopf.operator(
                registry=registry,
                standalone=True,  # one replica (the chart's Deployment): no peering
                namespaces=list(settings.federation_namespaces),
                liveness_endpoint=args.liveness or None,
            )
        )
    except KeyboardInterrupt:
        return 130
    finally:
        if server is not None:
            server.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
