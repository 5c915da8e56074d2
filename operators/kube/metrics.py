"""Error rate and p95 latency of a ModelDeployment, measured at the site.

Two sources, chosen by the SitePolicy's ``metrics``:

- **Prometheus** (``prometheusUrl`` set): the site's own Prometheus over its HTTP API
  (``/api/v1/query``), with the PromQL templates ``errorRateQuery`` (a ratio 0..1) and
  ``latencyP95Query`` (milliseconds). ``$namespace``, ``$deployment``, ``$model``, ``$version``,
  ``$release`` and ``$digest`` in a template are replaced by the deployment's values, escaped for a
  PromQL string.
- **Scraping** (no ``prometheusUrl``): the deployment's pods' ``/metrics`` (text exposition format),
  counters of requests and of errors and a latency histogram in seconds; rates are the differences
  between two scrapes, summed over the pods that run the current revision.

Either way only the two aggregates leave the site. "No traffic", "no series" and NaN are *not
measured* (None), never 0.
"""

from __future__ import annotations

import math
import re
import string
from dataclasses import dataclass, field
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

#: Placeholders a PromQL template may use.
PLACEHOLDERS = ("namespace", "deployment", "model", "version", "release", "digest")
_PLACEHOLDER = re.compile(r"\$(?:\{(\w+)\}|(\w+))")


@dataclass(frozen=True)
class MetricsPolicy:
    """SitePolicy ``spec.metrics``."""

    prometheus_url: str = ""
    error_rate_query: str = ""
    latency_p95_query: str = ""
    #: Scraping (no Prometheus): the pods' port (0: the operator's runtime port) and path, and the
    #: metric names: a counter of requests, a counter of failed requests, a histogram in seconds.
    scrape_port: int = 0
    scrape_path: str = "/metrics"
    requests_metric: str = "model_requests_total"
    errors_metric: str = "model_request_errors_total"
    latency_metric: str = "model_request_duration_seconds"


def check_template(text: str, where: str) -> str:
    """The template, or ValueError naming an unknown placeholder."""
    for m in _PLACEHOLDER.finditer(text):
        name = m.group(1) or m.group(2)
        if name not in PLACEHOLDERS:
            raise ValueError(f"{where}: unknown placeholder ${name} (known: {', '.join(PLACEHOLDERS)})")
    return text


def _promql_string(value: str) -> str:
    """A value safe inside a double-quoted PromQL string (a site's names are DNS labels anyway)."""
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "")


def render(template: str, values: dict[str, str]) -> str:
    return string.Template(template).safe_substitute({k: _promql_string(v) for k, v in values.items()})


def instant_value(body: Any) -> float | None:
    """The worst (largest) finite value of an instant-query answer; None when there is none."""
    if not isinstance(body, dict) or body.get("status") != "success":
        return None
    data = body.get("data") or {}
    kind, result = data.get("resultType"), data.get("result")
    samples: list[Any] = []
    if kind == "vector" and isinstance(result, list):
        samples = [r.get("value") for r in result if isinstance(r, dict)]
    elif kind == "scalar":
        samples = [result]
    values = []
    for s in samples:
        try:
            v = float(s[1])
        except (TypeError, ValueError, IndexError):
            continue
        if math.isfinite(v):
            values.append(v)
    return max(values) if values else None


# --- scraping -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Scrape:
    """One pod's counters at one moment: requests, errors, and the latency histogram's cumulative
    bucket counts by upper bound (seconds)."""

    requests: float = 0.0
    errors: float = 0.0
    buckets: dict[float, float] = field(default_factory=dict)


def parse_scrape(text: str, policy: MetricsPolicy) -> Scrape:
    requests = errors = 0.0
    buckets: dict[float, float] = {}
    bucket_name = policy.latency_metric + "_bucket"
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name == policy.requests_metric:
                requests += s.value
            elif s.name == policy.errors_metric:
                errors += s.value
            elif s.name == bucket_name:
                le = float(s.labels.get("le", "nan"))
                if not math.isnan(le):
                    buckets[le] = buckets.get(le, 0.0) + s.value
    return Scrape(requests, errors, buckets)


def quantile(q: float, buckets: dict[float, float]) -> float | None:
    """Prometheus' histogram_quantile over cumulative bucket counts (linear within a bucket)."""
    bounds = sorted(buckets)
    if not bounds or not math.isinf(bounds[-1]):
        return None
    total = buckets[bounds[-1]]
    if total <= 0:
        return None
    rank, prev_bound, prev_count = q * total, 0.0, 0.0
    for b in bounds:
        count = buckets[b]
        if count >= rank:
            if math.isinf(b):
                return prev_bound  # the highest finite bound, as Prometheus answers
            width = count - prev_count
            return prev_bound + (b - prev_bound) * ((rank - prev_count) / width if width else 1.0)
        prev_bound, prev_count = b, count
    return None


def window(before: dict[str, Scrape], after: dict[str, Scrape]) -> tuple[float | None, float | None]:
    """(error rate, p95 latency in ms) between two scrapes of the same pods; pods seen only once,
    and counters that went backwards (a restarted pod), are left out."""
    requests = errors = 0.0
    buckets: dict[float, float] = {}
    for pod, a in after.items():
        b = before.get(pod)
        if b is None or a.requests < b.requests or a.errors < b.errors:
            continue
        requests += a.requests - b.requests
        errors += a.errors - b.errors
        for le, n in a.buckets.items():
            buckets[le] = buckets.get(le, 0.0) + max(0.0, n - b.buckets.get(le, 0.0))
    rate = min(1.0, errors / requests) if requests > 0 else None
    p95 = quantile(0.95, buckets)
    return rate, (p95 * 1000.0 if p95 is not None else None)
