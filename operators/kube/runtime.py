"""Per-operator state shared by the handlers: settings, the API client, the policy in force, the
site's identity and record, and the running agent.

One Runtime per operator instance, captured by the handlers that ``build_registry`` defines (not
module globals), so that tests can run one operator per site in one process.
"""

from __future__ import annotations

from typing import Any

import kopf

from operators.agent.link import SiteAgent
from operators.agent.policy import LocalPolicy
from operators.kube import policy as site_policy
from operators.kube.backend import KubernetesBackend
from operators.kube.health import HealthMonitor, HealthPolicy
from operators.kube.identity import SiteIdentity
from operators.kube.kubeapi import SITEPOLICIES, KubeAPI, Obj
from operators.kube.settings import Settings
from operators.kube.state import KubeRecord


class Runtime:
    def __init__(self, settings: Settings, connection: kopf.ConnectionInfo | None = None) -> None:
        self.settings = settings
        #: Set by the login handler in production (the same identity kopf uses), or by tests.
        self.connection = connection
        self.policy = LocalPolicy()
        self.health_policy = HealthPolicy()
        self.policy_problems: dict[str, str] = {}
        self.agent: SiteAgent | None = None
        self.active_link = ""
        #: The site's country (its FederationLink's, set when the link is read): Datasets of
        #: another jurisdiction are refused against it.
        self.country = ""
        self._api: KubeAPI | None = None
        self._identity: SiteIdentity | None = None
        self._record: KubeRecord | None = None
        self._backend: KubernetesBackend | None = None
        self._health: HealthMonitor | None = None

    @property
    def api(self) -> KubeAPI:
        if self._api is None:
            if self.connection is None:
                raise RuntimeError("no Kubernetes connection yet (the login handler sets it)")
            self._api = KubeAPI(self.connection)
        return self._api

    @property
    def identity(self) -> SiteIdentity:
        if self._identity is None:
            self._identity = SiteIdentity(self.api, self.settings.namespace, self.settings.identity_secret)
        return self._identity

    @property
    def record(self) -> KubeRecord:
        if self._record is None:
            self._record = KubeRecord(self.api, self.settings.namespace, self.settings.state_configmap)
        return self._record

    @property
    def health(self) -> HealthMonitor:
        if self._health is None:
            self._health = HealthMonitor(self.api, self.settings, lambda: self.health_policy)
        return self._health

    @property
    def backend(self) -> KubernetesBackend:
        if self._backend is None:
            self._backend = KubernetesBackend(
                self.api,
                self.settings,
                self.record,
                lambda: self.policy,
                announce=announce,
                health=self.health,
                country=lambda: self.country,
            )
        return self._backend

    async def reload_policies(self) -> dict[str, str]:
        """Re-read every SitePolicy and put the effective policy in force (also in the agent)."""
        specs = {p["metadata"]["name"]: dict(p.get("spec") or {}) for p in await self.api.list(SITEPOLICIES)}
        self.policy, self.policy_problems = site_policy.effective(specs)
        self.health_policy = site_policy.effective_health(specs)
        if self.agent is not None:
            self.agent.policy = self.policy
            safety = getattr(self.agent, "safety", None)  # the safety lane keeps its own reference
            if safety is not None:
                safety.policy = self.policy
        return self.policy_problems

    async def close(self) -> None:
        if self._health is not None:
            await self._health.close()
        if self._identity is not None:
            self._identity.close()
        if self._api is not None:
            await self._api.close()


def announce(obj: Obj, reason: str, message: str, *, warning: bool = False) -> None:
    """A Kubernetes Event about ``obj``, posted by kopf (only inside the operator's tasks)."""
    # kopf.event, not kopf.info: the operator posts handler logs only from WARNING (registry.py),
    # which would also silence kopf.info; these events are meant for the site's administrators.
    body: Any = obj
    kopf.event(body, type="Warning" if warning else "Normal", reason=reason, message=message)
