"""Validation of directive payloads before they are queued (the site validates again)."""

from __future__ import annotations

import re
from typing import Any

from controlplane.domain.validation import validate_digest, validate_dns_label
from controlplane.errors import InvalidArgument

_VERSION = re.compile(r"^[0-9A-Za-z][0-9A-Za-z.+_-]{0,63}$")
_LOCALE = re.compile(r"^[a-z]{2,3}(-[A-Z]{2})?$")
_ACCEL = re.compile(r"^[a-z0-9][a-z0-9-]{0,31}$")
MAX_REPLICAS = 10_000


def deploy_payload(p: dict[str, Any], prefix: str = "deploy.") -> dict[str, Any]:
    """Check a Deploy payload (proto field names) and return it with defaults filled in."""
    validate_dns_label(prefix + "deployment_name", p.get("deployment_name", ""))
    validate_dns_label(prefix + "model", p.get("model", ""))
    if not _VERSION.fullmatch(p.get("version", "")):
        raise InvalidArgument(prefix + "version", "is required: 1-64 of letters, digits, '.', '+', '_', '-'")
    validate_digest(p.get("digest", ""), prefix + "digest")
    replicas = int(p.get("replicas", 1))
    if not 0 <= replicas <= MAX_REPLICAS:
        raise InvalidArgument(prefix + "replicas", f"must be 0..{MAX_REPLICAS}")
    accel = p.get("accelerator", "")
    if accel and not _ACCEL.fullmatch(accel):
        raise InvalidArgument(prefix + "accelerator", "must be a short lowercase name, e.g. h100")
    per = int(p.get("accelerators_per_replica", 0))
    if not 0 <= per <= 64:
        raise InvalidArgument(prefix + "accelerators_per_replica", "must be 0..64")
    locale = p.get("locale", "")
    if locale and not _LOCALE.fullmatch(locale):
        raise InvalidArgument(prefix + "locale", "must look like fr-FR")
    tier = int(p.get("risk_tier", 0))
    if not 0 <= tier <= 4:
        raise InvalidArgument(prefix + "risk_tier", "must be 0..4")
    return {**p, "replicas": replicas, "accelerators_per_replica": per, "risk_tier": tier}
