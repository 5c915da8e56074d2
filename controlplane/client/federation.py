"""FederationClient: typed calls to FederationService with failover across the context's servers."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import grpc

from controlplane.api.v1 import audit_pb2_grpc as agrpc
from controlplane.api.v1 import federation_pb2_grpc as fgrpc
from controlplane.api.v1 import rollouts_pb2_grpc as ogrpc
from controlplane.api.v1 import safety_pb2_grpc as xgrpc
from controlplane.api.v1 import site_pb2_grpc as sgrpc
from controlplane.client.channel import check_client_certificate, secure_channel
from controlplane.client.config import Context
from controlplane.client.retry import CLI, RetryPolicy, is_tls_failure, transient
from controlplane.errors import StargateError, Unauthenticated, Unavailable, from_status

#: How the UNAVAILABLE messages a replica sends itself begin (errors.py: Unavailable, NotLeader,
#: StoreUnavailable and its "state store unavailable (...)" variants); anything else is a
#: transport failure.
_SERVER_UNAVAILABLE = ("state store unavailable", "this replica is not the leader", "service unavailable")

#: The services people call; FederationClient finds each rpc by name among them.
STUBS: list[type] = [
    fgrpc.FederationServiceStub,
    ogrpc.ReleaseServiceStub,
    xgrpc.SafetyServiceStub,
    agrpc.AuditServiceStub,
]
#: SiteService too, for the rpcs a site's certificate may call from stargatectl (ReportIncident).
STUBS.append(sgrpc.SiteServiceStub)


class FederationClient:
    def __init__(
        self,
        ctx: Context,
        *,
        servers: Sequence[str] | None = None,
        retry: RetryPolicy = CLI,
        timeout: float = 10.0,
    ) -> None:
        self.ctx = ctx
        self._servers = list(servers or ctx.servers)
        self._ca, self._key, self._cert = ctx.read_tls()
        check_client_certificate(self._cert, self._ca)
        self._retry = retry
        self._timeout = timeout
        self._current = 0
        self._channel: grpc.aio.Channel | None = None

    def _method(self, name: str) -> Any:
        """The rpc called ``name`` on whichever service defines it (names are unique across the
        people's services: FederationService, ReleaseService, SafetyService)."""
        if self._channel is None:
            target = self._servers[self._current % len(self._servers)]
            self._channel = secure_channel(target, self._ca, self._key, self._cert)
        for stub_class in STUBS:
            stub = stub_class(self._channel)
            if hasattr(stub, name):
                return getattr(stub, name)
        raise AttributeError(f"no rpc named {name}")

    async def _failover(self) -> None:
        if self._channel is not None:
            await self._channel.close()
            self._channel = None
        self._current += 1

    async def call(self, method: str, request: Any) -> Any:
        """Call ``method``; on UNAVAILABLE try the next server, with backoff once all were tried."""
        last: grpc.aio.AioRpcError | None = None
        try:
            async for attempt in self._retry.retrying():
                with attempt:
                    for _ in self._servers:
                        try:
                            return await self._method(method)(request, timeout=self._timeout)
                        except grpc.aio.AioRpcError as e:
                            last = e
                            if not transient(e):
                                raise
                            await self._failover()
                    assert last is not None
                    raise last
        except grpc.aio.AioRpcError as e:
            raise self._error(e) from e
        raise AssertionError("unreachable")

    def _error(self, e: grpc.aio.AioRpcError) -> StargateError:
        if e.code() == grpc.StatusCode.UNAVAILABLE:
            if (e.details() or "").startswith(_SERVER_UNAVAILABLE):
                # A replica answered: keep its reason (e.g. "state store unavailable, retry later").
                return from_status(e.code(), e.details() or "")
            if is_tls_failure(e) or "socket closed" in (e.details() or "").lower():
                return Unauthenticated(
                    "the federation refused the TLS connection (certificate not accepted?) "
                    f"at {', '.join(self._servers)}"
                )
            return Unavailable(f"cannot reach the federation at {', '.join(self._servers)}")
        return from_status(e.code(), e.details() or e.code().name)

    async def close(self) -> None:
        if self._channel is not None:
            await self._channel.close()
            self._channel = None

    async def __aenter__(self) -> FederationClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()
