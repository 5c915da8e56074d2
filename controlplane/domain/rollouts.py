"""Rollouts, pure parts: phases and states, spec validation, wave assignment, the stored record.

Phases: Pending → Progressing ⇄ WaitingForApproval, Paused (by a person, or by an inconclusive
gate), RollingBack, then one of Completed, Failed, RolledBack, Aborted. Per site: Pending →
(WaitingForApproval) → Deploying → Ready, or Refused (the site said no: its sovereign choice, not
a health failure), Lost (unreachable: only its own part waits; nothing is sent elsewhere instead),
RollingBack → RolledBack or RollbackFailed, Skipped (never reached).

The decision of one step is ``controlplane.domain.rollout_step.step``; gates are measured by
``controlplane.domain.gates``. The enums' values are the strings stored in records, so that
records written before the enums existed still read.
"""

from __future__ import annotations

import math
import uuid
from dataclasses import MISSING, dataclass, field, fields
from enum import StrEnum
from typing import Any

from controlplane.domain.records import Record
from controlplane.domain.validation import validate_country, validate_dns_label, validate_dns_subdomain
from controlplane.errors import InvalidArgument


class Phase(StrEnum):
    PENDING = "Pending"
    PROGRESSING = "Progressing"
    WAITING = "WaitingForApproval"
    PAUSED = "Paused"
    ROLLING_BACK = "RollingBack"
    COMPLETED = "Completed"
    FAILED = "Failed"
    ROLLED_BACK = "RolledBack"
    ABORTED = "Aborted"


class WavePhase(StrEnum):
    PENDING = "Pending"
    PROGRESSING = "Progressing"
    BAKING = "Baking"
    COMPLETED = "Completed"
    FAILED = "Failed"
    ROLLED_BACK = "RolledBack"


class SitePhase(StrEnum):
    PENDING = "Pending"
    WAITING = "WaitingForApproval"
    DEPLOYING = "Deploying"
    READY = "Ready"
    REFUSED = "Refused"
    LOST = "Lost"
    ROLLING_BACK = "RollingBack"
    ROLLED_BACK = "RolledBack"
    ROLLBACK_FAILED = "RollbackFailed"
    SKIPPED = "Skipped"


ACTIVE = frozenset({Phase.PENDING, Phase.PROGRESSING, Phase.WAITING, Phase.PAUSED, Phase.ROLLING_BACK})
FINAL = frozenset({Phase.COMPLETED, Phase.FAILED, Phase.ROLLED_BACK, Phase.ABORTED})
#: Final phases a rollout can still be undone from (it reached sites and was not backed out).
UNDOABLE = frozenset({Phase.COMPLETED, Phase.FAILED, Phase.ABORTED})
#: Site states in which the site may run (or be about to run) the release.
REACHED = frozenset({SitePhase.DEPLOYING, SitePhase.READY, SitePhase.LOST})


def validate_spec(spec: Any) -> None:
    """Check a RolloutSpec message; errors name the manifest field."""
    validate_dns_subdomain("metadata.name", spec.name)
    validate_dns_subdomain("spec.release", spec.release)
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
    for name, value in (
        ("maxLatencyP95Ms", g.max_latency_p95_ms),
        ("timeout", g.timeout_seconds),
        ("interval", g.interval_seconds),
        ("progressDeadline", g.progress_deadline_seconds),
    ):
        if value < 0 or not math.isfinite(value):
            raise InvalidArgument(f"spec.gates.{name}", "must not be negative")
    if g.interval_seconds and g.interval_seconds < 0.1:
        raise InvalidArgument("spec.gates.interval", "must be at least 100ms")
    if not 0 <= g.failure_limit <= 1000:
        raise InvalidArgument("spec.gates.failureLimit", "must be 0..1000")


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


_NS = uuid.UUID("6b1f7c1e-3d2a-4f0b-9a7e-5c4d3b2a1f00")


def directive_id(rollout: str, site: str, action: str) -> str:
    """The id of the directive a rollout sends a site for ``action``: derived, so that a step
    repeated after a crash or a failover finds the directive it queued instead of queueing another.
    ``rollout`` is the record's ``uid`` (its name for records from before uids)."""
    return str(uuid.uuid5(_NS, f"{rollout}/{site}/{action}"))


def _from_dict(cls: Any, d: dict[str, Any]) -> Any:
    names = _names(cls)
    return cls(**{k: v for k, v in d.items() if k in names})


_NAMES: dict[type, tuple[str, ...]] = {}


def _names(cls: type) -> tuple[str, ...]:
    got = _NAMES.get(cls)
    if got is None:
        got = _NAMES[cls] = tuple(f.name for f in fields(cls))  # type: ignore[arg-type]
    return got


@dataclass
class SiteState:
    site: str
    country: str
    replicas: int
    state: str = SitePhase.PENDING
    reason: str = ""
    directive_id: str = ""
    #: Id of the Deploy directive the site ran before this rollout ("" when none), for rollback.
    #: An id, not the payload: a rollout record holds every site, and etcd caps a value at 1.5 MiB.
    previous: str = ""
    rollback_id: str = ""
    #: Sequence of the Deploy directive: a report counts as evidence only when the heartbeat that
    #: carried it had applied at least this sequence (it describes the site after the Deploy).
    deploy_sequence: int = 0
    #: Since when the site has not been ready (its progress deadline runs from here); 0 = ready.
    unready_since: float = 0.0
    #: A passing gate measurement included this site's fresh report.
    verified: bool = False
    rollback_sequence: int = 0
    rollback_attempt: int = 0
    #: What the restore must bring back: the previous release's digest and version, or "" for an
    #: Undeploy (the deployment must be gone).
    restore_digest: str = ""
    restore_version: str = ""
    restore_replicas: int = 0

    def to_dict(self) -> dict[str, Any]:
        """The fields that differ from their defaults: a rollout record holds every site, and etcd
        caps a value at 1.5 MiB (a Ready site: ~230 bytes instead of ~400 with every field)."""
        d = _SITE_DEFAULTS
        return {k: v for k, v in self.__dict__.items() if k in _ALWAYS or k not in d or d[k] != v}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> SiteState:
        """From a stored dict; fields it lacks (an older record) get their defaults, fields this
        version does not know (a newer one) are dropped. Without __init__'s per-call overhead:
        this runs for every site of a rollout on every engine step."""
        s = cls.__new__(cls)
        s.__dict__.update(_SITE_DEFAULTS)
        s.__dict__.update(d)
        if len(s.__dict__) != len(_SITE_DEFAULTS) + 3:
            known = _names(cls)
            missing = [k for k in ("site", "country", "replicas") if k not in s.__dict__]
            if missing:
                raise ValueError(f"rollout record: site entry without {', '.join(missing)}")
            for k in [k for k in s.__dict__ if k not in known]:
                del s.__dict__[k]
        return s


@dataclass
class WaveState:
    name: str
    bake_seconds: float
    sites: list[SiteState]
    phase: str = WavePhase.PENDING
    started_at: float = 0.0
    bake_until: float = 0.0
    #: One line: the latest measurement's outcome, e.g. "pass", "fail: error rate 0.250 > 0.01".
    gate: str = ""
    #: The analysis window: its start (wave start, or a resume), measurements and failures in it.
    window_start: float = 0.0
    measurements: int = 0
    failures: int = 0
    next_check_at: float = 0.0
    last_check_at: float = 0.0
    last_outcome: str = ""
    #: Since when measurements have been inconclusive (0: the last one was not).
    inconclusive_since: float = 0.0
    #: What the last measurement saw ("ready/in scope"): new evidence triggers a measurement.
    evidence: str = ""
    #: The latest measurement, one dict per gate (GateMeasurement fields).
    gates: list[dict[str, Any]] = field(default_factory=list)
    #: "actor: reason" when a person promoted the wave.
    promoted: str = ""

    def to_dict(self) -> dict[str, Any]:
        d = {k: getattr(self, k) for k in _names(WaveState)}
        d["sites"] = [s.to_dict() for s in self.sites]
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> WaveState:
        w: WaveState = _from_dict(cls, {**d, "sites": []})
        w.sites = [SiteState.from_dict(s) for s in d["sites"]]
        return w


#: Stored even when they hold their defaults (readers of the plain dicts rely on them).
_ALWAYS = frozenset({"site", "country", "replicas", "state", "reason"})
#: Defaults of SiteState's optional fields (all immutable values).
_SITE_DEFAULTS = {f.name: f.default for f in fields(SiteState) if f.default is not MISSING}


@dataclass(frozen=True)
class RolloutRecord(Record):
    name: str
    spec: dict[str, Any]  # RolloutSpec as a dict (proto field names)
    release: dict[str, Any]  # SignedRelease as a dict
    waves: list[dict[str, Any]]
    phase: str = Phase.PENDING
    message: str = ""
    approved: list[str] = field(default_factory=list)
    needs_approval: list[str] = field(default_factory=list)
    excluded: list[dict[str, Any]] = field(default_factory=list)
    paused_from: str = ""
    created_at: float = 0.0
    updated_at: float = 0.0
    created_by: str = ""
    #: Unique per rollout: directive ids derive from it, so a rollout created again under the name
    #: of a deleted one never re-finds the deleted one's directives.
    uid: str = ""

    @property
    def key(self) -> str:
        """What directive ids derive from."""
        return self.uid or self.name

    def wave_states(self) -> list[WaveState]:
        return [WaveState.from_dict(w) for w in self.waves]

    def with_waves(self, waves: list[WaveState]) -> RolloutRecord:
        return self.replace(waves=[w.to_dict() for w in waves])


def current_wave(waves: list[WaveState]) -> int:
    """Index of the first wave that has not completed (``len(waves)`` when all have)."""
    return next((i for i, w in enumerate(waves) if w.phase != WavePhase.COMPLETED), len(waves))
