"""The site operator (operators/kube) end to end: three sites, each a Kubernetes emulator with its
own kopf operator, against a real control plane over mTLS.

Enrollment through a FederationLink; Deploy directive -> ModelDeployment -> Deployment + Service;
status upstream through stargatectl; SitePolicy vetoes (risk tier, capacity share) as Rejects with
the reason upstream and an Event at the site; local approval; local ModelDeployments reported but
never changed; a hand-deleted or hand-edited federation-owned ModelDeployment restored; a bad spec
as a status condition. Readiness is simulated by FakeKubelet (see test_site_operator_kit).
"""

from __future__ import annotations

import asyncio
import json
import sys
from asyncio.subprocess import PIPE
from typing import Any

from controlplane.api.v1 import federation_pb2 as fpb
from controlplane.api.v1 import types_pb2 as tpb
from tests.integration.test_site_operator_kit import (
    API,
    DEPLOYMENTS,
    DIGEST,
    GV,
    MD,
    NS,
    SECRETS,
    SERVICES,
    SP,
    WORKLOADS,
    FakeKubelet,
    Site,
    site,
)
from tests.support.federation import Federation
from tests.support.requests import deploy as send_deploy
from tests.support.wait import until


def deploy(site_id: str, name: str, **kw: Any) -> fpb.DeployRequest:
    kw.setdefault("replicas", 1)
    payload = tpb.DeployPayload(deployment_name=name, model=name, version="1.0", digest=DIGEST, **kw)
    return fpb.DeployRequest(site_id=site_id, deploy=payload)


async def outcome(fed: Federation, site_id: str, directive_id: str) -> tpb.DirectiveRecord:
    async def done() -> tpb.DirectiveRecord | None:
        async with fed.client() as c:
            recs = (await c.call("ListDirectives", fpb.ListDirectivesRequest(site_id=site_id))).directives
        rec = next((r for r in recs if r.directive.id == directive_id), None)
        return rec if rec is not None and rec.state != tpb.DIRECTIVE_STATE_PENDING else None

    return await until(done, 10, f"an outcome for {directive_id}")


def phase(s: Site, name: str, namespace: str = WORKLOADS) -> str:
    return str(((s.get(MD, namespace, name) or {}).get("status") or {}).get("phase", ""))


async def stargatectl(fed: Federation, *args: str) -> Any:
    """The real CLI, as a process: what an admin sees (async: the control plane shares this loop)."""
    cmd = [sys.executable, "-m", "controlplane.cli.main", "--config", str(fed.dir / "stargatectl.yaml")]
    proc = await asyncio.create_subprocess_exec(
        *cmd, "--server", fed.address, *args, "-o", "json", stdout=PIPE, stderr=PIPE
    )
    out, err = await proc.communicate()
    assert proc.returncode == 0, err.decode()
    return json.loads(out)


LOCAL = {
    "apiVersion": GV,
    "kind": "ModelDeployment",
    "metadata": {"name": "mistral-7b-fr"},
    "spec": {"model": "mistral-7b", "version": "0.3", "digest": DIGEST, "replicas": 1, "source": "local"},
}


async def test_three_sites_enroll_deploy_report_refuse_and_restore(fed: Federation) -> None:
    de_policy = {
        "acceptedRiskTiers": [1, 2],
        "federationNamespaces": [WORKLOADS],
        "requireLocalApproval": True,
    }
    async with (
        site(fed, "fr-par-1", "FR") as fr,
        site(fed, "de-fra-1", "DE", policy=de_policy) as de,
        site(fed, "jp-tyo-1", "JP", policy={"federationCapacityShare": 0.5}, capacity={"h100": 8}) as jp,
        FakeKubelet([fr, de, jp]) as kubelet,
    ):
        # --- enrollment through the FederationLink ----------------------------------------------
        for s in (fr, de, jp):
            await until(lambda s=s: s.link_status().get("connected"), 15, f"{s.site_id} connected")
            identity = s.get(SECRETS, NS, "stargate-site-identity")
            assert identity is not None and {"site.key", "site.crt", "ca.crt"} <= set(identity["data"])
            assert s.link_status()["enrolled"] and s.link_status()["certificateNotAfter"]
        async with fed.client() as c:
            sites = (await c.call("ListSites", fpb.ListSitesRequest())).sites
        assert {(x.site_id, x.status) for x in sites} == {
            (sid, tpb.SITE_STATUS_READY) for sid in ("fr-par-1", "de-fra-1", "jp-tyo-1")
        }

        # --- a local ModelDeployment: reported, never changed by the federation ------------------
        await fr.emulator.create(MD, LOCAL, "research")
        await fr.emulator.create(
            MD, {**LOCAL, "metadata": {"name": "broken"}, "spec": {"model": "x"}}, WORKLOADS
        )

        async with fed.client() as c:
            kubelet.pinned["fr-par-1/ai-workloads/atlas"] = 1  # one of two replicas ready, for now
            d_fr = (await send_deploy(c, deploy("fr-par-1", "atlas", replicas=2, risk_tier=2))).directive
            d_local = (await send_deploy(c, deploy("fr-par-1", "mistral-7b-fr"))).directive
            d_tier = (await send_deploy(c, deploy("de-fra-1", "atlas", risk_tier=3))).directive
            d_held = (await send_deploy(c, deploy("de-fra-1", "small", risk_tier=1))).directive
            d_share = (
                await send_deploy(
                    c, deploy("jp-tyo-1", "big", accelerator="h100", accelerators_per_replica=8)
                )
            ).directive

        # --- Deploy -> ModelDeployment -> Deployment + Service ----------------------------------
        assert (await outcome(fed, "fr-par-1", d_fr.id)).state == tpb.DIRECTIVE_STATE_ACKED
        await until(lambda: phase(fr, "atlas") == "Progressing", 5, "atlas progressing")
        md = fr.get(MD, WORKLOADS, "atlas")
        assert md is not None and md["spec"]["source"] == "federation" and md["spec"]["riskTier"] == 2
        assert md["status"]["directiveId"] == d_fr.id and md["status"]["directiveSequence"] == d_fr.sequence
        dep, svc = fr.get(DEPLOYMENTS, WORKLOADS, "atlas"), fr.get(SERVICES, WORKLOADS, "atlas")
        assert dep is not None and svc is not None
        assert (
            dep["spec"]["replicas"] == 2
            and dep["metadata"]["ownerReferences"][0]["uid"] == md["metadata"]["uid"]
        )
        env = {e["name"]: e["value"] for e in dep["spec"]["template"]["spec"]["containers"][0]["env"]}
        assert env["MODEL_DIGEST"] == DIGEST and env["MODEL_NAME"] == "atlas"

        # --- status upstream (heartbeat DeploymentStatus), read through stargatectl ---------------
        async def reported(name: str) -> dict[str, Any]:
            got = await stargatectl(fed, "sites", "get", "fr-par-1")
            return next((d for d in got.get("deployments", []) if d["name"] == name), {})

        async def upstream(name: str, **want: Any) -> bool:
            got = await reported(name)
            return all(got.get(k) == v for k, v in want.items())

        await until(lambda: upstream("atlas", phase="Progressing", ready_replicas=1), 10, "1/2 upstream")
        del kubelet.pinned["fr-par-1/ai-workloads/atlas"]
        await until(lambda: phase(fr, "atlas") == "Running", 5, "atlas running")
        await until(lambda: upstream("atlas", phase="Running", ready_replicas=2), 10, "2/2 upstream")
        assert (await reported("atlas"))["source"] == "WORKLOAD_SOURCE_FEDERATION"
        assert (await reported("mistral-7b-fr"))["source"] == "WORKLOAD_SOURCE_LOCAL"

        # The federation may not overwrite a local workload, even in another namespace.
        rec = await outcome(fed, "fr-par-1", d_local.id)
        assert rec.state == tpb.DIRECTIVE_STATE_REJECTED and "local workload" in rec.reason
        assert fr.get(MD, "research", "mistral-7b-fr")["spec"]["source"] == "local"  # type: ignore[index]
        assert fr.get(MD, WORKLOADS, "mistral-7b-fr") is None

        # A bad spec is a status condition, not a crash loop.
        await until(lambda: phase(fr, "broken") == "Failed", 5, "broken failed")
        cond = fr.get(MD, WORKLOADS, "broken")["status"]["conditions"][0]  # type: ignore[index]
        assert cond["reason"] == "InvalidSpec" and "spec.version" in cond["message"]
        assert fr.get(DEPLOYMENTS, WORKLOADS, "broken") is None

        # --- SitePolicy vetoes: a Reject with the reason upstream, an Event at the site ----------
        rec = await outcome(fed, "de-fra-1", d_tier.id)
        assert rec.state == tpb.DIRECTIVE_STATE_REJECTED and "risk tier 3 not accepted" in rec.reason
        events = await until(lambda: de.events("DirectiveRejected"), 5, "a DirectiveRejected event")
        assert "risk tier 3 not accepted" in events[0]["message"] and events[0]["type"] == "Warning"
        assert events[0]["involvedObject"]["kind"] == "FederationLink"
        assert de.get(MD, WORKLOADS, "atlas") is None
        rec = await outcome(fed, "jp-tyo-1", d_share.id)
        assert rec.state == tpb.DIRECTIVE_STATE_REJECTED and "federation's share" in rec.reason
        assert de.get(SP, None, "site")["status"]["conditions"][0]["reason"] == "Accepted"  # type: ignore[index]

        # requireLocalApproval: acked (recorded) but held until a site operator approves it.
        assert (await outcome(fed, "de-fra-1", d_held.id)).state == tpb.DIRECTIVE_STATE_ACKED
        await until(lambda: phase(de, "small") == "Pending", 5, "held")
        assert de.get(DEPLOYMENTS, WORKLOADS, "small") is None
        approve = {"metadata": {"annotations": {"federation.stargate.io/approved": "true"}}}
        await de.http("PATCH", f"{API}/namespaces/{WORKLOADS}/modeldeployments/small", approve, merge=True)
        await until(lambda: phase(de, "small") == "Running", 5, "approved and running")

        # --- drift: a federation-owned ModelDeployment deleted or edited by hand is restored ------
        uid = fr.get(MD, WORKLOADS, "atlas")["metadata"]["uid"]  # type: ignore[index]
        await fr.http("DELETE", f"{API}/namespaces/{WORKLOADS}/modeldeployments/atlas")
        await until(
            lambda: (fr.get(MD, WORKLOADS, "atlas") or {"metadata": {"uid": uid}})["metadata"]["uid"] != uid,
            5,
            "restored",
        )
        await until(lambda: fr.events("Restored"), 5, "a Restored event")
        edit = {"spec": {"replicas": 7, "halted": True}}
        await fr.http("PATCH", f"{API}/namespaces/{WORKLOADS}/modeldeployments/atlas", edit, merge=True)
        await until(lambda: fr.get(MD, WORKLOADS, "atlas")["spec"]["replicas"] == 2, 5, "edit reverted")  # type: ignore[index]
        assert fr.get(MD, WORKLOADS, "atlas")["spec"]["halted"] is True  # type: ignore[index]  # the site's
        await until(lambda: fr.get(DEPLOYMENTS, WORKLOADS, "atlas")["spec"]["replicas"] == 0, 5, "halted")  # type: ignore[index]
        await asyncio.sleep(0)
