"""What the site measures of each federation-owned ModelDeployment, refreshed on the link
daemon's tick and attached to the heartbeat's DeploymentStatus (aggregates only).

Only a deployment whose current revision is ready is measured (``status.phase`` Running, computed
from the Deployment revision that carries its digest, see reconcile.py), and a measurement is
reported only for the digest it was taken of: a new version starts unmeasured. A source that
cannot be read (Prometheus down, no pod answering) leaves the metric unmeasured and is logged; a
heartbeat never waits for it.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from operators.agent.backend import Workload
from operators.kube import metrics as m
from operators.kube import safety_eval as se
from operators.kube.kubeapi import JOBS, MODELDEPLOYMENTS, PODS, KubeAPI, KubeError, Obj
from operators.kube.settings import MODEL_LABEL, Settings

log = logging.getLogger(__name__)
#: Seconds per Prometheus query or pod scrape: a measurement never holds the tick for long.
HTTP_TIMEOUT = 3.0


@dataclass(frozen=True)
class HealthPolicy:
    """The measuring parts of the SitePolicy."""

    metrics: m.MetricsPolicy = field(default_factory=m.MetricsPolicy)
    safety: se.SafetyEvaluation | None = None


@dataclass(frozen=True)
class Measured:
    digest: str
    error_rate: float | None = None
    latency_p95_ms: float | None = None
    safety_score: float | None = None


class HealthMonitor:
    def __init__(self, api: KubeAPI, settings: Settings, policy: Callable[[], HealthPolicy]) -> None:
        self.api, self.settings, self.policy = api, settings, policy
        #: ModelDeployment name -> its latest measurement.
        self.measured: dict[str, Measured] = {}
        #: pod uid -> its previous scrape (rates are differences between two scrapes).
        self._scrapes: dict[str, m.Scrape] = {}
        self._session: aiohttp.ClientSession | None = None
        self._last = 0.0

    def _http(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=HTTP_TIMEOUT))
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()

    def apply(self, workloads: Iterable[Workload]) -> None:
        """Fill in what was measured of each workload's current digest (nothing else)."""
        for w in workloads:
            got = self.measured.get(w.name)
            if got is not None and got.digest == w.digest:
                w.error_rate, w.latency_p95_ms, w.safety_score = (
                    got.error_rate,
                    got.latency_p95_ms,
                    got.safety_score,
                )

    async def refresh_due(self) -> None:
        now = time.monotonic()
        if now - self._last >= self.settings.metrics_seconds:
            self._last = now
            await self.refresh()

    async def refresh(self) -> None:
        policy = self.policy()
        seen: dict[str, Measured] = {}
        pods_seen: set[str] = set()
        for ns in self.settings.federation_namespaces:
            try:
                items = await self.api.list(MODELDEPLOYMENTS, ns)
            except KubeError as e:
                log.warning("health: listing ModelDeployments in %s failed: %s", ns, e)
                continue
            for md in items:
                spec, st = md.get("spec") or {}, md.get("status") or {}
                name = md["metadata"]["name"]
                if spec.get("source") != "federation" or st.get("phase") != "Running":
                    continue
                if st.get("observedGeneration") != md["metadata"].get("generation"):
                    continue  # the status is about an older spec
                try:
                    seen[name] = await self._measure(md, policy, pods_seen)
                except (KubeError, aiohttp.ClientError, TimeoutError) as e:
                    log.warning("health: measuring %s/%s failed: %s", ns, name, e)
                    seen[name] = Measured(str(spec.get("digest", "")))
        self.measured = seen
        self._scrapes = {k: v for k, v in self._scrapes.items() if k in pods_seen}

    async def _measure(self, md: Obj, policy: HealthPolicy, pods_seen: set[str]) -> Measured:
        spec = md.get("spec") or {}
        digest = str(spec.get("digest", ""))
        if policy.metrics.prometheus_url:
            err, p95 = await self._prometheus(md, policy.metrics)
        else:
            err, p95 = await self._scrape(md, policy.metrics, pods_seen)
        score = await self._safety(md, policy.safety) if policy.safety is not None else None
        return Measured(digest, err, p95, score)

    # --- Prometheus -------------------------------------------------------------------------------

    async def query(self, base: str, promql: str) -> float | None:
        return await instant_query(self._http(), base, promql)

    async def _prometheus(self, md: Obj, policy: m.MetricsPolicy) -> tuple[float | None, float | None]:
        spec, meta = md.get("spec") or {}, md["metadata"]
        values = {
            "namespace": meta["namespace"],
            "deployment": meta["name"],
            "model": str(spec.get("model", "")),
            "version": str(spec.get("version", "")),
            "release": str(spec.get("release", "")),
            "digest": str(spec.get("digest", "")),
        }
        err = p95 = None
        if policy.error_rate_query:
            err = await self.query(policy.prometheus_url, m.render(policy.error_rate_query, values))
            err = None if err is None else min(1.0, max(0.0, err))
        if policy.latency_p95_query:
            p95 = await self.query(policy.prometheus_url, m.render(policy.latency_p95_query, values))
            p95 = None if p95 is None else max(0.0, p95)
        return err, p95

    # --- scraping -----------------------------------------------------------------------------------

    async def _scrape(
        self, md: Obj, policy: m.MetricsPolicy, pods_seen: set[str]
    ) -> tuple[float | None, float | None]:
        meta, digest = md["metadata"], str((md.get("spec") or {}).get("digest", ""))
        pods = await self.api.list(PODS, meta["namespace"], labels=f"{MODEL_LABEL}={meta['name']}")
        port = policy.scrape_port or self.settings.runtime_port
        before: dict[str, m.Scrape] = {}
        after: dict[str, m.Scrape] = {}

        async def one(pod: Obj) -> None:
            uid, ip = pod["metadata"].get("uid", ""), (pod.get("status") or {}).get("podIP")
            if not uid or not ip or not _runs(pod, digest):
                return
            pods_seen.add(uid)
            try:
                async with self._http().get(f"http://{ip}:{port}{policy.scrape_path}") as resp:
                    text = await resp.text()
                scrape = m.parse_scrape(text, policy)
            except (aiohttp.ClientError, TimeoutError, ValueError) as e:
                log.info("health: scraping pod %s failed: %s", pod["metadata"].get("name"), e)
                return
            if uid in self._scrapes:
                before[uid] = self._scrapes[uid]
            after[uid] = self._scrapes[uid] = scrape

        await asyncio.gather(*(one(p) for p in pods))
        return m.window(before, after)

    # --- the safety evaluation ------------------------------------------------------------------------

    async def _safety(self, md: Obj, evaluation: se.SafetyEvaluation) -> float | None:
        ns, digest = md["metadata"]["namespace"], str((md.get("spec") or {}).get("digest", ""))
        name = se.job_name(md["metadata"]["name"], digest)
        existing = await self.api.get(JOBS, ns, name)
        if existing is None:
            await self.api.create(JOBS, ns, se.job(md, evaluation, self.settings.runtime_port))
            return None
        score = se.recorded(existing)
        if score is not None:
            return score
        for pod in await self.api.list(PODS, ns, labels=f"job-name={name}"):
            done = se.terminated(pod)
            if done is None:
                continue
            code, message = done
            score = se.score_of_message(message) if code == 0 else None
            if score is None:
                log.warning("health: safety evaluation %s/%s gave no score (exit %d)", ns, name, code)
                return None
            await self.api.patch(JOBS, ns, name, {"metadata": {"annotations": {se.SCORE: f"{score:g}"}}})
            return score
        return None


async def instant_query(session: aiohttp.ClientSession, base: str, promql: str) -> float | None:
    """One instant query over Prometheus' HTTP API; None when it has no finite value for it."""
    async with session.get(base.rstrip("/") + "/api/v1/query", params={"query": promql}) as resp:
        body: Any = await resp.json(content_type=None)
    return m.instant_value(body)


def _runs(pod: Obj, digest: str) -> bool:
    """Whether the pod runs the current revision (its container's MODEL_DIGEST)."""
    for c in (pod.get("spec") or {}).get("containers") or []:
        for e in c.get("env") or []:
            if e.get("name") == "MODEL_DIGEST":
                return bool(e.get("value") == digest)
    return False
