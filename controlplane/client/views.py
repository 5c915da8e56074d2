"""Wire messages to the plain dicts that -o json/yaml print (stable, documented field names)."""

from __future__ import annotations

import base64
from typing import Any

from google.protobuf import json_format

from controlplane.api import directive_kinds
from controlplane.api.v1 import federation_pb2 as fpb
from controlplane.api.v1 import types_pb2 as tpb
from controlplane.client.render import iso

STATUS = {
    tpb.SITE_STATUS_PENDING: "Pending",
    tpb.SITE_STATUS_READY: "Ready",
    tpb.SITE_STATUS_UNREACHABLE: "Unreachable",
    tpb.SITE_STATUS_CORDONED: "Cordoned",
}


def site(s: fpb.Site) -> dict[str, Any]:
    return {
        "id": s.site_id,
        "country": s.country,
        "region": s.region,
        "status": STATUS.get(s.status, "Unknown"),
        "last_heartbeat": iso(s.last_heartbeat) if s.HasField("last_heartbeat") else "",
        "capacity": {k: {"total": v.total, "free": v.free} for k, v in sorted(s.capacity.items())},
        "labels": dict(sorted(s.labels.items())),
        "security_tier": s.security_tier,
        "cordoned": s.cordoned,
        "health": tpb.SiteHealth.Name(s.health).removeprefix("SITE_HEALTH_").title() if s.health else "",
        "operator_version": s.operator_version,
        "certificate_fingerprint": s.certificate_fingerprint,
        "certificate_not_after": iso(s.certificate_not_after),
        "enrolled_at": iso(s.enrolled_at),
        "last_applied_sequence": s.last_applied_sequence,
        "deployments": [
            json_format.MessageToDict(d, preserving_proto_field_name=True) for d in s.deployments
        ],
    }


def directive(d: tpb.Directive) -> dict[str, Any]:
    out: dict[str, Any] = {
        "sequence": d.sequence,
        "id": d.id,
        "kind": directive_kinds.name_of(d.kind),
        "issued_at": iso(d.issued_at),
        "expires_at": iso(d.expires_at),
        "issuer": d.issuer,
    }
    which = d.WhichOneof("payload")
    if which:
        out["payload"] = json_format.MessageToDict(getattr(d, which), preserving_proto_field_name=True)
    return out


def directive_record(r: tpb.DirectiveRecord) -> dict[str, Any]:
    return {
        "site": r.site_id,
        **directive(r.directive),
        "state": tpb.DirectiveState.Name(r.state).removeprefix("DIRECTIVE_STATE_").title(),
        "reason": r.reason,
        "completed_at": iso(r.completed_at),
    }


def audit_event(e: fpb.AuditEvent) -> dict[str, Any]:
    return {
        "sequence": e.sequence,
        "time": iso(e.time),
        "actor": e.actor,
        "action": e.action,
        "object": e.object,
        "outcome": e.outcome,
        "reason": e.reason,
        "details": dict(sorted(e.details.items())),
        "hash": e.hash,
        "prev_hash": e.prev_hash,
        # The stored bytes: the Merkle leaf's data (stargatectl audit verify checks it).
        "leaf": base64.b64encode(e.leaf).decode(),
    }
