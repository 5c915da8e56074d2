"""One wrapper for every rpc (``authenticated`` for unary calls, ``streaming`` for server-streaming
ones): authenticate, authorise, size- and range-check, map errors, audit refusals.

Servicers abort with the constant, public message of a StargateError; anything unexpected is
logged here with its traceback and reaches the caller as a constant "internal error".
"""

from __future__ import annotations

import functools
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, Protocol, TypeVar

import grpc

from controlplane.api import bounds
from controlplane.domain.ratelimit import peer_host
from controlplane.errors import (
    PermissionDenied,
    ResourceExhausted,
    StargateError,
    Unauthenticated,
    status_for,
)
from controlplane.pki.identity import Identity
from controlplane.server.auth import authorize, peer_address, peer_identity
from controlplane.services.refusals import Refusals

log = logging.getLogger(__name__)

#: Largest request a person or site may send, checked after gRPC's own hard limit so that an
#: oversized message is refused *and audited*. Real requests are < 8 KiB (a CSR is ~0.5 KiB).
MAX_REQUEST_BYTES = 256 * 1024

Req = TypeVar("Req")
Resp = TypeVar("Resp")


class Servicer(Protocol):
    trust_domain: str
    refusals: Refusals


def anonymous(context: grpc.aio.ServicerContext) -> str:
    """The audit actor of a caller without a verified identity: its address, without the port (which
    changes with every connection), so that its refusals aggregate per peer."""
    return f"anonymous@{peer_host(peer_address(context))}"


async def refuse(refusals: Refusals, actor: str, method: str, err: StargateError) -> None:
    """Audit a refused call, in bounded volume (services/refusals.py: the first at once, the rest
    of a window as one event with a count)."""
    await refusals.note(actor, f"rpc.{method}", f"rpc/{method}", err.public)


async def abort(context: grpc.aio.ServicerContext, exc: BaseException) -> None:
    code, message = status_for(exc)
    if code is grpc.StatusCode.INTERNAL:
        log.error("internal error", exc_info=exc)
    await context.abort(code, message)


def authenticated(
    method: str,
) -> Callable[
    [Callable[[Any, Req, grpc.aio.ServicerContext, Identity], Awaitable[Resp]]],
    Callable[..., Awaitable[Resp]],
]:
    """Decorate ``async def Method(self, request, context, caller)``."""

    def deco(
        fn: Callable[[Any, Req, grpc.aio.ServicerContext, Identity], Awaitable[Resp]],
    ) -> Callable[..., Awaitable[Resp]]:
        @functools.wraps(fn)
        async def wrapper(self: Servicer, request: Req, context: grpc.aio.ServicerContext) -> Resp:
            actor = anonymous(context)
            try:
                caller = peer_identity(context, self.trust_domain)
                actor = caller.spiffe_id  # refusals from here on are the caller's, not anonymous
                _admit(method, request, caller)
                return await fn(self, request, context, caller)
            except grpc.aio.AbortError:
                raise
            except Exception as e:
                await _fail(self, actor, method, context, e)
            raise AssertionError("unreachable")  # context.abort always raises

        return wrapper

    return deco


def streaming(
    method: str,
) -> Callable[
    [Callable[[Any, Req, grpc.aio.ServicerContext, Identity], AsyncIterator[Resp]]],
    Callable[..., AsyncIterator[Resp]],
]:
    """Decorate a server-streaming ``async def Method(self, request, context, caller)`` that yields
    responses: the same checks as ``authenticated`` before the first response, and errors raised
    while streaming end the stream mapped the same way."""

    def deco(
        fn: Callable[[Any, Req, grpc.aio.ServicerContext, Identity], AsyncIterator[Resp]],
    ) -> Callable[..., AsyncIterator[Resp]]:
        @functools.wraps(fn)
        async def wrapper(
            self: Servicer, request: Req, context: grpc.aio.ServicerContext
        ) -> AsyncIterator[Resp]:
            actor = anonymous(context)
            try:
                caller = peer_identity(context, self.trust_domain)
                actor = caller.spiffe_id
                _admit(method, request, caller)
                async for response in fn(self, request, context, caller):
                    yield response
            except grpc.aio.AbortError:
                raise
            except Exception as e:
                await _fail(self, actor, method, context, e)

        return wrapper

    return deco


def _admit(method: str, request: Any, caller: Identity) -> None:
    authorize(caller, method)
    if request.ByteSize() > MAX_REQUEST_BYTES:
        raise ResourceExhausted(f"request larger than {MAX_REQUEST_BYTES} bytes")
    bounds.check(request)  # every number in range before anything is done or stored


async def _fail(
    self: Servicer, actor: str, method: str, context: grpc.aio.ServicerContext, e: Exception
) -> None:
    if isinstance(e, Unauthenticated | PermissionDenied | ResourceExhausted):
        await refuse(self.refusals, actor, method, e)
    await abort(context, e)  # mapped through the one table in controlplane.errors
