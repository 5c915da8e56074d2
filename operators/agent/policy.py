"""Local policy: the site may always refuse. A refusal is a Reject with its reason, never silence."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class LocalPolicy:
    #: Risk tiers the site accepts; empty = all.
    accepted_risk_tiers: set[int] = field(default_factory=set)
    #: Share of each accelerator type the federation may use (0..1).
    federation_capacity_share: float = 1.0

    def check_deploy(self, payload: dict[str, Any], free: dict[str, int]) -> str | None:
        """The reason to refuse ``payload``, or None to accept."""
        tier = int(payload.get("risk_tier", 0))
        if tier and self.accepted_risk_tiers and tier not in self.accepted_risk_tiers:
            return f"policy: risk tier {tier} not accepted (accepted: {sorted(self.accepted_risk_tiers)})"
        accel = payload.get("accelerator", "")
        need = int(payload.get("replicas", 1)) * int(payload.get("accelerators_per_replica", 0))
        if accel and need and need > free.get(accel, 0):
            return f"capacity: needs {need} {accel}, {free.get(accel, 0)} free for the federation"
        return None
