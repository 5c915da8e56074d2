"""The site operator end to end against a real kube-apiserver: ``stargate-site-operator`` as a
process (kopf, logging in with a kubeconfig), a real control plane over mTLS, the shipped CRDs.

FederationLink -> enrollment -> Deploy directive -> ModelDeployment -> Deployment; a SitePolicy
veto as a Reject with its reason upstream; a hand-edited and a hand-deleted federation-owned
ModelDeployment restored; the operator's /metrics scraped and its JSON log lines read. With no
kubelet and no controller-manager, ``Kubelet`` below plays both for Deployments: it writes
observedGeneration and replicas/updated/ready/available through the status subresource, as the
Deployment controller would (the health check of issue 11 reads revision readiness from them).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import sys
import urllib.error
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from controlplane.api.v1 import federation_pb2 as fpb
from controlplane.api.v1 import types_pb2 as tpb
from controlplane.store.memory import MemoryStore
from tests.integration.test_metrics_logs import scrape, value
from tests.support.envtest import ApiServer, binary
from tests.support.federation import Federation
from tests.support.procs import Proc, free_port
from tests.support.requests import deploy as send_deploy
from tests.support.wait import until

CHART = Path(__file__).resolve().parents[2] / "charts" / "stargate-site"
GVP = "/apis/federation.stargate.io/v1alpha1"
NS, WORKLOADS = "stargate-system", "ai-workloads"
DIGEST = "sha256:" + "ab" * 32
SITE, COUNTRY = "fr-par-1", "FR"


def get(api: ApiServer, path: str) -> dict[str, Any] | None:
    try:
        return api.request("GET", path)  # type: ignore[no-any-return]
    except urllib.error.HTTPError as e:
        if e.code == 404:
            return None
        raise


class Kubelet:
    """Sets every Deployment's status in the namespace as the controllers would, a moment later."""

    def __init__(self, api: ApiServer, namespace: str) -> None:
        self.api, self.namespace = api, namespace
        self._task: asyncio.Task[None] | None = None

    def _pass(self) -> None:
        items = self.api.request("GET", f"/apis/apps/v1/namespaces/{self.namespace}/deployments")["items"]
        for d in items:
            n = d["spec"].get("replicas", 1)
            status = {
                "observedGeneration": d["metadata"]["generation"],
                "replicas": n,
                "updatedReplicas": n,
                "readyReplicas": n,
                "availableReplicas": n,
            }
            if any((d.get("status") or {}).get(k) != v for k, v in status.items()):
                path = f"/apis/apps/v1/namespaces/{self.namespace}/deployments/{d['metadata']['name']}/status"
                with contextlib.suppress(urllib.error.HTTPError):  # a conflict: the next pass
                    self.api.request("PATCH", path, {"status": status}, "application/merge-patch+json")

    async def _run(self) -> None:
        while True:
            await asyncio.to_thread(self._pass)
            await asyncio.sleep(0.1)

    async def __aenter__(self) -> Kubelet:
        self._task = asyncio.create_task(self._run())
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._task is not None
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task


@contextlib.asynccontextmanager
async def federation(tmp_path: Path) -> AsyncIterator[Federation]:
    store = MemoryStore()
    fed = await Federation(tmp_path / "fed", store).start()
    try:
        yield fed
    finally:
        await fed.stop()
        await store.close()


def b64(text: str | bytes) -> str:
    return base64.b64encode(text if isinstance(text, bytes) else text.encode()).decode()


def apply(api: ApiServer, obj: dict[str, Any]) -> None:
    api.kubectl("apply", "-f", "-", stdin=json.dumps(obj))


def deploy(name: str, **kw: Any) -> fpb.DeployRequest:
    kw.setdefault("replicas", 1)
    payload = tpb.DeployPayload(deployment_name=name, model=name, version="1.0", digest=DIGEST, **kw)
    return fpb.DeployRequest(site_id=SITE, deploy=payload)


async def outcome(fed: Federation, directive_id: str) -> tpb.DirectiveRecord:
    async def done() -> tpb.DirectiveRecord | None:
        async with fed.client() as c:
            recs = (await c.call("ListDirectives", fpb.ListDirectivesRequest(site_id=SITE))).directives
        rec = next((r for r in recs if r.directive.id == directive_id), None)
        return rec if rec is not None and rec.state != tpb.DIRECTIVE_STATE_PENDING else None

    return await until(done, 20, f"an outcome for {directive_id}")  # type: ignore[no-any-return]


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[ApiServer]:
    """A server of its own (~3 s): the other envtest modules leave example objects behind (a
    FederationLink and a SitePolicy named like this site's) that would be this site's config."""
    with ApiServer(tmp_path / "api", binary()) as api:
        yield prepared(api)


def prepared(apiserver: ApiServer) -> ApiServer:
    apiserver.kubectl("apply", "--validate=false", "-f", str(CHART / "crds"))
    apiserver.kubectl("wait", "--for=condition=Established", "--timeout=30s", "crd", "--all")
    for ns in (NS, WORKLOADS):
        apiserver.kubectl("create", "namespace", ns, check=False)
    return apiserver


async def test_operator_enrolls_deploys_vetoes_restores_and_exports_metrics(
    cluster: ApiServer, tmp_path: Path
) -> None:
    api = cluster
    async with federation(tmp_path) as fed:
        token = await fed.token(SITE, COUNTRY)
        for name, data in (("fed-ca", {"ca.crt": b64(fed.ca_pem)}), ("join", {"token": b64(token)})):
            apply(
                api,
                {
                    "apiVersion": "v1",
                    "kind": "Secret",
                    "metadata": {"name": name, "namespace": NS},
                    "data": data,
                },
            )
        apply(
            api,
            {
                "apiVersion": "federation.stargate.io/v1alpha1",
                "kind": "SitePolicy",
                "metadata": {"name": "site"},
                "spec": {"acceptedRiskTiers": [1, 2], "federationNamespaces": [WORKLOADS]},
            },
        )
        mport = free_port()
        env = {
            **os.environ,
            "KUBECONFIG": str(api.kubeconfig),
            "STARGATE_NAMESPACE": NS,
            "STARGATE_FEDERATION_NAMESPACES": WORKLOADS,
            "STARGATE_RESYNC_SECONDS": "0.5",
            "STARGATE_METRICS_SECONDS": "0.5",
            "STARGATE_LOG_FORMAT": "json",
            "STARGATE_METRICS_LISTEN": f"127.0.0.1:{mport}",
        }
        proc = Proc([sys.executable, "-m", "operators.kube.main"], tmp_path / "operator.log", env=env)
        try:
            apply(
                api,
                {
                    "apiVersion": "federation.stargate.io/v1alpha1",
                    "kind": "FederationLink",
                    "metadata": {"name": "federation"},
                    "spec": {
                        "server": fed.address,
                        "enrollServer": fed.enroll_address,
                        "caSecretRef": {"name": "fed-ca"},  # key defaulted by the server: ca.crt
                        "tokenSecretRef": {"name": "join", "namespace": NS, "key": "token"},
                        "siteId": SITE,
                        "country": COUNTRY,
                        "region": "eu-west",
                        "securityTier": 3,
                        "capacity": {"h100": 16},
                    },
                },
            )

            def link() -> dict[str, Any]:
                return (get(api, f"{GVP}/federationlinks/federation") or {}).get("status") or {}

            await until(lambda: link().get("connected"), 60, f"the link up:\n{proc.output()[-3000:]}")
            assert link()["enrolled"] and link()["certificateNotAfter"]
            identity = get(api, f"/api/v1/namespaces/{NS}/secrets/stargate-site-identity")
            assert identity is not None and {"site.key", "site.crt", "ca.crt"} <= set(identity["data"])

            async with Kubelet(api, WORKLOADS), fed.client() as c:
                ok = (await send_deploy(c, deploy("atlas", replicas=2, risk_tier=2))).directive
                vetoed = (await send_deploy(c, deploy("risky", risk_tier=3))).directive
                rec = await outcome(fed, ok.id)
                assert rec.state == tpb.DIRECTIVE_STATE_ACKED, rec
                rec = await outcome(fed, vetoed.id)
                assert rec.state == tpb.DIRECTIVE_STATE_REJECTED and "risk tier 3 not accepted" in rec.reason

                mdp = f"{GVP}/namespaces/{WORKLOADS}/modeldeployments/atlas"
                m = get(api, mdp)
                assert m is not None and m["spec"]["source"] == "federation" and m["spec"]["replicas"] == 2
                assert get(api, f"{GVP}/namespaces/{WORKLOADS}/modeldeployments/risky") is None
                dep = get(api, f"/apis/apps/v1/namespaces/{WORKLOADS}/deployments/atlas")
                assert dep is not None and dep["spec"]["replicas"] == 2
                owners = dep["metadata"].get("ownerReferences") or []
                assert [o["kind"] for o in owners] == ["ModelDeployment"], owners

                def phase() -> str:
                    return str(((get(api, mdp) or {}).get("status") or {}).get("phase", ""))

                await until(lambda: phase() == "Running", 30, "atlas Running")
                table = api.kubectl("get", "md", "-n", WORKLOADS).stdout
                assert any(line.split()[:1] == ["atlas"] and "Running" in line for line in table.splitlines())

                # Drift: a hand edit of a federation-owned ModelDeployment is undone ...
                api.kubectl(
                    "patch",
                    "md",
                    "atlas",
                    "-n",
                    WORKLOADS,
                    "--type",
                    "merge",
                    "-p",
                    '{"spec":{"replicas":7}}',
                )
                await until(
                    lambda: (get(api, mdp) or {}).get("spec", {}).get("replicas") == 2, 30, "edit undone"
                )
                # ... and a hand-deleted one comes back (a new object).
                uid = (get(api, mdp) or {})["metadata"]["uid"]
                api.kubectl("delete", "md", "atlas", "-n", WORKLOADS, "--wait=false")
                await until(
                    lambda: (get(api, mdp) or {}).get("metadata", {}).get("uid", uid) != uid, 30, "restored"
                )

            s = scrape(f"http://127.0.0.1:{mport}/metrics")
            assert value(s, "stargate_site_link_connected", site=SITE) == 1
            assert (
                value(s, "stargate_site_directives_total", site=SITE, kind="Deploy", outcome="applied") == 1
            )
            assert (
                value(s, "stargate_site_directives_total", site=SITE, kind="Deploy", outcome="rejected") == 1
            )
            left = value(s, "stargate_certificate_expiry_seconds", identity=f"site/{SITE}")
            assert left is not None and 0 < left <= 24 * 3600
        finally:
            assert proc.terminate(20) == 0, proc.output()[-3000:]
        # Stopping records the link as down (and no replica): what `kubectl get fl` then shows.
        status = link()
        assert status["connected"] is False and "replica" not in status, status
        assert "housekeeping: 422" not in proc.output(), proc.output()
        lines = [json.loads(x) for x in proc.output().splitlines() if x.startswith("{")]
        assert lines and len(lines) == len([x for x in proc.output().splitlines() if x.strip()])
        restored = [r for r in lines if r["message"].startswith("restored federation-owned ModelDeployment")]
        assert restored and all(r.get("site") == SITE for r in restored), restored
