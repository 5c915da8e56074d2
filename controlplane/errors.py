"""One error hierarchy for the whole federation, and the one table that maps it to gRPC codes.

Servicers never put ``str(exc)`` of an unexpected exception on the wire: only the messages built
here from validated, constant parts (a field name and a reason) reach a caller, so that internals
(paths, keys, stack frames) never leak. Chain with ``raise ... from e`` so logs keep the cause.
"""

from __future__ import annotations

import grpc


class StargateError(Exception):
    """Base of every error the federation raises on purpose."""

    #: Message safe to show to any caller.
    public: str = "internal error"
    #: The status a client received, when rebuilt by ``from_status``; else the table decides.
    wire_code: grpc.StatusCode | None = None

    def __init__(self, message: str | None = None) -> None:
        if message is not None:
            self.public = message
        super().__init__(self.public)

    @property
    def code(self) -> grpc.StatusCode:
        if self.wire_code is not None:
            return self.wire_code
        for cls, code in GRPC_STATUS:
            if isinstance(self, cls):
                return code
        return grpc.StatusCode.INTERNAL


class InvalidRequest(StargateError):
    """The request is malformed (as rebuilt by a client from INVALID_ARGUMENT)."""


class InvalidArgument(InvalidRequest):
    """A request field is malformed. Always names the field."""

    def __init__(self, field: str, reason: str) -> None:
        self.field = field
        self.reason = reason
        super().__init__(f"{field}: {reason}")


class NotFound(StargateError):
    """The named object does not exist."""


class AlreadyExists(StargateError):
    """The object exists already."""


class FailedPrecondition(StargateError):
    """The system is not in a state that allows this."""


class Conflict(StargateError):
    """A compare-and-set lost a race; the caller may re-read and retry."""

    public = "concurrent update, retry"


class Unauthenticated(StargateError):
    public = "a verified client certificate is required"


class PermissionDenied(StargateError):
    public = "permission denied"


class ResourceExhausted(StargateError):
    """A size or rate limit was exceeded."""


class Unavailable(StargateError):
    """A dependency (the store, the server) cannot be reached; retrying later may work."""

    public = "service unavailable, retry later"


class NotLeader(Unavailable):
    """A leader-only write was attempted by a replica that does not hold leadership (fenced)."""

    public = "this replica is not the leader"


# --- store-level errors -------------------------------------------------------------------------


class StoreError(StargateError):
    """Base of errors raised by a Store backend."""


class StoreUnavailable(StoreError, Unavailable):
    public = "state store unavailable, retry later"


class CompactedError(StoreError):
    """A watch asked for a revision that compaction already removed: re-list, then watch again."""

    def __init__(self, requested: int, compact_revision: int) -> None:
        self.requested = requested
        self.compact_revision = compact_revision
        super().__init__(f"revision {requested} is compacted (compacted up to {compact_revision}); re-list")


class LeaseNotFound(StoreError):
    """The lease expired or was revoked."""

    public = "lease not found or expired"


#: The one table from error class to gRPC status code. Most specific first.
GRPC_STATUS: tuple[tuple[type[StargateError], grpc.StatusCode], ...] = (
    (InvalidRequest, grpc.StatusCode.INVALID_ARGUMENT),
    (NotFound, grpc.StatusCode.NOT_FOUND),
    (AlreadyExists, grpc.StatusCode.ALREADY_EXISTS),
    (Conflict, grpc.StatusCode.ABORTED),
    (Unauthenticated, grpc.StatusCode.UNAUTHENTICATED),
    (PermissionDenied, grpc.StatusCode.PERMISSION_DENIED),
    (ResourceExhausted, grpc.StatusCode.RESOURCE_EXHAUSTED),
    (LeaseNotFound, grpc.StatusCode.FAILED_PRECONDITION),
    (FailedPrecondition, grpc.StatusCode.FAILED_PRECONDITION),
    (CompactedError, grpc.StatusCode.OUT_OF_RANGE),
    (Unavailable, grpc.StatusCode.UNAVAILABLE),
    (StargateError, grpc.StatusCode.INTERNAL),
)


def status_for(exc: BaseException) -> tuple[grpc.StatusCode, str]:
    """The gRPC status and safe message for an exception; anything unexpected is INTERNAL."""
    if isinstance(exc, StargateError):
        return exc.code, exc.public
    return grpc.StatusCode.INTERNAL, StargateError.public


#: Reverse table used by the client library to turn a status back into an error.
_FROM_STATUS: dict[grpc.StatusCode, type[StargateError]] = {
    grpc.StatusCode.INVALID_ARGUMENT: InvalidRequest,
    grpc.StatusCode.NOT_FOUND: NotFound,
    grpc.StatusCode.ALREADY_EXISTS: AlreadyExists,
    grpc.StatusCode.ABORTED: Conflict,
    grpc.StatusCode.UNAUTHENTICATED: Unauthenticated,
    grpc.StatusCode.PERMISSION_DENIED: PermissionDenied,
    grpc.StatusCode.RESOURCE_EXHAUSTED: ResourceExhausted,
    grpc.StatusCode.FAILED_PRECONDITION: FailedPrecondition,
    grpc.StatusCode.UNAVAILABLE: Unavailable,
    grpc.StatusCode.DEADLINE_EXCEEDED: Unavailable,
}


def from_status(code: grpc.StatusCode, message: str) -> StargateError:
    """Rebuild an error from a gRPC status on the client side (message kept verbatim)."""
    err = _FROM_STATUS.get(code, StargateError)(message)
    err.wire_code = code
    return err
