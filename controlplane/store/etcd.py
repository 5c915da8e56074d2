"""The etcd backend of ``Store``, on aetcd's connection and etcd's generated v3 stubs.

Why the raw stubs (``aetcd.rpc``) beside ``aetcd.Client``: aetcd's ``transaction`` drops the
response header (we need its revision), its watcher splits responses into single events (we must
not split a transaction) and it cannot cancel one watch stream. The client still owns the channel.

Failover (documented choice): one channel per endpoint, one "current" endpoint used until it
fails. A call that fails because the channel could not connect (nothing was sent) moves on to the
next endpoint inside the same call; so does any read (idempotent). A write that failed after it may
have been sent raises ``StoreUnavailable`` (the caller re-reads before retrying, per the contract)
and the next call starts at the next endpoint. This works with hostnames and with IP literals alike
(one multi-address gRPC target would not accept several hostnames).

TLS: ``ca_file``/``cert_file``/``key_file`` give mutual TLS (etcd ``--client-cert-auth``); the
files are read in a thread on first use. The client's identity is its certificate's CN.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

import aetcd
import grpc
from aetcd import rpc

from controlplane.errors import CompactedError, LeaseNotFound, StoreError, StoreUnavailable
from controlplane.store.base import (
    Compare,
    EventType,
    KeyValue,
    Op,
    Put,
    RangeResult,
    Store,
    TxnResult,
    WatchEvent,
)

T = TypeVar("T")

#: Codes that mean "the backend could not be reached or did not answer in time".
_UNREACHABLE = frozenset({grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED})
#: A stream that dies mid-call (member shutting down, RST_STREAM) is reported as INTERNAL or UNKNOWN
#: by gRPC, not UNAVAILABLE; for a long-lived watch every such end means "connection lost".
_STREAM_LOST = frozenset({grpc.StatusCode.INTERNAL, grpc.StatusCode.UNKNOWN, grpc.StatusCode.CANCELLED})
#: Details of failures where the request provably never reached etcd's raft log, so retrying a
#: write elsewhere cannot apply it twice.
_NOT_SENT = ("failed to connect", "DNS resolution failed", "etcdserver: no leader", "not capable")

#: Reconnect backoff: gRPC's default grows to 120 s, so a client would stay dark for up to two
#: minutes after an etcd outage. 2 s caps recovery time at the cost of one SYN per 2 s per endpoint.
DEFAULT_CHANNEL_OPTIONS: dict[str, Any] = {
    "grpc.initial_reconnect_backoff_ms": 200,
    "grpc.min_reconnect_backoff_ms": 1000,
    "grpc.max_reconnect_backoff_ms": 2000,
    # Detect a hung member (SIGSTOP, dead host without RST) on idle watch streams within ~15 s.
    # etcd's --grpc-keepalive-min-time is 5 s: pinging more often gets a GOAWAY.
    "grpc.keepalive_time_ms": 10_000,
    "grpc.keepalive_timeout_ms": 5_000,
    "grpc.keepalive_permit_without_calls": 1,
}
#: For tests and readiness probes on loopback (a refused connect is retried after 10-50 ms, not 1 s).
FAST_RECONNECT: dict[str, Any] = {
    "grpc.initial_reconnect_backoff_ms": 10,
    "grpc.min_reconnect_backoff_ms": 10,
    "grpc.max_reconnect_backoff_ms": 50,
}
#: etcd cancels a watch with "no leader" when its member loses quorum, instead of going silent.
_REQUIRE_LEADER = (("hasleader", "true"),)
#: Longest wait for one client's channel to close.
CLOSE_TIMEOUT_S = 5.0


class EtcdClient(aetcd.Client):  # type: ignore[misc]
    """``aetcd.Client`` that can open a TLS channel; ``connect`` otherwise mirrors upstream 1.0.0."""

    _is_connecting: bool
    _connected: asyncio.Event

    def __init__(
        self, host: str, port: int, *, credentials: grpc.ChannelCredentials | None, **kw: Any
    ) -> None:
        super().__init__(host=host, port=port, **kw)
        self._credentials = credentials
        self.watchstub: Any = None

    async def connect(self) -> None:
        if self._connected.is_set():
            return
        if self._is_connecting:
            await asyncio.wait_for(self._connected.wait(), self._connect_wait_timeout)
            return
        try:
            self._is_connecting = True
            target = f"{self._host}:{self._port}"
            options = list(self._options.items())
            if self._credentials is None:
                self.channel = grpc.aio.insecure_channel(target, options=options)
            else:
                self.channel = grpc.aio.secure_channel(target, self._credentials, options=options)
            self.kvstub = rpc.KVStub(self.channel)
            self.clusterstub = rpc.ClusterStub(self.channel)
            self.leasestub = rpc.LeaseStub(self.channel)
            self.maintenancestub = rpc.MaintenanceStub(self.channel)
            self.watchstub = rpc.WatchStub(self.channel)
            self._connected.set()
        finally:
            self._is_connecting = False


def _range_end(prefix: bytes) -> bytes:
    """etcd's prefix range end: the prefix with its last non-0xff byte incremented; "\\0" = all keys."""
    b = bytearray(prefix)
    while b and b[-1] == 0xFF:
        b.pop()
    if not b:
        return b"\0"
    b[-1] += 1
    return bytes(b)


def _kv(kv: Any) -> KeyValue:
    return KeyValue(kv.key.decode(), kv.value, kv.create_revision, kv.mod_revision, kv.version, kv.lease)


_TARGET = {
    "mod_revision": (rpc.Compare.CompareTarget.MOD, "mod_revision"),
    "create_revision": (rpc.Compare.CompareTarget.CREATE, "create_revision"),
    "version": (rpc.Compare.CompareTarget.VERSION, "version"),
    "value": (rpc.Compare.CompareTarget.VALUE, "value"),
}


def _compare(c: Compare) -> Any:
    target, fld = _TARGET[c.target]
    msg = rpc.Compare(key=c.key.encode(), result=rpc.Compare.CompareResult.EQUAL, target=target)
    setattr(msg, fld, c.value)
    return msg


def _op(op: Op) -> Any:
    if isinstance(op, Put):
        return rpc.RequestOp(request_put=rpc.PutRequest(key=op.key.encode(), value=op.value, lease=op.lease))
    return rpc.RequestOp(request_delete_range=rpc.DeleteRangeRequest(key=op.key.encode()))


class EtcdStore(Store):
    """``Store`` on an etcd v3 cluster. See the module docstring for failover and TLS."""

    kind = "etcd"
    persistent = True

    def __init__(
        self,
        endpoints: Sequence[str],
        *,
        ca_file: str | Path | None = None,
        cert_file: str | Path | None = None,
        key_file: str | Path | None = None,
        timeout: float = 5.0,
        channel_options: dict[str, Any] | None = None,
    ) -> None:
        if not endpoints:
            raise ValueError("at least one etcd endpoint is required")
        parsed = [urlsplit(e) for e in endpoints]
        schemes = {p.scheme for p in parsed}
        if not schemes <= {"http", "https"} or len(schemes) != 1:
            raise ValueError("etcd endpoints must all be http:// or all https://")
        if any(p.hostname is None or p.port is None for p in parsed):
            raise ValueError("etcd endpoints must be scheme://host:port")
        if (cert_file is None) != (key_file is None):
            raise ValueError("cert_file and key_file go together")
        self.endpoints = tuple(endpoints)
        self._hosts = [(str(p.hostname), int(p.port or 0)) for p in parsed]
        self._tls = schemes == {"https"}
        self._tls_files = (ca_file, cert_file, key_file)
        self._timeout = timeout
        self._options = {**DEFAULT_CHANNEL_OPTIONS, **(channel_options or {})}
        self._clients: list[EtcdClient] | None = None
        self._init_lock = asyncio.Lock()
        self._current = 0
        self._closed = False
        self._watch_calls: set[Any] = set()

    # --- connection and error mapping ----------------------------------------------------------

    def _credentials(self) -> grpc.ChannelCredentials:
        ca, cert, key = (Path(f).read_bytes() if f else None for f in self._tls_files)
        return grpc.ssl_channel_credentials(root_certificates=ca, private_key=key, certificate_chain=cert)

    async def _ensure_clients(self) -> list[EtcdClient]:
        if self._clients is None:
            async with self._init_lock:
                if self._clients is None:
                    creds = await asyncio.to_thread(self._credentials) if self._tls else None
                    self._clients = [
                        EtcdClient(h, p, credentials=creds, timeout=self._timeout, options=self._options)
                        for h, p in self._hosts
                    ]
        return self._clients

    def _check_open(self) -> None:
        if self._closed:
            raise StoreUnavailable("state store client is closed")

    async def _call(self, fn: Callable[[EtcdClient], Awaitable[T]], *, idempotent: bool) -> T:
        """Run ``fn`` on the current endpoint, failing over as the module docstring describes."""
        self._check_open()
        clients = await self._ensure_clients()
        n = len(clients)
        for attempt in range(n):
            i = (self._current + attempt) % n
            client = clients[i]
            try:
                await client.connect()
                result = await fn(client)
            except grpc.aio.AioRpcError as e:
                if not _unreachable(e):
                    raise _map_error(e) from e
                details = e.details() or ""
                safe = idempotent or any(s in details for s in _NOT_SENT)
                if safe and attempt + 1 < n:
                    continue
                self._current = (i + 1) % n  # the next call starts elsewhere
                err = StoreUnavailable(
                    f"state store unavailable ({e.code().name} after {attempt + 1} of {n} etcd endpoints)"
                )
                err.add_note(f"last endpoint {self.endpoints[i]}: {details}")
                raise err from e
            self._current = i
            return result
        raise AssertionError("unreachable")  # pragma: no cover - the loop returns or raises

    # --- KV ----------------------------------------------------------------------------------------

    async def get(self, key: str) -> KeyValue | None:
        req = rpc.RangeRequest(key=key.encode())  # serializable=False: linearizable
        resp = await self._call(lambda c: c.kvstub.Range(req, timeout=self._timeout), idempotent=True)
        return _kv(resp.kvs[0]) if resp.kvs else None

    async def range(self, prefix: str, *, start: str | None = None, limit: int = 0) -> RangeResult:
        p = prefix.encode()
        req = rpc.RangeRequest(key=max(p, (start or "").encode()), range_end=_range_end(p), limit=limit)
        resp = await self._call(lambda c: c.kvstub.Range(req, timeout=self._timeout), idempotent=True)
        return RangeResult([_kv(kv) for kv in resp.kvs], resp.header.revision)

    async def txn(self, compares: Sequence[Compare], ops: Sequence[Op]) -> TxnResult:
        req = rpc.TxnRequest(compare=[_compare(c) for c in compares], success=[_op(o) for o in ops])
        resp = await self._call(lambda c: c.kvstub.Txn(req, timeout=self._timeout), idempotent=False)
        return TxnResult(resp.succeeded, resp.header.revision)

    async def current_revision(self) -> int:
        # count_only over one key: the cheapest linearizable read that returns a header.
        req = rpc.RangeRequest(key=b"\0", count_only=True)
        resp = await self._call(lambda c: c.kvstub.Range(req, timeout=self._timeout), idempotent=True)
        return int(resp.header.revision)

    async def compact(self, revision: int) -> None:
        req = rpc.CompactionRequest(revision=revision)
        try:
            await self._call(lambda c: c.kvstub.Compact(req, timeout=self._timeout), idempotent=True)
        except StoreError as e:
            # Compacting at or below the compacted revision is a no-op, as in MemoryStore.
            if "compacted" not in str(e.__cause__):
                raise

    async def delete_all(self) -> int:
        """Delete every key (tests and ``dev reset`` only). Returns the number deleted."""
        req = rpc.DeleteRangeRequest(key=b"\0", range_end=b"\0")
        resp = await self._call(lambda c: c.kvstub.DeleteRange(req, timeout=self._timeout), idempotent=True)
        return int(resp.deleted)

    # --- leases --------------------------------------------------------------------------------

    async def grant_lease(self, ttl: int) -> int:
        req = rpc.LeaseGrantRequest(TTL=max(1, ttl))
        resp = await self._call(
            lambda c: c.leasestub.LeaseGrant(req, timeout=self._timeout), idempotent=False
        )
        if resp.error:
            raise StoreError(f"lease grant refused: {resp.error}")
        return int(resp.ID)

    async def refresh_lease(self, lease_id: int) -> int:
        async def keepalive(c: EtcdClient) -> Any:
            call = c.leasestub.LeaseKeepAlive(
                iter([rpc.LeaseKeepAliveRequest(ID=lease_id)]), timeout=self._timeout
            )
            try:
                async for reply in call:
                    return reply
                return None
            finally:
                call.cancel()

        reply = await self._call(keepalive, idempotent=True)
        # etcd answers an unknown lease with TTL <= 0, not an error status.
        if reply is None or reply.TTL <= 0:
            raise LeaseNotFound()
        return int(reply.TTL)

    async def revoke_lease(self, lease_id: int) -> None:
        req = rpc.LeaseRevokeRequest(ID=lease_id)
        try:
            await self._call(lambda c: c.leasestub.LeaseRevoke(req, timeout=self._timeout), idempotent=True)
        except LeaseNotFound:
            return  # already gone: revoking is idempotent

    # --- watch ---------------------------------------------------------------------------------

    async def watch(self, prefix: str, *, start_revision: int) -> AsyncIterator[list[WatchEvent]]:
        p = prefix.encode()
        create = rpc.WatchCreateRequest(key=p, range_end=_range_end(p), start_revision=start_revision)

        async def open_stream(c: EtcdClient) -> Any:
            # One gRPC stream per watch: cancelling the call releases the watch on the server.
            call = c.watchstub.Watch(metadata=_REQUIRE_LEADER)
            try:
                await call.write(rpc.WatchRequest(create_request=create))
                first = await asyncio.wait_for(call.read(), self._timeout)
            except BaseException:
                call.cancel()
                raise
            if first is grpc.aio.EOF or not first.created or first.canceled:
                call.cancel()
                reason = "stream ended" if first is grpc.aio.EOF else first.cancel_reason
                raise StoreError(f"etcd refused the watch: {reason}")
            return call

        try:
            call = await self._call(open_stream, idempotent=True)
        except TimeoutError as e:
            raise StoreUnavailable("state store unavailable (watch not created in time)") from e
        self._watch_calls.add(call)
        try:
            while True:
                try:
                    resp = await call.read()
                except asyncio.CancelledError:
                    task = asyncio.current_task()
                    if (task is not None and task.cancelling()) or not self._closed:
                        raise  # the consumer was cancelled: not an outage
                    raise StoreUnavailable("state store client closed while watching") from None
                except grpc.aio.AioRpcError as e:
                    if e.code() in _STREAM_LOST:
                        err = StoreUnavailable(
                            f"state store unavailable (watch stream lost: {e.code().name})"
                        )
                        err.add_note(e.details() or "")
                        raise err from e
                    raise _map_error(e) from e
                if resp is grpc.aio.EOF:
                    raise StoreUnavailable("state store unavailable (watch stream ended)")
                if resp.compact_revision:
                    raise CompactedError(start_revision, resp.compact_revision)
                if resp.canceled:
                    raise StoreUnavailable(f"state store unavailable (watch canceled: {resp.cancel_reason})")
                # One response may hold several revisions; yield one batch per revision (= per txn),
                # exactly like MemoryStore, so consumers see the same shapes on both backends.
                for _, group in itertools.groupby(resp.events, key=lambda ev: ev.kv.mod_revision):
                    yield [
                        WatchEvent(EventType.DELETE, _kv(ev.kv))
                        if ev.type == ev.DELETE
                        else WatchEvent(EventType.PUT, _kv(ev.kv))
                        for ev in group
                    ]
        finally:
            self._watch_calls.discard(call)
            call.cancel()

    # --- lifecycle -----------------------------------------------------------------------------

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        for call in list(self._watch_calls):
            call.cancel()
        for c in self._clients or ():
            # Bounded: closing a grpc.aio channel while its streams are being cancelled has been
            # seen to hang (1 run in ~10 of the election contract tests); a stuck close must not
            # hang a replica's shutdown.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(c.close(), CLOSE_TIMEOUT_S)


def _unreachable(e: grpc.aio.AioRpcError) -> bool:
    details = e.details() or ""
    return e.code() in _UNREACHABLE or (e.code() in _STREAM_LOST and details.startswith("Stream removed"))


def _map_error(e: grpc.aio.AioRpcError) -> StoreError:
    """One place from etcd's gRPC statuses to the store's errors (the caller chains ``from e``)."""
    details = e.details() or ""
    if _unreachable(e):
        err: StoreError = StoreUnavailable(f"state store unavailable ({e.code().name})")
        err.add_note(details)
        return err
    if "lease not found" in details:
        return LeaseNotFound()
    if e.code() == grpc.StatusCode.CANCELLED:
        return StoreUnavailable("state store unavailable (call cancelled)")
    err = StoreError(f"state store error ({e.code().name})")
    err.add_note(details)
    return err
