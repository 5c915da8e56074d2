"""Safety controls as pure logic: scopes, records, the bytes a safety signature covers, freezes,
and the state of a halt. No I/O here; ``controlplane.services.safety`` stores and sends.

Key layout (under ``/stargate/safety/``):

| key | value |
|---|---|
| ``actions/<id>`` | a SafetyActionRecord (halt, resume, freeze, unfreeze, local halt) |
| ``lane/<safety seq:020d>`` | a signed Halt/Resume, one per action, for its whole scope (the priority lane) |
| ``laneseq`` | the last safety-lane sequence (federation-wide; rises by one per directive) |
| ``acks/<action id>/~<batch id>`` | sites that acked the action's directive, together (AckBatchRecord) |
| ``acks/<action id>/<site>`` | a site's reject of the action's directive (DeliveryRecord); acks win |
| ``freezes/<scope>`` | an active freeze (FreezeRecord); absent = not frozen |
| ``incidents/<release>/<time ns:020d>-<site>-<n>`` | an incident report (metadata and a count) |

Freeze contract (for the rollout engine): call ``is_frozen(freezes, site_id=..., country=...)``
(pure, with the records from ``Safety.freezes()``) or ``await Safety.is_frozen(site_id=...,
country=...)`` before every rollout step that would change what a site runs. A non-None result is
the freeze that holds it: do not advance the step, do not roll it back either (a freeze holds
everything "where it is"); check again on the next pass. ``site_id`` and ``country`` may each be
empty (a country-level step passes only ``country``). A global freeze holds everything; a country
freeze holds that country's sites; a site freeze holds that site. Halts are separate: a freeze never
stops serving, and a halt does not block rollouts of other releases.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from controlplane.domain.records import ROOT, DirectiveState, Record
from controlplane.domain.validation import validate_country, validate_dns_label
from controlplane.errors import InvalidArgument

SAFETY = ROOT + "safety/"
ACTIONS = SAFETY + "actions/"
LANE = SAFETY + "lane/"
LANE_SEQ = SAFETY + "laneseq"
ACKS = SAFETY + "acks/"
FREEZES = SAFETY + "freezes/"
INCIDENTS = SAFETY + "incidents/"

#: Domain separation: a signature over one kind of message can never verify as another.
#: v2: one signature per action covering its scope (v1 signed a copy per site).
DIRECTIVE_CONTEXT = b"stargate-safety-directive-v2\n"
BEACON_CONTEXT = b"stargate-safety-beacon-v1\n"


def action_key(action_id: str) -> str:
    return ACTIONS + action_id


def lane_key(sequence: int) -> str:
    return f"{LANE}{sequence:020d}"


def acks_prefix(action_id: str) -> str:
    return f"{ACKS}{action_id}/"


def ack_key(action_id: str, site_id: str) -> str:
    return f"{ACKS}{action_id}/{site_id}"


#: Starts the name of an ack batch under ``acks/<action id>/``: never a site id (a DNS label).
ACK_BATCH_MARK = "~"


def ack_batch_key(action_id: str, batch_id: str) -> str:
    return f"{ACKS}{action_id}/{ACK_BATCH_MARK}{batch_id}"


def freeze_key(scope: str) -> str:
    return FREEZES + scope


def incident_prefix(release: str = "") -> str:
    return f"{INCIDENTS}{release}/" if release else INCIDENTS


# --- scopes ----------------------------------------------------------------


@dataclass(frozen=True)
class Scope:
    kind: str  # "global" | "country" | "site"
    value: str = ""

    def __str__(self) -> str:
        return "global" if self.kind == "global" else f"{self.kind}:{self.value}"

    def covers(self, *, site_id: str = "", country: str = "") -> bool:
        if self.kind == "global":
            return True
        if self.kind == "country":
            return bool(country) and country == self.value
        return bool(site_id) and site_id == self.value


def parse_scope(text: str, field_name: str = "scope") -> Scope:
    """``global``, ``country:CC`` or ``site:ID``, validated with full matches."""
    if text == "global":
        return Scope("global")
    kind, sep, value = text.partition(":")
    if not sep or kind not in ("country", "site"):
        raise InvalidArgument(field_name, "must be global, country:CC or site:ID")
    if kind == "country":
        validate_country(value, field_name)
    else:
        validate_dns_label(field_name, value)
    return Scope(kind, value)


# --- records ----------------------------------------------------------------


class ActionKind:
    HALT = "Halt"
    RESUME = "Resume"
    FREEZE = "Freeze"
    UNFREEZE = "Unfreeze"
    LOCAL_HALT = "LocalHalt"


class ActionState:
    PENDING_APPROVAL = "PendingApproval"
    HALTING = "Halting"
    HALTED = "Halted"
    RESUMING = "Resuming"
    RESUMED = "Resumed"
    FROZEN = "Frozen"
    UNFROZEN = "Unfrozen"


@dataclass(frozen=True)
class SafetyActionRecord(Record):
    id: str
    kind: str
    scope: str
    requested_by: str
    created_at: float
    release: str = ""
    reason: str = ""
    approvals: list[str] = field(default_factory=list)
    approvals_required: int = 1
    #: When it took effect (0: pending approval).
    effective_at: float = 0.0
    #: A local halt: the site that halted itself. A halt or resume covers every site in its scope
    #: (Safety.view computes them when asked), so it stores none.
    targets: list[str] = field(default_factory=list)
    #: Resume: the halt it lifts. Halt: the resume that lifted it.
    related_id: str = ""
    automatic: bool = False
    ttl_s: float = 7 * 24 * 3600.0
    #: Set on a halt once a resume took effect.
    resumed_at: float = 0.0
    details: dict[str, str] = field(default_factory=dict)
    #: Halt and resume: the artifact (model, digest) of the named release, which is what a halt
    #: stops (domain/artifact_halts.py). Empty for a release the federation does not know.
    model: str = ""
    digest: str = ""
    #: Resume: the persons' signatures ({"person", "signature" hex}) over its approval statement.
    signed_approvals: list[dict[str, str]] = field(default_factory=list)
    #: The roster version approvals_required came from, and whether it listed a single admin.
    roster_version: int = 0
    single_admin: bool = False


@dataclass(frozen=True)
class SafetyDirectiveRecord(Record):
    """A signed Halt or Resume in the safety lane: one per action, signed once for its scope."""

    safety_sequence: int
    id: str  # the action's id: a directive id is never reused
    kind: str  # "Halt" | "Resume"
    scope: str
    payload: dict[str, Any]
    issued_at: float
    expires_at: float
    issuer: str
    key_id: str
    signature: str  # hex
    #: Resume: the persons' signed approvals, which each site verifies against its roster.
    approvals: list[dict[str, str]] = field(default_factory=list)


@dataclass(frozen=True)
class DeliveryRecord(Record):
    """What one site answered to an action's directive."""

    site_id: str
    state: str  # Acked | Rejected
    at: float
    safety_sequence: int
    reason: str = ""


@dataclass(frozen=True)
class AckBatchRecord(Record):
    """Sites that acked one action's directive, stored in one write (a halt of 1,000 sites: a few
    records instead of 1,000)."""

    sites: list[str]
    at: float
    safety_sequence: int


def deliveries_from(records: Iterable[tuple[str, bytes]]) -> dict[str, DeliveryRecord]:
    """Site -> its answer, from the (key, value) pairs under ``acks/<action id>/``: acks from the
    batches, rejects from the per-site records. An ack is final: it wins over a reject (a site
    that rejected and later acked the same directive has applied it)."""
    rejects: dict[str, DeliveryRecord] = {}
    acked: dict[str, DeliveryRecord] = {}
    for key, value in records:
        if key.rsplit("/", 1)[-1].startswith(ACK_BATCH_MARK):
            b = AckBatchRecord.from_json(value)
            for site in b.sites:
                acked[site] = DeliveryRecord(site, DirectiveState.ACKED, b.at, b.safety_sequence)
        else:
            d = DeliveryRecord.from_json(value)
            (acked if d.state == DirectiveState.ACKED else rejects)[d.site_id] = d
    return rejects | acked


@dataclass(frozen=True)
class FreezeRecord(Record):
    scope: str
    action_id: str
    since: float
    reason: str = ""
    approvals: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class IncidentRecord(Record):
    site_id: str
    release: str
    severity: int
    category: str
    count: int
    at: float
    reported_by: str = ""


# --- what a signature covers ----------------------------------------------------------------


def ts_ns(seconds: float) -> int:
    """The nanoseconds a protobuf Timestamp carries for ``seconds`` (as convert.ts writes it)."""
    return int(seconds * 1e9) if seconds else 0


def directive_bytes(
    *,
    directive_id: str,
    kind: str,
    safety_sequence: int,
    issued_at_ns: int,
    expires_at_ns: int,
    issuer: str,
    key_id: str,
    payload: Mapping[str, Any],
) -> bytes:
    """The canonical bytes a safety directive's Ed25519 signature covers: every field a site acts
    on, including the scope (in the payload) and the safety sequence. One signature serves every
    site in scope; a site refuses a directive whose scope does not cover it, so a directive cannot
    be replayed outside its scope, and the rising sequence refuses an old one."""
    body = {
        "id": directive_id,
        "kind": kind,
        "safety_sequence": int(safety_sequence),
        "issued_at_ns": int(issued_at_ns),
        "expires_at_ns": int(expires_at_ns),
        "issuer": issuer,
        "key_id": key_id,
        "payload": {k: (list(v) if isinstance(v, list | tuple) else v) for k, v in sorted(payload.items())},
    }
    return DIRECTIVE_CONTEXT + json.dumps(body, separators=(",", ":"), sort_keys=True).encode()


#: The payload fields a signature covers, by kind (the wire payload's field names).
SIGNED_PAYLOAD_FIELDS = {
    "Halt": ("halt_id", "release", "scope", "reason", "approvers", "model", "digest"),
    "Resume": ("halt_id", "release", "scope", "reason", "approvers", "resume_id", "model", "digest"),
}


def signed_payload(kind: str, payload: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name in SIGNED_PAYLOAD_FIELDS[kind]:
        v = payload.get(name, [] if name == "approvers" else "")
        out[name] = [str(x) for x in v] if name == "approvers" else str(v)
    return out


def beacon_bytes(*, site_id: str, sequence: int, time_ns: int, key_id: str) -> bytes:
    body = {"site_id": site_id, "sequence": int(sequence), "time_ns": int(time_ns), "key_id": key_id}
    return BEACON_CONTEXT + json.dumps(body, separators=(",", ":"), sort_keys=True).encode()


# --- freezes ----------------------------------------------------------------


def is_frozen(
    freezes: Iterable[FreezeRecord], *, site_id: str = "", country: str = ""
) -> FreezeRecord | None:
    """The freeze that holds a rollout step at ``site_id`` / ``country`` (see the module docstring),
    or None. The broadest freeze is returned first (global, then country, then site)."""
    order = {"global": 0, "country": 1, "site": 2}
    best: tuple[int, FreezeRecord] | None = None
    for f in freezes:
        scope = parse_scope(f.scope)
        if scope.covers(site_id=site_id, country=country) and (best is None or order[scope.kind] < best[0]):
            best = (order[scope.kind], f)
    return best[1] if best else None


# --- the state of a halt ----------------------------------------------------------------


@dataclass(slots=True)  # not frozen: built 1,000 times per status read; 0.24 us each, not 0.75
class SiteView:
    site_id: str
    state: str
    reason: str = ""


@dataclass(frozen=True)
class ActionView:
    state: str
    acked: int
    pending: int
    unreachable: int
    rejected: int
    sites: list[SiteView]


def action_view(
    action: SafetyActionRecord,
    deliveries: Mapping[str, DeliveryRecord],
    reachable: set[str],
    now: float = 0.0,
) -> ActionView:
    """Counts and state of a halt, resume or local halt from the sites' answers to its directive.

    ``deliveries``: site -> its ack or reject; ``reachable``: sites connected now. The sites are the
    action's targets (for a halt or resume: the sites in its scope, filled in by the caller) plus
    any site that answered. A halt is
    Halting until every reachable site in scope acked, then Halted; Resumed once a resume took
    effect. An unreachable site stays pending (it gets the halt first on reconnect). Once the
    directive expired (``now`` past ``effective_at + ttl_s``) it is no longer sent: a site that
    never answered stays pending, as ``Expired`` (halt it again).
    """
    acked = pending = unreachable = rejected = 0
    done = "Resumed" if action.kind == ActionKind.RESUME else "Halted"
    expired = bool(now and action.effective_at and now > action.effective_at + action.ttl_s)
    sites: list[SiteView] = []
    for site in sorted(set(action.targets) | set(deliveries)):
        d = deliveries.get(site)
        if action.kind == ActionKind.LOCAL_HALT:  # the site halted itself: nothing was delivered
            acked += 1
            sites.append(SiteView(site, "Resumed" if action.resumed_at else "Halted"))
        elif d is not None and d.state == "Acked":
            acked += 1
            sites.append(SiteView(site, done))
        elif d is not None and d.state == "Rejected":
            rejected += 1
            sites.append(SiteView(site, "Rejected", d.reason))
        else:
            pending += 1
            if expired:
                sites.append(SiteView(site, "Expired", "the directive expired before this site got it"))
            elif site in reachable:
                sites.append(SiteView(site, "Pending"))
            else:
                unreachable += 1
                sites.append(SiteView(site, "Unreachable"))
    if not action.effective_at:
        state = ActionState.PENDING_APPROVAL
    elif action.kind in (ActionKind.FREEZE, ActionKind.UNFREEZE):
        state = ActionState.FROZEN if action.kind == ActionKind.FREEZE else ActionState.UNFROZEN
    elif action.kind in (ActionKind.HALT, ActionKind.LOCAL_HALT) and action.resumed_at:
        state = ActionState.RESUMED
    elif action.kind == ActionKind.LOCAL_HALT:
        state = ActionState.HALTED
    else:
        settled = pending == unreachable and rejected == 0
        if action.kind == ActionKind.RESUME:
            state = ActionState.RESUMED if settled else ActionState.RESUMING
        else:
            state = ActionState.HALTED if settled else ActionState.HALTING
    return ActionView(state, acked, pending, unreachable, rejected, sites)
