"""The shipped CRDs and example resources against a real kube-apiserver, through kubectl: apply
with validation, imperative create, replace (PUT), explain, printer columns, structural-schema
validation (known-bad resources refused *by the server* with the field named), defaulting,
pruning and the status subresource - what the emulator of tests/integration cannot do."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support.envtest import ApiServer

CHART = Path(__file__).resolve().parents[2] / "charts" / "stargate-site"
EXAMPLES = CHART / "examples"
INVALID = sorted((EXAMPLES / "invalid").glob("*.yaml"))
GVP = "/apis/federation.stargate.io/v1alpha1"
DIGEST = "sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"


@pytest.fixture(scope="module")
def crds(apiserver: ApiServer) -> ApiServer:
    # kubectl validates a CRD against the *server's* CRD schema. A 1.20 server's knows no
    # x-kubernetes-validations (CEL rules, Kubernetes >= 1.25, which the charts declare): the two
    # CRDs with immutability rules are refused by kubectl's validation, naming that field, and
    # applied without it; the 1.20 server then drops the rules (so "siteId/source is immutable" is
    # not enforced here - a >= 1.25 cluster, e.g. kind in tests/e2e, enforces it).
    for plain in ("sitepolicies", "datasets"):  # validated by kubectl: no CEL in them
        apiserver.kubectl("apply", "-f", str(CHART / "crds" / f"{plain}.federation.stargate.io.yaml"))
    for cel in ("federationlinks", "modeldeployments"):
        path = CHART / "crds" / f"{cel}.federation.stargate.io.yaml"
        r = apiserver.kubectl("apply", "-f", str(path), check=False)
        assert r.returncode != 0 and 'unknown field "x-kubernetes-validations"' in r.stderr, r.stderr
        apiserver.kubectl("apply", "--validate=false", "-f", str(path))
    apiserver.kubectl("wait", "--for=condition=Established", "--timeout=30s", "crd", "--all")
    for ns in ("ai-workloads", "stargate-system"):
        apiserver.kubectl("create", "namespace", ns, check=False)
    return apiserver


def explain(api: ApiServer, field: str, timeout: float = 30) -> str:
    """kubectl explain, once the server publishes the new CRDs' OpenAPI (a few seconds after
    Established: the aggregator rebuilds the spec asynchronously)."""
    deadline = time.monotonic() + timeout
    while True:
        r = api.kubectl("explain", field, check=False)
        if r.returncode == 0 or time.monotonic() > deadline:
            assert r.returncode == 0, r.stderr
            return r.stdout
        time.sleep(0.5)


def md(name: str, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "federation.stargate.io/v1alpha1",
        "kind": "ModelDeployment",
        "metadata": {"name": name, "namespace": "ai-workloads"},
        "spec": {"model": "mistral-7b-instruct", "version": "0.3", "digest": DIGEST, **spec},
    }


def test_crds_are_established_with_short_names_and_explain(crds: ApiServer) -> None:
    names = crds.kubectl("get", "crd", "-o", "name").stdout.split()
    assert {n.removeprefix("customresourcedefinition.apiextensions.k8s.io/") for n in names} >= {
        "federationlinks.federation.stargate.io",
        "modeldeployments.federation.stargate.io",
        "sitepolicies.federation.stargate.io",
        "datasets.federation.stargate.io",
    }
    out = explain(crds, "modeldeployment.spec.replicas")
    assert "Replicas to run." in out and re.search(r"FIELD:\s+replicas\s+<integer>", out), out
    out = explain(crds, "fl.spec")
    assert "siteId" in out and "country" in out, out


def test_apply_with_validation_create_replace_and_printer_columns(crds: ApiServer) -> None:
    out = crds.kubectl("apply", "-f", str(EXAMPLES)).stdout
    assert "modeldeployment.federation.stargate.io/mistral-7b-fr created" in out, out
    assert "federationlink.federation.stargate.io/federation created" in out, out
    assert "sitepolicy.federation.stargate.io/site created" in out, out
    assert "dataset.federation.stargate.io/fr-news created" in out, out
    # Imperative create (a protobuf-free JSON POST) and a duplicate refused by the server.
    doc = yaml.safe_dump(md("created-imperatively", replicas=3))
    assert "created" in crds.kubectl("create", "-f", "-", stdin=doc).stdout
    dup = crds.kubectl("create", "-f", "-", stdin=doc, check=False)
    assert dup.returncode != 0 and "AlreadyExists" in dup.stderr, dup.stderr
    # replace (PUT) with the current resourceVersion; a stale one conflicts.
    cur = json.loads(
        crds.kubectl("get", "md", "created-imperatively", "-n", "ai-workloads", "-o", "json").stdout
    )
    cur["spec"]["replicas"] = 5
    assert "replaced" in crds.kubectl("replace", "-f", "-", stdin=json.dumps(cur)).stdout
    cur["spec"]["replicas"] = 6  # still the old resourceVersion
    stale = crds.kubectl("replace", "-f", "-", stdin=json.dumps(cur), check=False)
    assert stale.returncode != 0 and "the object has been modified" in stale.stderr, stale.stderr
    # Printer columns: the CRD's, in order; priority-1 columns only with -o wide.
    table = crds.kubectl("get", "md", "-n", "ai-workloads").stdout.splitlines()
    assert table[0].split() == ["NAME", "MODEL", "VERSION", "REPLICAS", "READY", "PHASE", "SOURCE", "AGE"], (
        table
    )
    row = next(line.split() for line in table if line.startswith("created-imperatively"))
    assert row[:4] == ["created-imperatively", "mistral-7b-instruct", "0.3", "5"], row
    wide = crds.kubectl("get", "md", "-n", "ai-workloads", "-o", "wide").stdout.splitlines()[0].split()
    assert wide[-3:] == ["RELEASE", "RISK", "AGE"], wide
    fl = crds.kubectl("get", "fl").stdout.splitlines()[0].split()
    assert fl == ["NAME", "SITE", "COUNTRY", "ENROLLED", "CONNECTED", "HEARTBEAT", "AGE"], fl


def test_defaulting_and_pruning_by_the_server(crds: ApiServer) -> None:
    body = md("defaults")
    body["spec"]["bogus"] = "pruned"  # unknown: pruned by the structural schema
    body["metadata"]["namespace"] = "ai-workloads"
    # The server, not kubectl, decides: no client-side validation.
    crds.kubectl("apply", "--validate=false", "-f", "-", stdin=json.dumps(body))
    got = crds.request("GET", f"{GVP}/namespaces/ai-workloads/modeldeployments/defaults")
    assert (
        got["spec"]["replicas"] == 1 and got["spec"]["halted"] is False and got["spec"]["source"] == "local"
    )
    assert "bogus" not in got["spec"], got["spec"]
    # With validation on, kubectl refuses the unknown field before sending it.
    strict = crds.kubectl(
        "apply",
        "-f",
        "-",
        stdin=json.dumps(body | {"metadata": {"name": "strict", "namespace": "ai-workloads"}}),
        check=False,
    )
    assert strict.returncode != 0 and "bogus" in strict.stderr, strict.stderr


def _expected_field(path: Path) -> str:
    first = path.read_text().splitlines()[0]
    assert first.startswith("# expect-error: "), path
    # The examples name list items as a.0.b; a 1.20 server names the list without the index
    # (spec.federationNamespaces), newer ones as a[0].b.
    return re.sub(r"\.\d+", "", first.removeprefix("# expect-error: ").strip())


@pytest.mark.parametrize(
    "path", [p for p in INVALID if "status" not in _expected_field(p)], ids=lambda p: p.name
)
def test_known_bad_resources_are_refused_by_the_server_naming_the_field(crds: ApiServer, path: Path) -> None:
    field = _expected_field(path)
    r = crds.kubectl("create", "--validate=false", "-f", str(path), check=False)
    assert r.returncode != 0, f"{path.name} was accepted:\n{r.stdout}"
    assert "is invalid" in r.stderr and field in r.stderr, r.stderr
    assert "Traceback" not in r.stderr


def test_status_is_a_subresource_and_validated_there(crds: ApiServer) -> None:
    bad = next(p for p in INVALID if _expected_field(p).startswith("status."))
    field = _expected_field(bad)
    # On create the main resource ignores status (it is the subresource's): accepted, status dropped.
    crds.kubectl("create", "--validate=false", "-f", str(bad))
    obj = yaml.safe_load(bad.read_text())
    name, ns = obj["metadata"]["name"], obj["metadata"]["namespace"]
    base = f"{GVP}/namespaces/{ns}/modeldeployments/{name}"
    assert "status" not in crds.request("GET", base) or not crds.request("GET", base)["status"]
    # Through /status the same value is refused, naming the field.
    with pytest.raises(Exception) as e:
        crds.request("PATCH", f"{base}/status", {"status": obj["status"]}, "application/merge-patch+json")
    body = e.value.read().decode()  # type: ignore[attr-defined]
    assert "Invalid" in body and field in body, body
    # A good status is stored through /status; a spec change sent there is ignored.
    change = {"status": {"phase": "Running", "readyReplicas": 1}, "spec": {"replicas": 9}}
    crds.request("PATCH", f"{base}/status", change, "application/merge-patch+json")
    got = crds.request("GET", base)
    assert got["status"]["phase"] == "Running" and got["spec"]["replicas"] == 1
    # ... and a status sent to the main resource is ignored.
    crds.request("PATCH", base, {"status": {"phase": "Failed"}}, "application/merge-patch+json")
    assert crds.request("GET", base)["status"]["phase"] == "Running"
