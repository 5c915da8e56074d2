"""Rollouts, pure parts: spec validation, wave assignment and gate evaluation. No I/O.

Phases: Pending → Progressing ⇄ WaitingForApproval, Paused (by a person, or by an inconclusive
gate), then one of Completed, RolledBack, Aborted. Per site: Pending → (WaitingForApproval) →
Deploying → Ready, or Refused (the site said no: its sovereign choice, not a health failure),
Lost (unreachable mid-wave: only its own part waits; nothing is sent elsewhere instead),
RollingBack → RolledBack.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from controlplane.domain.records import Record
from controlplane.domain.validation import validate_country, validate_dns_label
from controlplane.errors import InvalidArgument

ACTIVE = ("Pending", "Progressing", "WaitingForApproval", "Paused", "RollingBack")
FINAL = ("Completed", "RolledBack", "Aborted")
SITE_DONE = ("Ready", "Refused", "RolledBack", "Skipped")
DEFAULT_GATE_TIMEOUT_S = 300.0


def validate_spec(spec: Any) -> None:
    """Check a RolloutSpec message; errors name the manifest field."""
    validate_dns_label("metadata.name", spec.name)
    validate_dns_label("spec.release", spec.release)
    p = spec.placement
    for i, cc in enumerate(p.countries):
        validate_country(cc, f"spec.placement.countries[{i}]")
    if p.replicas_per_site < 0 or p.replicas_per_site > 1000:
        raise InvalidArgument("spec.placement.replicasPerSite", "must be 1..1000")
    if p.max_sites < 0:
        raise InvalidArgument("spec.placement.maxSites", "must be >= 0 (0: no limit)")
    if not spec.waves:
        raise InvalidArgument("spec.waves", "at least one wave is required")
    last_percent, names = 0, set()
    for i, w in enumerate(spec.waves):
        where = f"spec.waves[{i}]"
        validate_dns_label(where + ".name", w.name)
        if w.name in names:
            raise InvalidArgument(where + ".name", f"duplicate wave name {w.name!r}")
        names.add(w.name)
        if bool(w.sites) == bool(w.percent):
            raise InvalidArgument(where, "set exactly one of sites or percent")
        if w.sites < 0:
            raise InvalidArgument(where + ".sites", "must be >= 1")
        if w.percent and not last_percent < w.percent <= 100:
            raise InvalidArgument(
                where + ".percent", f"must grow and be at most 100 (previous: {last_percent})"
            )
        last_percent = max(last_percent, w.percent)
        if w.bake_seconds < 0:
            raise InvalidArgument(where + ".bake", "must not be negative")
    if spec.waves[-1].percent != 100:
        raise InvalidArgument(f"spec.waves[{len(spec.waves) - 1}].percent", "the last wave must reach 100")
    g = spec.gates
    for name, value in (
        ("minReadyRatio", g.min_ready_ratio),
        ("maxErrorRate", g.max_error_rate),
        ("minSafetyScore", g.min_safety_score),
    ):
        if not 0 <= value <= 1:
            raise InvalidArgument(f"spec.gates.{name}", "must be between 0 and 1")
    if g.max_latency_p95_ms < 0 or g.timeout_seconds < 0:
        raise InvalidArgument("spec.gates", "latency and timeout must not be negative")


def assign_waves(waves: Any, n: int) -> list[int]:
    """How many of the ``n`` ordered sites each wave takes (the last wave takes the rest)."""
    out, taken = [], 0
    for i, w in enumerate(waves):
        if i == len(waves) - 1:
            size = n - taken
        elif w.sites:
            size = min(w.sites, n - taken)
        else:
            size = min(max(0, math.ceil(n * w.percent / 100) - taken), n - taken)
        out.append(size)
        taken += size
    return out


@dataclass(frozen=True)
class GateResult:
    outcome: str  # "pass" | "fail" | "inconclusive"
    detail: str


def evaluate_gates(gates: Any, reports: list[dict[str, Any] | None], replicas: int) -> GateResult:
    """Gates over the reports (DeploymentStatus dicts, None when missing) of a wave's live sites."""
    if not reports:
        return GateResult("pass", "pass: no live sites in this wave")
    missing = sum(1 for r in reports if r is None)
    if missing:
        return GateResult("inconclusive", f"inconclusive: {missing} of {len(reports)} sites did not report")
    present = [r for r in reports if r is not None]
    ready = sum(int(r.get("ready_replicas", 0)) for r in present)
    desired = max(1, replicas * len(present))
    if gates.min_ready_ratio and ready / desired < gates.min_ready_ratio:
        return GateResult("fail", f"fail: ready ratio {ready / desired:.2f} < {gates.min_ready_ratio}")
    worst_err = max(float(r.get("error_rate", 0.0)) for r in present)
    if gates.max_error_rate and worst_err > gates.max_error_rate:
        return GateResult("fail", f"fail: error rate {worst_err:.3f} > {gates.max_error_rate}")
    worst_p95 = max(float(r.get("latency_p95_ms", 0.0)) for r in present)
    if gates.max_latency_p95_ms and worst_p95 > gates.max_latency_p95_ms:
        return GateResult("fail", f"fail: p95 latency {worst_p95:.0f} ms > {gates.max_latency_p95_ms:.0f} ms")
    if gates.min_safety_score:
        scores = [float(r.get("safety_score", -1.0)) for r in present]
        if any(s < 0 for s in scores):
            return GateResult("inconclusive", "inconclusive: safety score not measured at every site")
        if min(scores) < gates.min_safety_score:
            return GateResult("fail", f"fail: safety score {min(scores):.2f} < {gates.min_safety_score}")
    return GateResult("pass", "pass")


@dataclass
class SiteState:
    site: str
    country: str
    replicas: int
    state: str = "Pending"
    reason: str = ""
    directive_id: str = ""
    #: Id of the Deploy directive the site ran before this rollout ("" when none), for rollback.
    #: An id, not the payload: a rollout record holds every site, and etcd caps a value at 1.5 MiB.
    previous: str = ""
    rollback_id: str = ""


@dataclass
class WaveState:
    name: str
    bake_seconds: float
    sites: list[SiteState]
    phase: str = "Pending"
    started_at: float = 0.0
    bake_until: float = 0.0
    gate: str = ""


@dataclass(frozen=True)
class RolloutRecord(Record):
    name: str
    spec: dict[str, Any]  # RolloutSpec as a dict (proto field names)
    release: dict[str, Any]  # SignedRelease as a dict
    waves: list[dict[str, Any]]
    phase: str = "Pending"
    message: str = ""
    approved: list[str] = field(default_factory=list)
    needs_approval: list[str] = field(default_factory=list)
    excluded: list[dict[str, Any]] = field(default_factory=list)
    paused_from: str = ""
    created_at: float = 0.0
    updated_at: float = 0.0
    created_by: str = ""

    def wave_states(self) -> list[WaveState]:
        return [WaveState(**{**w, "sites": [SiteState(**s) for s in w["sites"]]}) for w in self.waves]
