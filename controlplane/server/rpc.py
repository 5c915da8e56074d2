"""One wrapper for every unary rpc: authenticate, authorise, size- and range-check, map errors, audit
refusals.

Servicers abort with the constant, public message of a StargateError; anything unexpected is
logged here with its traceback and reaches the caller as a constant "internal error".
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Awaitable, Callable
from typing import Any, Protocol, TypeVar

import grpc

from controlplane.api import bounds
from controlplane.errors import (
    PermissionDenied,
    ResourceExhausted,
    StargateError,
    Unauthenticated,
    status_for,
)
from controlplane.pki.identity import Identity
from controlplane.server.auth import authorize, peer_address, peer_identity
from controlplane.services.audit import AuditLog, Entry

log = logging.getLogger(__name__)

#: Largest request a person or site may send, checked after gRPC's own hard limit so that an
#: oversized message is refused *and audited*. Real requests are < 8 KiB (a CSR is ~0.5 KiB).
MAX_REQUEST_BYTES = 256 * 1024

Req = TypeVar("Req")
Resp = TypeVar("Resp")


class Servicer(Protocol):
    trust_domain: str
    audit: AuditLog


async def refuse(audit: AuditLog, actor: str, method: str, err: StargateError) -> None:
    """Audit a refused call (best effort: a store outage must not hide the refusal itself)."""
    try:
        await audit.record(Entry(actor, f"rpc.{method}", f"rpc/{method}", "denied", err.public))
    except StargateError as e:
        log.warning("could not audit refusal of %s by %s: %s", method, actor, e.public)


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
            actor = f"anonymous@{peer_address(context)}"
            try:
                caller = peer_identity(context, self.trust_domain)
                actor = caller.spiffe_id
                authorize(caller, method)
                if request.ByteSize() > MAX_REQUEST_BYTES:  # type: ignore[attr-defined]
                    raise ResourceExhausted(f"request larger than {MAX_REQUEST_BYTES} bytes")
                bounds.check(request)  # every number in range before anything is done or stored
                return await fn(self, request, context, caller)
            except grpc.aio.AbortError:
                raise
            except (Unauthenticated, PermissionDenied, ResourceExhausted) as e:
                await refuse(self.audit, actor, method, e)
                await abort(context, e)
            except Exception as e:  # mapped through the one table in controlplane.errors
                await abort(context, e)
            raise AssertionError("unreachable")  # context.abort always raises

        return wrapper

    return deco
