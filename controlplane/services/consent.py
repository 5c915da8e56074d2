"""Who may consent for a country: the one check behind rollout approvals and job approvals.

A steward consents only for their own country; an admin only when federation policy lets admins
approve (off by default: the country's own steward decides). A refusal is audited with the
caller's verified identity before it is raised, so a steward of another country trying is on
record.
"""

from __future__ import annotations

from controlplane.domain.validation import validate_country
from controlplane.errors import PermissionDenied
from controlplane.pki.identity import Identity, Role
from controlplane.services.audit import AuditLog, Entry


async def check_approver(
    audit: AuditLog, caller: Identity, action: str, obj: str, country: str, *, admin_may_approve: bool
) -> None:
    """Refuse (PermissionDenied, audited as ``action`` on ``obj``, outcome denied) a caller who
    may not consent for ``country``."""
    validate_country(country)

    async def refuse(public: str, why: str) -> None:
        await audit.record(Entry(caller.spiffe_id, action, obj, "denied", why))
        raise PermissionDenied(public)

    if caller.role is Role.STEWARD and caller.country != country:
        await refuse(
            f"country: a steward of {caller.country} cannot approve for {country}",
            f"steward of {caller.country} cannot approve for {country}",
        )
    if caller.role is Role.ADMIN and not admin_may_approve:
        await refuse(
            "only the country's steward may approve (federation policy)",
            "admin approval is disabled by federation policy",
        )
    if caller.role not in (Role.STEWARD, Role.ADMIN):
        await refuse(f"role {caller.role.value} may not approve", f"role {caller.role.value} may not approve")
