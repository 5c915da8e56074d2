"""FederationLink: enrollment (a change handler, re-run when the link changes) and the link itself
(a kopf daemon running the site-agent core while the site is enrolled).

Failure classes: what time can fix (the API or the federation unreachable, a Secret not created
yet) is ``kopf.TemporaryError`` with a delay; what only a change by a person can fix (a spec the
operator cannot use, a refused token, an identity of another site) is ``kopf.PermanentError``,
with a status condition saying what to change.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
from dataclasses import dataclass
from typing import Any

import kopf

from controlplane.client.enroll import Facts
from controlplane.errors import StargateError, Unavailable
from controlplane.telemetry import logs
from operators.agent.link import SiteAgent
from operators.kube.identity import IdentityMismatch
from operators.kube.kubeapi import FEDERATIONLINKS, SECRETS, KubeError, secret_value
from operators.kube.runtime import Runtime, announce
from operators.kube.workloads import condition, now

log = logging.getLogger(__name__)
#: Annotation on a FederationLink that clears the site's transparency-log alarm (operators/agent/site_log.py).
CLEAR_LOG_ALARM = "federation.stargate.io/clear-log-alarm"
VERSION = "0.1.0"


@dataclass(frozen=True)
class LinkConfig:
    facts: Facts
    server: str
    enroll_server: str
    ca_pem: bytes
    token_ref: tuple[str, str] | None  # (secret name, key) in the operator's namespace
    heartbeat: float
    #: sha256:… of the federation's roster v1, given out of band (spec.rosterHash); "" trusts the first.
    roster_hash: str = ""

    @staticmethod
    def fingerprint(spec: Any) -> str:
        return hashlib.sha256(json.dumps(dict(spec), sort_keys=True, default=str).encode()).hexdigest()


class Problem(kopf.PermanentError):
    """A permanent failure with the condition reason to show (InvalidSpec, EnrollmentRefused, …)."""

    def __init__(self, message: str, reason: str) -> None:
        super().__init__(message)
        self.reason = reason


def _fail(problem: str, reason: str) -> Problem:
    return Problem(problem, reason)


async def _secret(runtime: Runtime, name: str, key: str, what: str) -> bytes:
    secret = await runtime.api.get(SECRETS, runtime.settings.namespace, name)
    value = secret_value(secret, key) if secret else None
    if not value:
        # The administrator may create it after the FederationLink: wait, do not give up.
        raise kopf.TemporaryError(
            f"{what}: Secret {runtime.settings.namespace}/{name} key {key} not found", delay=10
        )
    return value


async def read_config(runtime: Runtime, spec: Any) -> LinkConfig:
    site_id, country, server = spec.get("siteId"), spec.get("country"), spec.get("server")
    if not site_id or not country or not server or ":" not in str(server):
        raise _fail("spec.siteId, spec.country and spec.server (host:port) are required", "InvalidSpec")
    host = str(server).rsplit(":", 1)[0]
    if spec.get("caBundle"):
        ca = str(spec["caBundle"]).encode()
    elif spec.get("caSecretRef"):
        ref = spec["caSecretRef"]
        ca = await _secret(runtime, ref.get("name", ""), ref.get("key", "ca.crt"), "federation CA")
    else:
        raise _fail("one of spec.caBundle or spec.caSecretRef is required", "InvalidSpec")
    if b"-----BEGIN CERTIFICATE-----" not in ca:
        raise _fail("the federation CA is not a PEM certificate", "InvalidSpec")
    token_ref = None
    if spec.get("tokenSecretRef"):
        ref = spec["tokenSecretRef"]
        if ref.get("namespace", runtime.settings.namespace) != runtime.settings.namespace:
            raise _fail(
                "spec.tokenSecretRef.namespace must be the operator's namespace "
                f"({runtime.settings.namespace})",
                "InvalidSpec",
            )
        token_ref = (str(ref.get("name", "")), str(ref.get("key", "token")))
    facts = Facts(
        site_id=str(site_id),
        country=str(country),
        region=str(spec.get("region", "")),
        labels={str(k): str(v) for k, v in (spec.get("labels") or {}).items()},
        accelerators={str(k): int(v) for k, v in (spec.get("capacity") or {}).items()},
        security_tier=int(spec.get("securityTier", 1)),
        operator_version=VERSION,
    )
    return LinkConfig(
        facts=facts,
        server=str(server),
        enroll_server=str(spec.get("enrollServer") or f"{host}:7444"),
        ca_pem=ca,
        token_ref=token_ref,
        heartbeat=float(spec.get("heartbeatSeconds", 15)),
        roster_hash=str(spec.get("rosterHash", "")),
    )


async def enroll(runtime: Runtime, name: str, spec: Any, status: Any) -> dict[str, Any]:
    """Make sure the site holds a certificate; returns the FederationLink status to set."""
    if runtime.active_link not in ("", name):
        raise _fail(f"FederationLink {runtime.active_link} already links this site; keep one", "Duplicate")
    try:
        cfg = await read_config(runtime, spec)
        if not await runtime.identity.load(cfg.facts.site_id):
            if cfg.token_ref is None:
                raise _fail("not enrolled and spec.tokenSecretRef is not set", "NoToken")
            token = (await _secret(runtime, *cfg.token_ref, "join token")).decode().strip()
            try:
                await runtime.identity.enroll(
                    cfg.enroll_server, cfg.ca_pem, token, cfg.facts, roster_hash=cfg.roster_hash
                )
            except Unavailable as e:
                raise kopf.TemporaryError(f"enrollment: {e.public}", delay=15)
            except StargateError as e:
                raise _fail(
                    f"the federation refused the enrollment: {e.public}. Put a fresh join token in the "
                    "Secret, then annotate the FederationLink to retry",
                    "EnrollmentRefused",
                )
    except IdentityMismatch as e:
        raise _fail(str(e), "IdentityMismatch")
    except KubeError as e:
        raise kopf.TemporaryError(str(e), delay=5) if e.temporary else _fail(str(e), "KubernetesRefused")
    runtime.country = cfg.facts.country  # the enrolled site's: Datasets are judged against it
    previous = (status or {}).get("conditions")
    return {
        "enrolled": True,
        "certificateNotAfter": runtime.identity.not_after(),
        "conditions": [condition("Enrolled", True, "Enrolled", f"site {cfg.facts.site_id}", previous)],
    }


def failed_status(err: Exception, status: Any) -> dict[str, Any]:
    reason = getattr(err, "reason", "Retrying" if isinstance(err, kopf.TemporaryError) else "Failed")
    previous = (status or {}).get("conditions")
    return {"conditions": [condition("Enrolled", False, reason, str(err), previous)]}


class LinkDaemon:
    """One run of the link for one FederationLink; ``run`` returns only by raising or stopping."""

    def __init__(self, runtime: Runtime, name: str, body: Any, spec: Any) -> None:
        self.runtime, self.name, self.body, self.spec = runtime, name, body, spec
        self.written: dict[str, Any] = {}
        self.last_write = 0.0

    def _on_event(self, kind: str, data: dict[str, Any]) -> None:
        if kind == "rejected":
            message = f"directive {data['sequence']} ({data['id']}) rejected: {data['reason']}"
            announce(self.body, "DirectiveRejected", message, warning=True)
        elif kind == "applied":
            announce(self.body, "DirectiveApplied", f"directive {data['sequence']} ({data['id']}) applied")
        elif kind == "log_alarm":
            announce(self.body, "LogAlarm", f"transparency log: {data['reason']}", warning=True)

    async def run(self, stopped: kopf.DaemonStopped) -> None:
        rt = self.runtime
        if rt.active_link not in ("", self.name):
            raise _fail(f"FederationLink {rt.active_link} already links this site", "Duplicate")
        started_with = LinkConfig.fingerprint(self.spec)
        try:
            cfg = await read_config(rt, self.spec)
            if not await rt.identity.load(cfg.facts.site_id):
                raise kopf.TemporaryError("not enrolled yet", delay=5)
            await rt.record.load()
            await rt.reload_policies()  # before the first directive: never apply under a stale policy
        except KubeError as e:
            raise kopf.TemporaryError(str(e), delay=5)
        except IdentityMismatch as e:
            raise _fail(str(e), "IdentityMismatch")
        rt.active_link = self.name
        rt.country = cfg.facts.country
        logs.bind(site=cfg.facts.site_id)  # this daemon's task: housekeeping lines name the site
        agent = SiteAgent(
            facts=cfg.facts,
            servers=[cfg.server],
            cred_dir=rt.identity.dir,
            backend=rt.backend,
            record=rt.record,
            policy=rt.policy,
            retry=rt.settings.link_retry,
            on_event=self._on_event,
        )
        agent.heartbeat_interval = cfg.heartbeat
        agent.log.halt_bound = rt.settings.halt_proof_seconds
        rt.agent = agent
        task = asyncio.create_task(agent.run(), name=f"link-{self.name}")
        try:
            while not stopped:
                await self._tick(agent)
                await stopped.wait(min(rt.settings.resync_seconds, 1.0))
                if task.done():
                    # A failure the agent does not retry (TLS refused, the Kubernetes API failing
                    # mid-directive): start over later; the record makes that safe.
                    raise kopf.TemporaryError(f"the link ended: {task.exception()!r}", delay=5)
                if LinkConfig.fingerprint(self.spec) != started_with:
                    raise kopf.TemporaryError("FederationLink changed: relinking", delay=0.1)
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
            rt.agent = None
            with contextlib.suppress(Exception):
                await self._write_status(agent, force=True, connected=False)

    async def _tick(self, agent: SiteAgent) -> None:
        """Housekeeping the agent does not do: write a renewed identity back to its Secret, flush
        the record, restore deleted federation-owned objects, and publish the link's status.
        Each step is retried on the next tick when the API fails."""
        rt = self.runtime
        loop = asyncio.get_running_loop()
        try:
            await rt.identity.sync(min_interval=rt.settings.resync_seconds)
            await rt.record.flush()
            if loop.time() - getattr(self, "_restored_at", 0.0) >= rt.settings.resync_seconds:
                self._restored_at = loop.time()
                await rt.backend.restore()
                await rt.backend.datasets()  # Datasets made before the link get their status
            await self._clear_log_alarm(agent)
            await self._write_status(agent)
            await rt.health.refresh_due()  # never raises: what cannot be measured is unmeasured
        except KubeError as e:
            log.warning("FederationLink %s housekeeping: %s", self.name, e)

    async def _clear_log_alarm(self, agent: SiteAgent) -> None:
        """An operator who looked into a log alarm clears it with the annotation CLEAR_LOG_ALARM
        (removed once done): the site starts again from the next checkpoint it is shown."""
        annotations = (self.body.get("metadata") or {}).get("annotations") or {}
        if CLEAR_LOG_ALARM not in annotations:
            return
        if agent.log.alarm:
            log.warning("FederationLink %s: log alarm cleared by an operator: %s", self.name, agent.log.alarm)
            agent.log.clear_alarm()
            announce(self.body, "LogAlarmCleared", "the transparency-log alarm was cleared by an operator")
        patch = {"metadata": {"annotations": {CLEAR_LOG_ALARM: None}}}
        await self.runtime.api.patch(FEDERATIONLINKS, None, self.name, patch)

    async def _write_status(
        self, agent: SiteAgent, *, force: bool = False, connected: bool | None = None
    ) -> None:
        up = agent.connected.is_set() if connected is None else connected
        previous = (self.body.get("status") or {}).get("conditions") or []
        detail = f"replica {agent.replica}" if up else "reconnecting; nothing the site runs changes meanwhile"
        status: dict[str, Any] = {
            "enrolled": True,
            "connected": up,
            "lastAppliedSequence": agent.record.last_sequence,
            # None removes the field (merge patch). Not "": json-patch 4.9 (kube-apiserver <= 1.20)
            # merges "" as null, which the CRD refuses, so a link going down was never recorded.
            "replica": agent.replica if up else None,
            "certificateNotAfter": self.runtime.identity.not_after(),
            "logAlarm": agent.log.alarm[:1024] or None,  # None, not "": see "replica" above
            "logCheckpointSize": agent.log.view.size,
        }
        loop = asyncio.get_running_loop()
        stale = loop.time() - self.last_write >= agent.heartbeat_interval
        if status == self.written and not (up and stale) and not force:
            return
        if up:
            status["lastHeartbeat"] = now()
        others = [c for c in previous if c.get("type") not in ("Connected", "LogConsistent")]
        alarm = agent.log.alarm
        status["conditions"] = [
            *others,
            condition("Connected", up, "Connected" if up else "Disconnected", detail, previous),
            # The site as a witness of its own history (operators/agent/site_log.py): persistent.
            condition(
                "LogConsistent",
                not alarm,
                "Alarm" if alarm else "Consistent",
                alarm[:1024] or f"checkpoints verified up to size {agent.log.view.size}",
                previous,
            ),
        ]
        await self.runtime.api.patch(FEDERATIONLINKS, None, self.name, {"status": status}, status=True)
        self.written = {k: v for k, v in status.items() if k not in ("lastHeartbeat", "conditions")}
        self.last_write = loop.time()
