"""The site link: one outbound mTLS stream to the federation, kept up for ever.

Hello (facts, last applied sequence) -> Welcome -> directives in order; heartbeats on a timer.
On any loss the agent reconnects with jittered exponential backoff and resumes after the last
sequence it applied, so nothing is skipped; a directive it already applied is acked again without
a second effect. While the link is down nothing the site runs changes.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import grpc
from google.protobuf import json_format

from controlplane.api.v1 import site_pb2 as spb
from controlplane.api.v1 import site_pb2_grpc as sgrpc
from controlplane.api.v1 import types_pb2 as tpb
from controlplane.client.channel import secure_channel
from controlplane.client.enroll import Facts, site_csr
from controlplane.client.retry import LINK, RetryPolicy
from controlplane.pki.keys import load_certificate, write_atomic, write_private_key
from operators.agent.backend import Refused, WorkloadBackend
from operators.agent.policy import LocalPolicy
from operators.agent.records import ApplicationRecord, Applied

log = logging.getLogger(__name__)

#: Renew the site certificate once this share of its lifetime has passed (16 h of 24 h).
RENEW_AT = 2 / 3
#: Outcomes re-sent after each reconnect. An ack can only be lost with the stream it was on, so
#: only the last few can be missing; 256 covers a burst of directives in flight at a crash.
REPLAY_OUTCOMES = 256


class SiteAgent:
    def __init__(
        self,
        *,
        facts: Facts,
        servers: list[str],
        cred_dir: Path,
        backend: WorkloadBackend,
        record: ApplicationRecord | None = None,
        policy: LocalPolicy | None = None,
        retry: RetryPolicy = LINK,
        on_event: Callable[[str, dict[str, Any]], None] | None = None,
    ) -> None:
        self.facts = facts
        self.servers = servers
        self.cred_dir = cred_dir
        self.backend = backend
        self.record = record or ApplicationRecord()
        self.policy = policy or LocalPolicy()
        self.retry = retry
        self.on_event = on_event or (lambda kind, data: None)
        self.connected = asyncio.Event()
        self.heartbeat_interval = 5.0
        self.replica = ""
        self.connects = 0
        self._server_index = 0
        self._outbox: asyncio.Queue[spb.ConnectRequest] = asyncio.Queue()

    # --- credentials --------------------------------------------------------------------------

    def _tls(self) -> tuple[bytes, bytes, bytes]:
        d = self.cred_dir
        return (d / "ca.crt").read_bytes(), (d / "site.key").read_bytes(), (d / "site.crt").read_bytes()

    def renewal_due(self, now: dt.datetime | None = None) -> bool:
        cert = load_certificate(self.cred_dir / "site.crt")
        start, end = cert.not_valid_before_utc, cert.not_valid_after_utc
        now = now or dt.datetime.now(dt.UTC)
        return now >= start + (end - start) * RENEW_AT

    async def renew(self, channel: grpc.aio.Channel) -> None:
        """New key, new CSR, new certificate; files replaced atomically (key first is safe: the
        running channel already holds the old pair in memory)."""
        key, csr = site_csr(self.facts.site_id)
        resp = await sgrpc.SiteServiceStub(channel).RenewCertificate(
            spb.RenewCertificateRequest(site_id=self.facts.site_id, csr_pem=csr), timeout=15
        )
        write_private_key(self.cred_dir / "site.key", key)  # type: ignore[arg-type]
        write_atomic(self.cred_dir / "site.crt", resp.certificate_pem.encode(), 0o644)
        self.on_event("renewed", {"not_after": resp.not_after.ToJsonString()})

    # --- the link -----------------------------------------------------------------------------

    async def run(self) -> None:
        """Stay connected for ever (cancel to stop)."""
        while True:
            async for attempt in self.retry.retrying():
                with attempt:
                    await self._session()
            # A stream that ended cleanly (server shutdown) also means: reconnect, with a new backoff.

    async def _session(self) -> None:
        target = self.servers[self._server_index % len(self.servers)]
        ca, key, cert = self._tls()
        channel = secure_channel(target, ca, key, cert)
        try:
            if self.renewal_due():
                await self.renew(channel)
                await channel.close()
                ca, key, cert = self._tls()
                channel = secure_channel(target, ca, key, cert)
            await self._stream(channel)
        except grpc.aio.AioRpcError:
            self._server_index += 1  # fail over to the next address on the next attempt
            raise
        finally:
            self.connected.clear()
            await channel.close()

    async def _requests(self, hello: spb.ConnectRequest) -> AsyncIterator[spb.ConnectRequest]:
        yield hello
        while True:
            yield await self._outbox.get()

    async def _stream(self, channel: grpc.aio.Channel) -> None:
        """One stream until it fails, the server ends it, or the certificate is due for renewal
        (then it is renewed on this channel and the stream ends, so the next one uses it)."""
        self._outbox = asyncio.Queue()
        hello = spb.ConnectRequest(
            hello=spb.Hello(
                site_id=self.facts.site_id,
                facts=self.facts.to_pb(await self._free()),
                last_applied_sequence=self.record.last_sequence,
            )
        )
        call = sgrpc.SiteServiceStub(channel).Connect(self._requests(hello))
        receiver = asyncio.create_task(self._receive(call))
        renewer = asyncio.create_task(self._renew_when_due(channel))
        try:
            done, _ = await asyncio.wait({receiver, renewer}, return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                task.result()  # re-raise a stream error for the retry loop
        finally:
            for task in (receiver, renewer):
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, grpc.aio.AioRpcError):
                    await task
            call.cancel()

    async def _receive(self, call: Any) -> None:
        heartbeats: asyncio.Task[None] | None = None
        try:
            async for msg in call:
                which = msg.WhichOneof("message")
                if which == "welcome":
                    self.heartbeat_interval = msg.welcome.heartbeat_interval_seconds or 5.0
                    self.replica = msg.welcome.replica_id
                    self.connects += 1
                    self.connected.set()
                    self.on_event("connected", {"replica": self.replica})
                    heartbeats = asyncio.create_task(self._heartbeats())
                    self._replay_outcomes()
                elif which == "directive":
                    await self._handle(msg.directive)
        finally:
            if heartbeats is not None:
                heartbeats.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await heartbeats

    async def _renew_when_due(self, channel: grpc.aio.Channel) -> None:
        cert = load_certificate(self.cred_dir / "site.crt")
        start, end = cert.not_valid_before_utc, cert.not_valid_after_utc
        due = start + (end - start) * RENEW_AT
        await asyncio.sleep(max(0.0, (due - dt.datetime.now(dt.UTC)).total_seconds()))
        await self.renew(channel)

    async def _free(self) -> dict[str, int]:
        used: dict[str, int] = {}
        for w in await self.backend.workloads():
            if w.accelerator and not w.halted:
                used[w.accelerator] = used.get(w.accelerator, 0) + w.replicas * w.accelerators_per_replica
        return {k: max(0, v - used.get(k, 0)) for k, v in self.facts.accelerators.items()}

    async def heartbeat(self) -> spb.ConnectRequest:
        free = await self._free()
        deployments = [
            tpb.DeploymentStatus(
                name=w.name,
                model=w.model,
                version=w.version,
                phase=w.phase,
                replicas=w.replicas,
                ready_replicas=w.ready_replicas,
                source=tpb.WORKLOAD_SOURCE_LOCAL if w.source == "local" else tpb.WORKLOAD_SOURCE_FEDERATION,
                halted=w.halted,
                safety_score=-1.0,
            )
            for w in sorted(await self.backend.workloads(), key=lambda w: w.name)
        ]
        return spb.ConnectRequest(
            heartbeat=spb.Heartbeat(
                site_id=self.facts.site_id,
                capacity={
                    k: tpb.AcceleratorCapacity(total=v, free=free.get(k, 0))
                    for k, v in self.facts.accelerators.items()
                },
                health=tpb.SITE_HEALTH_HEALTHY,
                deployments=deployments,
                last_applied_sequence=self.record.last_sequence,
            )
        )

    async def _heartbeats(self) -> None:
        while True:
            self._outbox.put_nowait(await self.heartbeat())
            await asyncio.sleep(self.heartbeat_interval)

    # --- directives -----------------------------------------------------------------------------

    def _reply(self, d: tpb.Directive, entry: Applied) -> None:
        sid = self.facts.site_id
        if entry.outcome == "applied":
            self._outbox.put_nowait(
                spb.ConnectRequest(ack=spb.Ack(site_id=sid, directive_id=d.id, sequence=d.sequence))
            )
        else:
            self._outbox.put_nowait(
                spb.ConnectRequest(
                    reject=spb.Reject(
                        site_id=sid, directive_id=d.id, sequence=d.sequence, reason=entry.reason
                    )
                )
            )

    def _replay_outcomes(self) -> None:
        """Re-send the outcome of the most recent directives: an ack lost with the previous stream
        would otherwise leave the federation waiting for a directive the site already applied (the
        server only re-sends what comes after the sequence in Hello). Duplicates are no-ops there."""
        for e in self.record.entries[-REPLAY_OUTCOMES:]:
            d = tpb.Directive(sequence=e.sequence, id=e.directive_id)
            self._reply(d, e)

    async def _handle(self, d: tpb.Directive) -> None:
        seen = self.record.get(d.id)
        if seen is not None or d.sequence <= self.record.last_sequence:
            # Already handled (a re-delivery): answer as before, change nothing.
            self._reply(d, seen or Applied(d.sequence, d.id, "", "applied"))
            return
        entry = await self._apply(d)
        self.record.add(entry)
        self.on_event(entry.outcome, {"sequence": d.sequence, "id": d.id, "reason": entry.reason})
        self._reply(d, entry)

    async def _apply(self, d: tpb.Directive) -> Applied:
        kind = tpb.DirectiveKind.Name(d.kind).removeprefix("DIRECTIVE_KIND_").title()
        now = dt.datetime.now(dt.UTC)
        if d.HasField("expires_at") and d.expires_at.ToDatetime(dt.UTC) < now:
            return Applied(
                d.sequence, d.id, kind, "rejected", "expired: the directive's expires_at has passed"
            )
        try:
            if d.kind == tpb.DIRECTIVE_KIND_DEPLOY:
                payload = json_format.MessageToDict(d.deploy, preserving_proto_field_name=True)
                payload.setdefault("replicas", 0)
                reason = self.policy.check_deploy(payload, await self._free())
                if reason:
                    raise Refused(reason)
                await self.backend.deploy(payload)
            elif d.kind == tpb.DIRECTIVE_KIND_UNDEPLOY:
                await self.backend.undeploy(d.undeploy.deployment_name)
            else:
                raise Refused(f"unsupported directive kind {kind}")
        except Refused as e:
            return Applied(d.sequence, d.id, kind, "rejected", e.reason[:512])
        return Applied(d.sequence, d.id, kind, "applied")
