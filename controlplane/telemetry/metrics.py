"""Prometheus series of the control plane and the site operators, and the ``/metrics`` endpoint.

One registry per process (``REGISTRY``): a replica or an operator is one process; tests that run
several in one process see their sum. Names follow Prometheus conventions (``_total`` counters,
``_seconds`` units). What is read from live state (links, certificates) is collected at scrape
time by collectors the process registers; events are counted where they happen.

Served by ``prometheus_client``'s threaded HTTP server: it runs beside the event loop and reads
counters under their own locks, so a scrape never waits for the loop (a scrape of a replica
with 1,000 links takes ~1 ms).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import ipaddress
import logging
import threading
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

from cryptography import x509
from prometheus_client import CollectorRegistry, Counter, Histogram, start_http_server
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

log = logging.getLogger(__name__)

REGISTRY = CollectorRegistry()
#: Loopback unless told otherwise: metrics name sites and countries.
DEFAULT_HOST = "127.0.0.1"
#: Longest a scrape waits for the event loop to read live state (a busy loop answers in ms).
LOOP_READ_S = 2.0

# --- control plane ------------------------------------------------------------------------------
DIRECTIVES = Counter(
    "stargate_directives",
    "Directives by kind and event: queued (stored for a site), sent (written to its link), acked, rejected",
    ["kind", "event"],
    registry=REGISTRY,
)
#: Halts must reach 1,000 sites in < 1 s (docs/performance.md: p99 ~0.4-0.6 s): buckets around that.
HALT_LATENCY = Histogram(
    "stargate_halt_propagation_seconds",
    "Seconds from a halt directive being stored to the site's ack being recorded",
    buckets=(0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0),
    registry=REGISTRY,
)
ROLLOUT_PHASES = Counter(
    "stargate_rollout_phase_transitions",
    "Rollouts entering a phase (Progressing, Paused, Succeeded, RolledBack, ...)",
    ["phase"],
    registry=REGISTRY,
)
GATES = Counter(
    "stargate_gate_outcomes",
    "Rollout wave gate decisions by outcome",
    ["outcome"],
    registry=REGISTRY,
)
STORE_LATENCY = Histogram(
    "stargate_store_request_duration_seconds",
    "State store (etcd) request latency by operation",
    ["op"],
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0),
    registry=REGISTRY,
)
STORE_ERRORS = Counter(
    "stargate_store_errors",
    "State store requests that raised, by operation and error",
    ["op", "error"],
    registry=REGISTRY,
)
LEADER_CHANGES = Counter(
    "stargate_leader_changes",
    "This replica becoming (elected) or ceasing to be (deposed) the controllers' leader",
    ["event"],
    registry=REGISTRY,
)

# --- site operator ------------------------------------------------------------------------------
SITE_DIRECTIVES = Counter(
    "stargate_site_directives",
    "Directives a site received, by site, kind and outcome (applied or rejected)",
    ["site", "kind", "outcome"],
    registry=REGISTRY,
)


def count_directive(kind: Any, event: str) -> None:
    DIRECTIVES.labels(kind=str(kind) or "unknown", event=event).inc()


class Gauges(Collector):
    """Gauges read from live state at scrape time: ``read`` returns (name, help, value) triples.
    With ``loop``, ``read`` runs on that event loop (state owned by the loop, e.g. leases, is
    only read there; the scrape waits up to 2 s). A read that fails yields nothing: a scrape never
    raises because state is mid-change."""

    def __init__(
        self,
        read: Callable[[], Iterable[tuple[str, str, float]]],
        loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        self._read = read
        self._loop = loop

    async def _on_loop(self) -> list[tuple[str, str, float]]:
        return list(self._read())

    def collect(self) -> Iterator[GaugeMetricFamily]:
        try:
            if self._loop is not None:
                rows = asyncio.run_coroutine_threadsafe(self._on_loop(), self._loop).result(LOOP_READ_S)
            else:
                rows = list(self._read())
        except Exception:
            log.debug("gauge read failed", exc_info=True)
            return
        for name, doc, value in rows:
            yield GaugeMetricFamily(name, doc, value=float(value))


class CertificateExpiry(Collector):
    """``stargate_certificate_expiry_seconds{identity}``: seconds until each certificate's notAfter
    (negative once expired), read from the files at scrape time so that a renewal shows at once.
    An alert on ``< 7 * 86400`` fires a week ahead (charts/*/alerts.yaml)."""

    def __init__(self, files: Callable[[], dict[str, Path]]) -> None:
        self._files = files

    def collect(self) -> Iterator[GaugeMetricFamily]:
        g = GaugeMetricFamily(
            "stargate_certificate_expiry_seconds",
            "Seconds until the certificate of each identity expires",
            labels=["identity"],
        )
        now = dt.datetime.now(dt.UTC)
        for identity, path in sorted(self._files().items()):
            try:
                cert = x509.load_pem_x509_certificate(path.read_bytes())
            except (OSError, ValueError):
                continue  # not there yet (a site before enrollment) or being replaced
            g.add_metric([identity], (cert.not_valid_after_utc - now).total_seconds())
        yield g


def parse_listen(value: str, flag: str = "--metrics-listen") -> tuple[str, int]:
    """``HOST:PORT``, ``:PORT`` or ``PORT`` (loopback); IPv6 as ``[::1]:PORT``."""
    host, sep, port_s = value.rpartition(":")
    if not sep:
        host, port_s = "", value
    host = host.strip("[]") or DEFAULT_HOST
    try:
        port = int(port_s)
    except ValueError:
        raise ValueError(f"{flag}: port must be a number, not {port_s!r}") from None
    if not 0 <= port <= 65535:
        raise ValueError(f"{flag}: port must be 0-65535, not {port}")
    if host != "localhost":
        try:
            ipaddress.ip_address(host)
        except ValueError:
            raise ValueError(f"{flag}: host must be an IP address or localhost, not {host!r}") from None
    return host, port


class MetricsServer:
    """``/metrics`` on ``HOST:PORT`` in a thread of its own; ``address`` is what it bound."""

    def __init__(self, listen: str, registry: CollectorRegistry = REGISTRY) -> None:
        host, port = parse_listen(listen)
        server, thread = start_http_server(port, addr=host, registry=registry)
        self._server, self._thread = server, thread
        bound_port = server.server_address[1]
        self.address = f"[{host}]:{bound_port}" if ":" in host else f"{host}:{bound_port}"
        self.url = f"http://{self.address}/metrics"
        log.info("metrics: %s", self.url)

    def close(self) -> None:
        threading.Thread(target=self._server.shutdown, daemon=True).start()
        self._server.server_close()


def register(collector: Collector) -> Callable[[], None]:
    """Register ``collector``; returns the function that unregisters it."""
    REGISTRY.register(collector)
    return lambda: REGISTRY.unregister(collector)
