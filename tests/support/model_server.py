"""A stand-in for a site's model server (test infrastructure): real ``prometheus_client`` counters
and a latency histogram on ``/metrics``, with traffic generated at a chosen error rate.

Traffic: ``rate`` requests per second; every ``1/error_rate``-th fails (counted under code 500 and
in the errors counter); 90% take 80 ms and 10% take 800 ms, so the p95 that Prometheus'
``histogram_quantile`` (and the operator's own scrape window) interpolates is 750 ms.
"""

from __future__ import annotations

import threading
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram, start_http_server

BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
P95_MS = 750.0


class ModelServer:
    def __init__(
        self,
        *,
        namespace: str = "ai-workloads",
        deployment: str = "atlas",
        error_rate: float = 0.1,
        rate: float = 200,
    ) -> None:
        self.labels = {"namespace": namespace, "deployment": deployment}
        self.error_rate, self.rate = error_rate, rate
        self.registry = CollectorRegistry()
        names = ["namespace", "deployment"]
        self.requests = Counter(
            "model_requests", "Requests served.", [*names, "code"], registry=self.registry
        )
        self.errors = Counter("model_request_errors", "Requests that failed.", names, registry=self.registry)
        self.latency = Histogram(
            "model_request_duration_seconds",
            "Request latency.",
            names,
            buckets=BUCKETS,
            registry=self.registry,
        )
        self._stop = threading.Event()
        self._httpd: Any = None
        self._thread: threading.Thread | None = None
        self._n = 0

    @property
    def port(self) -> int:
        return int(self._httpd.server_port)

    def serve(self, n: int) -> None:
        for _ in range(n):
            self._n += 1
            failed = self.error_rate > 0 and self._n % round(1 / self.error_rate) == 0
            self.requests.labels(**self.labels, code="500" if failed else "200").inc()
            if failed:
                self.errors.labels(**self.labels).inc()
            self.latency.labels(**self.labels).observe(0.8 if self._n % 10 == 5 else 0.08)

    def _traffic(self) -> None:
        while not self._stop.wait(0.05):
            self.serve(max(1, round(self.rate * 0.05)))

    def __enter__(self) -> ModelServer:
        self._httpd, _ = start_http_server(0, "127.0.0.1", registry=self.registry)
        self._thread = threading.Thread(target=self._traffic, name="model-traffic", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)
        self._httpd.shutdown()
        self._httpd.server_close()
