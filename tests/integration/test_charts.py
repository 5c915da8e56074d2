"""Both Helm charts rendered with helm-python-sdk over their defaults and realistic overrides,
linted strictly, every rendered built-in object validated with kubernetes-validate for the
Kubernetes version the charts declare, and values.schema.json refusing bad values with the field
named. (tests/envtest applies the rendered objects to a real kube-apiserver.)"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import helm_python
import kubernetes_validate
import pytest
import yaml

from controlplane.server import main as server_main
from tests.support.charts import CHARTS, OVERRIDES, kube_version, render


@pytest.mark.parametrize("chart", sorted(CHARTS))
def test_charts_lint_strictly(chart: str) -> None:
    result = helm_python.lint(str(CHARTS[chart]), strict=True, kube_version=f"{kube_version(chart)}.0")
    assert result["errors"] == [], result
    # Severity 1 is INFO ("icon is recommended"); warnings (2) and errors (3+) fail strict lint.
    assert all(m["severity"] <= 1 for m in result["messages"]), result


@pytest.mark.parametrize(("chart", "case", "values"), OVERRIDES, ids=[f"{c}-{k}" for c, k, _ in OVERRIDES])
def test_rendered_objects_validate_against_the_declared_kubernetes(
    chart: str, case: str, values: dict[str, Any]
) -> None:
    objs = render(chart, values)
    assert objs
    version = kube_version(chart)
    for obj in objs:
        # strict: unknown fields are errors, as `kubectl apply --validate=strict` makes them.
        kubernetes_validate.validate(obj, version, strict=True)
    kinds = {o["kind"] for o in objs}
    workload = next(o for o in objs if o["kind"] in ("StatefulSet", "Deployment"))
    pod = workload["spec"]["template"]
    container = pod["spec"]["containers"][0]
    metrics = {"enabled": True, "host": "0.0.0.0", "port": 9464, "scrapeAnnotations": True} | values.get(
        "metrics", {}
    )
    annotations = pod["metadata"].get("annotations", {})
    ports = {p["name"]: p["containerPort"] for p in container.get("ports", [])}
    if chart == "stargate-controlplane":
        listen = f"{metrics['host']}:{metrics['port']}"
        assert (listen in container["args"]) is metrics["enabled"]
        # The rendered command line is one the real program accepts (argparse: a bad order or an
        # unknown flag exits 2), with the values the chart was given.
        try:
            args = server_main.parser().parse_args(container["args"])
        except SystemExit as e:
            raise AssertionError(f"stargate-controlplane refuses {container['args']}") from e
        assert args.command == "serve" and args.log_format == values.get("logFormat", "text")
        assert args.metrics_listen == (listen if metrics["enabled"] else "")
        assert ("PodDisruptionBudget" in kinds) is values.get("podDisruptionBudget", {}).get("enabled", True)
        assert workload["spec"]["replicas"] == values.get("replicaCount", 3)
    else:
        env = {e["name"]: e.get("value") for e in container["env"]}
        assert env.get("STARGATE_METRICS_LISTEN") == (
            f"{metrics['host']}:{metrics['port']}" if metrics["enabled"] else None
        )
        assert env["STARGATE_LOG_FORMAT"] == values.get("operator", {}).get("logFormat", "text")
        namespaces = [o["metadata"]["name"] for o in objs if o["kind"] == "Namespace"]
        assert namespaces == (values["federationNamespaces"] if values.get("createNamespaces") else [])
    if metrics["enabled"]:
        assert ports["metrics"] == metrics["port"]
    else:
        assert "metrics" not in ports
    scraped = metrics["enabled"] and metrics["scrapeAnnotations"]
    assert (annotations.get("prometheus.io/scrape") == "true") is scraped
    if scraped:
        assert annotations["prometheus.io/port"] == str(metrics["port"])
        assert annotations["prometheus.io/path"] == "/metrics"
    for k, v in values.get("podAnnotations", {}).items():
        assert annotations[k] == v


BAD_VALUES = [
    ("stargate-controlplane", {"metrics": {"port": 70000}}, "/metrics/port"),
    ("stargate-controlplane", {"metrics": {"enabled": "yes"}}, "/metrics/enabled"),
    ("stargate-controlplane", {"metrics": {"host": "0.0.0.0; rm -rf /"}}, "/metrics/host"),
    ("stargate-controlplane", {"logFormat": "xml"}, "/logFormat"),
    ("stargate-controlplane", {"replicaCount": "three"}, "/replicaCount"),
    ("stargate-controlplane", {"metrics": {"prot": 1}}, "prot"),
    ("stargate-site", {"metrics": {"port": 0}}, "/metrics/port"),
    ("stargate-site", {"operator": {"logFormat": "yaml"}}, "/operator/logFormat"),
    ("stargate-site", {"federationNamespaces": "ai-workloads"}, "/federationNamespaces"),
]


@pytest.mark.parametrize(("chart", "values", "field"), BAD_VALUES, ids=[f"{c}-{f}" for c, _, f in BAD_VALUES])
def test_values_schema_refuses_bad_values_naming_the_field(
    chart: str, values: dict[str, Any], field: str
) -> None:
    with pytest.raises(helm_python.HelmValuesError) as e:
        render(chart, values)
    assert field in str(e.value), str(e.value)


@pytest.mark.parametrize("chart", sorted(CHARTS))
def test_example_alert_rules_are_valid_prometheus_rules(chart: str, tmp_path: Path) -> None:
    rules = CHARTS[chart] / "monitoring" / "alerts.yaml"
    doc = yaml.safe_load(rules.read_text())
    names = [r["alert"] for g in doc["groups"] for r in g["rules"]]
    assert any("CertificateExpiresSoon" in n for n in names) and any(
        "LinkDown" in n or "LinksDown" in n for n in names
    )
    # Every rule names only series the processes export (tests/integration/test_metrics_logs.py).
    exported = {
        "stargate_certificate_expiry_seconds", "stargate_is_leader", "stargate_leader_changes_total",
        "stargate_links_connected", "stargate_halt_propagation_seconds_bucket", "stargate_directives_total",
        "stargate_store_errors_total", "stargate_store_request_duration_seconds_bucket",
        "stargate_site_link_connected", "stargate_site_directives_total",
    }  # fmt: skip
    for g in doc["groups"]:
        for r in g["rules"]:
            used = set(re.findall(r"\bstargate_[a-z_]+", r["expr"]))
            assert used and used <= exported, (r["alert"], used - exported)
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("promtool absent (Debian's prometheus package ships it: .ci/install-prometheus.sh)")
    r = subprocess.run([promtool, "check", "rules", str(rules)], capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stdout + r.stderr


def _rules(
    objs: list[dict[str, Any]], kind: str, namespace: str | None = None
) -> dict[tuple[str, str], set[str]]:
    """(apiGroup, resource) -> verbs granted by the chart's ``kind`` objects (in ``namespace``)."""
    out: dict[tuple[str, str], set[str]] = {}
    for o in objs:
        if o["kind"] != kind or (namespace is not None and o["metadata"].get("namespace") != namespace):
            continue
        for rule in o["rules"]:
            for group in rule["apiGroups"]:
                for res in rule["resources"]:
                    out.setdefault((group, res), set()).update(rule["verbs"])
    return out


def test_job_rbac_is_exactly_what_the_operator_needs_and_only_in_federation_namespaces() -> None:
    """Least privilege for localisation jobs (operators/kube/jobrunner.py): the verbs it calls, in
    the federation namespaces only; never on Secrets there, never cluster-wide.
    (tests/envtest/test_jobs.py runs the job methods as the chart's ServiceAccount.)"""
    objs = render("stargate-site", {"federationNamespaces": ["ai-workloads", "ai-batch"]})
    for ns in ("ai-workloads", "ai-batch"):
        granted = _rules(objs, "Role", ns)
        assert granted[("batch", "jobs")] == {"get", "list", "create", "patch", "delete"}
        assert granted[("networking.k8s.io", "networkpolicies")] == {"get", "create", "patch", "delete"}
        assert granted[("federation.stargate.io", "datasets")] == {"get", "list", "watch"}
        assert granted[("federation.stargate.io", "datasets/status")] == {"get", "patch"}
        assert granted[("", "persistentvolumeclaims")] == {"get"}
        assert ("", "secrets") not in granted
    cluster = _rules(objs, "ClusterRole")
    touched = {("batch", "jobs"), ("networking.k8s.io", "networkpolicies"), ("", "persistentvolumeclaims")}
    assert not touched & set(cluster), cluster
    assert not any(res.startswith("datasets") for _, res in cluster)
    # "default" gets a Role for kopf's events only.
    assert set(_rules(objs, "Role", "default")) == {("", "events"), ("events.k8s.io", "events")}
