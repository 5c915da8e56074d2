"""The audit hash chain: each event's hash covers the previous hash and the event's content."""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Iterable

from controlplane.domain.records import AuditEvent


def event_hash(event: AuditEvent) -> str:
    body = event.to_dict()
    body.pop("hash")
    canonical = json.dumps(body, separators=(",", ":"), sort_keys=True).encode()
    return hashlib.sha256(event.prev_hash.encode() + b"\n" + canonical).hexdigest()


def seal(event: AuditEvent, prev_hash: str) -> AuditEvent:
    unsealed = event.replace(prev_hash=prev_hash, hash="")
    return unsealed.replace(hash=event_hash(unsealed))


def verify_chain(events: Iterable[AuditEvent], prev_hash: str | None = None) -> bool:
    """True when every event's hash matches its content and links to the one before it.

    ``prev_hash`` is the hash before the first event (None: take the first event's word for it,
    as when verifying a page that does not start at sequence 1).
    """
    expected_prev = prev_hash
    for e in events:
        if expected_prev is not None and not hmac.compare_digest(e.prev_hash, expected_prev):
            return False
        if not hmac.compare_digest(e.hash, event_hash(e)):
            return False
        expected_prev = e.hash
    return True
