"""Both charts, rendered with helm-python-sdk over their defaults and overrides
(tests/support/charts.py), applied to a real kube-apiserver with kubectl's validation: the server
stores every object (RBAC, workloads, services, namespaces) as rendered.

The charts declare Kubernetes >= 1.25; the only server that can be built here is 1.20.2
(scripts/envtest-bin.sh), which does not serve policy/v1 (PodDisruptionBudget, GA in 1.21). That
object is applied as policy/v1beta1 instead, whose schema for what the chart sets
(maxUnavailable, selector) is the same; every other object goes in unchanged."""

from __future__ import annotations

import json
import urllib.error
from typing import Any

import pytest
import yaml

from tests.support.charts import OVERRIDES, crds, render
from tests.support.envtest import ApiServer


def served(api: ApiServer, api_version: str) -> bool:
    path = f"/api/{api_version}" if "/" not in api_version else f"/apis/{api_version}"
    try:
        api.get(path)
    except urllib.error.HTTPError as e:
        if e.code == 404:
            return False
        raise
    return True


def test_the_site_charts_crds_apply_and_are_served(apiserver: ApiServer) -> None:
    docs = crds()
    apiserver.kubectl("apply", "--validate=false", "-f", "-", stdin=yaml.safe_dump_all(docs))
    apiserver.kubectl("wait", "--for=condition=Established", "--timeout=30s", "crd", "--all")
    assert served(apiserver, "federation.stargate.io/v1alpha1")


@pytest.mark.parametrize(("chart", "case", "values"), OVERRIDES, ids=[f"{c}-{k}" for c, k, _ in OVERRIDES])
def test_rendered_chart_applies_to_a_real_api_server(
    apiserver: ApiServer, chart: str, case: str, values: dict[str, Any]
) -> None:
    namespace = f"{chart.removeprefix('stargate-')}-{abs(hash(case)) % 10_000}"
    apiserver.kubectl("create", "namespace", namespace, check=False)
    if chart == "stargate-site" and not values.get("createNamespaces"):
        # The chart does not create them by default (values.yaml): the site's admin does.
        for ns in values.get("federationNamespaces", ["ai-workloads"]):
            apiserver.kubectl("create", "namespace", ns, check=False)
    objs = render(chart, values, namespace=namespace)
    downgraded = []
    for obj in objs:
        if not served(apiserver, obj["apiVersion"]):
            assert (obj["apiVersion"], obj["kind"]) == ("policy/v1", "PodDisruptionBudget"), obj
            obj["apiVersion"] = "policy/v1beta1"
            downgraded.append(obj["metadata"]["name"])
    stdin = yaml.safe_dump_all(objs)
    out = apiserver.kubectl("apply", "-f", "-", stdin=stdin).stdout
    assert out.count("\n") == len(objs), out
    for obj in objs:
        kind, name = obj["kind"].lower(), obj["metadata"]["name"]
        args = [
            "get",
            f"{kind}.{obj['apiVersion'].split('/')[0]}" if "/" in obj["apiVersion"] else kind,
            name,
        ]
        if obj["kind"] not in ("ClusterRole", "ClusterRoleBinding", "Namespace"):
            args += ["-n", obj["metadata"].get("namespace", namespace)]
        got = json.loads(apiserver.kubectl(*args, "-o", "json").stdout)
        assert got["metadata"]["labels"] == obj["metadata"].get("labels", got["metadata"].get("labels")), name
        if "spec" in obj and obj["kind"] in ("Deployment", "StatefulSet"):
            want = obj["spec"]["template"]["spec"]["containers"][0]
            have = got["spec"]["template"]["spec"]["containers"][0]
            assert have.get("args") == want.get("args") and have["image"] == want["image"]
            assert got["spec"]["template"]["metadata"].get("annotations") == obj["spec"]["template"][
                "metadata"
            ].get("annotations")
    if chart == "stargate-controlplane" and values.get("podDisruptionBudget", {}).get("enabled", True):
        assert downgraded, "policy/v1 is served: drop the v1beta1 fallback"
