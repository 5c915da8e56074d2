"""What a site checks about a release before it deploys anything, whatever the federation says:
the publisher's signature over the canonical release (with a key the site trusts), that the
directive matches the signed release, and that the artifact's digest is one the site can verify.
"""

from __future__ import annotations

import base64
from typing import Any

from google.protobuf import json_format

from controlplane.api.v1 import release_pb2 as rpb
from controlplane.domain import releases as rel
from operators.agent.backend import WorkloadBackend


async def check_release(payload: dict[str, Any], trusted: set[bytes], backend: WorkloadBackend) -> str | None:
    """The reason to refuse a Deploy payload, or None to go ahead. ``trusted``: the publisher keys
    this site trusts (its policy's, else the federation's set: operators/agent/directive_trust.py)."""
    raw = payload.get("signed_release")
    if not raw:
        return "release: a Deploy must carry a release signed by a publisher this site trusts"
    try:
        signed = json_format.ParseDict(raw, rpb.SignedRelease(), ignore_unknown_fields=True)
    except json_format.ParseError:
        return "release: the signed release is malformed"
    r = signed.release
    key = bytes(signed.publisher_key)
    if key not in trusted:
        return f"release: publisher key {rel.key_id(key)} ({signed.publisher}) is not trusted by this site"
    if not rel.verify(key, bytes(signed.signature), r):
        return f"release: signature by {signed.publisher} does not verify"
    expected = {
        "model": r.model,
        "version": r.version,
        "digest": r.digest,
        "release": r.name,
        "risk_tier": r.risk_tier,
    }
    for field, value in expected.items():
        if payload.get(field, 0 if field == "risk_tier" else "") != value:
            got = payload.get(field)
            return f"release: directive {field} {got!r} differs from the signed release ({value!r})"
    return await backend.verify_artifact(r.digest)


def trusted_keys(encoded: list[str]) -> set[bytes]:
    """Base64 raw Ed25519 keys (as in SitePolicy.trustedPublisherKeys) to the set the policy holds."""
    return {base64.b64decode(k) for k in encoded}
