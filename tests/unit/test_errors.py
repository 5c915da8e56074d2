"""The one error table: error classes to gRPC codes, safe messages, and back on the client side."""

from __future__ import annotations

import grpc
import pytest

from controlplane import errors
from controlplane.errors import (
    GRPC_STATUS,
    AlreadyExists,
    CompactedError,
    Conflict,
    FailedPrecondition,
    InvalidArgument,
    InvalidRequest,
    LeaseNotFound,
    NotFound,
    NotLeader,
    PermissionDenied,
    ResourceExhausted,
    StargateError,
    StoreError,
    StoreUnavailable,
    Unauthenticated,
    Unavailable,
    from_status,
    status_for,
)

S = grpc.StatusCode

#: The documented mapping (docstrings of controlplane/errors.py). Every subclass must be listed.
DOCUMENTED: dict[type[StargateError], grpc.StatusCode] = {
    StargateError: S.INTERNAL,
    InvalidRequest: S.INVALID_ARGUMENT,
    InvalidArgument: S.INVALID_ARGUMENT,
    NotFound: S.NOT_FOUND,
    AlreadyExists: S.ALREADY_EXISTS,
    FailedPrecondition: S.FAILED_PRECONDITION,
    Conflict: S.ABORTED,
    Unauthenticated: S.UNAUTHENTICATED,
    PermissionDenied: S.PERMISSION_DENIED,
    ResourceExhausted: S.RESOURCE_EXHAUSTED,
    Unavailable: S.UNAVAILABLE,
    NotLeader: S.UNAVAILABLE,
    StoreError: S.INTERNAL,
    StoreUnavailable: S.UNAVAILABLE,
    CompactedError: S.OUT_OF_RANGE,
    LeaseNotFound: S.FAILED_PRECONDITION,
}


def all_subclasses(cls: type) -> set[type]:
    out: set[type] = {cls}
    sub: type
    for sub in cls.__subclasses__():
        if sub.__module__ == errors.__name__:
            out |= all_subclasses(sub)
    return out


def make(cls: type[StargateError]) -> StargateError:
    if cls is InvalidArgument:
        return InvalidArgument("facts.site_id", "is required")
    if cls is CompactedError:
        return CompactedError(5, 10)
    return cls()


def test_every_error_class_is_documented() -> None:
    assert all_subclasses(StargateError) == set(DOCUMENTED)


@pytest.mark.parametrize("cls", list(DOCUMENTED), ids=lambda c: c.__name__)
def test_each_error_maps_to_its_documented_code(cls: type[StargateError]) -> None:
    exc = make(cls)
    code, message = status_for(exc)
    assert code == DOCUMENTED[cls]
    assert exc.code == DOCUMENTED[cls], "the class attribute and the table disagree"
    assert message == exc.public
    assert message  # never an empty status message


def test_table_lists_subclasses_before_their_bases() -> None:
    classes = [cls for cls, _ in GRPC_STATUS]
    for i, cls in enumerate(classes):
        for later in classes[i + 1 :]:
            shadowed = issubclass(later, cls) and later is not cls
            assert not shadowed, f"{later.__name__} is shadowed by {cls.__name__}"


def test_invalid_argument_names_the_field() -> None:
    exc = InvalidArgument("deploy.digest", "must be sha256:<64 lowercase hex>")
    assert exc.field == "deploy.digest"
    assert status_for(exc) == (S.INVALID_ARGUMENT, "deploy.digest: must be sha256:<64 lowercase hex>")


@pytest.mark.parametrize(
    "exc",
    [
        RuntimeError("open /var/lib/stargate/ca.key: permission denied"),
        KeyError("-----BEGIN PRIVATE KEY-----"),
        ValueError("password=hunter2"),
        OSError(13, "Permission denied", "/etc/stargate/ca.key"),
        AssertionError("stack frame"),
        grpc.RpcError("upstream detail"),
    ],
    ids=lambda e: type(e).__name__,
)
def test_unexpected_exception_is_internal_without_its_text(exc: BaseException) -> None:
    code, message = status_for(exc)
    assert code == S.INTERNAL
    assert message == "internal error"


def test_unexpected_exception_chained_under_a_known_one_stays_safe() -> None:
    try:
        try:
            raise RuntimeError("/secret/path")
        except RuntimeError as e:
            raise Unavailable() from e
    except Unavailable as outer:
        assert status_for(outer) == (S.UNAVAILABLE, "service unavailable, retry later")


def test_default_public_messages_are_constant() -> None:
    assert StargateError().public == "internal error"
    assert str(StargateError()) == "internal error"
    assert status_for(PermissionDenied())[1] == "permission denied"
    assert status_for(Unauthenticated())[1] == "a verified client certificate is required"
    assert status_for(NotLeader())[1] == "this replica is not the leader"
    # A custom message replaces the default on the instance only.
    assert PermissionDenied("role auditor may not call Deploy").public == "role auditor may not call Deploy"
    assert PermissionDenied.public == "permission denied"


@pytest.mark.parametrize(
    ("code", "cls"),
    [
        (S.NOT_FOUND, NotFound),
        (S.ALREADY_EXISTS, AlreadyExists),
        (S.ABORTED, Conflict),
        (S.UNAUTHENTICATED, Unauthenticated),
        (S.PERMISSION_DENIED, PermissionDenied),
        (S.RESOURCE_EXHAUSTED, ResourceExhausted),
        (S.FAILED_PRECONDITION, FailedPrecondition),
        (S.UNAVAILABLE, Unavailable),
        (S.DEADLINE_EXCEEDED, Unavailable),
        (S.INVALID_ARGUMENT, InvalidRequest),
        (S.OUT_OF_RANGE, StargateError),
        (S.UNKNOWN, StargateError),
        (S.INTERNAL, StargateError),
    ],
)
def test_from_status_rebuilds_the_error(code: grpc.StatusCode, cls: type[StargateError]) -> None:
    err = from_status(code, "detail from the server")
    assert type(err) is cls
    assert err.code == code  # the wire code is kept, even where the class is generic
    assert err.public == "detail from the server"
    assert str(err) == "detail from the server"


@pytest.mark.parametrize("cls", list(DOCUMENTED), ids=lambda c: c.__name__)
def test_round_trip_server_to_client_keeps_code_and_message(cls: type[StargateError]) -> None:
    code, message = status_for(make(cls))
    err = from_status(code, message)
    assert err.code == code
    assert err.public == message
    # The rebuilt error maps back to the same status if it is raised again on the next hop.
    assert status_for(err) == (code, message)
