"""Signing approvals on the person's own machine with the approval key named in their config
(``approval-key``). What is signed is built here from what the federation shows about the action
(controlplane/domain/roster.py): the person signs what they see, and every site checks the
signature against its own pinned roster."""

from __future__ import annotations

from controlplane.api.v1 import safety_pb2 as xpb
from controlplane.client.config import Context
from controlplane.client.federation import FederationClient
from controlplane.domain import roster as rd
from controlplane.errors import InvalidArgument
from controlplane.pki import approval_key
from controlplane.pki.identity import identity_from_certificate
from controlplane.pki.keys import load_certificate


def sign(ctx: Context, statement: bytes) -> xpb.PersonApproval:
    if ctx.approval_key is None:
        raise InvalidArgument(
            "approval-key",
            "no approval key in this config (make one with `stargatectl keys create --out K` and set "
            "users[].user.approval-key)",
        )
    key = approval_key.load_private(ctx.approval_key)
    person = identity_from_certificate(load_certificate(ctx.cert_file)).name
    return xpb.PersonApproval(person=person, signature=key.sign(statement))


async def for_resume(c: FederationClient, ctx: Context, halt_id: str) -> xpb.PersonApproval:
    """The signed approval of resuming ``halt_id`` (its release and scope as the federation shows)."""
    halt = (await c.call("GetSafetyAction", xpb.GetSafetyActionRequest(id=halt_id))).action
    return sign(ctx, rd.resume_statement(halt_id=halt.id, release=halt.release, scope=halt.scope))


async def for_action(c: FederationClient, ctx: Context, action_id: str) -> xpb.PersonApproval | None:
    """The signed approval of a pending action; None for kinds the federation checks by role."""
    action = (await c.call("GetSafetyAction", xpb.GetSafetyActionRequest(id=action_id))).action
    if action.kind != xpb.SAFETY_ACTION_KIND_RESUME:
        return None
    return sign(
        ctx, rd.resume_statement(halt_id=action.related_id, release=action.release, scope=action.scope)
    )
