"""Retries as data: backoff settings plus a give-up predicate (tenacity does the waiting).

Retry only what a retry can fix: UNAVAILABLE (server restarting, failover in progress) and
DEADLINE_EXCEEDED. Fail fast on everything else, above all TLS and authentication failures: a
rejected certificate does not become acceptable by asking again. The one exception is a site's
link (``persistent``): a site never stops trying to reach its federation, it only backs off.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import grpc
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception,
    stop_after_delay,
    stop_never,
    wait_exponential_jitter,
)

log = logging.getLogger(__name__)

_TLS_MARKERS = ("ssl", "handshake", "certificate", "tls")


def is_tls_failure(err: grpc.aio.AioRpcError) -> bool:
    # "tcp handshaker shutdown" is gRPC's TCP connect timing out (a busy or restarting server), not
    # a TLS refusal: it must stay retryable, or a site link would give up for good under load.
    # Likewise "Handshake read failed (Endpoint closing)": the connection attempt was shut down
    # mid-handshake (seen under load in the suite); a refused certificate reads "Socket closed".
    details = (err.details() or "").lower().replace("tcp handshaker", "")
    if "endpoint closing" in details:
        return False
    return any(m in details for m in _TLS_MARKERS)


def transient(exc: BaseException) -> bool:
    """Whether ``exc`` is worth retrying."""
    if isinstance(exc, grpc.aio.AioRpcError):
        code = exc.code()
        if code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED):
            return not is_tls_failure(exc)
    return False


def _log_retry(state: RetryCallState) -> None:
    exc = state.outcome.exception() if state.outcome is not None else None
    detail = f"{exc.code().name}: {exc.details()}" if isinstance(exc, grpc.aio.AioRpcError) else repr(exc)
    log.info(
        "attempt %d failed (%s); retrying in %.2fs",
        state.attempt_number,
        detail,
        state.next_action.sleep if state.next_action else 0.0,
    )


def _any_error(exc: BaseException) -> bool:
    return isinstance(exc, Exception)


@dataclass(frozen=True)
class RetryPolicy:
    #: First wait, seconds. Jitter (0..initial) spreads a fleet that lost its server at once.
    initial: float = 0.2
    #: Longest wait between attempts.
    maximum: float = 5.0
    #: Give up after this many seconds in total; None retries forever (site links).
    deadline: float | None = 10.0
    #: Retry every failure, not only transient ones. For site links: a site keeps trying (with
    #: backoff) whatever the federation answers - static stability - and logs why.
    persistent: bool = False

    def retrying(self) -> AsyncRetrying:
        """A fresh AsyncRetrying: tenacity never resets backoff inside one, so make one per outage."""
        return AsyncRetrying(
            retry=retry_if_exception(_any_error if self.persistent else transient),
            wait=wait_exponential_jitter(multiplier=self.initial, max=self.maximum, jitter=self.initial),
            stop=stop_never if self.deadline is None else stop_after_delay(self.deadline),
            before_sleep=_log_retry,
            reraise=True,
        )


#: For people at a terminal: a short wait, then a clear error.
CLI = RetryPolicy(initial=0.1, maximum=1.0, deadline=8.0)
#: For site links: forever, capped at 30 s between tries.
LINK = RetryPolicy(initial=0.5, maximum=30.0, deadline=None, persistent=True)
