"""Kubernetes-style manifests (ModelRelease, Rollout, LocalizationJob) to wire messages.

camelCase fields, unknown fields rejected, every error naming the field path
(``spec.waves[1].bake``), the reason and the file. Files are read within bounds (size, alias
expansion, depth, integer digits, UTF-8: ``client/yamlfile.py``), and every number is checked
against the range the API accepts (``controlplane/domain/limits.py``) before it is put in a
message, so ``sites: 99999999999`` is a one-line error, not an overflow. Other semantic checks
(countries, DNS names) are the server's, which reports them the same way.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Any

from google.protobuf.message import Message

from controlplane.api import bounds
from controlplane.api.v1 import jobs_pb2 as jpb
from controlplane.api.v1 import release_pb2 as rpb
from controlplane.api.v1 import rollouts_pb2 as opb
from controlplane.client import yamlfile
from controlplane.domain.limits import LIMITS
from controlplane.errors import InvalidArgument

API_VERSION = "federation.stargate.io/v1alpha1"
_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h)")
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}


def duration(value: Any, where: str) -> float:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    m = _DURATION.fullmatch(str(value).strip()) if isinstance(value, str) else None
    if not m:
        raise InvalidArgument(where, f"{value!r} is not a duration like 30s, 5m, 1h")
    return float(m.group(1)) * _UNITS[m.group(2)]


# Schema: manifest key -> (proto field, type). Types: str, int, float, bool, "duration",
# [type] for lists, {"*": str} for string maps, or a nested schema dict.
RELEASE_SPEC: dict[str, tuple[str, Any]] = {
    "model": ("model", str),
    "version": ("version", str),
    "digest": ("digest", str),
    "riskTier": ("risk_tier", int),
    "export": (
        "export",
        {"allowCountries": ("allow_countries", [str]), "denyCountries": ("deny_countries", [str])},
    ),
    "resources": (
        "resources",
        {"accelerator": ("accelerator", str), "acceleratorsPerReplica": ("accelerators_per_replica", int)},
    ),
    "locales": ("locales", [str]),
}
ROLLOUT_SPEC: dict[str, tuple[str, Any]] = {
    "release": ("release", str),
    "placement": (
        "placement",
        {
            "countries": ("countries", [str]),
            "labels": ("labels", {"*": str}),
            "replicasPerSite": ("replicas_per_site", int),
            "maxSites": ("max_sites", int),
        },
    ),
    "waves": (
        "waves",
        [
            {
                "name": ("name", str),
                "sites": ("sites", int),
                "percent": ("percent", int),
                "bake": ("bake_seconds", "duration"),
            }
        ],
    ),
    "gates": (
        "gates",
        {
            "minReadyRatio": ("min_ready_ratio", float),
            "maxErrorRate": ("max_error_rate", float),
            "maxLatencyP95Ms": ("max_latency_p95_ms", float),
            "minSafetyScore": ("min_safety_score", float),
            "timeout": ("timeout_seconds", "duration"),
            "interval": ("interval_seconds", "duration"),
            "failureLimit": ("failure_limit", int),
            "progressDeadline": ("progress_deadline_seconds", "duration"),
        },
    ),
    "approvals": ("approvals", {"countrySteward": ("country_steward", bool)}),
}
JOB_SPEC: dict[str, tuple[str, Any]] = {
    "base": ("base", str),
    "dataset": (
        "dataset",
        {"name": ("name", str), "language": ("language", str), "country": ("country", str)},
    ),
    "purpose": ("purpose", str),
    "trainer": ("trainer", {"image": ("image", str), "command": ("command", [str])}),
    "resources": (
        "resources",
        {
            "accelerator": ("accelerator", str),
            "accelerators": ("accelerators", int),
            "maxHours": ("max_hours", float),
        },
    ),
    "output": ("output", {"name": ("name", str), "version": ("version", str)}),
}
REQUIRED = {
    "ModelRelease": ("model", "version", "digest", "riskTier"),
    "Rollout": ("release", "waves"),
    "LocalizationJob": ("base", "dataset", "purpose", "trainer"),
}
#: Manifest kind -> the wire message it becomes.
KINDS: dict[str, type[Message]] = {
    "ModelRelease": rpb.ModelRelease,
    "Rollout": opb.RolloutSpec,
    "LocalizationJob": jpb.LocalizationJobSpec,
}


def _scalar(value: Any, kind: Any, where: str) -> Any:
    if kind == "duration":
        return duration(value, where)
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if (kind is int and isinstance(value, bool)) or not isinstance(value, kind):
        name = {str: "a string (quote it)", int: "an integer", float: "a number", bool: "true or false"}[kind]
        raise InvalidArgument(where, f"must be {name}, got {value!r}")
    return value


def _fill(msg: Message, data: Any, schema: dict[str, tuple[str, Any]], where: str) -> None:
    if not isinstance(data, dict):
        raise InvalidArgument(where, "must be a mapping")
    for key, value in data.items():
        path = f"{where}.{key}"
        if key not in schema:
            raise InvalidArgument(path, f"unknown field (known: {', '.join(schema)})")
        field, kind = schema[key]
        if value is None:
            continue
        if isinstance(kind, dict) and "*" in kind:
            if not isinstance(value, dict):
                raise InvalidArgument(path, "must be a mapping of strings")
            target = getattr(msg, field)
            for k, v in value.items():
                target[str(k)] = _scalar(v, kind["*"], f"{path}.{k}")
        elif isinstance(kind, dict):
            _fill(getattr(msg, field), value, kind, path)
        elif isinstance(kind, list):
            if not isinstance(value, list):
                raise InvalidArgument(path, "must be a list")
            target = getattr(msg, field)
            for i, item in enumerate(value):
                if isinstance(kind[0], dict):
                    _fill(target.add(), item, kind[0], f"{path}[{i}]")
                else:
                    _put(msg, field, _scalar(item, kind[0], f"{path}[{i}]"), f"{path}[{i}]")
        else:
            _put(msg, field, _scalar(value, kind, path), path)


def _put(msg: Message, field: str, value: Any, where: str) -> None:
    """Set (or append to a list) ``field`` of ``msg``; a number must be in its API range."""
    desc = msg.DESCRIPTOR.fields_by_name[field]
    rng = LIMITS.get(bounds.key(msg.DESCRIPTOR, desc))
    if rng is not None and isinstance(value, int | float) and not isinstance(value, bool):
        rng.check(where, value)
    try:
        if desc.is_repeated:
            getattr(msg, field).append(value)
        else:
            setattr(msg, field, value)
    except (ValueError, TypeError) as e:  # e.g. a number the wire type cannot hold
        raise InvalidArgument(where, f"{str(value)[:40]!r} is out of range for this field") from e


def _document(doc: Any, index: int) -> Message:
    where = f"document {index + 1}"
    if not isinstance(doc, dict):
        raise InvalidArgument(where, "must be a mapping with apiVersion, kind, metadata, spec")
    unknown = set(doc) - {"apiVersion", "kind", "metadata", "spec"}
    if unknown:
        raise InvalidArgument(sorted(unknown)[0], "unknown top-level field")
    if doc.get("apiVersion") != API_VERSION:
        raise InvalidArgument("apiVersion", f"must be {API_VERSION}")
    kind = doc.get("kind")
    meta = doc.get("metadata")
    if not isinstance(meta, dict) or not isinstance(meta.get("name"), str) or set(meta) - {"name"}:
        raise InvalidArgument(
            "metadata", "must be {name: <DNS subdomain, e.g. atlas-1.2.0>} (no other fields)"
        )
    spec = doc.get("spec")
    if not isinstance(spec, dict):
        raise InvalidArgument("spec", "is required and must be a mapping")
    for req in REQUIRED.get(str(kind), ()):
        if spec.get(req) is None:
            raise InvalidArgument(f"spec.{req}", "is required")
    if kind == "ModelRelease":
        release = rpb.ModelRelease(name=meta["name"])
        _fill(release, spec, RELEASE_SPEC, "spec")
        return release
    if kind == "Rollout":
        rollout = opb.RolloutSpec(name=meta["name"])
        _fill(rollout, spec, ROLLOUT_SPEC, "spec")
        return rollout
    if kind == "LocalizationJob":
        job = jpb.LocalizationJobSpec(name=meta["name"])
        _fill(job, spec, JOB_SPEC, "spec")
        return job
    raise InvalidArgument("kind", f"must be ModelRelease, Rollout or LocalizationJob, got {kind!r}")


def load(path: Path) -> list[Message]:
    """Every document of a YAML file (``-``: standard input, as kubectl's ``-f -``), converted;
    raises InvalidArgument naming the field and file."""
    if str(path) == "-":
        data = sys.stdin.buffer.read(yamlfile.MAX_BYTES + 1)
        if len(data) > yamlfile.MAX_BYTES:
            raise InvalidArgument("-f", f"standard input is larger than {yamlfile.MAX_BYTES} bytes")
        docs = [d for d in yamlfile.parse_all(data, "standard input", "-f") if d is not None]
    else:
        docs = [d for d in yamlfile.load_all(path, "-f") if d is not None]
    if not docs:
        raise InvalidArgument("-f", f"{path} holds no document")
    try:
        return [_document(d, i) for i, d in enumerate(docs)]
    except InvalidArgument as e:
        raise InvalidArgument(e.field, f"{e.reason} (in {path})") from e


def load_one(path: Path, cls: type[Message]) -> Any:
    found = [m for m in load(path) if isinstance(m, cls)]
    if len(found) != 1:
        kind = next(k for k, c in KINDS.items() if c is cls)
        raise InvalidArgument("kind", f"{path} must hold exactly one {kind}, found {len(found)}")
    return found[0]
