"""The chart's CRDs and example custom resources go through a real kubectl.

kubectl talks to the test emulator (tests/support/kube_emulator.py): it proves the manifests are
well-formed for kubectl's client side (parsing, discovery of the new resources, apply's
three-way merge) and that they read back as written. Schema validation is the unit tests' job
(the emulator does not validate, hence --validate=false).
"""

from __future__ import annotations

import pathlib
import shutil
import subprocess
from collections.abc import Iterator
from typing import Any

import pytest
import yaml

from tests.support.kube_emulator import EmulatorThread

CHART = pathlib.Path(__file__).resolve().parents[2] / "charts" / "stargate-site"
KUBECTL_HELP = (
    "kubectl is required for this test and was not found on PATH. Install kubectl 1.32, e.g. "
    "`curl -LO https://dl.k8s.io/release/v1.32.0/bin/linux/amd64/kubectl && "
    "install -m 0755 kubectl /usr/local/bin/kubectl` (or your distribution's kubernetes-client package)."
)


@pytest.fixture
def kubectl(tmp_path: pathlib.Path) -> Iterator[Any]:
    binary = shutil.which("kubectl") or (
        "/usr/bin/kubectl" if pathlib.Path("/usr/bin/kubectl").exists() else None
    )
    if binary is None:
        pytest.fail(KUBECTL_HELP)
    with EmulatorThread(crds=False) as served:
        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [
                {"name": "emu", "cluster": {"server": served.url, "insecure-skip-tls-verify": True}}
            ],
            "users": [{"name": "emu", "user": {"token": "test"}}],
            "contexts": [{"name": "emu", "context": {"cluster": "emu", "user": "emu"}}],
            "current-context": "emu",
        }
        kubeconfig = tmp_path / "kubeconfig"
        kubeconfig.write_text(yaml.safe_dump(config))

        def run(*args: str, stdin: str | None = None) -> str:
            # A per-test cache dir: kubectl caches discovery, and every emulator has a new port.
            cmd = [binary, f"--kubeconfig={kubeconfig}", f"--cache-dir={tmp_path / 'cache'}", *args]
            proc = subprocess.run(cmd, input=stdin, capture_output=True, text=True, timeout=30)
            assert proc.returncode == 0, f"kubectl {' '.join(args)} failed:\n{proc.stderr}"
            return proc.stdout

        yield run


def test_apply_crds_and_examples_and_read_them_back(kubectl: Any) -> None:
    out = kubectl("apply", "--validate=false", "-f", str(CHART / "crds"))
    assert out.count("created") == 4, out
    kubectl("wait", "--for=condition=Established", "--timeout=10s", "crd", "--all")

    kubectl(
        "apply",
        "--validate=false",
        "-f",
        "-",
        stdin="apiVersion: v1\nkind: Namespace\nmetadata:\n  name: ai-workloads\n",
    )
    out = kubectl("apply", "--validate=false", "-f", str(CHART / "examples"))
    assert "federationlink.federation.stargate.io/federation created" in out
    assert "modeldeployment.federation.stargate.io/mistral-7b-fr created" in out
    assert "sitepolicy.federation.stargate.io/site created" in out
    assert "dataset.federation.stargate.io/fr-news created" in out

    # Short names resolve through the discovery the emulator builds from the CRDs.
    link = yaml.safe_load(kubectl("get", "fl", "federation", "-o", "yaml"))
    assert link["spec"]["siteId"] == "fr-par-1" and link["spec"]["country"] == "FR"
    assert link["spec"]["capacity"] == {"h100": 64, "l40s": 16}
    assert link["spec"]["tokenSecretRef"] == {
        "name": "stargate-join-token",
        "namespace": "stargate-system",
        "key": "token",
    }
    assert "namespace" not in link["metadata"]  # cluster-scoped

    md = yaml.safe_load(kubectl("get", "md", "-n", "ai-workloads", "mistral-7b-fr", "-o", "yaml"))
    assert md["spec"]["digest"].startswith("sha256:") and md["spec"]["source"] == "local"
    assert md["spec"]["replicas"] == 2 and md["spec"]["riskTier"] == 2 and md["spec"]["locale"] == "fr-FR"
    assert md["metadata"]["generation"] == 1

    policy = yaml.safe_load(kubectl("get", "sp", "site", "-o", "yaml"))
    assert policy["spec"]["acceptedRiskTiers"] == [1, 2, 3]
    assert policy["spec"]["federationCapacityShare"] == 0.25
    assert {t["riskTier"]: t["seconds"] for t in policy["spec"]["linkLossTolerance"]} == {
        1: 86400,
        2: 3600,
        3: 600,
    }

    jobs = policy["spec"]["jobs"]
    assert jobs["allowPurposes"] == ["fine-tune"] and jobs["maxHours"] == 12

    ds = yaml.safe_load(kubectl("get", "dset", "-n", "ai-workloads", "fr-news", "-o", "yaml"))
    assert ds["spec"]["jurisdiction"] == "FR" and ds["spec"]["classification"] == "personal"
    assert ds["spec"]["languages"] == ["fr", "fr-CA"] and ds["spec"]["purposes"] == ["fine-tune", "evaluate"]
    assert ds["spec"]["storage"] == {"claimName": "fr-news-corpus"}
    assert ds["spec"]["sizeBytes"] == 2 * 1024**4

    # Re-applying is a no-op; a merge patch bumps the generation; status is left alone.
    out = kubectl("apply", "--validate=false", "-f", str(CHART / "examples"))
    assert out.count("unchanged") == 4, out
    kubectl(
        "patch", "md", "-n", "ai-workloads", "mistral-7b-fr", "--type=merge", "-p", '{"spec":{"replicas":3}}'
    )
    md = yaml.safe_load(kubectl("get", "md", "-n", "ai-workloads", "mistral-7b-fr", "-o", "yaml"))
    assert md["spec"]["replicas"] == 3 and md["metadata"]["generation"] == 2

    names = kubectl("get", "modeldeployments", "-A", "-o", "name").split()
    assert names == ["modeldeployment.federation.stargate.io/mistral-7b-fr"]
    kubectl("delete", "md", "-n", "ai-workloads", "mistral-7b-fr", "--wait=true", "--timeout=10s")
    assert kubectl("get", "md", "-A", "-o", "name").strip() == ""
