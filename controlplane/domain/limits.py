"""The range of every number the federation accepts from a person or a site. Pure data, no I/O.

One table (``LIMITS``), keyed by ``Message.field`` (the wire message's name without the package),
that the API edge checks every request and every site message against
(``controlplane.api.bounds.check``) before anything is stored, and that services and the CLI reuse
(``LIMITS[...]`` or the named ranges below). A number without an entry here is refused unless it is
zero (unset): a field added to the API without a range cannot slip through; the unit test
``tests/unit/test_limits.py`` names any such field.

Why bounds and not just types: an int64 ``ttl_seconds`` of 2**63-1 once passed every check, was
stored, and then failed every conversion to a protobuf Timestamp (year > 9999) on the site's link,
which crashed twice a second. Every range below is far inside what JSON, etcd, Python floats (2**53)
and protobuf Timestamps (years 1..9999) represent exactly.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from controlplane.errors import InvalidArgument

DAY = 86_400
#: Largest sequence number (directive, safety lane, audit): int64, what etcd and every JSON
#: reader handle exactly; 2**63 directives at 10,000/s would last 29 million years.
MAX_SEQUENCE = 2**63 - 1
#: Latest instant a Timestamp may carry: 9999-12-31T23:59:59Z (RFC 3339's last year).
MAX_TIMESTAMP_S = 253_402_300_799


@dataclass(frozen=True, slots=True)
class Range:
    """An inclusive range; ``note`` says what the number is (shown in the error)."""

    lo: float
    hi: float
    note: str = ""

    def describe(self) -> str:
        lo = int(self.lo) if float(self.lo).is_integer() else self.lo
        hi = int(self.hi) if float(self.hi).is_integer() else self.hi
        return f"{lo}..{hi}" + (f" ({self.note})" if self.note else "")

    def check(self, field: str, value: float) -> float:
        """``value`` when it is a finite number in range, else InvalidArgument naming ``field``."""
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise InvalidArgument(field, f"must be a number in {self.describe()}")
        if isinstance(value, float) and not math.isfinite(value):
            raise InvalidArgument(field, f"must be a finite number in {self.describe()}, got {value}")
        if not self.lo <= value <= self.hi:
            raise InvalidArgument(field, f"must be {self.describe()}, got {_shown(value)}")
        return value


def _shown(value: float) -> str:
    """A rejected value for an error message: huge integers by their size (str() of one with more
    than 4,300 digits raises in Python 3.11, and a message must stay one short line)."""
    if isinstance(value, int) and abs(value) >= 10**24:
        return f"a number of about {int(abs(value).bit_length() * math.log10(2)) + 1} digits"
    return f"{value:.6g}" if isinstance(value, float) else str(value)


def seconds(max_days: float, default: str) -> Range:
    return Range(0, max_days * DAY, f"seconds, at most {max_days:g} days; 0: {default}")


# Named ranges, for services and the CLI to reuse.
TOKEN_TTL = seconds(7, "1 hour")
DIRECTIVE_TTL = seconds(30, "24 hours")
HALT_TTL = seconds(90, "7 days")
USER_CERT_TTL = seconds(365, "30 days")
SEQUENCE = Range(0, MAX_SEQUENCE, "a sequence number")
REPLICAS = Range(0, 10_000, "replicas")
ACCELERATORS_PER_REPLICA = Range(0, 64)
RISK_TIER = Range(0, 4, "1 low .. 4 frontier; 0: unset")
RATIO = Range(0, 1, "a ratio")
LIST_LIMIT = Range(0, 10_000, "items; 0: the default")
#: Accelerators of one type at one site (the largest sites today hold ~10^5).
ACCELERATOR_COUNT = Range(0, 10_000_000, "accelerators")
#: Sites a rollout or wave may name (far above any federation's size).
SITE_COUNT = Range(0, 1_000_000, "sites")
LATENCY_MS = Range(0, 3_600_000, "milliseconds, at most 1 hour")
#: How many of one kind of incident a site reports at once (services/incidents.py: MAX_INCIDENT_COUNT).
INCIDENT_COUNT = Range(0, 10_000, "incidents")
#: How many ``dev up --sites`` simulates in one process.
#: Witnesses a checkpoint may be asked to carry (a witness list is admin-managed and small).
WITNESS_COUNT = Range(0, 1_000, "witnesses")
DEV_SITES = Range(1, 5_000, "simulated sites")

LIMITS: dict[str, Range] = {
    # FederationService
    "CreateJoinTokenRequest.ttl_seconds": TOKEN_TTL,
    "DeployRequest.ttl_seconds": DIRECTIVE_TTL,
    "UndeployRequest.ttl_seconds": DIRECTIVE_TTL,
    "DeployPayload.replicas": REPLICAS,
    "DeployPayload.accelerators_per_replica": ACCELERATORS_PER_REPLICA,
    "DeployPayload.risk_tier": RISK_TIER,
    "CancelDirectiveRequest.sequence": SEQUENCE,
    "IssueUserCertificateRequest.ttl_seconds": USER_CERT_TTL,
    "ListAuditEventsRequest.after_sequence": SEQUENCE,
    "ListAuditEventsRequest.limit": LIST_LIMIT,
    # SafetyService
    "HaltRequest.ttl_seconds": HALT_TTL,
    "ListSafetyActionsRequest.limit": LIST_LIMIT,
    # ReleaseService
    "ModelRelease.risk_tier": RISK_TIER,
    "ReleaseResources.accelerators_per_replica": ACCELERATORS_PER_REPLICA,
    "Placement.replicas_per_site": Range(0, 1_000, "replicas per site"),
    "Placement.max_sites": SITE_COUNT,
    "Wave.sites": SITE_COUNT,
    "Wave.percent": Range(0, 100, "percent"),
    "Wave.bake_seconds": seconds(30, "no bake"),
    "Gates.min_ready_ratio": RATIO,
    "Gates.max_error_rate": RATIO,
    "Gates.max_latency_p95_ms": LATENCY_MS,
    "Gates.min_safety_score": RATIO,
    "Gates.timeout_seconds": seconds(7, "5 minutes"),
    "Gates.interval_seconds": seconds(1, "10 seconds"),
    "Gates.failure_limit": Range(0, 1_000, "failed measurements tolerated"),
    "Gates.progress_deadline_seconds": seconds(7, "10 minutes"),
    # AuditService (sizes and sequences of the transparency log)
    "GetCheckpointRequest.tree_size": SEQUENCE,
    "GetCheckpointRequest.min_cosignatures": WITNESS_COUNT,
    "ListCheckpointsRequest.after_size": SEQUENCE,
    "GetInclusionProofRequest.sequence": SEQUENCE,
    "GetInclusionProofRequest.tree_size": SEQUENCE,
    "GetInclusionProofRequest.min_cosignatures": WITNESS_COUNT,
    "GetConsistencyProofRequest.first": SEQUENCE,
    "GetConsistencyProofRequest.second": SEQUENCE,
    "AddCosignatureRequest.tree_size": SEQUENCE,
    # WatchService
    "WatchRequest.after_revision": SEQUENCE,
    # Sent by sites (Enroll, the link, ReportIncident)
    "AcceleratorCapacity.total": ACCELERATOR_COUNT,
    "AcceleratorCapacity.free": ACCELERATOR_COUNT,
    "SiteFacts.security_tier": Range(0, 4, "1..4; 0: 1"),
    "PolicySummary.accepted_risk_tiers": Range(1, 4, "a risk tier"),
    "PolicySummary.federation_capacity_share": RATIO,
    "Hello.last_applied_sequence": SEQUENCE,
    "Hello.last_safety_sequence": SEQUENCE,
    "Hello.min_witnesses": WITNESS_COUNT,
    "Hello.checkpoint_size": SEQUENCE,
    "Heartbeat.last_applied_sequence": SEQUENCE,
    "DeploymentStatus.replicas": REPLICAS,
    "DeploymentStatus.ready_replicas": REPLICAS,
    "DeploymentStatus.error_rate": RATIO,
    "DeploymentStatus.latency_p95_ms": LATENCY_MS,
    # Negative means "not measured" (types.proto); -1 is what sites send for it.
    "DeploymentStatus.safety_score": Range(-1, 1, "0..1; negative: not measured"),
    "Ack.sequence": SEQUENCE,
    "Ack.safety_sequence": SEQUENCE,
    "Reject.sequence": SEQUENCE,
    "Reject.safety_sequence": SEQUENCE,
    "IncidentReport.count": INCIDENT_COUNT,
    "LocalHaltReport.risk_tier": RISK_TIER,
    "LocalHaltReport.tolerance_seconds": seconds(30, "unset"),
    # Well-known types
    "google.protobuf.Timestamp.seconds": Range(0, MAX_TIMESTAMP_S, "seconds since 1970, up to year 9999"),
    "google.protobuf.Timestamp.nanos": Range(0, 999_999_999, "nanoseconds"),
}


def check(key: str, field: str, value: float) -> float:
    """Check ``value`` against ``LIMITS[key]``; the error names ``field`` (the caller's path)."""
    return LIMITS[key].check(field, value)
