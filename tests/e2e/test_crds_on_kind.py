"""The site CRDs and example resources against a real API server (kind). See README.md here."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e

CHART = Path(__file__).resolve().parents[2] / "charts" / "stargate-site"


def kubectl(*args: str) -> subprocess.CompletedProcess[str]:
    exe = shutil.which("kubectl")
    assert exe, "kubectl is required (see tests/e2e/README.md)"
    return subprocess.run(
        [exe, "--context", "kind-stargate-e2e", *args], capture_output=True, text=True, timeout=60
    )


def test_crds_are_accepted_and_defaults_applied() -> None:
    r = kubectl("apply", "-f", str(CHART / "crds"))
    assert r.returncode == 0, r.stderr
    r = kubectl("wait", "--for=condition=Established", "--timeout=60s", "crd", "--all")
    assert r.returncode == 0, r.stderr
    kubectl("create", "namespace", "ai-workloads")
    r = kubectl("apply", "-f", str(CHART / "examples"))
    assert r.returncode == 0, r.stderr
    r = kubectl("get", "modeldeployments", "-A", "-o", "json")
    items = json.loads(r.stdout)["items"]
    assert items and all(i["spec"].get("source") in ("local", "federation") for i in items)


def test_invalid_examples_are_refused_by_the_api_server() -> None:
    for bad in sorted((CHART / "examples" / "invalid").glob("*.yaml")):
        r = kubectl("apply", "-f", str(bad))
        assert r.returncode != 0, f"{bad.name} was accepted"
