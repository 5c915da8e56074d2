"""Stored records read defensively: what a reader does with one it cannot use. Pure, no I/O.

The store is shared (several replicas, older and newer versions, operators with etcd access), so a
record may be unreadable JSON, miss fields, carry the wrong types or disagree with its own key. A
reader must never let such a record stop what comes after it: a directive queue goes on with the
next directive, the safety lane with the next sequence (a lane record with its sequence differing
from its key once held every later halt Pending until a restart). These functions say *what* is wrong (a
short, constant-shaped reason for logs, the audit log and ``directives list``); callers decide what
to do (mark it failed, skip it).
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass
from typing import Any

from controlplane.domain.limits import MAX_TIMESTAMP_S
from controlplane.domain.records import DirectiveRecord, DirectiveState
from controlplane.domain.safety import SafetyDirectiveRecord, parse_scope
from controlplane.errors import InvalidArgument

_STATES = frozenset(
    {
        DirectiveState.PENDING,
        DirectiveState.ACKED,
        DirectiveState.REJECTED,
        DirectiveState.FAILED,
        DirectiveState.CANCELLED,
    }
)


class Defect(ValueError):
    """A stored record that cannot be used; ``str(e)`` is the reason."""


@dataclass(frozen=True)
class UnreadableDirective(DirectiveRecord):
    """Stands in for a stored directive that cannot be used: shown as Failed, never sent. The link
    that meets one marks the stored record Failed with ``reason`` (services/directives.py: fail)."""


def digest(raw: bytes) -> str:
    return hashlib.sha256(raw).hexdigest()


def _need(data: dict[str, Any], name: str, kind: type | tuple[type, ...]) -> Any:
    if name not in data:
        raise Defect(f"field {name!r} is missing")
    value = data[name]
    if isinstance(value, bool) or not isinstance(value, kind):
        raise Defect(f"field {name!r} has the wrong type")
    return value


def _instant(data: dict[str, Any], name: str, *, required: bool = True) -> float:
    if not required and name not in data:
        return 0.0
    value = float(_need(data, name, (int, float)))
    if not math.isfinite(value) or not 0 <= value <= MAX_TIMESTAMP_S:
        raise Defect(f"field {name!r} is not a time between 1970 and 9999")
    return value


def json_object(raw: bytes) -> dict[str, Any]:
    """The JSON object of a stored record, or Defect (bad UTF-8, bad JSON, not an object)."""
    try:
        data = json.loads(raw)
    except (ValueError, RecursionError) as e:  # UnicodeDecodeError is a ValueError
        raise Defect("not JSON") from e
    if not isinstance(data, dict):
        raise Defect("not a JSON object")
    return data


def directive(site_id: str, sequence: int, raw: bytes) -> DirectiveRecord:
    """The directive stored under ``directives/<site_id>/<sequence>``; Defect when it cannot be used
    (the key is authoritative: a record naming another site or sequence is a defect too)."""
    data = json_object(raw)
    if _need(data, "site_id", str) != site_id:
        raise Defect("record names another site than its key")
    if _need(data, "sequence", int) != sequence:
        raise Defect(f"record names sequence {data['sequence']}, its key {sequence}")
    _need(data, "id", str)
    _need(data, "kind", str)
    _need(data, "payload", dict)
    _need(data, "issuer", str)
    _instant(data, "issued_at")
    _instant(data, "expires_at")
    _instant(data, "completed_at", required=False)
    if data.get("state", DirectiveState.PENDING) not in _STATES:
        raise Defect("unknown state")
    for name in ("reason", "key_id", "signature"):
        if not isinstance(data.get(name, ""), str):
            raise Defect(f"field {name!r} has the wrong type")
    try:
        return DirectiveRecord.from_json(raw)
    except (TypeError, ValueError) as e:
        raise Defect("fields do not match a directive") from e


def directive_or_placeholder(site_id: str, sequence: int, raw: bytes) -> DirectiveRecord:
    """``directive(...)``, or an UnreadableDirective (Failed, with the reason) in its place."""
    try:
        return directive(site_id, sequence, raw)
    except Defect as e:
        return placeholder(site_id, sequence, raw, str(e))


def placeholder(site_id: str, sequence: int, raw: bytes, why: str) -> UnreadableDirective:
    return UnreadableDirective(
        site_id=site_id,
        sequence=sequence,
        id="",
        kind="",
        payload={},
        issued_at=0.0,
        expires_at=0.0,
        issuer="",
        state=DirectiveState.FAILED,
        reason=f"unusable stored record ({why}; sha256 {digest(raw)[:16]})",
    )


#: Ed25519 signatures are 64 bytes: 128 hex digits.
_SIGNATURE_HEX = 128
_HEX = frozenset("0123456789abcdef")


def lane_directive(sequence: int, raw: bytes) -> SafetyDirectiveRecord:
    """The safety-lane record stored under ``lane/<sequence>``; Defect when it cannot be sent as it
    is (the key is authoritative: a record claiming another sequence is a defect, so that it can
    neither leave a gap at its key nor take the place of the record that owns the other one)."""
    data = json_object(raw)
    if _need(data, "safety_sequence", int) != sequence:
        raise Defect(f"record names safety sequence {data['safety_sequence']}, its key {sequence}")
    kind = _need(data, "kind", str)
    if kind not in ("Halt", "Resume"):
        raise Defect("kind is neither Halt nor Resume")
    for name in ("id", "scope", "issuer", "key_id"):
        _need(data, name, str)
    _instant(data, "issued_at")
    _instant(data, "expires_at")
    signature = _need(data, "signature", str)
    if len(signature) != _SIGNATURE_HEX or not set(signature) <= _HEX:
        raise Defect("signature is not 64 bytes of lowercase hex")
    try:
        parse_scope(data["scope"])
    except InvalidArgument as e:
        raise Defect("scope is malformed") from e
    payload = _need(data, "payload", dict)
    for name in ("halt_id", "release", "scope", "reason") + (("resume_id",) if kind == "Resume" else ()):
        _need(payload, name, str)
    if payload["scope"] != data["scope"]:
        raise Defect("payload scope differs from the record's")
    approvers = payload.get("approvers", [])
    if not isinstance(approvers, list) or not all(isinstance(a, str) for a in approvers):
        raise Defect("payload approvers are not a list of names")
    approvals = data.get("approvals", [])
    for a in approvals if isinstance(approvals, list) else [None]:
        sig = a.get("signature") if isinstance(a, dict) else None
        person = a.get("person") if isinstance(a, dict) else None
        if not isinstance(person, str) or not isinstance(sig, str) or len(sig) != _SIGNATURE_HEX:
            raise Defect("approvals are not persons with 64-byte hex signatures")
        if not set(sig) <= _HEX:
            raise Defect("approvals are not persons with 64-byte hex signatures")
    try:
        return SafetyDirectiveRecord.from_json(raw)
    except (TypeError, ValueError) as e:
        raise Defect("fields do not match a safety directive") from e
