"""The site chart's CRDs are structural, line up with the wire API, and accept/refuse the examples.

Kubernetes validates custom resources against the CRD's openAPIV3Schema; here jsonschema
(Draft 2020-12) approximates it, with unknown fields refused (what kubectl's strict field
validation does), so a typo in an example fails too. CEL rules (x-kubernetes-validations) and
formats are not evaluated here; a real apiserver would.
"""

from __future__ import annotations

import copy
import pathlib
import re
from collections.abc import Iterator
from typing import Any

import jsonschema
import pytest
import yaml

from controlplane.api.v1 import types_pb2
from controlplane.domain import datasets

CHART = pathlib.Path(__file__).resolve().parents[2] / "charts" / "stargate-site"
GROUP, VERSION = "federation.stargate.io", "v1alpha1"
EXPECTED = {  # kind: (plural, scope, short name)
    "FederationLink": ("federationlinks", "Cluster", "fl"),
    "ModelDeployment": ("modeldeployments", "Namespaced", "md"),
    "SitePolicy": ("sitepolicies", "Cluster", "sp"),
    "Dataset": ("datasets", "Namespaced", "dset"),
}
# Keys allowed inside allOf/anyOf/oneOf/not of a structural schema: value validations only.
JUNCTOR_KEYS = {
    "required",
    "enum",
    "pattern",
    "minimum",
    "maximum",
    "minLength",
    "maxLength",
    "minItems",
    "maxItems",
    "minProperties",
    "maxProperties",
    "multipleOf",
    "format",
    "properties",
    "items",
    "allOf",
    "anyOf",
    "oneOf",
    "not",
    "uniqueItems",
    "exclusiveMinimum",
    "exclusiveMaximum",
}


def load(path: pathlib.Path) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


CRDS = {
    doc["spec"]["names"]["kind"]: doc
    for path in sorted((CHART / "crds").glob("*.yaml"))
    for doc in load(path)
}


def schema_of(kind: str) -> dict[str, Any]:
    (version,) = [v for v in CRDS[kind]["spec"]["versions"] if v["name"] == VERSION]
    return version["schema"]["openAPIV3Schema"]


def walk(node: dict[str, Any], path: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
    yield path, node
    for name, child in node.get("properties", {}).items():
        yield from walk(child, f"{path}.{name}")
    for key in ("items", "additionalProperties"):
        if isinstance(node.get(key), dict):
            yield from walk(node[key], f"{path}[{key}]")


def strict(node: Any) -> Any:
    """The schema with unknown fields refused (metadata is the apiserver's, left open)."""
    node = copy.deepcopy(node)
    for path, sub in walk(node):
        if "properties" in sub and path != ".metadata":
            sub["additionalProperties"] = False
    return node


def validator(kind: str) -> jsonschema.Draft202012Validator:
    return jsonschema.Draft202012Validator(strict(schema_of(kind)))


def test_the_four_crds_exist_with_names_scope_and_status() -> None:
    assert set(CRDS) == set(EXPECTED)
    for kind, (plural, scope, short) in EXPECTED.items():
        crd = CRDS[kind]
        assert crd["metadata"]["name"] == f"{plural}.{GROUP}"
        spec = crd["spec"]
        assert (spec["group"], spec["scope"], spec["names"]["plural"]) == (GROUP, scope, plural)
        assert spec["names"]["shortNames"] == [short]
        (version,) = spec["versions"]
        assert version["name"] == VERSION and version["served"] and version["storage"]
        assert version["subresources"] == {"status": {}}
        columns = version["additionalPrinterColumns"]
        assert any(c["name"] == "Age" for c in columns)
        for column in columns:  # every column points at a field the schema declares
            node = schema_of(kind)
            parts = column["jsonPath"].lstrip(".").split(".")
            for part in parts if parts[0] != "metadata" else []:
                node = node.get("properties", {}).get(part, {})
            assert node.get("type"), f"{kind} column {column['name']} -> {column['jsonPath']}"


#: Short names of built-in resources (kubectl api-resources, Kubernetes 1.25-1.32): a CRD taking
#: one makes `kubectl get <it>` ambiguous (kubectl warns and prefers the built-in group).
BUILTIN_SHORT_NAMES = {
    "cm", "cs", "csr", "crd", "crds", "deploy", "ds", "ep", "ev", "hpa", "ing", "limits", "netpol",
    "no", "ns", "pc", "pdb", "po", "psp", "pv", "pvc", "quota", "rc", "rs", "sa", "sc", "sts", "svc",
}  # fmt: skip


def test_short_names_do_not_shadow_built_in_resources() -> None:
    for kind, crd in CRDS.items():
        taken = set(crd["spec"]["names"].get("shortNames", [])) & BUILTIN_SHORT_NAMES
        assert not taken, f"{kind} takes the built-in short name(s) {taken}"


@pytest.mark.parametrize("kind", sorted(EXPECTED))
def test_schema_is_structural(kind: str) -> None:
    root = schema_of(kind)
    assert set(root["properties"]["metadata"]) == {"type"}, "only name/generateName may be constrained"
    for path, node in walk(root):
        where = f"{kind}{path or '.'}"
        if not (node.get("x-kubernetes-int-or-string") or node.get("x-kubernetes-preserve-unknown-fields")):
            assert "type" in node, f"{where}: no type"
        assert not ("properties" in node and "additionalProperties" in node), (
            f"{where}: both kinds of properties"
        )
        if node.get("type") == "object" and path != ".metadata":
            assert "properties" in node or "additionalProperties" in node, f"{where}: an untyped object"
        for name in node.get("required", []):
            assert name in node.get("properties", {}), f"{where}: required {name} is not a property"
        for junctor in ("allOf", "anyOf", "oneOf"):
            for branch in node.get(junctor, []):
                assert set(branch) <= JUNCTOR_KEYS, f"{where}: {junctor} may hold value validations only"
                assert set(branch.get("required", [])) <= set(node["properties"]), where
        if "enum" in node:
            python_type = {"string": str, "integer": int, "number": (int, float)}[node["type"]]
            assert all(isinstance(value, python_type) for value in node["enum"]), where
        if "default" in node:
            jsonschema.validate(node["default"], {k: v for k, v in node.items() if k != "default"})
        if node.get("x-kubernetes-list-type") == "map":
            keys = node["x-kubernetes-list-map-keys"]
            assert set(keys) <= set(node["items"].get("required", [])), f"{where}: map keys must be required"
        if "pattern" in node:
            re.compile(node["pattern"])  # RE2 is stricter; these use only the common subset


def test_field_names_line_up_with_the_wire_api() -> None:
    """DeployPayload and DeploymentStatus in camelCase are ModelDeployment's spec/status fields."""
    spec = set(schema_of("ModelDeployment")["properties"]["spec"]["properties"])
    status = set(schema_of("ModelDeployment")["properties"]["status"]["properties"])
    deploy = {f.json_name for f in types_pb2.DeployPayload.DESCRIPTOR.fields} - {
        "deploymentName"
    }  # metadata.name
    assert deploy <= spec, deploy - spec
    reported = {f.json_name for f in types_pb2.DeploymentStatus.DESCRIPTOR.fields}
    # name is metadata.name; the rest of the gap is measured by monitoring, never stored in the CR.
    measured = {"name", "errorRate", "latencyP95Ms", "safetyScore", "measured"}
    assert reported - measured <= spec | status, reported - measured - spec - status
    sources = schema_of("ModelDeployment")["properties"]["spec"]["properties"]["source"]["enum"]
    wire = {
        v.name.removeprefix("WORKLOAD_SOURCE_").lower() for v in types_pb2.WorkloadSource.DESCRIPTOR.values
    }
    assert set(sources) == wire - {"unspecified"}
    # operatorVersion is the operator's own; policy is summarised from the SitePolicy resource.
    facts = {f.json_name for f in types_pb2.SiteFacts.DESCRIPTOR.fields} - {"operatorVersion", "policy"}
    assert facts <= set(schema_of("FederationLink")["properties"]["spec"]["properties"])
    summary = {f.json_name for f in types_pb2.PolicySummary.DESCRIPTOR.fields}
    assert summary <= set(schema_of("SitePolicy")["properties"]["spec"]["properties"])


def test_dataset_schema_lines_up_with_the_domain() -> None:
    """What kubectl refuses is what the operator's parser refuses (controlplane/domain/datasets.py):
    the same enums and the same BCP 47 shape, so no Dataset passes one and fails the other."""
    spec = schema_of("Dataset")["properties"]["spec"]["properties"]
    assert spec["classification"]["enum"] == [c.value for c in datasets.Classification]
    assert spec["purposes"]["items"]["enum"] == [p.value for p in datasets.Purpose]
    assert spec["size"]["enum"] == [b.value for b in datasets.SizeBucket]
    assert spec["languages"]["items"]["pattern"] == datasets._BCP47.pattern
    assert spec["languages"]["maxItems"] == datasets.MAX_LANGUAGES
    jobs = schema_of("SitePolicy")["properties"]["spec"]["properties"]["jobs"]["properties"]
    assert jobs["allowPurposes"]["items"]["enum"] == [p.value for p in datasets.Purpose]
    status = schema_of("Dataset")["properties"]["status"]["properties"]
    assert status["phase"]["enum"] == ["Offered", "Refused"]


VALID = sorted((CHART / "examples").glob("*.yaml"))
INVALID = sorted((CHART / "examples" / "invalid").glob("*.yaml"))


@pytest.mark.parametrize("path", VALID, ids=lambda p: p.name)
def test_valid_example_validates(path: pathlib.Path) -> None:
    for doc in load(path):
        assert doc["apiVersion"] == f"{GROUP}/{VERSION}"
        errors = [
            f"{'.'.join(map(str, e.absolute_path))}: {e.message}"
            for e in validator(doc["kind"]).iter_errors(doc)
        ]
        assert not errors, errors


def error_fields(error: jsonschema.ValidationError) -> set[str]:
    """Dotted paths an error is about; a missing required property names the property itself."""
    path = ".".join(map(str, error.absolute_path))
    fields = {path}
    if error.validator == "required" and (m := re.match(r"'([^']+)' is a required property", error.message)):
        fields.add(f"{path}.{m[1]}".lstrip("."))
    for sub in error.context or []:
        fields |= error_fields(sub)
    return fields


@pytest.mark.parametrize("path", INVALID, ids=lambda p: p.name)
def test_invalid_example_fails_naming_the_field(path: pathlib.Path) -> None:
    expected = re.search(r"^# expect-error: (\S+)$", path.read_text(), re.MULTILINE)
    assert expected, f"{path.name} lacks an '# expect-error: <field>' comment"
    (doc,) = load(path)
    errors = list(validator(doc["kind"]).iter_errors(doc))
    assert errors, f"{path.name} validates but must not"
    named = set().union(*(error_fields(e) for e in errors))
    assert expected[1] in named, f"{path.name}: expected an error on {expected[1]}, got {sorted(named)}"


def test_there_are_invalid_examples_for_every_kind() -> None:
    kinds = {load(path)[0]["kind"] for path in INVALID}
    assert kinds == set(EXPECTED)
