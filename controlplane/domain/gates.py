"""Evidence and gate measurements, pure. No I/O.

**Evidence** is a site's report of a deployment that proves it runs *this* release: the report
names the release and its artifact digest, the heartbeat that carried it had applied the Deploy
directive (its ``last_applied_sequence`` is at least the directive's sequence, so it describes the
site after the Deploy), and the site is reachable now (heartbeats within the last three intervals;
the registry holds the content of the site's latest heartbeat, which is written whenever it
changes). Anything else is no evidence, and no evidence never passes a gate.

A **measurement** evaluates every gate over the fresh reports of the sites in scope. Per gate:
``pass``, ``fail``, ``waiting`` (no evidence yet, or readiness not reached within the progress
deadline) or ``inconclusive`` (a ready site did not measure a metric the gate names: unmeasured is
never 0). The measurement is the worst of them: fail > inconclusive > waiting > pass.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

DEFAULT_TIMEOUT_S = 300.0
DEFAULT_INTERVAL_S = 10.0
DEFAULT_PROGRESS_DEADLINE_S = 600.0
#: Names of DeploymentStatus.measured values (the stored form of the HealthMetric enum).
ERROR_RATE, LATENCY_P95, SAFETY_SCORE = (
    "HEALTH_METRIC_ERROR_RATE",
    "HEALTH_METRIC_LATENCY_P95",
    "HEALTH_METRIC_SAFETY_SCORE",
)


class Outcome(StrEnum):
    PASS = "pass"  # noqa: S105 (an outcome, not a password)
    WAITING = "waiting"
    INCONCLUSIVE = "inconclusive"
    FAIL = "fail"


_RANK = {Outcome.PASS: 0, Outcome.WAITING: 1, Outcome.INCONCLUSIVE: 2, Outcome.FAIL: 3}


@dataclass(frozen=True)
class Report:
    """One deployment as a site reported it; a metric is None when the site did not measure it."""

    name: str
    release: str
    digest: str
    version: str
    replicas: int
    ready_replicas: int
    halted: bool
    federation: bool
    error_rate: float | None
    latency_p95_ms: float | None
    safety_score: float | None

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Report:
        """From a stored DeploymentStatus dict (proto field names; defaults omitted)."""
        measured = set(d.get("measured") or ())

        def metric(key: str, name: str) -> float | None:
            value = d.get(key, 0.0)  # proto3 JSON leaves out zeros
            if name not in measured or not isinstance(value, int | float) or not math.isfinite(value):
                return None
            return float(value)

        return cls(
            name=str(d.get("name", "")),
            release=str(d.get("release", "")),
            digest=str(d.get("digest", "")),
            version=str(d.get("version", "")),
            replicas=int(d.get("replicas", 0)),
            ready_replicas=int(d.get("ready_replicas", 0)),
            halted=bool(d.get("halted", False)),
            federation=d.get("source") != "WORKLOAD_SOURCE_LOCAL",
            error_rate=metric("error_rate", ERROR_RATE),
            latency_p95_ms=metric("latency_p95_ms", LATENCY_P95),
            safety_score=metric("safety_score", SAFETY_SCORE),
        )


@dataclass(frozen=True)
class SiteView:
    """What the engine knows of a site: whether it is reachable now, the sequence its stored
    reports were produced after, and the reports."""

    site_id: str
    reachable: bool
    reported_sequence: int
    reports: tuple[Report, ...]

    def running(self, release: str, digest: str, after_sequence: int) -> Report | None:
        """The fresh report proving this site runs ``release`` at ``digest``, or None."""
        if not self.reachable or self.reported_sequence < after_sequence or after_sequence <= 0:
            return None
        for r in self.reports:
            if r.release == release and r.digest == digest and not r.halted:
                return r
        return None

    def restored(self, name: str, digest: str, version: str, replicas: int, after_sequence: int) -> bool:
        """Whether a fresh report shows the restore of a rollback in effect: the previous release
        (``digest``, ``version``) running in deployment ``name`` with its replicas ready, or, when
        ``digest`` is empty (the restore was an Undeploy), no federation deployment of that name."""
        if not self.reachable or self.reported_sequence < after_sequence or after_sequence <= 0:
            return False
        found = [r for r in self.reports if r.name == name and r.federation]
        if not digest:
            return not found
        return any(
            r.digest == digest and r.version == version and r.ready_replicas >= max(1, replicas)
            for r in found
        )


@dataclass(frozen=True)
class GateSpec:
    """The gates of a rollout with their defaults applied."""

    min_ready_ratio: float = 1.0
    max_error_rate: float = 0.0  # 0: not gated
    max_latency_p95_ms: float = 0.0
    min_safety_score: float = 0.0
    timeout: float = DEFAULT_TIMEOUT_S
    interval: float = DEFAULT_INTERVAL_S
    failure_limit: int = 0
    progress_deadline: float = DEFAULT_PROGRESS_DEADLINE_S

    @classmethod
    def of(cls, g: dict[str, Any]) -> GateSpec:
        """From the stored RolloutSpec.gates dict (proto field names)."""
        return cls(
            # Readiness is always gated: 0 (unset) means every replica must be ready.
            min_ready_ratio=float(g.get("min_ready_ratio") or 1.0),
            max_error_rate=float(g.get("max_error_rate") or 0.0),
            max_latency_p95_ms=float(g.get("max_latency_p95_ms") or 0.0),
            min_safety_score=float(g.get("min_safety_score") or 0.0),
            timeout=float(g.get("timeout_seconds") or DEFAULT_TIMEOUT_S),
            interval=float(g.get("interval_seconds") or DEFAULT_INTERVAL_S),
            failure_limit=int(g.get("failure_limit") or 0),
            progress_deadline=float(g.get("progress_deadline_seconds") or DEFAULT_PROGRESS_DEADLINE_S),
        )


@dataclass(frozen=True)
class Probe:
    """A site in the scope of a measurement: its replicas, since when it has not been ready (its
    progress deadline runs from there), and its fresh report (None: no evidence)."""

    site: str
    replicas: int
    unready_since: float
    report: Report | None

    @property
    def ready(self) -> bool:
        return self.report is not None and self.report.ready_replicas >= self.replicas


@dataclass(frozen=True)
class GateValue:
    name: str
    value: float
    threshold: float
    outcome: Outcome
    detail: str
    measured: bool

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "value": self.value,
            "threshold": self.threshold,
            "outcome": str(self.outcome),
            "detail": self.detail,
            "measured": self.measured,
        }


@dataclass(frozen=True)
class Measurement:
    outcome: Outcome
    gates: tuple[GateValue, ...]
    #: The sites whose fresh reports a passing measurement covered.
    verified: tuple[str, ...]

    @property
    def summary(self) -> str:
        """One line for the wave's ``gate`` field and the audit log."""
        if self.outcome is Outcome.PASS:
            return "pass"
        worst = next(g for g in self.gates if g.outcome is self.outcome)
        return f"{self.outcome}: {worst.detail}"


def _sites(names: Sequence[str]) -> str:
    return names[0] + (f" (+{len(names) - 1})" if len(names) > 1 else "")


def _metric(
    name: str,
    label: str,
    threshold: float,
    ready: Sequence[Probe],
    value_of: Any,
    *,
    upper: bool,
    fmt: str,
) -> GateValue:
    """A max (``upper``) or min gate over the ready sites' reports."""
    if not ready:
        return GateValue(name, 0.0, threshold, Outcome.WAITING, "no site has reported the release yet", False)
    values = [(value_of(p.report), p.site) for p in ready]
    measured = [(v, s) for v, s in values if v is not None]
    missing = [s for v, s in values if v is None]
    if measured:
        worst, at = max(measured) if upper else min(measured)
        bad = worst > threshold if upper else worst < threshold
        if bad:
            op = ">" if upper else "<"
            return GateValue(
                name,
                worst,
                threshold,
                Outcome.FAIL,
                f"{label} {worst:{fmt}} {op} {threshold:g} at {at}",
                True,
            )
    if missing:
        detail = f"{label} not measured at {_sites(missing)}"
        return GateValue(
            name, measured[0][0] if measured else 0.0, threshold, Outcome.INCONCLUSIVE, detail, bool(measured)
        )
    op = "<=" if upper else ">="
    return GateValue(name, worst, threshold, Outcome.PASS, f"{label} {worst:{fmt}} {op} {threshold:g}", True)


def measure(spec: GateSpec, probes: Iterable[Probe], now: float, window_start: float) -> Measurement:
    """Evaluate every gate over ``probes``; the progress deadline runs from each site's
    ``unready_since``, or from ``window_start`` when that is later (a resume restarts it)."""
    probes = list(probes)
    desired = sum(p.replicas for p in probes)
    ready_replicas = sum(min(p.report.ready_replicas, p.replicas) for p in probes if p.report is not None)
    ratio = ready_replicas / desired if desired else 0.0
    unready = [p for p in probes if not p.ready]
    if not probes:
        gates = [
            GateValue(
                "minReadyRatio",
                0.0,
                spec.min_ready_ratio,
                Outcome.WAITING,
                "no site runs the release yet",
                False,
            )
        ]
    elif ratio + 1e-9 >= spec.min_ready_ratio:
        gates = [
            GateValue("minReadyRatio", ratio, spec.min_ready_ratio, Outcome.PASS, f"ready {ratio:.2f}", True)
        ]
    else:
        late = [p.site for p in unready if now - max(p.unready_since, window_start) > spec.progress_deadline]
        outcome = Outcome.FAIL if late else Outcome.WAITING
        detail = (
            f"ready ratio {ratio:.2f} < {spec.min_ready_ratio:g}; not ready after progressDeadline "
            f"{spec.progress_deadline:g}s at {_sites(late)}"
            if late
            else f"ready {ratio:.2f}; waiting for {_sites([p.site for p in unready])}"
        )
        gates = [GateValue("minReadyRatio", ratio, spec.min_ready_ratio, outcome, detail, True)]
    ready = [p for p in probes if p.ready]
    if spec.max_error_rate:
        gates.append(
            _metric(
                "maxErrorRate",
                "error rate",
                spec.max_error_rate,
                ready,
                lambda r: r.error_rate,
                upper=True,
                fmt=".3f",
            )
        )
    if spec.max_latency_p95_ms:
        gates.append(
            _metric(
                "maxLatencyP95Ms",
                "p95 latency",
                spec.max_latency_p95_ms,
                ready,
                lambda r: r.latency_p95_ms,
                upper=True,
                fmt=".0f",
            )
        )
    if spec.min_safety_score:
        gates.append(
            _metric(
                "minSafetyScore",
                "safety score",
                spec.min_safety_score,
                ready,
                lambda r: r.safety_score,
                upper=False,
                fmt=".2f",
            )
        )
    outcome = max((g.outcome for g in gates), key=_RANK.__getitem__)
    verified = tuple(p.site for p in ready) if outcome is Outcome.PASS else ()
    return Measurement(outcome, tuple(gates), verified)
