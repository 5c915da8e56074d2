"""Records to wire messages and back. Kept apart so servicers stay about behaviour."""

from __future__ import annotations

import datetime as dt
from typing import Any

from google.protobuf import json_format
from google.protobuf.timestamp_pb2 import Timestamp

from controlplane.api.v1 import federation_pb2 as fpb
from controlplane.api.v1 import types_pb2 as tpb
from controlplane.domain.records import AuditEvent, DirectiveRecord, DirectiveState, SiteRecord, SiteStatus
from controlplane.services.directive_wire import directive_to_pb, ts

__all__ = ["directive_to_pb", "ts"]

_STATUS: dict[str, tpb.SiteStatus] = {
    SiteStatus.PENDING: tpb.SITE_STATUS_PENDING,
    SiteStatus.READY: tpb.SITE_STATUS_READY,
    SiteStatus.UNREACHABLE: tpb.SITE_STATUS_UNREACHABLE,
    SiteStatus.CORDONED: tpb.SITE_STATUS_CORDONED,
}
_DSTATE: dict[str, tpb.DirectiveState] = {
    DirectiveState.PENDING: tpb.DIRECTIVE_STATE_PENDING,
    DirectiveState.ACKED: tpb.DIRECTIVE_STATE_ACKED,
    DirectiveState.REJECTED: tpb.DIRECTIVE_STATE_REJECTED,
    DirectiveState.FAILED: tpb.DIRECTIVE_STATE_FAILED,
    DirectiveState.CANCELLED: tpb.DIRECTIVE_STATE_CANCELLED,
}
HEALTH_NAMES = {v: k for k, v in tpb.SiteHealth.items()}
_HEALTH_KNOWN = frozenset(tpb.SiteHealth.keys())


def ts_dt(when: dt.datetime) -> Timestamp:
    t = Timestamp()
    t.FromDatetime(when)
    return t


def capacity_to_pb(capacity: dict[str, dict[str, int]]) -> dict[str, tpb.AcceleratorCapacity]:
    return {
        k: tpb.AcceleratorCapacity(total=v.get("total", 0), free=v.get("free", 0))
        for k, v in capacity.items()
    }


def capacity_from_pb(capacity: Any) -> dict[str, dict[str, int]]:
    return {k: {"total": int(v.total), "free": int(v.free)} for k, v in capacity.items()}


def site_to_pb(site: SiteRecord, last_heartbeat: float = 0.0, replica: str = "") -> fpb.Site:
    return fpb.Site(
        site_id=site.site_id,
        country=site.country,
        region=site.region,
        labels=site.labels,
        capacity=capacity_to_pb(site.capacity),
        security_tier=site.security_tier,
        status=_STATUS[site.shown_status],
        last_heartbeat=ts(max(last_heartbeat, site.last_heartbeat)),
        operator_version=site.operator_version,
        certificate_fingerprint=site.certificate_fingerprint,
        certificate_not_after=ts(site.certificate_not_after),
        cordoned=site.cordoned,
        enrolled_at=ts(site.enrolled_at),
        last_applied_sequence=site.last_applied_sequence,
        health=site.health if site.health in _HEALTH_KNOWN else "SITE_HEALTH_UNSPECIFIED",
        deployments=[
            json_format.ParseDict(d, tpb.DeploymentStatus(), ignore_unknown_fields=True)
            for d in site.deployments
        ],
        connected_replica=replica,
    )


def directive_record_to_pb(rec: DirectiveRecord) -> tpb.DirectiveRecord:
    """For people. A record the wire cannot carry (a payload or time out of range, text that is not
    valid Unicode) is shown as Failed with its sequence, so that listing a queue works whatever is
    stored; the link marks such a record Failed when it reaches it."""
    try:
        return tpb.DirectiveRecord(
            site_id=rec.site_id,
            directive=directive_to_pb(rec),
            state=_DSTATE[rec.state],
            reason=rec.reason,
            completed_at=ts(rec.completed_at),
        )
    except Exception as e:  # whatever the stored record holds: never fail the whole list
        shown = tpb.DirectiveRecord(
            site_id=rec.site_id,
            directive=tpb.Directive(sequence=rec.sequence),
            state=tpb.DIRECTIVE_STATE_FAILED,
        )
        try:  # the link's reason when it already marked it Failed; else why it cannot be shown
            shown.reason = rec.reason if rec.state == DirectiveState.FAILED else ""
            shown.directive.id = rec.id
        except Exception:  # e.g. text that is not valid Unicode
            shown.reason = ""
        shown.reason = shown.reason or f"stored record cannot be shown ({type(e).__name__})"
        return shown


def audit_to_pb(e: AuditEvent, leaf: bytes = b"") -> fpb.AuditEvent:
    return fpb.AuditEvent(
        sequence=e.sequence,
        time=ts(e.time),
        actor=e.actor,
        action=e.action,
        object=e.object,
        outcome=e.outcome,
        reason=e.reason,
        details=e.details,
        hash=e.hash,
        prev_hash=e.prev_hash,
        leaf=leaf,
    )


def message_to_dict(msg: Any) -> dict[str, Any]:
    return json_format.MessageToDict(msg, preserving_proto_field_name=True)
