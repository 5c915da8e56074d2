"""Helpers for the site-operator tests (no tests here): one Kubernetes emulator plus one real site
operator (kopf, in its own thread) per site, against a real control plane over mTLS.

The emulator runs no controllers, so nothing would ever make a Deployment ready: ``FakeKubelet``
plays that part, setting ``status.readyReplicas`` (through the status subresource, so that the
operator sees a watch event as it would from the real Deployment controller). Tests can pause it
or pin a Deployment's readiness.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import dataclasses
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import kmock
import kopf

from controlplane.client.retry import RetryPolicy
from controlplane.server.app import ControlPlane
from operators.kube.registry import build_registry
from operators.kube.runtime import Runtime
from operators.kube.settings import Settings
from tests.support.federation import Federation
from tests.support.kopf_runner import KopfRunner
from tests.support.kube_emulator import KubeEmulator, serve_emulator
from tests.support.wait import until as until  # re-exported: the site-operator tests import it here

GV = "federation.stargate.io/v1alpha1"
API = f"/apis/{GV}"
NS, WORKLOADS = "stargate-system", "ai-workloads"
MD = kmock.resource("federation.stargate.io", "v1alpha1", "modeldeployments")
FL = kmock.resource("federation.stargate.io", "v1alpha1", "federationlinks")
SP = kmock.resource("federation.stargate.io", "v1alpha1", "sitepolicies")
DEPLOYMENTS = kmock.resource("apps", "v1", "deployments")
SERVICES = kmock.resource("", "v1", "services")
EVENTS = kmock.resource("", "v1", "events")
CONFIGMAPS = kmock.resource("", "v1", "configmaps")
SECRETS = kmock.resource("", "v1", "secrets")
PODS = kmock.resource("", "v1", "pods")
JOBS = kmock.resource("batch", "v1", "jobs")
NAMESPACES = kmock.resource("", "v1", "namespaces")
DIGEST = "sha256:" + "ab" * 32
#: Short ticks and fast reconnects keep the suite quick; production defaults are 10 s and 0.5-30 s.
SETTINGS = Settings(
    namespace=NS,
    federation_namespaces=(WORKLOADS,),
    resync_seconds=0.3,
    metrics_seconds=0.3,
    link_retry=RetryPolicy(initial=0.05, maximum=0.3, deadline=None),
)


@dataclass
class Site:
    site_id: str
    country: str
    emulator: KubeEmulator
    url: str
    runner: KopfRunner | None = None
    runtime: Runtime | None = None

    def objects(self, res: kmock.resource, namespace: str | None = None) -> list[dict[str, Any]]:
        return [
            o.raw
            for (r, ns, _), o in list(self.emulator.objects.items())
            if r == res and not o.deleted and (namespace is None or ns == namespace)
        ]

    def get(self, res: kmock.resource, namespace: str | None, name: str) -> dict[str, Any] | None:
        key = (res, namespace, name)
        if key not in self.emulator.objects or self.emulator.objects[key].deleted:
            return None
        return self.emulator.objects[key].raw

    async def http(self, method: str, path: str, body: Any = None, merge: bool = False) -> Any:
        headers = {"Content-Type": "application/merge-patch+json"} if merge else {}
        async with (
            aiohttp.ClientSession() as s,
            s.request(method, self.url + path, json=body, headers=headers) as r,
        ):
            assert r.status < 400, (r.status, await r.text())
            return await r.json(content_type=None)

    async def start_operator(self) -> None:
        """A fresh Runtime each time: a restart keeps nothing in memory, only what the site stores."""
        self.runtime = Runtime(SETTINGS, kopf.ConnectionInfo(server=self.url, insecure=True))
        runtime = self.runtime
        self.runner = KopfRunner(lambda: build_registry(runtime), self.url, namespaces=(WORKLOADS,))
        await asyncio.to_thread(self.runner.start)

    async def stop_operator(self) -> None:
        if self.runner is not None:
            await asyncio.to_thread(self.runner.stop)
            assert self.runner.error is None, self.runner.error
            self.runner = None

    def link_status(self) -> dict[str, Any]:
        return (self.get(FL, None, "federation") or {}).get("status") or {}

    def events(self, reason: str) -> list[dict[str, Any]]:
        return [e for e in self.objects(EVENTS) if e.get("reason") == reason]


def b64(text: str | bytes) -> str:
    return base64.b64encode(text if isinstance(text, bytes) else text.encode()).decode()


@contextlib.asynccontextmanager
async def site(
    fed: Federation,
    site_id: str,
    country: str,
    *,
    policy: dict[str, Any] | None = None,
    capacity: dict[str, int] | None = None,
) -> AsyncIterator[Site]:
    """An emulated cluster as an administrator prepares it (namespaces, CA and join-token Secrets,
    optional SitePolicy, the FederationLink), with the site operator running."""
    async with serve_emulator() as (em, url):
        s = Site(site_id, country, em, url)
        for ns in (NS, WORKLOADS, "research"):
            await em.create(NAMESPACES, {"metadata": {"name": ns}})
        token = await fed.token(site_id, country)
        await em.create(SECRETS, {"metadata": {"name": "fed-ca"}, "data": {"ca.crt": b64(fed.ca_pem)}}, NS)
        await em.create(SECRETS, {"metadata": {"name": "join"}, "data": {"token": b64(token)}}, NS)
        if policy is not None:
            await em.create(
                SP, {"apiVersion": GV, "kind": "SitePolicy", "metadata": {"name": "site"}, "spec": policy}
            )
        await s.start_operator()
        try:
            await em.create(
                FL,
                {
                    "apiVersion": GV,
                    "kind": "FederationLink",
                    "metadata": {"name": "federation"},
                    "spec": {
                        "server": fed.address,
                        "enrollServer": fed.enroll_address,
                        "caSecretRef": {"name": "fed-ca", "key": "ca.crt"},
                        "tokenSecretRef": {"name": "join", "namespace": NS, "key": "token"},
                        "siteId": site_id,
                        "country": country,
                        "region": "r1",
                        "securityTier": 3,
                        "capacity": capacity or {"h100": 16},
                    },
                },
            )
            yield s
        finally:
            await s.stop_operator()


@dataclass
class FakeKubelet:
    """Plays the Deployment controller and the kubelet: a moment after a Deployment changes, its
    status says the new generation was observed and every replica of the new revision is updated
    and ready (through the status subresource, so the operator sees a watch event as it would).
    Tests can pause it (the status then still describes the previous revision, as in the middle of
    a rolling update) or pin a Deployment's ready replicas."""

    sites: list[Site]
    paused: bool = False
    pinned: dict[str, int] = field(default_factory=dict)  # "site/namespace/name" -> readyReplicas
    _task: asyncio.Task[None] | None = None

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(0.05)
            if self.paused:
                continue
            for s in self.sites:
                for d in s.objects(DEPLOYMENTS):
                    meta = d["metadata"]
                    want = self.pinned.get(f"{s.site_id}/{meta['namespace']}/{meta['name']}")
                    n = d["spec"].get("replicas", 1)
                    status = {
                        "observedGeneration": meta.get("generation", 1),
                        "replicas": n,
                        "updatedReplicas": n,
                        "readyReplicas": n if want is None else want,
                        "availableReplicas": n if want is None else want,
                    }
                    if any((d.get("status") or {}).get(k) != v for k, v in status.items()):
                        path = (
                            f"/apis/apps/v1/namespaces/{meta['namespace']}/deployments/{meta['name']}/status"
                        )
                        with contextlib.suppress(AssertionError, aiohttp.ClientError):
                            await s.http("PATCH", path, {"status": status}, merge=True)

    async def __aenter__(self) -> FakeKubelet:
        self._task = asyncio.create_task(self._run())
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._task is not None
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task


async def restart_control_plane(fed: Federation, down_for: Callable[[], Any]) -> None:
    """Stop the control plane, await ``down_for()``, start it again on the same ports (the sites
    keep their configured address), same store."""
    old = fed.cp
    assert old is not None
    config = dataclasses.replace(
        old.config, listen=f"127.0.0.1:{old.port}", enroll_listen=f"127.0.0.1:{old.enroll_port}"
    )
    await old.stop(grace=0.1)
    fed.cp = None
    await down_for()
    fed.cp = ControlPlane(config, fed.store)
    await fed.cp.start()
