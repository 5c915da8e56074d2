"""Who is calling, and may they: identities come only from the TLS-verified client certificate.

gRPC has already verified the chain to the federation CA and the validity period during the
handshake (no certificate, a foreign CA or an expired certificate never reaches this code). Here we
read the SPIFFE id and role out of the verified certificate and check them against the per-rpc
role table.
"""

from __future__ import annotations

from collections import OrderedDict

import grpc
from cryptography import x509

from controlplane.errors import PermissionDenied, Unauthenticated
from controlplane.pki.identity import Identity, Role, identity_from_certificate

_ANY_PERSON = frozenset({Role.ADMIN, Role.STEWARD, Role.AUDITOR})
_ADMIN = frozenset({Role.ADMIN})
_READERS = frozenset({Role.ADMIN, Role.AUDITOR, Role.STEWARD})

#: The one table of who may call what. A method missing here is denied to everyone.
ROLES: dict[str, frozenset[Role]] = {
    "CreateJoinToken": _ADMIN,
    "ListSites": _ANY_PERSON,
    "GetSite": _ANY_PERSON,
    "CordonSite": _ADMIN,
    "UncordonSite": _ADMIN,
    "Deploy": _ADMIN,
    "Undeploy": _ADMIN,
    "ListDirectives": _READERS,
    "CancelDirective": _ADMIN,
    "IssueUserCertificate": _ADMIN,
    "GetRoster": _ANY_PERSON,
    "ApplyRoster": _ADMIN,
    "ListAuditEvents": frozenset({Role.ADMIN, Role.AUDITOR}),
    "GetStatus": _ANY_PERSON,
    "WhoAmI": _ANY_PERSON,
    "AddPublisher": _ADMIN,
    "ListPublishers": _ANY_PERSON,
    "CreateRelease": _ADMIN,
    "GetRelease": _ANY_PERSON,
    "ListReleases": _ANY_PERSON,
    "PlanRollout": _ANY_PERSON,
    "CreateRollout": _ADMIN,
    "GetRollout": _ANY_PERSON,
    "Watch": _ANY_PERSON,  # and the Get call of the watched kind (server/watch_servicer.py)
    "ListRollouts": _ANY_PERSON,
    "UpdateRollout": _ADMIN,
    "DeleteRollout": _ADMIN,
    "DeleteRelease": _ADMIN,
    # The service checks the steward's country, and whether admins may approve (off by default).
    "ApproveRollout": frozenset({Role.ADMIN, Role.STEWARD}),
    # Localisation jobs (docs/localisation.md): the service checks the steward's country.
    "ListDatasets": _READERS,
    "CreateJob": _ADMIN,
    "GetJob": _READERS,
    "ListJobs": _READERS,
    "ApproveJob": frozenset({Role.ADMIN, Role.STEWARD}),
    "CancelJob": _ADMIN,
    # Only the variant's data country's steward (the service refuses every admin).
    "ApproveVariantExport": frozenset({Role.ADMIN, Role.STEWARD}),
    "Connect": frozenset({Role.SITE}),
    "RenewCertificate": frozenset({Role.SITE}),
    # Safety controls (docs/safety.md); the service also refuses a non-admin approver.
    "Halt": _ADMIN,
    "Resume": _ADMIN,
    "Freeze": _ADMIN,
    "Unfreeze": _ADMIN,
    "ApproveSafetyAction": _ADMIN,
    "GetSafetyAction": _ANY_PERSON,
    "ListSafetyActions": _ANY_PERSON,
    "ReportIncident": frozenset({Role.SITE}),
    # The transparency log (docs/security.md): proofs for anyone who verifies; a cosignature
    # authenticates itself with its witness key, so any person's certificate may carry one.
    "GetLogInfo": _READERS,
    "GetCheckpoint": _READERS,
    "ListCheckpoints": _READERS,
    "GetInclusionProof": _READERS,
    "GetConsistencyProof": _READERS,
    "AddCosignature": _READERS,
    "ListWitnesses": _READERS,
    "AddWitness": _ADMIN,
    "RemoveWitness": _ADMIN,
}

# Parsing a PEM costs ~60 us; links and CLIs reuse one certificate for many calls.
_CACHE: OrderedDict[bytes, Identity] = OrderedDict()
_CACHE_SIZE = 4096


def peer_identity(context: grpc.aio.ServicerContext, trust_domain: str) -> Identity:
    auth = context.auth_context()
    pems = auth.get("x509_pem_cert")
    if not pems:
        raise Unauthenticated()
    pem = pems[0]
    identity = _CACHE.get(pem)
    if identity is None:
        try:
            cert = x509.load_pem_x509_certificate(pem)
        except ValueError as e:
            raise Unauthenticated("client certificate could not be parsed") from e
        identity = identity_from_certificate(cert)
        _CACHE[pem] = identity
        if len(_CACHE) > _CACHE_SIZE:
            _CACHE.popitem(last=False)
    else:
        _CACHE.move_to_end(pem)
    if identity.trust_domain != trust_domain:
        raise Unauthenticated("certificate is from another trust domain")
    return identity


def authorize(identity: Identity, method: str) -> None:
    allowed = ROLES.get(method, frozenset())
    if identity.role not in allowed:
        raise PermissionDenied(f"role {identity.role.value} may not call {method}")


def peer_address(context: grpc.aio.ServicerContext) -> str:
    return context.peer() or "unknown"
