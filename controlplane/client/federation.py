"""FederationClient: typed calls to FederationService with failover across the context's servers."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import grpc

from controlplane.api.v1 import federation_pb2_grpc as fgrpc
from controlplane.client.channel import check_client_certificate, secure_channel
from controlplane.client.config import Context
from controlplane.client.retry import CLI, RetryPolicy, is_tls_failure, transient
from controlplane.errors import StargateError, Unauthenticated, Unavailable, from_status


class FederationClient:
    def __init__(
        self,
        ctx: Context,
        *,
        servers: Sequence[str] | None = None,
        retry: RetryPolicy = CLI,
        timeout: float = 10.0,
    ) -> None:
        self._servers = list(servers or ctx.servers)
        self._ca, self._key, self._cert = ctx.read_tls()
        check_client_certificate(self._cert, self._ca)
        self._retry = retry
        self._timeout = timeout
        self._current = 0
        self._channel: grpc.aio.Channel | None = None

    def _stub(self) -> fgrpc.FederationServiceStub:
        if self._channel is None:
            target = self._servers[self._current % len(self._servers)]
            self._channel = secure_channel(target, self._ca, self._key, self._cert)
        return fgrpc.FederationServiceStub(self._channel)

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
                            return await getattr(self._stub(), method)(request, timeout=self._timeout)
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
