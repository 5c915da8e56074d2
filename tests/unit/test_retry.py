"""Retry only what a retry can fix: never TLS or authorization failures."""

from __future__ import annotations

import grpc
import pytest

from controlplane.client.retry import CLI, LINK, RetryPolicy, is_tls_failure, transient

S = grpc.StatusCode


def rpc_error(code: grpc.StatusCode, details: str | None) -> grpc.aio.AioRpcError:
    return grpc.aio.AioRpcError(
        code,
        initial_metadata=grpc.aio.Metadata(),
        trailing_metadata=grpc.aio.Metadata(),
        details=details,
    )


@pytest.mark.parametrize(
    ("code", "details"),
    [
        (
            S.UNAVAILABLE,
            "failed to connect to all addresses; last error: UNKNOWN: ipv4:10.0.0.1:7443: refused",
        ),
        (S.UNAVAILABLE, "Socket closed"),
        (
            S.UNAVAILABLE,
            "failed to connect to all addresses; last error: UNAVAILABLE: ipv4:127.0.0.1:48837: "
            "Handshake read failed (Endpoint closing)",
        ),
        (S.UNAVAILABLE, "service unavailable, retry later"),
        (S.UNAVAILABLE, "this replica is not the leader"),
        (S.UNAVAILABLE, None),
        (S.UNAVAILABLE, ""),
        (S.DEADLINE_EXCEEDED, "Deadline Exceeded"),
    ],
)
def test_transient(code: grpc.StatusCode, details: str | None) -> None:
    assert transient(rpc_error(code, details))


@pytest.mark.parametrize(
    "details",
    [
        "failed to connect to all addresses; last error: UNAVAILABLE: ipv4:127.0.0.1:7443: "
        "Ssl handshake failed: SSL_ERROR_SSL: error:1000007d:SSL routines:"
        "OPENSSL_internal:CERTIFICATE_VERIFY_FAILED",
        "Handshake failed",
        "tls: bad certificate",
        "TLS handshake timeout",
        "peer certificate expired",
        "SSL_ERROR_SSL",
    ],
)
def test_tls_failures_are_not_transient(details: str) -> None:
    err = rpc_error(S.UNAVAILABLE, details)
    assert is_tls_failure(err)
    assert not transient(err)


@pytest.mark.parametrize(
    "code",
    [
        S.PERMISSION_DENIED,
        S.UNAUTHENTICATED,
        S.INVALID_ARGUMENT,
        S.NOT_FOUND,
        S.ALREADY_EXISTS,
        S.FAILED_PRECONDITION,
        S.ABORTED,
        S.INTERNAL,
        S.UNKNOWN,
        S.CANCELLED,
        S.RESOURCE_EXHAUSTED,
    ],
)
def test_other_codes_are_not_transient(code: grpc.StatusCode) -> None:
    assert not transient(rpc_error(code, "temporarily unavailable, please retry"))


@pytest.mark.parametrize("exc", [ConnectionError("refused"), TimeoutError(), OSError(), RuntimeError("x")])
def test_non_grpc_errors_are_not_transient(exc: BaseException) -> None:
    assert not transient(exc)


async def test_retrying_retries_transient_then_gives_up_fast_on_permanent() -> None:
    policy = RetryPolicy(initial=0.001, maximum=0.001, deadline=5.0)
    calls: list[grpc.StatusCode] = []
    script = [S.UNAVAILABLE, S.UNAVAILABLE, S.PERMISSION_DENIED, S.UNAVAILABLE]

    async def attempt() -> None:
        code = script[len(calls)]
        calls.append(code)
        raise rpc_error(code, "no")

    with pytest.raises(grpc.aio.AioRpcError) as e:
        async for try_ in policy.retrying():
            with try_:
                await attempt()
    assert e.value.code() == S.PERMISSION_DENIED
    assert calls == [S.UNAVAILABLE, S.UNAVAILABLE, S.PERMISSION_DENIED]


async def test_retrying_does_not_retry_a_tls_failure() -> None:
    calls = 0
    with pytest.raises(grpc.aio.AioRpcError):
        async for try_ in RetryPolicy(initial=0.001, maximum=0.001).retrying():
            with try_:
                calls += 1
                raise rpc_error(S.UNAVAILABLE, "Ssl handshake failed")
    assert calls == 1


def test_shipped_policies() -> None:
    assert CLI.deadline is not None and CLI.deadline <= 10
    assert LINK.deadline is None  # site links retry forever
    assert LINK.maximum <= 30
