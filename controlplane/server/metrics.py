"""What a replica's ``/metrics`` reads from its live state at scrape time (the event counters
live in controlplane/telemetry/metrics.py): links connected, leadership, and the expiry of the
certificates it serves with (the federation CA and the server certificate; the embedded etcd's
are reissued at every start)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from pathlib import Path

from controlplane.server.app import ControlPlane
from controlplane.telemetry import metrics


def _gauges(cp: ControlPlane) -> Iterator[tuple[str, str, float]]:
    rt = cp.runtime
    if rt is None:
        return
    yield "stargate_links_connected", "Site links open on this replica", len(rt.links)
    yield "stargate_is_leader", "1 while this replica leads the controllers", int(rt.election.is_leader)
    yield "stargate_leader_term", "The leadership term this replica holds (0: not leader)", rt.election.term


def _certificates(directory: Path) -> Callable[[], dict[str, Path]]:
    return lambda: {"federation-ca": directory / "ca.crt", "server": directory / "server.crt"}


def install(cp: ControlPlane, directory: Path, listen: str) -> Callable[[], None]:
    """Serve ``/metrics`` for ``cp`` on ``listen``; returns the function that stops it. Call on
    the event loop that runs ``cp``."""
    server = metrics.MetricsServer(listen)
    drops = [
        metrics.register(metrics.Gauges(lambda: _gauges(cp), asyncio.get_running_loop())),
        metrics.register(metrics.CertificateExpiry(_certificates(directory))),
    ]

    def stop() -> None:
        server.close()
        for drop in drops:
            drop()

    stop.url = server.url  # type: ignore[attr-defined]
    return stop
