"""Local policy: the site may always refuse. A refusal is a Reject with its reason, never silence."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from controlplane.domain.jobs import JobsPolicy

__all__ = ["JobsPolicy", "LocalPolicy"]


@dataclass
class LocalPolicy:
    #: Risk tiers the site accepts; empty = all.
    accepted_risk_tiers: set[int] = field(default_factory=set)
    #: Share of each accelerator type the federation may use (0..1).
    federation_capacity_share: float = 1.0
    #: Fail-closed: risk tier -> seconds the site tolerates without a fresh signed beacon from the
    #: federation before it halts that tier's releases locally (operators/agent/safety.py).
    #: A tier not listed never fails closed.
    link_loss_tolerance: dict[int, float] = field(default_factory=dict)
    #: Namespaces federation-owned workloads may be written to; empty = wherever the site's
    #: operator is allowed to write (the Kubernetes operator's own setting).
    federation_namespaces: set[str] = field(default_factory=set)
    #: Federation deploys are recorded but held until a site operator approves each one.
    require_local_approval: bool = False
    #: When set, every deploy is refused with this reason: the site's policy could not be read
    #: (invalid, or ambiguous), and a site that cannot tell what it allows must not guess.
    refusal: str = ""
    #: Raw Ed25519 publisher keys the site trusts, and only those; empty = the publishers the
    #: federation registered, as received at enrollment and in signed Publishers directives.
    #: Either way a Deploy must carry a release signed by a trusted publisher.
    trusted_publisher_keys: set[bytes] = field(default_factory=set)
    #: Witness verifier keys (C2SP vkeys) the site trusts to cosign the log's checkpoints.
    witnesses: list[str] = field(default_factory=list)
    #: Cosignatures of those witnesses a Deploy's checkpoint needs (0: the log's signature alone).
    min_witnesses: int = 0
    #: What localisation jobs may do here (every RunJob is checked against it).
    jobs: JobsPolicy = field(default_factory=JobsPolicy)

    def summary(self) -> dict[str, object]:
        """What of this policy goes upstream in every Hello (PolicySummary's fields by name), so that
        placement skips a site that would refuse (the site still checks every directive). Today only
        ``jobs``: the risk tiers and capacity share are not sent, so that a Deploy the site's policy
        refuses is refused *by the site*, with its reason, as before localisation jobs existed."""
        return {"jobs": self.jobs.summary()}

    def check_deploy(
        self,
        payload: dict[str, Any],
        free: dict[str, int],
        *,
        total: dict[str, int] | None = None,
        federation_used: dict[str, int] | None = None,
    ) -> str | None:
        """The reason to refuse ``payload``, or None to accept.

        ``total`` (all accelerators by type) and ``federation_used`` (what federation workloads
        other than this one hold) enable the capacity-share check; without them only the free
        capacity is checked."""
        if self.refusal:
            return self.refusal
        tier = int(payload.get("risk_tier", 0))
        if tier and self.accepted_risk_tiers and tier not in self.accepted_risk_tiers:
            return f"policy: risk tier {tier} not accepted (accepted: {sorted(self.accepted_risk_tiers)})"
        accel = payload.get("accelerator", "")
        need = int(payload.get("replicas", 1)) * int(payload.get("accelerators_per_replica", 0))
        if accel and need and total is not None and self.federation_capacity_share < 1.0:
            budget = int(total.get(accel, 0) * self.federation_capacity_share)
            left = max(0, budget - (federation_used or {}).get(accel, 0))
            if need > left:
                return (
                    f"policy: needs {need} {accel}, the federation's share "
                    f"({self.federation_capacity_share:g} of {total.get(accel, 0)}) leaves {left}"
                )
        if accel and need and need > free.get(accel, 0):
            return f"capacity: needs {need} {accel}, {free.get(accel, 0)} free for the federation"
        return None

    def allowed_namespaces(self, candidates: Iterable[str]) -> list[str]:
        """The candidates (in order) the federation may write to under this policy."""
        return [n for n in candidates if not self.federation_namespaces or n in self.federation_namespaces]
