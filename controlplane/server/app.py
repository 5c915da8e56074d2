"""Build and run one control-plane replica: two TLS ports, one set of servicers.

- The API port requires a client certificate from the federation CA (mutual TLS) for every call.
- The enrollment port is server-authenticated TLS only and serves Enroll alone: gRPC Python can
  either require client certificates or not request them at all, so a joining site (which has no
  certificate yet) needs a port of its own. Every other rpc there fails UNAUTHENTICATED because
  no verified identity is present.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from dataclasses import dataclass
from pathlib import Path

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

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
from controlplane.domain.roster import ROSTER_FILE, SignedRoster
from controlplane.domain.safety_rules import DEFAULT_RULES, IncidentRule
from controlplane.pki.ca import SITE_TTL, CertificateAuthority
from controlplane.pki.directive_key import ensure_directive_key
from controlplane.pki.keys import load_certificate
from controlplane.pki.log_key import ensure_log_key
from controlplane.pki.safety_key import ensure_safety_key
from controlplane.process import tune_gc
from controlplane.server.audit_servicer import AuditServicer
from controlplane.server.federation_servicer import FederationServicer
from controlplane.server.job_servicer import JobServicer
from controlplane.server.release_servicer import ReleaseServicer
from controlplane.server.runtime import Runtime
from controlplane.server.safety_servicer import SafetyServicer
from controlplane.server.site_servicer import SiteServicer
from controlplane.server.watch_servicer import WatchServicer
from controlplane.services.safety import SafetySettings
from controlplane.store import Store

log = logging.getLogger(__name__)

#: gRPC core cancels not-yet-accepted calls past ~1,000-3,000 pending; a fleet of thousands of
#: sites reconnecting after a restart hits that, so raise the limits well above the fleet size.
SERVER_OPTIONS = (
    # Without this a second server on a busy port binds too (SO_REUSEPORT) and steals half the calls.
    ("grpc.so_reuseport", 0),
    # What bounds the memory one inbound message can take (gRPC refuses a larger one with
    # RESOURCE_EXHAUSTED before any of our code runs, so it cannot be audited). Real requests are
    # < 64 KiB; the servicers refuse, and audit, anything over 256 KiB (rpc.MAX_REQUEST_BYTES,
    # site_input.MAX_LINK_MESSAGE_BYTES). Was 4 MiB: three 3.2 MB heartbeats got stored.
    ("grpc.max_receive_message_length", 1024 * 1024),
    ("grpc.max_send_message_length", 8 * 1024 * 1024),
    ("grpc.max_concurrent_streams", 100_000),
    ("grpc.server.max_pending_requests", 50_000),
    ("grpc.server.max_pending_requests_hard_limit", 50_000),
    ("grpc.keepalive_time_ms", 30_000),
    ("grpc.keepalive_timeout_ms", 10_000),
    ("grpc.http2.min_ping_interval_without_data_ms", 10_000),
    ("grpc.keepalive_permit_without_calls", 1),
)


@dataclass
class ServerConfig:
    dir: Path
    listen: str = "127.0.0.1:7443"
    enroll_listen: str = ""  # default: the API port + 1
    replica_id: str = "cp-0"
    heartbeat_interval: float = 5.0
    lease_ttl: int = 5
    advertise: str = ""
    #: Lifetime of site certificates; sites renew at two thirds of it.
    site_cert_ttl: dt.timedelta = SITE_TTL
    #: Approvals a global halt needs (1: takes effect at once; 2: a second admin must approve).
    global_halt_approvals: int = 1
    #: Incident rules (``--safety-rules FILE``); see controlplane/domain/safety_rules.py.
    safety_rules: tuple[IncidentRule, ...] = DEFAULT_RULES
    #: Seconds between signed beacons on each link; 0 means the heartbeat interval.
    beacon_interval: float = 0.0
    #: Least seconds between two checkpoints of the audit log this replica signs.
    checkpoint_interval: float = 1.0


def _host_port(addr: str) -> tuple[str, int]:
    host, _, port = addr.rpartition(":")
    return host or "0.0.0.0", int(port)


class ControlPlane:
    def __init__(self, config: ServerConfig, store: Store) -> None:
        self.config = config
        self.store = store
        d = config.dir
        self.ca = CertificateAuthority.load(d)
        self._server_key = (d / "server.key").read_bytes()
        self._server_cert = (d / "server.crt").read_bytes()
        load_certificate(d / "server.crt")  # fail early on a damaged file
        # Created here for PKI directories made before safety controls existed.
        self.safety_key = ensure_safety_key(d)
        # Likewise the log key (docs/security.md): created on first start when init predates it.
        self.log_key = ensure_log_key(d, self.ca.trust_domain)
        # And the directive key, which signs every directive (never stored in the store).
        self.directive_key = ensure_directive_key(d)
        # Roster v1 (init's roster.json) seeds the store on first start; later versions chain.
        roster = d / ROSTER_FILE
        self.roster_seed = SignedRoster.from_json(roster.read_bytes()) if roster.exists() else None
        self.server: grpc.aio.Server | None = None
        self.port = 0
        self.enroll_port = 0
        self.runtime: Runtime | None = None

    @property
    def address(self) -> str:
        host, _ = _host_port(self.config.listen)
        return f"{'127.0.0.1' if host in ('0.0.0.0', '') else host}:{self.port}"

    @property
    def enroll_address(self) -> str:
        host, _ = _host_port(self.config.listen)
        return f"{'127.0.0.1' if host in ('0.0.0.0', '') else host}:{self.enroll_port}"

    async def start(self) -> None:
        server = grpc.aio.server(options=SERVER_OPTIONS)
        pair = [(self._server_key, self._server_cert)]
        mtls = grpc.ssl_server_credentials(pair, root_certificates=self.ca.cert_pem, require_client_auth=True)
        tls = grpc.ssl_server_credentials(pair)
        host, port = _host_port(self.config.listen)
        self.port = _bind(server, "--listen", f"{host}:{port}", mtls)
        if self.config.enroll_listen:
            ehost, eport = _host_port(self.config.enroll_listen)
        else:
            ehost, eport = host, (self.port + 1 if port else 0)
        self.enroll_port = _bind(server, "--enroll-listen (default: API port + 1)", f"{ehost}:{eport}", tls)
        rt = Runtime(
            store=self.store,
            ca=self.ca,
            replica_id=self.config.replica_id,
            address=self.config.advertise or self.address,
            enroll_address=self.enroll_address,
            heartbeat_interval=self.config.heartbeat_interval,
            lease_ttl=self.config.lease_ttl,
            site_cert_ttl=self.config.site_cert_ttl,
            safety_key=self.safety_key,
            safety_settings=SafetySettings(
                global_halt_approvals=self.config.global_halt_approvals,
                rules=self.config.safety_rules,
                beacon_interval=self.config.beacon_interval or self.config.heartbeat_interval,
            ),
            log_key=self.log_key,
            directive_key=self.directive_key,
            checkpoint_interval=self.config.checkpoint_interval,
            roster_seed=self.roster_seed,
        )
        fgrpc.add_FederationServiceServicer_to_server(FederationServicer(rt), server)
        sgrpc.add_SiteServiceServicer_to_server(SiteServicer(rt), server)
        xgrpc.add_SafetyServiceServicer_to_server(SafetyServicer(rt), server)
        ogrpc.add_ReleaseServiceServicer_to_server(ReleaseServicer(rt), server)
        agrpc.add_AuditServiceServicer_to_server(AuditServicer(rt), server)
        wgrpc.add_WatchServiceServicer_to_server(WatchServicer(rt), server)
        jgrpc.add_JobServiceServicer_to_server(JobServicer(rt), server)
        health_servicer = health.aio.HealthServicer()
        health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
        names = (
            federation_pb2.DESCRIPTOR.services_by_name["FederationService"].full_name,
            site_pb2.DESCRIPTOR.services_by_name["SiteService"].full_name,
            safety_pb2.DESCRIPTOR.services_by_name["SafetyService"].full_name,
            rollouts_pb2.DESCRIPTOR.services_by_name["ReleaseService"].full_name,
            audit_pb2.DESCRIPTOR.services_by_name["AuditService"].full_name,
            watch_pb2.DESCRIPTOR.services_by_name["WatchService"].full_name,
            jobs_pb2.DESCRIPTOR.services_by_name["JobService"].full_name,
            health_pb2.DESCRIPTOR.services_by_name["Health"].full_name,
            reflection.SERVICE_NAME,
        )
        reflection.enable_server_reflection(names, server)
        await server.start()
        await rt.start()
        for name in ("", *names[:2]):
            await health_servicer.set(name, health_pb2.HealthCheckResponse.SERVING)
        self.server, self.runtime = server, rt
        log.info(
            "replica %s serving mTLS on %s, enrollment on %s",
            self.config.replica_id,
            self.address,
            self.enroll_address,
        )

    async def stop(self, grace: float = 5.0) -> None:
        """Graceful stop: refuse new calls, let running ones finish for ``grace`` seconds."""
        if self.server is not None:
            await self.server.stop(grace)
        if self.runtime is not None:
            await self.runtime.stop()

    async def wait(self) -> None:
        assert self.server is not None
        await self.server.wait_for_termination()


async def serve_until_signal(cp: ControlPlane) -> None:
    import signal

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await cp.start()
    tune_gc()
    await stop.wait()
    log.info("signal received, stopping gracefully")
    await cp.stop()


def _bind(server: grpc.aio.Server, flag: str, address: str, creds: grpc.ServerCredentials) -> int:
    """Bind one port, or say which flag named an address that cannot be bound (grpc raises a bare
    RuntimeError for a port in use, which ``serve`` would show as a traceback)."""
    try:
        return server.add_secure_port(address, creds)
    except RuntimeError:
        raise OSError(
            f"{flag} {address}: cannot listen there (the port is in use or the address is not local)"
        ) from None
