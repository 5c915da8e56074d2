"""The site link: one outbound mTLS stream to the federation, kept up for ever.

Hello (facts, last applied sequence) -> Welcome -> directives in order; heartbeats on a timer.
On any loss the agent reconnects with jittered exponential backoff and resumes after the last
sequence it applied, so nothing is skipped; a directive it already applied is acked again without
a second effect. While the link is down nothing the site runs changes.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import datetime as dt
import logging
import random
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import grpc

from controlplane.api import directive_kinds
from controlplane.api.directive_kinds import Lane
from controlplane.api.v1 import safety_pb2 as xpb
from controlplane.api.v1 import site_pb2 as spb
from controlplane.api.v1 import site_pb2_grpc as sgrpc
from controlplane.api.v1 import types_pb2 as tpb
from controlplane.client.channel import secure_channel
from controlplane.client.enroll import Facts, site_csr
from controlplane.client.retry import LINK, RetryPolicy
from controlplane.pki.keys import load_certificate, write_atomic, write_private_key
from controlplane.telemetry import logs
from operators.agent import telemetry
from operators.agent.backend import Refused, WorkloadBackend
from operators.agent.directive_trust import DirectiveTrust
from operators.agent.handlers import HANDLERS
from operators.agent.policy import LocalPolicy
from operators.agent.records import ApplicationRecord, Applied
from operators.agent.safety import SiteSafety
from operators.agent.site_log import SiteLog

log = logging.getLogger(__name__)

#: Renew the site certificate once this share of its lifetime has passed (16 h of 24 h).
RENEW_AT = 2 / 3
#: Outcomes re-sent after each reconnect. An ack can only be lost with the stream it was on, so
#: only the last few can be missing; 256 covers a burst of directives in flight at a crash.
REPLAY_OUTCOMES = 256
#: Incidents kept while there is no link; past this, the oldest are dropped first.
MAX_UNSENT_INCIDENTS = 1000
#: Which Workload aggregates go upstream as measured (a None aggregate was not measured).
_MEASURED = (
    (tpb.HEALTH_METRIC_ERROR_RATE, "error_rate"),
    (tpb.HEALTH_METRIC_LATENCY_P95, "latency_p95_ms"),
    (tpb.HEALTH_METRIC_SAFETY_SCORE, "safety_score"),
)


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
        #: Messages for the current stream; None ends its request iterator (see _stream).
        self._outbox: asyncio.Queue[spb.ConnectRequest | None] = asyncio.Queue()
        #: Incidents raised while there was no link (see report_incident).
        self._unsent_incidents: collections.deque[spb.ConnectRequest] = collections.deque(
            maxlen=MAX_UNSENT_INCIDENTS
        )
        #: Signed halts/resumes, beacons and fail-closed (operators/agent/safety.py).
        self.safety = SiteSafety(
            facts.site_id,
            backend,
            self.policy,
            cred_dir,
            country=facts.country,
            on_event=self.on_event,
            persist=type(self.record) is not ApplicationRecord,  # durable iff the record is
        )
        #: The directive key and the publishers this site trusts (operators/agent/directive_trust.py).
        self.trust = DirectiveTrust(facts.site_id, cred_dir)
        #: The site as a witness of its own history (operators/agent/site_log.py).
        self.log = SiteLog(
            facts.site_id, cred_dir, lambda: self.policy, persist=self.safety.persist, on_event=self.on_event
        )

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
        logs.bind(site=self.facts.site_id)  # this task's log lines (and its children's) name the site
        watchdog = asyncio.create_task(self.safety.watchdog(), name=f"fail-closed-{self.facts.site_id}")
        log_watch = asyncio.create_task(self.log.watch(self._send, self.connected), name="log-proofs")
        try:
            while True:
                async for attempt in self.retry.retrying():
                    with attempt:
                        await self._session()
                # A stream that ended cleanly (server shutdown) also means: reconnect, with a new backoff.
        finally:
            watchdog.cancel()
            log_watch.cancel()

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

    async def _requests(
        self, hello: spb.ConnectRequest, outbox: asyncio.Queue[spb.ConnectRequest | None]
    ) -> AsyncIterator[spb.ConnectRequest]:
        yield hello
        while (msg := await outbox.get()) is not None:
            yield msg

    async def _stream(self, channel: grpc.aio.Channel) -> None:
        """One stream until it fails, the server ends it, or the certificate is due for renewal
        (then it is renewed on this channel and the stream ends, so the next one uses it)."""
        outbox = self._outbox = asyncio.Queue()
        hello = spb.ConnectRequest(
            hello=spb.Hello(
                site_id=self.facts.site_id,
                facts=self.facts.to_pb(await self.free()),
                last_applied_sequence=self.record.last_sequence,
                last_safety_sequence=self.safety.last_sequence,
                **self.log.hello(),
            )
        )
        call = sgrpc.SiteServiceStub(channel).Connect(self._requests(hello, outbox))
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
            # End this stream's request iterator: else gRPC's task consuming it waits on the old
            # queue until the event loop closes (a leak per reconnect, and a slow shutdown).
            outbox.put_nowait(None)
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
                    while self._unsent_incidents:
                        self._outbox.put_nowait(self._unsent_incidents.popleft())
                    heartbeats = asyncio.create_task(self._heartbeats())
                    self._replay_outcomes()
                elif which == "directive":
                    with logs.context(directive=msg.directive.id):
                        await self._handle(msg.directive)
                elif which == "log_proof":
                    self.log.on_proof(msg.log_proof)
                elif which == "beacon":
                    self.log.on_beacon(msg.beacon)
                    for report in self.safety.on_beacon(msg.beacon):
                        self._outbox.put_nowait(report)
                elif which == "roster":  # only versions that chain (operators/agent/approvals.py)
                    self.on_event("roster", {"refused": self.safety.approvals.offer(msg.roster.chain)})
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

    async def used(self, *, exclude: str = "", federation_only: bool = False) -> dict[str, int]:
        """Accelerators in use by type, without the workload ``exclude`` (the one a Deploy is about
        to replace, so that an update is not counted twice)."""
        used: dict[str, int] = {}
        for w in await self.backend.workloads():
            if not w.accelerator or w.halted or w.name == exclude:
                continue
            if federation_only and w.source == "local":
                continue
            used[w.accelerator] = used.get(w.accelerator, 0) + w.replicas * w.accelerators_per_replica
        return used

    async def free(self, *, exclude: str = "") -> dict[str, int]:
        used = await self.used(exclude=exclude)
        return {k: max(0, v - used.get(k, 0)) for k, v in self.facts.accelerators.items()}

    async def heartbeat(self) -> spb.ConnectRequest:
        free = await self.free()
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
                error_rate=w.error_rate or 0.0,
                latency_p95_ms=w.latency_p95_ms or 0.0,
                safety_score=w.safety_score or 0.0,
                release=w.release,
                digest=w.digest,
                measured=[m for m, v in _MEASURED if getattr(w, v) is not None],
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

    def _send(self, msg: spb.ConnectRequest) -> None:
        self._outbox.put_nowait(msg)

    def report_incident(self, release: str, severity: int, category: str, count: int = 1) -> None:
        """Report incidents over the link (metadata and a count only). Without a link they wait,
        the newest ``MAX_UNSENT_INCIDENTS`` of them, and go first thing on the next one; the
        federation timestamps them on arrival (``observed_at`` keeps the site's time)."""
        inc = xpb.IncidentReport(
            site_id=self.facts.site_id,
            release=release,
            severity=severity,  # type: ignore[arg-type]
            category=category,
            count=count,
        )
        inc.observed_at.GetCurrentTime()
        msg = spb.ConnectRequest(incident=inc)
        if self.connected.is_set():
            self._outbox.put_nowait(msg)
        else:
            self._unsent_incidents.append(msg)

    async def _heartbeats(self) -> None:
        while True:
            self._outbox.put_nowait(await self.heartbeat())
            # Jittered, and only downward (the federation counts missed intervals): sites that all
            # reconnected at once after an outage drift apart instead of arriving as one burst.
            await asyncio.sleep(self.heartbeat_interval * random.uniform(0.8, 1.0))

    # --- directives -----------------------------------------------------------------------------

    def _reply(self, d: tpb.Directive, entry: Applied) -> None:
        sid = self.facts.site_id
        if entry.outcome == "applied":
            self._outbox.put_nowait(
                spb.ConnectRequest(
                    ack=spb.Ack(
                        site_id=sid,
                        directive_id=d.id,
                        sequence=d.sequence,
                        safety_sequence=entry.safety_sequence,
                    )
                )
            )
        else:
            self._outbox.put_nowait(
                spb.ConnectRequest(
                    reject=spb.Reject(
                        site_id=sid,
                        directive_id=d.id,
                        sequence=d.sequence,
                        reason=entry.reason,
                        safety_sequence=entry.safety_sequence,
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
        refused = self.trust.check(d)  # every directive: signed by the directive key, for this site
        if refused is not None:
            kind = directive_kinds.name_of(d.kind)
            log.warning("refused directive %s (sequence %d): %s", d.id[:40], d.sequence, refused)
            entry = Applied(d.sequence, d.id, kind, "rejected", refused, safety_sequence=d.safety_sequence)
            if not d.safety_sequence:
                self.record.add(entry)
                await self.record.flush()
            self.on_event("rejected", {"sequence": d.sequence, "id": d.id, "reason": refused})
            self._reply(d, entry)
            return
        spec = directive_kinds.of(d.kind)
        if spec is not None and spec.lane is Lane.SAFETY:
            # The safety lane: verified (signature, scope, expiry, replay, sequence) before acting.
            entry = await self.safety.handle(d)
            telemetry.count(self.facts.site_id, entry)
            if entry.outcome == "applied" and spec is directive_kinds.HALT:
                self.log.halt_applied(d)  # applied at once; its record is checked within a bound
            self.record.add(entry)
            await self.record.flush()
            self._reply(d, entry)
            self.log.ask(d.id)
            return
        seen = self.record.get(d.id)
        if seen is not None or d.sequence <= self.record.last_sequence:
            # Already handled (a re-delivery): answer as before, change nothing.
            self._reply(d, seen or Applied(d.sequence, d.id, "", "applied"))
            return
        entry = await self._apply(d)
        telemetry.count(self.facts.site_id, entry)
        self.record.add(entry)
        await self.record.flush()  # durable before the ack: a restart must not apply it again
        self.on_event(entry.outcome, {"sequence": d.sequence, "id": d.id, "reason": entry.reason})
        self._reply(d, entry)
        if entry.outcome == "applied":
            # Report the new state now rather than at the next heartbeat: rollout waves wait for it.
            self._outbox.put_nowait(await self.heartbeat())

    async def _apply(self, d: tpb.Directive) -> Applied:
        spec = directive_kinds.of(d.kind)
        kind = directive_kinds.name_of(d.kind)
        now = dt.datetime.now(dt.UTC)
        if d.HasField("expires_at") and d.expires_at.ToDatetime(dt.UTC) < now:
            return Applied(
                d.sequence, d.id, kind, "rejected", "expired: the directive's expires_at has passed"
            )
        handle = HANDLERS.get(kind) if spec is not None and spec.lane is Lane.ORDERED else None
        try:
            if handle is None or spec is None:
                raise Refused(f"unsupported directive kind {kind}")
            await handle(self, d, spec.payload_of(d))
        except Refused as e:
            return Applied(d.sequence, d.id, kind, "rejected", e.reason[:512])
        return Applied(d.sequence, d.id, kind, "applied")
