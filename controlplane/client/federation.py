"""FederationClient: calls to the people's services with failover across the context's servers,
and ``watch`` (WatchService) that follows an object across reconnects."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from typing import Any

import grpc

from controlplane.api.v1 import (
    audit_pb2,
    federation_pb2,
    jobs_pb2,
    rollouts_pb2,
    safety_pb2,
    site_pb2,
    watch_pb2,
)
from controlplane.api.v1 import audit_pb2_grpc as agrpc
from controlplane.api.v1 import federation_pb2_grpc as fgrpc
from controlplane.api.v1 import jobs_pb2_grpc as jgrpc
from controlplane.api.v1 import rollouts_pb2_grpc as ogrpc
from controlplane.api.v1 import safety_pb2_grpc as xgrpc
from controlplane.api.v1 import site_pb2_grpc as sgrpc
from controlplane.api.v1 import watch_pb2_grpc as wgrpc
from controlplane.client.calls import TypedCalls
from controlplane.client.channel import check_client_certificate, secure_channel
from controlplane.client.config import Context
from controlplane.client.retry import CLI, RetryPolicy, is_tls_failure, transient
from controlplane.errors import StargateError, Unauthenticated, Unavailable, from_status

#: How the UNAVAILABLE messages a replica sends itself begin (errors.py: Unavailable, NotLeader,
#: StoreUnavailable and its "state store unavailable (...)" variants); anything else is a
#: transport failure.
_SERVER_UNAVAILABLE = ("state store unavailable", "this replica is not the leader", "service unavailable")

#: The services people call (and SiteService, for the rpcs a site's certificate may call from
#: stargatectl: ReportIncident), with their descriptors.
_SERVICES: list[tuple[type, Any]] = [
    (fgrpc.FederationServiceStub, federation_pb2.DESCRIPTOR.services_by_name["FederationService"]),
    (ogrpc.ReleaseServiceStub, rollouts_pb2.DESCRIPTOR.services_by_name["ReleaseService"]),
    (xgrpc.SafetyServiceStub, safety_pb2.DESCRIPTOR.services_by_name["SafetyService"]),
    (agrpc.AuditServiceStub, audit_pb2.DESCRIPTOR.services_by_name["AuditService"]),
    (wgrpc.WatchServiceStub, watch_pb2.DESCRIPTOR.services_by_name["WatchService"]),
    (jgrpc.JobServiceStub, jobs_pb2.DESCRIPTOR.services_by_name["JobService"]),
    (sgrpc.SiteServiceStub, site_pb2.DESCRIPTOR.services_by_name["SiteService"]),
]
#: rpc name -> the stub class that carries it, read from the wire API's descriptors once.
RPCS: dict[str, type] = {}
for _stub, _service in _SERVICES:
    for _m in _service.methods:
        if _m.name in RPCS:  # the CLI calls rpcs by name: two services must not share one
            raise RuntimeError(f"rpc {_m.name} is defined by two services")
        RPCS[_m.name] = _stub


class FederationClient(TypedCalls):
    """``call(method, request)`` for any rpc by name, or the typed methods (``get_rollout`` ...,
    client/calls.py, generated from the wire API); ``watch`` for WatchService."""

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
        self._stubs: dict[type, Any] = {}

    def _method(self, name: str) -> Any:
        """The rpc called ``name`` on the service that defines it (``RPCS``)."""
        stub_class = RPCS.get(name)
        if stub_class is None:
            raise AttributeError(f"no rpc named {name}")
        if self._channel is None:
            target = self._servers[self._current % len(self._servers)]
            self._channel = secure_channel(target, self._ca, self._key, self._cert)
            self._stubs = {}
        stub = self._stubs.get(stub_class)
        if stub is None:
            stub = self._stubs[stub_class] = stub_class(self._channel)
        return getattr(stub, name)

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

    async def watch(
        self, kind: watch_pb2.WatchKind, name: str, after_revision: int = 0
    ) -> AsyncIterator[Any]:
        """Every state of one object (WatchService.Watch) until it is deleted: the current one
        first, then one per change. A lost stream (a replica stopped, the store watch failed) is
        resumed on the next server from the last revision seen, each outage with a fresh retry
        budget of the client's policy; a refusal (NOT_FOUND, PERMISSION_DENIED, ...) is raised as
        its StargateError."""
        request = watch_pb2.WatchRequest(kind=kind, name=name, after_revision=after_revision)
        while True:
            progressed = False
            try:
                async for attempt in self._retry.retrying():  # one per outage
                    with attempt:
                        try:
                            async for response in self._method("Watch")(request):
                                progressed = True
                                request.after_revision = response.revision
                                yield response
                                if response.deleted:
                                    return
                            return  # the server ended the stream
                        except grpc.aio.AioRpcError as e:
                            if transient(e):
                                await self._failover()
                            if progressed and transient(e):
                                break  # a new outage after progress: a fresh budget below
                            raise
            except grpc.aio.AioRpcError as e:
                raise self._error(e) from e

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
