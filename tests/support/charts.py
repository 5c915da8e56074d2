"""The shipped Helm charts rendered with helm-python-sdk (Helm v4 as a library; no helm binary),
over their defaults and realistic overrides (test infrastructure: tests/integration/test_charts.py
validates the objects, tests/envtest applies them to a real kube-apiserver)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import helm_python
import yaml

ROOT = Path(__file__).resolve().parents[2]
CHARTS = {name: ROOT / "charts" / name for name in ("stargate-controlplane", "stargate-site")}

#: (chart, case, values): the defaults and what operators are expected to change.
OVERRIDES: list[tuple[str, str, dict[str, Any]]] = [
    ("stargate-controlplane", "defaults", {}),
    (
        "stargate-controlplane",
        "two-replicas-plaintext-etcd-no-metrics",
        {
            "replicaCount": 2,
            "etcd": {"endpoints": ["http://etcd.platform.svc:2379"], "tls": {"enabled": False}},
            "metrics": {"enabled": False},
            "podDisruptionBudget": {"enabled": False},
            "logFormat": "json",
        },
    ),
    (
        "stargate-controlplane",
        "loopback-metrics-extra-args-pinned-image",
        {
            "image": {"tag": "0.1.1", "pullPolicy": "Always"},
            "metrics": {"host": "127.0.0.1", "port": 9100, "scrapeAnnotations": False},
            "extraArgs": ["--heartbeat-interval", "2"],
            "podAnnotations": {"team": "federation"},
            "nodeSelector": {"node-role.kubernetes.io/control-plane": ""},
        },
    ),
    ("stargate-site", "defaults", {}),
    (
        "stargate-site",
        "two-namespaces-created-json-logs",
        {
            "federationNamespaces": ["ai-workloads", "ai-batch"],
            "createNamespaces": True,
            "operator": {"logFormat": "json", "logLevel": "debug"},
            "metrics": {"port": 9100},
        },
    ),
    (
        "stargate-site",
        "no-node-discovery-no-metrics-liveness",
        {
            "rbac": {"nodeDiscovery": False},
            "metrics": {"enabled": False},
            "livenessProbe": {"httpGet": {"path": "/healthz", "port": 8080}, "periodSeconds": 20},
            "operator": {"extraArgs": ["--liveness", "http://0.0.0.0:8080/healthz"]},
        },
    ),
]


def kube_version(chart: str) -> str:
    """The lowest Kubernetes minor the chart declares (Chart.yaml ``kubeVersion: >=1.25.0-0``)."""
    declared = yaml.safe_load((CHARTS[chart] / "Chart.yaml").read_text())["kubeVersion"]
    m = re.match(r">=\s*(\d+)\.(\d+)", declared)
    assert m, declared
    return f"{m.group(1)}.{m.group(2)}"


def render(chart: str, values: dict[str, Any], namespace: str = "stargate-system") -> list[dict[str, Any]]:
    """The chart's objects (templates only; CRDs live in crds/ and are installed separately)."""
    files = helm_python.Chart.load(str(CHARTS[chart])).render(values, name="t", namespace=namespace)
    out: list[dict[str, Any]] = []
    for path, text in sorted(files.items()):
        if not path.endswith((".yaml", ".yml")):
            continue
        out.extend(doc for doc in yaml.safe_load_all(text) if doc)
    return out


def crds() -> list[dict[str, Any]]:
    return [yaml.safe_load(p.read_text()) for p in sorted((CHARTS["stargate-site"] / "crds").glob("*.yaml"))]
