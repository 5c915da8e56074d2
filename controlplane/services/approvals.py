"""Approvals by people, checked against the roster (controlplane/domain/roster.py) before the
federation records them. The sites check the same signatures again themselves
(operators/agent/approvals.py); this check is for a clear, early, audited refusal.

An approver is a *roster person*, not a certificate: a certificate minted for a name that is not in
the roster (``users issue --name admin-alt --role admin``) approves nothing, and a resume approval
counts only with a signature by the approval key the roster lists for the certificate's name.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from controlplane.domain import roster as rd
from controlplane.errors import FailedPrecondition, InvalidArgument, PermissionDenied, StargateError
from controlplane.pki.identity import Identity


def roster_admin(caller: Identity, roster: rd.Roster) -> rd.Person:
    """The roster admin ``caller``'s certificate names, or PermissionDenied."""
    person = roster.person(caller.name)
    if person is None:
        raise PermissionDenied(
            f"{caller.name} is not a person of roster v{roster.version}: a certificate alone does not "
            "make an approver (add them with a roster change)"
        )
    if person.role != "admin":
        raise PermissionDenied(f"{caller.name} is a {person.role} in roster v{roster.version}, not an admin")
    return person


def signed(
    caller: Identity,
    roster: rd.Roster,
    statement: bytes,
    approval: rd.Signature | None,
    prior: Sequence[dict[str, Any]] = (),
) -> dict[str, str]:
    """Check ``caller``'s signed approval of ``statement`` (with the ``prior`` ones already stored)
    and return it as stored; a StargateError naming the reason otherwise."""
    roster_admin(caller, roster)
    if approval is None or not approval.signature:
        raise InvalidArgument(
            "approval",
            "a signed approval is required: stargatectl signs it with the approval-key in your config",
        )
    if approval.person != caller.name:
        raise PermissionDenied(
            f"approval signed as {approval.person[:64]!r}, but the certificate names {caller.name}"
        )
    try:
        earlier = rd.signatures_from(prior)
    except (KeyError, ValueError) as e:
        raise FailedPrecondition("the stored approvals of this action are unreadable") from e
    t = rd.tally(roster, statement, [*earlier, approval])
    if t.problem:
        err: StargateError = (
            FailedPrecondition(f"approval: {t.problem}")
            if "twice" in t.problem
            else PermissionDenied(f"approval: {t.problem}")
        )
        raise err
    return {"person": approval.person, "signature": approval.signature.hex()}
