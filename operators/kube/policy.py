"""SitePolicy -> the agent's LocalPolicy.

One SitePolicy per site (like FederationLink). None: the defaults (every risk tier, the whole
capacity, the operator's namespaces, no approval). More than one, or one that cannot be read:
every deploy is refused with a reason that says so. A site that cannot tell what it allows must
not guess in the federation's favour.

``trustedPublisherKeys`` and ``linkLossTolerance`` go to the agent's safety lane (signed releases,
fail-closed halts without fresh beacons). ``acceptedExportClasses`` is not enforced: directives
carry no export class yet.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

from operators.agent.policy import LocalPolicy


class PolicyError(ValueError):
    pass


def from_spec(spec: dict[str, Any]) -> LocalPolicy:
    """Raises PolicyError, naming the field, for what the CRD schema would have refused."""
    tiers = spec.get("acceptedRiskTiers", [])
    if not isinstance(tiers, list) or not all(
        isinstance(t, int) and not isinstance(t, bool) and 1 <= t <= 4 for t in tiers
    ):
        raise PolicyError("spec.acceptedRiskTiers: must be a list of integers 1..4")
    share = spec.get("federationCapacityShare", 1.0)
    if isinstance(share, bool) or not isinstance(share, int | float) or not 0 <= share <= 1:
        raise PolicyError("spec.federationCapacityShare: must be a number between 0 and 1")
    namespaces = spec.get("federationNamespaces", [])
    if not isinstance(namespaces, list) or not all(isinstance(n, str) and n for n in namespaces):
        raise PolicyError("spec.federationNamespaces: must be a list of namespace names")
    approval = spec.get("requireLocalApproval", False)
    if not isinstance(approval, bool):
        raise PolicyError("spec.requireLocalApproval: must be true or false")
    tolerance: dict[int, float] = {}
    for item in spec.get("linkLossTolerance") or []:
        tier, seconds = (item or {}).get("riskTier"), (item or {}).get("seconds")
        if not isinstance(tier, int) or not 1 <= tier <= 4 or not isinstance(seconds, int) or seconds < 0:
            raise PolicyError("spec.linkLossTolerance: items need riskTier 1..4 and seconds >= 0")
        tolerance[tier] = float(seconds)
    keys: set[bytes] = set()
    for item in spec.get("trustedPublisherKeys") or []:
        try:
            raw = base64.b64decode(str((item or {}).get("publicKey", "")), validate=True)
        except (binascii.Error, ValueError):
            raw = b""
        if len(raw) != 32:
            raise PolicyError(
                f"spec.trustedPublisherKeys: {(item or {}).get('name')!r} is not a raw Ed25519 key"
            )
        keys.add(raw)
    return LocalPolicy(
        accepted_risk_tiers=set(tiers),
        federation_capacity_share=float(share),
        federation_namespaces=set(namespaces),
        require_local_approval=approval,
        link_loss_tolerance=tolerance,
        trusted_publisher_keys=keys,
    )


def effective(policies: dict[str, dict[str, Any]]) -> tuple[LocalPolicy, dict[str, str]]:
    """The policy in force given all SitePolicy specs by name, and a problem per name ("" = fine)."""
    problems: dict[str, str] = {}
    parsed: dict[str, LocalPolicy] = {}
    for name, spec in sorted(policies.items()):
        try:
            parsed[name] = from_spec(spec)
            problems[name] = ""
        except PolicyError as e:
            problems[name] = str(e)
    if len(policies) > 1:
        names = ", ".join(sorted(policies))
        reason = f"policy: more than one SitePolicy ({names}); keep exactly one"
        return LocalPolicy(refusal=reason), {n: reason.removeprefix("policy: ") for n in policies}
    for name, problem in problems.items():
        if problem:
            return LocalPolicy(refusal=f"policy: SitePolicy {name} is invalid: {problem}"), problems
    return (next(iter(parsed.values())) if parsed else LocalPolicy()), problems
