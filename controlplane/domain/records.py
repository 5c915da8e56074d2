"""Stored records and the store key layout. Pure data: JSON in, JSON out, no I/O.

Records are versioned by their JSON field names: new fields get defaults so that a newer replica
reads what an older one wrote (rolling upgrades).
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Self, TypeVar

ROOT = "/stargate/"
SITES = ROOT + "sites/"
TOKENS = ROOT + "tokens/"
DIRECTIVES = ROOT + "directives/"
DIRECTIVE_SEQ = ROOT + "dirseq/"
DIRECTIVE_IDS = ROOT + "dirids/"
AUDIT_HEAD = ROOT + "audit/head"
AUDIT_EVENTS = ROOT + "audit/events/"
#: The log's Merkle tree: its size and root, its tiles, the signed checkpoints, the witness list.
AUDIT_TREE = ROOT + "audit/tree"
AUDIT_TILES = ROOT + "audit/tiles/"
AUDIT_CHECKPOINTS = ROOT + "audit/checkpoints/"
WITNESSES = ROOT + "witnesses/"
REPLICAS = ROOT + "replicas/"
LIVENESS = ROOT + "liveness/"
LEADER = ROOT + "leader/controllers"
PUBLISHERS = ROOT + "publishers/"
RELEASES = ROOT + "releases/"
ROLLOUTS = ROOT + "rollouts/"
JOBS = ROOT + "jobs/"


def site_key(site_id: str) -> str:
    return SITES + site_id


def token_key(token_hash: str) -> str:
    return TOKENS + token_hash


def directive_prefix(site_id: str) -> str:
    return f"{DIRECTIVES}{site_id}/"


def directive_key(site_id: str, sequence: int) -> str:
    # Zero-padded so that byte order is sequence order (etcd ranges are byte-ordered).
    return f"{DIRECTIVES}{site_id}/{sequence:020d}"


def directive_id_key(site_id: str, directive_id: str) -> str:
    return f"{DIRECTIVE_IDS}{site_id}/{directive_id}"


def audit_key(sequence: int) -> str:
    return f"{AUDIT_EVENTS}{sequence:020d}"


def tile_key(level: int, index: int) -> str:
    return f"{AUDIT_TILES}{level}/{index:020d}"


def checkpoint_key(size: int) -> str:
    return f"{AUDIT_CHECKPOINTS}{size:020d}"


T = TypeVar("T", bound="Record")


_FIELDS: dict[type, frozenset[str]] = {}


def _field_names(cls: type) -> frozenset[str]:
    names = _FIELDS.get(cls)
    if names is None:
        names = _FIELDS[cls] = frozenset(f.name for f in dataclasses.fields(cls))
    return names


class Record:
    """JSON (de)serialisation for the dataclasses below; unknown fields are ignored on read.

    Fields hold only JSON values (no nested dataclasses), so a shallow dict is enough: this runs
    for every stored change, and ``dataclasses.asdict`` (a recursive deep copy) was the largest
    single cost of acknowledging a halt at 1,000 sites."""

    def to_dict(self) -> dict[str, Any]:
        """The fields as a dict. Shares (does not copy) list and dict values: read-only use."""
        return {name: getattr(self, name) for name in _field_names(type(self))}

    def to_json(self) -> bytes:
        return json.dumps(self.to_dict(), separators=(",", ":"), sort_keys=True).encode()

    @classmethod
    def from_json(cls, raw: bytes) -> Self:
        data = json.loads(raw)
        names = _field_names(cls)
        return cls(**{k: v for k, v in data.items() if k in names})

    def replace(self, **changes: Any) -> Self:
        return dataclasses.replace(self, **changes)  # type: ignore[type-var]


class SiteStatus(StrEnum):
    PENDING = "Pending"
    READY = "Ready"
    UNREACHABLE = "Unreachable"
    CORDONED = "Cordoned"


@dataclass(frozen=True)
class SiteRecord(Record):
    site_id: str
    country: str
    region: str = ""
    labels: dict[str, str] = field(default_factory=dict)
    #: accelerator type -> {"total": n, "free": n}
    capacity: dict[str, dict[str, int]] = field(default_factory=dict)
    security_tier: int = 1
    #: Pending, Ready or Unreachable; Cordoned is shown when ``cordoned`` is set.
    status: str = SiteStatus.PENDING
    cordoned: bool = False
    operator_version: str = ""
    certificate_fingerprint: str = ""
    certificate_not_after: float = 0.0
    enrolled_at: float = 0.0
    last_heartbeat: float = 0.0
    last_applied_sequence: int = 0
    health: str = ""
    #: Reported deployments (metadata only), as dicts of DeploymentStatus fields.
    deployments: list[dict[str, Any]] = field(default_factory=list)
    #: ``last_applied_sequence`` of the heartbeat that carried ``deployments``: they describe the
    #: site after every directive up to this sequence (rollout evidence, domain/gates.py).
    reported_sequence: int = 0
    #: The site's policy summary (accepted_risk_tiers, federation_capacity_share, jobs, ...).
    policy: dict[str, Any] = field(default_factory=dict)
    #: The datasets the site offers, as validated summaries (DatasetSummary.to_dict; at most 256).
    datasets: list[dict[str, Any]] = field(default_factory=list)
    #: The localisation job runs the site reports (JobStatus fields; aggregates only).
    jobs: list[dict[str, Any]] = field(default_factory=list)

    @property
    def shown_status(self) -> str:
        return SiteStatus.CORDONED if self.cordoned else self.status


@dataclass(frozen=True)
class TokenRecord(Record):
    token_hash: str
    site_id: str
    country: str
    expires_at: float
    created_by: str
    created_at: float
    used_at: float = 0.0


class DirectiveState(StrEnum):
    PENDING = "Pending"
    ACKED = "Acked"
    REJECTED = "Rejected"
    #: The federation could not send it (the reason says why); the queue went on without it.
    FAILED = "Failed"
    #: An admin took it out of delivery before the site answered.
    CANCELLED = "Cancelled"


#: States in which a directive is not (or no longer) sent (a cancelled one the site was sent
#: before may still be applied there: its ack then replaces the state).
UNDELIVERED = frozenset({DirectiveState.FAILED, DirectiveState.CANCELLED})


@dataclass(frozen=True)
class DirectiveRecord(Record):
    site_id: str
    sequence: int
    id: str
    kind: str
    #: Kind-specific payload, as the dict form of the proto payload message.
    payload: dict[str, Any]
    issued_at: float
    expires_at: float
    issuer: str
    state: str = DirectiveState.PENDING
    reason: str = ""
    completed_at: float = 0.0
    #: The directive-key signature made when it was queued (controlplane/pki/directive_key.py):
    #: key id and hex Ed25519 signature. A record without one is sent without one and refused.
    key_id: str = ""
    signature: str = ""


@dataclass(frozen=True)
class AuditEvent(Record):
    sequence: int
    time: float
    actor: str
    action: str
    object: str
    outcome: str
    reason: str = ""
    details: dict[str, str] = field(default_factory=dict)
    prev_hash: str = ""
    hash: str = ""


@dataclass(frozen=True)
class ReplicaRecord(Record):
    replica_id: str
    address: str
    enroll_address: str
    started_at: float
