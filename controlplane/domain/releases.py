"""Model releases: validation, the canonical form a publisher signs, Ed25519 sign and verify.

The canonical form is sorted-key, compact JSON of the release's camelCase fields with country and
locale lists sorted, prefixed by a domain-separation tag, so that a signature over a release can
never be replayed as a signature over anything else. The control plane and every site compute it
with this one function.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Sequence
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from controlplane.domain.validation import (
    validate_country,
    validate_digest,
    validate_dns_label,
    validate_dns_subdomain,
)
from controlplane.errors import InvalidArgument

SIGNING_TAG = b"stargate.federation.v1/ModelRelease\n"
_VERSION = re.compile(r"[0-9A-Za-z][0-9A-Za-z.+_-]{0,63}")
_LOCALE = re.compile(r"[a-z]{2,3}(-[A-Z]{2})?")


def is_locale(value: str) -> bool:
    """Whether ``value`` is a locale a release may carry (fr, fr-FR)."""
    return bool(_LOCALE.fullmatch(value))


_ACCEL = re.compile(r"[a-z0-9][a-z0-9-]{0,31}")


def release_dict(r: Any) -> dict[str, Any]:
    """The canonical dict of a ModelRelease message (or of an object with the same attributes).
    ``variantOf`` is in it only when set, so every release signed before it existed still verifies."""
    out = {
        "name": r.name,
        "model": r.model,
        "version": r.version,
        "digest": r.digest,
        "riskTier": int(r.risk_tier),
        "export": {
            "allowCountries": sorted(r.export.allow_countries),
            "denyCountries": sorted(r.export.deny_countries),
        },
        "resources": {
            "accelerator": r.resources.accelerator,
            "acceleratorsPerReplica": int(r.resources.accelerators_per_replica),
        },
        "locales": sorted(r.locales),
    }
    if getattr(r, "variant_of", ""):
        out["variantOf"] = r.variant_of
    return out


def canonical_bytes(r: Any) -> bytes:
    body = json.dumps(release_dict(r), sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return SIGNING_TAG + body.encode()


def key_id(public_key: bytes) -> str:
    return "ed25519:" + hashlib.sha256(public_key).hexdigest()[:16]


def sign(private_key: Ed25519PrivateKey, r: Any) -> bytes:
    return private_key.sign(canonical_bytes(r))


def verify(public_key: bytes, signature: bytes, r: Any) -> bool:
    """Whether ``signature`` is the holder of ``public_key`` signing release ``r``. Never raises."""
    try:
        Ed25519PublicKey.from_public_bytes(public_key).verify(signature, canonical_bytes(r))
    except (InvalidSignature, ValueError):
        return False
    return True


def validate_public_key(raw: bytes, field: str = "public_key") -> bytes:
    if len(raw) != 32:
        raise InvalidArgument(field, f"must be a raw 32-byte Ed25519 public key, got {len(raw)} bytes")
    return raw


def validate_release(r: Any, prefix: str = "spec.") -> None:
    """Check every field of a ModelRelease; errors name the field (camelCase, as in manifests)."""
    validate_dns_subdomain("metadata.name", r.name)
    validate_dns_label(prefix + "model", r.model)
    if not _VERSION.fullmatch(r.version):
        raise InvalidArgument(prefix + "version", "is required: 1-64 of letters, digits, '.', '+', '_', '-'")
    validate_digest(r.digest, prefix + "digest")
    if not 1 <= r.risk_tier <= 4:
        raise InvalidArgument(prefix + "riskTier", f"must be 1 (low) .. 4 (frontier), got {r.risk_tier}")
    if r.export.allow_countries and r.export.deny_countries:
        raise InvalidArgument(prefix + "export", "set allowCountries or denyCountries, not both")
    for i, cc in enumerate(r.export.allow_countries):
        validate_country(cc, f"{prefix}export.allowCountries[{i}]")
    for i, cc in enumerate(r.export.deny_countries):
        validate_country(cc, f"{prefix}export.denyCountries[{i}]")
    if r.resources.accelerator and not _ACCEL.fullmatch(r.resources.accelerator):
        raise InvalidArgument(prefix + "resources.accelerator", "must be a short lowercase name, e.g. h100")
    if not 0 <= r.resources.accelerators_per_replica <= 64:
        raise InvalidArgument(prefix + "resources.acceleratorsPerReplica", "must be 0..64")
    for i, loc in enumerate(r.locales):
        if not _LOCALE.fullmatch(loc):
            raise InvalidArgument(f"{prefix}locales[{i}]", f"{loc[:16]!r} must look like fr-FR")
    if getattr(r, "variant_of", ""):
        validate_dns_subdomain(prefix + "variantOf", r.variant_of)


def export_allows(allow: Sequence[str], deny: Sequence[str], country: str) -> str | None:
    """The one export rule: the reason it refuses ``country``, or None when it allows it.
    ``allow`` empty: every country not denied."""
    if allow and country not in allow:
        return f"export: {country} not in allowCountries {list(allow)}"
    if country in deny:
        return f"export: {country} in denyCountries"
    return None
