"""The services of one control-plane replica, wired together, and its background tasks.

Background tasks: the replica's lease and registration, the directive watch that wakes links,
the liveness publisher, and the leader election whose winner runs the registered controllers
(services/controllers.py: liveness sweeper, incident rules, incident pruning, rollout engine).
Every controller write carries the election's fence.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import datetime as dt
import logging
import math
from dataclasses import dataclass
from typing import Any

from google.protobuf import json_format

from controlplane.api.v1 import types_pb2 as tpb
from controlplane.domain.ratelimit import TokenBuckets
from controlplane.domain.records import LIVENESS, REPLICAS, ReplicaRecord
from controlplane.domain.roster import SignedRoster
from controlplane.domain.site_input import clean_text
from controlplane.errors import StargateError
from controlplane.pki.ca import SITE_TTL, CertificateAuthority
from controlplane.pki.directive_key import DirectiveKey
from controlplane.pki.log_key import LogKey
from controlplane.pki.safety_key import SafetyKey
from controlplane.server import convert
from controlplane.server.log_link import DEPLOY_PROOF_WAIT_S
from controlplane.services import clock
from controlplane.services.audit import AuditLog
from controlplane.services.checkpoints import Checkpoints
from controlplane.services.controllers import (
    IncidentPruning,
    IncidentRules,
    JobController,
    LeaderRunner,
    LivenessSweeper,
    RolloutController,
)
from controlplane.services.directives import Directives
from controlplane.services.enrollment import Enrollment
from controlplane.services.incidents import Incidents
from controlplane.services.job_engine import JobEngine
from controlplane.services.jobs import Jobs
from controlplane.services.links import LinkHub
from controlplane.services.liveness import Liveness, parse_map
from controlplane.services.log_proofs import LogProofs
from controlplane.services.refusals import Refusals
from controlplane.services.registry import Registry
from controlplane.services.releases import Releases
from controlplane.services.rollout_engine import RolloutEngine
from controlplane.services.rollouts import Rollouts
from controlplane.services.roster import RosterStore
from controlplane.services.safety import Safety, SafetySettings
from controlplane.services.witnesses import AdminWitnessList
from controlplane.store import Store
from controlplane.store.election import LeaderElection
from controlplane.store.lease import LeaseKeeper
from controlplane.tasks import cancel_and_wait

log = logging.getLogger(__name__)
#: Audit actor of the liveness controller; the replica id is appended (``controller/liveness@cp-a``)
#: so that the audit log says which leader acted.
CONTROLLER = "controller/liveness"
#: Audit actor of the safety controller (incident rules) and of recorded acks (the sites are listed).
SAFETY_CONTROLLER = "controller/safety"
#: Longest wait between attempts to re-register after a store outage: the liveness map is
#: republished only after re-registration, and the leader's sweeper waits for it.
REGISTER_RETRY_MAX = 1.0


@dataclass(frozen=True)
class Status:
    leader: str
    replicas: list[tuple[ReplicaRecord, int]]
    healthy: bool


class Runtime:
    def __init__(
        self,
        *,
        store: Store,
        ca: CertificateAuthority,
        replica_id: str,
        address: str = "",
        enroll_address: str = "",
        heartbeat_interval: float = 5.0,
        lease_ttl: int = 5,
        site_cert_ttl: dt.timedelta = SITE_TTL,
        safety_key: SafetyKey | None = None,
        safety_settings: SafetySettings | None = None,
        log_key: LogKey | None = None,
        checkpoint_interval: float = 1.0,
        directive_key: DirectiveKey | None = None,
        roster_seed: SignedRoster | None = None,
    ) -> None:
        self.store = store
        self.ca = ca
        self.replica_id = replica_id
        self.address = address
        self.enroll_address = enroll_address
        self.heartbeat_interval = heartbeat_interval
        self.lease_ttl = lease_ttl
        self.audit = AuditLog(store)
        #: Refused calls and site messages, audited in bounded volume (services/refusals.py).
        self.refusals = Refusals(self.audit)
        #: Failed enrollments per peer address: 10 in a burst, then 1 per second (a join that
        #: fails for a typo is retried at once; 2,000 bad calls in 2.5 s are not).
        self.enroll_limiter = TokenBuckets(rate=1.0, burst=10.0)
        self.witnesses = AdminWitnessList(store, self.audit)
        self.checkpoints = Checkpoints(
            store,
            self.audit.tree,
            log_key or LogKey.generate(ca.trust_domain),
            self.witnesses,
            interval=checkpoint_interval,
        )
        self.audit.subscribe(self.checkpoints.notify)
        #: What links show sites of the log (services/log_proofs.py, server/log_link.py).
        self.log_proofs = LogProofs(store, self.checkpoints, self.audit.tree)
        self.deploy_proof_wait = DEPLOY_PROOF_WAIT_S
        self.registry = Registry(store, self.audit)
        self.enrollment = Enrollment(store, self.audit, ca, site_cert_ttl, self.refusals)
        #: Signs every directive (controlplane/pki/directive_key.py); on this replica's disk only.
        self.directive_key = directive_key or DirectiveKey.generate()
        self.directives = Directives(store, self.audit, self.directive_key)
        self.links = LinkHub(store)
        self.liveness = Liveness(store, self.registry, replica_id, heartbeat_interval)
        self.election = LeaderElection(store, "controllers", replica_id, ttl=lease_ttl)
        self.safety = Safety(
            store,
            self.audit,
            self.registry,
            safety_key or SafetyKey.generate(),
            safety_settings or SafetySettings(beacon_interval=heartbeat_interval),
            ack_actor=f"{SAFETY_CONTROLLER}@{replica_id}",
        )
        self.incidents = Incidents(store, self.audit, self.safety)
        self.roster = RosterStore(store, self.audit, roster_seed)
        self.safety.roster = self.roster
        self.releases = Releases(store, self.audit)
        self.rollouts = Rollouts(store, self.audit, self.registry, self.releases)
        self.rollout_engine = RolloutEngine(
            store,
            self.audit,
            self.registry,
            self.directives,
            self.rollouts,
            f"controller/rollouts@{replica_id}",
            freeze=self.safety.frozen_reason,
        )
        self.jobs = Jobs(
            store, self.audit, self.registry, self.releases, lambda: self.rollouts.admin_may_approve
        )
        self.job_engine = JobEngine(
            self.jobs, self.registry, self.directives, f"controller/jobs@{replica_id}", self.releases
        )
        #: Seconds between rollout engine steps (each step is one read of the registry + records).
        self.rollout_tick = min(0.25, heartbeat_interval / 4)
        self._lease: LeaseKeeper | None = None
        self._tasks: list[asyncio.Task[Any]] = []
        #: What this replica last stored of each site's reports (skip writes that change nothing).
        self._facts: dict[str, dict[str, Any]] = {}
        self.controller_actor = f"{CONTROLLER}@{replica_id}"
        #: Leader-only work, one registration each (services/controllers.py).
        self.controllers = LeaderRunner(self.election)
        for c in (
            LivenessSweeper(self.liveness, self.controller_actor, heartbeat_interval / 4),
            IncidentRules(self.incidents, f"{SAFETY_CONTROLLER}@{replica_id}", heartbeat_interval / 4),
            IncidentPruning(self.incidents),
            RolloutController(self.rollout_engine, self.rollout_tick),
            JobController(self.job_engine, self.rollout_tick),
        ):
            self.controllers.register(c)

    # --- background ---------------------------------------------------------------------------

    async def start(self) -> None:
        self._tasks = [
            asyncio.create_task(self._keep_registered(), name="replica-lease"),
            asyncio.create_task(self.links.run(), name="directive-watch"),
            asyncio.create_task(self.safety.run_lane_watch(), name="safety-lane-watch"),
            asyncio.create_task(self.liveness.run_publisher(self._lease_id), name="liveness-publisher"),
            asyncio.create_task(self.election.run(), name="election"),
            asyncio.create_task(self.controllers.run(), name="controllers"),
            asyncio.create_task(self.refusals.run(), name="refusal-audit"),
            asyncio.create_task(self.checkpoints.run(), name="audit-checkpoints"),
        ]

    def _lease_id(self) -> int:
        return self._lease.lease_id if self._lease is not None and self._lease.valid() else 0

    async def _keep_registered(self) -> None:
        """Hold a replica lease with the registration key on it; re-register after any loss."""
        record = ReplicaRecord(self.replica_id, self.address, self.enroll_address, clock.now())
        delay = 0.1
        while True:
            keeper = LeaseKeeper(self.store, self.lease_ttl)
            try:
                lease = await keeper.start()
                self._lease = keeper
                await self.store.put(REPLICAS + self.replica_id, record.to_json(), lease=lease)
                delay = 0.1
                await keeper.lost.wait()
            except StargateError as e:
                log.warning("replica registration failed: %s", e.public)
            except Exception:  # never let the registration loop die: the replica would vanish
                log.exception("replica registration failed")
            finally:
                await keeper.stop(revoke=False)
            await asyncio.sleep(delay)
            delay = min(delay * 2, REGISTER_RETRY_MAX)

    async def stop(self) -> None:
        for t in self._tasks:
            t.cancel()
        for t in self._tasks:
            await cancel_and_wait(t)
        with contextlib.suppress(TimeoutError):  # what is still counted is written, if the store lets us
            await asyncio.wait_for(self.refusals.close(), 2.0)
        with contextlib.suppress(Exception):
            await self.election.resign()
        if self._lease is not None:
            await self._lease.stop(revoke=True)

    # --- reads --------------------------------------------------------------------------------

    async def status(self) -> Status:
        healthy = await self.store.healthy()
        replicas: list[tuple[ReplicaRecord, int]] = []
        counts: dict[str, int] = {self.replica_id: len(self.links)}
        if healthy:
            with contextlib.suppress(StargateError):
                for kv in (await self.store.range(LIVENESS)).items:
                    rid = kv.key[len(LIVENESS) :]
                    if rid != self.replica_id:
                        with contextlib.suppress(ValueError):
                            counts[rid] = len(parse_map(kv.value)[1])
                for kv in (await self.store.range(REPLICAS)).items:
                    rec = ReplicaRecord.from_json(kv.value)
                    replicas.append((rec, counts.get(rec.replica_id, 0)))
        if not any(r.replica_id == self.replica_id for r, _ in replicas):
            replicas.append(
                (ReplicaRecord(self.replica_id, self.address, self.enroll_address, 0.0), len(self.links))
            )
        return Status(self.election.leader or "", sorted(replicas, key=lambda x: x[0].replica_id), healthy)

    # --- site facts -----------------------------------------------------------------------------

    async def site_facts(
        self,
        site_id: str,
        *,
        facts: Any = None,
        heartbeat: Any = None,
        last_applied: int = 0,
        datasets: list[dict[str, Any]] | None = None,
    ) -> None:
        """Store what a site reports, only when it changed (no store write per heartbeat)."""
        change: dict[str, Any] = {"last_applied_sequence": int(last_applied)}
        if facts is not None:
            change.update(
                region=facts.region[:64],
                labels=dict(facts.labels),
                operator_version=facts.operator_version[:64],
            )
            if facts.HasField("policy"):
                change["policy"] = json_format.MessageToDict(facts.policy, preserving_proto_field_name=True)
            if facts.capacity:
                change["capacity"] = convert.capacity_from_pb(facts.capacity)
        if heartbeat is not None:
            change["capacity"] = convert.capacity_from_pb(heartbeat.capacity)
            change["health"] = tpb.SiteHealth.Name(heartbeat.health)
            change["deployments"] = [_coarse(d) for d in heartbeat.deployments]
            change["reported_sequence"] = int(last_applied)
            change["datasets"] = list(datasets or [])
            change["jobs"] = [_coarse_job(j) for j in heartbeat.jobs]
        if facts is not None:
            # A new link: another replica may have stored newer reports meanwhile, so what this
            # replica remembers is no guide to what is stored; the next heartbeat is written.
            self._facts.pop(site_id, None)
        before = self._facts.get(site_id, {})
        merged = before | change
        if merged == before:
            return
        await self.registry.update(site_id, change)
        # Only after the write succeeded: a failed write is retried with the next heartbeat.
        self._facts[site_id] = merged


def _coarse(d: Any) -> dict[str, Any]:
    """A reported deployment with its aggregates rounded (error rate to 0.1%, p95 to 5 ms, safety
    score to 0.01): a stored change then means a real change, not noise - no write per heartbeat."""
    out: dict[str, Any] = json_format.MessageToDict(d, preserving_proto_field_name=True)
    measured = set(out.get("measured") or ())
    for key, metric, lo, hi in _AGGREGATES:
        value = out.get(key)
        if value is None:
            continue
        if not isinstance(value, int | float) or not math.isfinite(value):
            # NaN or infinity is no measurement (and would not round): stored as not measured.
            out.pop(key)
            measured.discard(metric)
            continue
        value = min(hi, max(lo, float(value)))
        out[key] = (
            round(value / 5) * 5 if key == "latency_p95_ms" else round(value, 3 if key == "error_rate" else 2)
        )
    if "measured" in out:
        out["measured"] = sorted(measured)
    return out


def _coarse_job(j: Any) -> dict[str, Any]:
    """A reported job run, its text made safe and its loss rounded to 0.001 and score to 0.01 (a
    stored change then means progress, not noise)."""
    loss = float(j.loss) if math.isfinite(j.loss) else -1.0
    score = float(j.eval_score) if math.isfinite(j.eval_score) else -1.0
    return {
        "job_id": j.job_id,
        "phase": j.phase,
        "step": int(j.step),
        "loss": round(loss, 3) if loss >= 0 else -1.0,
        "eval_score": round(min(1.0, score), 2) if score >= 0 else -1.0,
        "reason": clean_text(j.reason),
        "output_digest": j.output_digest,
        "variant_signature": base64.b64encode(j.variant_signature).decode(),
        "publisher_key": base64.b64encode(j.publisher_key).decode(),
    }


#: (field, its HealthMetric name, lowest, highest) of the aggregates a site reports.
_AGGREGATES = (
    ("error_rate", "HEALTH_METRIC_ERROR_RATE", 0.0, 1.0),
    ("latency_p95_ms", "HEALTH_METRIC_LATENCY_P95", 0.0, 3_600_000.0),
    ("safety_score", "HEALTH_METRIC_SAFETY_SCORE", 0.0, 1.0),
)
