"""What a site may tell the federation about itself, checked with the federation's own rules. Pure.

A site's region, labels, versions, accelerator names, deployment names and counts end up in the
registry, in every ``sites list`` and in placement. Stored raw, ANSI escapes in a region once
cleared an admin's terminal, and three 3.2 MB heartbeats broke ``sites list`` for everyone. So
every text a site sends is held to the syntax the federation uses for its own names (DNS labels,
Kubernetes labels, versions), and every list to a count; numbers are range-checked at the API edge
(``controlplane/domain/limits.py``). Bounds per site: at most ~80 KB stored (128 deployments of
<= ~500 bytes, 64 labels, 16 accelerator types).

Free text a site must be able to send (the reason of a Reject) is not refused but made safe:
control characters escaped, cut at 512 characters (``clean_text``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from controlplane.domain.datasets import DatasetSummary
from controlplane.domain.text import escape_controls
from controlplane.domain.validation import (
    validate_digest,
    validate_dns_subdomain,
    validate_label_value,
    validate_labels,
)
from controlplane.errors import InvalidArgument

MAX_ACCELERATOR_TYPES = 16
MAX_DEPLOYMENTS = 128
MAX_RISK_TIERS = 4
MAX_REASON = 512
#: Datasets one site may offer (a national archive site might hold tens; 256 summaries are ~50 KiB).
MAX_DATASETS = 256
#: Job runs one site may report at once.
MAX_JOBS = 64
#: Largest message a site may send on its link (a heartbeat of 128 deployments is ~40 KiB).
MAX_LINK_MESSAGE_BYTES = 256 * 1024

_ACCELERATOR = re.compile(r"^[a-z0-9][a-z0-9-]{0,31}$")
_VERSION = re.compile(r"^[0-9A-Za-z][0-9A-Za-z.+_-]{0,63}$")
_PHASE = re.compile(r"^[A-Za-z][A-Za-z0-9-]{0,31}$")
# A Kubernetes object name (DNS subdomain): local workloads are named like that.
_OBJECT_NAME = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$")


def _text(field: str, value: str, pattern: re.Pattern[str], what: str, *, max_len: int = 64) -> None:
    if value and (len(value) > max_len or not pattern.fullmatch(value)):
        raise InvalidArgument(field, f"{value[:64]!r} is not {what}")


def validate_version(field: str, value: str) -> None:
    _text(field, value, _VERSION, "a version (1-64 of letters, digits, '.', '+', '_', '-')")


def validate_capacity(field: str, capacity: Mapping[str, tuple[int, int]]) -> None:
    """Accelerator type -> (total, free)."""
    if len(capacity) > MAX_ACCELERATOR_TYPES:
        raise InvalidArgument(
            field, f"at most {MAX_ACCELERATOR_TYPES} accelerator types, got {len(capacity)}"
        )
    for name, (total, free) in capacity.items():
        if not _ACCELERATOR.fullmatch(name):
            raise InvalidArgument(field, f"{name[:40]!r} is not an accelerator type (e.g. h100)")
        if free > total:
            raise InvalidArgument(f"{field}[{name}].free", f"{free} is more than the total {total}")


def validate_facts(
    *,
    region: str,
    labels: Mapping[str, str],
    capacity: Mapping[str, tuple[int, int]],
    operator_version: str,
    accepted_risk_tiers: Sequence[int] = (),
    prefix: str = "facts.",
) -> None:
    validate_label_value(prefix + "region", region)
    validate_labels(prefix + "labels", dict(labels))
    validate_capacity(prefix + "capacity", capacity)
    validate_version(prefix + "operator_version", operator_version)
    if len(accepted_risk_tiers) > MAX_RISK_TIERS:
        raise InvalidArgument(prefix + "policy.accepted_risk_tiers", f"at most {MAX_RISK_TIERS} tiers")


def validate_deployment(field: str, d: Mapping[str, Any]) -> None:
    """A reported deployment (DeploymentStatus fields by name; numbers are checked at the edge)."""
    name = str(d.get("name", ""))
    if not name or len(name) > 253 or not _OBJECT_NAME.fullmatch(name):
        raise InvalidArgument(field + ".name", f"{name[:64]!r} is not a Kubernetes object name")
    validate_label_value(field + ".model", str(d.get("model", "")))
    validate_version(field + ".version", str(d.get("version", "")))
    _text(field + ".phase", str(d.get("phase", "")), _PHASE, "a phase (e.g. Running)", max_len=32)
    if d.get("release"):  # release names are DNS subdomains (dots allowed: atlas-1.2.0)
        validate_dns_subdomain(field + ".release", str(d["release"]))
    if d.get("digest"):
        validate_digest(str(d["digest"]), field + ".digest")


def validate_deployments(field: str, items: Sequence[Mapping[str, Any]]) -> None:
    if len(items) > MAX_DEPLOYMENTS:
        raise InvalidArgument(field, f"at most {MAX_DEPLOYMENTS} deployments, got {len(items)}")
    for i, d in enumerate(items):
        validate_deployment(f"{field}[{i}]", d)


#: The phases a site may report of a run (the federation's own phases before these are its own).
JOB_PHASES = frozenset({"Running", "Succeeded", "Failed", "Cancelled"})


def validate_job_statuses(field: str, items: Sequence[Mapping[str, Any]]) -> None:
    """Reported job runs (JobStatus fields by name; numbers are checked at the edge)."""
    if len(items) > MAX_JOBS:
        raise InvalidArgument(field, f"at most {MAX_JOBS} job runs, got {len(items)}")
    for i, d in enumerate(items):
        where = f"{field}[{i}]"
        validate_dns_subdomain(where + ".job_id", str(d.get("job_id", "")))
        if str(d.get("phase", "")) not in JOB_PHASES:
            raise InvalidArgument(where + ".phase", f"must be one of {', '.join(sorted(JOB_PHASES))}")
        if d.get("output_digest"):
            validate_digest(str(d["output_digest"]), where + ".output_digest")
        if len(d.get("variant_signature") or b"") not in (0, 64):
            raise InvalidArgument(where + ".variant_signature", "must be a 64-byte Ed25519 signature")
        if len(d.get("publisher_key") or b"") not in (0, 32):
            raise InvalidArgument(where + ".publisher_key", "must be a raw 32-byte Ed25519 public key")


def accepted_datasets(
    field: str, items: Sequence[Mapping[str, Any]], country: str
) -> tuple[list[dict[str, object]], list[InvalidArgument]]:
    """The dataset summaries a site reports that the federation stores (validated, normalised,
    each name once), and why each other one is refused: a summary that does not parse, or whose
    jurisdiction is not the site's country (a site offers only data held under its own law)."""
    ok: list[dict[str, object]] = []
    refused: list[InvalidArgument] = []
    names: set[str] = set()
    for i, item in enumerate(items):
        where = f"{field}[{i}]."
        try:
            summary = DatasetSummary.parse(dict(item), where)
            if summary.jurisdiction != country:
                raise InvalidArgument(
                    where + "jurisdiction",
                    f"{summary.jurisdiction} is not the site's country {country or '?'}",
                )
            if summary.name in names:
                raise InvalidArgument(where + "name", f"dataset {summary.name!r} reported twice")
        except InvalidArgument as e:
            refused.append(e)
            continue
        names.add(summary.name)
        ok.append(summary.to_dict())
    return ok, refused


def clean_text(value: str, max_len: int = MAX_REASON) -> str:
    """Free text from a site made safe to store and show: control and other invisible characters
    escaped (``controlplane/domain/text.py``), cut at ``max_len``."""
    return escape_controls(value[: max_len * 2])[:max_len]
