"""A site's ``/metrics`` (the exporter; operators/kube/metrics.py is the other direction: the
site *reading* its models' metrics). Shared by the kube operator and the simulator: the link's
state, what the site did with each directive, and the expiry of its own certificate - the one an
alert must catch ≥ 7 days ahead, since a site whose certificate lapses cannot renew it and must
be re-enrolled by hand."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from controlplane.telemetry import metrics
from operators.agent.records import Applied

if TYPE_CHECKING:
    from operators.agent.link import SiteAgent


def count(site_id: str, entry: Applied) -> None:
    """One directive handled (not a re-delivery answered from the record)."""
    metrics.SITE_DIRECTIVES.labels(site=site_id, kind=entry.kind or "unknown", outcome=entry.outcome).inc()


#: The agents this process runs (one in the kube operator; several under ``dev up``), each as a
#: function returning it or None (before the operator has a FederationLink).
_AGENTS: list[Callable[[], SiteAgent | None]] = []
_lock = threading.Lock()


class _Sites(Collector):
    """One family per series with a ``site`` label, however many agents the process runs."""

    def collect(self) -> Iterator[GaugeMetricFamily]:
        with _lock:
            agents = [a for get in _AGENTS if (a := get()) is not None]
        up = GaugeMetricFamily("stargate_site_link_connected", "1 while the link is up", labels=["site"])
        connects = GaugeMetricFamily(
            "stargate_site_link_connects", "Links opened since start", labels=["site"]
        )
        last = GaugeMetricFamily(
            "stargate_site_last_applied_sequence", "Last sequence handled", labels=["site"]
        )
        for a in agents:
            sid = [a.facts.site_id]
            up.add_metric(sid, float(a.connected.is_set()))
            connects.add_metric(sid, float(a.connects))
            last.add_metric(sid, float(a.record.last_sequence))
        yield from (up, connects, last)


def _files() -> dict[str, Path]:
    with _lock:
        agents = [a for get in _AGENTS if (a := get()) is not None]
    out: dict[str, Path] = {}
    for a in agents:
        out[f"site/{a.facts.site_id}"] = a.cred_dir / "site.crt"
        out[f"federation-ca/{a.facts.site_id}"] = a.cred_dir / "ca.crt"
    return out


def watch(agent: Callable[[], SiteAgent | None]) -> Callable[[], None]:
    """Add ``agent()`` (read at scrape time) to this process's ``/metrics``; returns its removal."""
    with _lock:
        if not _AGENTS:
            metrics.register(_Sites())
            metrics.register(metrics.CertificateExpiry(_files))
        _AGENTS.append(agent)

    def remove() -> None:
        with _lock, contextlib.suppress(ValueError):
            _AGENTS.remove(agent)

    return remove


def install(agent: Callable[[], SiteAgent | None], listen: str) -> metrics.MetricsServer:
    """Serve ``/metrics`` on ``listen`` (HOST:PORT; PORT alone binds loopback) for ``agent``."""
    server = metrics.MetricsServer(listen)
    watch(agent)
    return server
