"""Dataset custom resources -> the datasets this site offers (pure; the I/O is in jobrunner.py).

A Dataset is offered only when all of these hold, else it is Refused with the reason in its
status and never reported upstream:

- it reads as a dataset (the CRD's schema, checked again here for objects written around it);
- its jurisdiction is this site's country (``Dataset.refusal``): data under another country's
  law is not this site's to offer;
- it lives in a namespace the federation may write to (a job's pods can mount a claim only in
  their own namespace, and the operator writes Jobs only there);
- its name is unique among those namespaces (the federation knows datasets by name).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from controlplane.domain.datasets import Dataset, DatasetSummary, SizeBucket, bucket_of
from controlplane.domain.validation import validate_dns_subdomain
from controlplane.errors import InvalidArgument

Obj = dict[str, Any]
#: A steward's contact as the CRD bounds it (an e-mail address fits in 254).
MAX_STEWARD = 254


class DatasetPhase(StrEnum):
    OFFERED = "Offered"
    REFUSED = "Refused"


def parse(obj: Obj) -> Dataset:
    """The dataset a custom resource describes; raises InvalidArgument naming the ``spec.`` field."""
    meta, spec = obj.get("metadata") or {}, obj.get("spec") or {}
    if not isinstance(spec, dict):
        raise InvalidArgument("spec", "must be a mapping")
    size = spec.get("sizeBytes")
    if size is not None:
        if isinstance(size, bool) or not isinstance(size, int) or size < 0:
            raise InvalidArgument("spec.sizeBytes", "must be a non-negative integer")
        bucket = str(bucket_of(size))
    elif spec.get("size") is not None:
        bucket = str(spec["size"])
    else:
        raise InvalidArgument("spec.sizeBytes", f"or spec.size ({', '.join(SizeBucket)}) is required")
    summary = DatasetSummary.parse(
        {
            "name": meta.get("name"),
            "jurisdiction": spec.get("jurisdiction"),
            "classification": spec.get("classification"),
            "languages": spec.get("languages"),
            "purposes": spec.get("purposes"),
            "size": bucket,
        },
        prefix="spec.",
    )
    storage = spec.get("storage")
    if not isinstance(storage, dict):
        raise InvalidArgument("spec.storage.claimName", "is required")
    claim = validate_dns_subdomain("spec.storage.claimName", str(storage.get("claimName") or ""))
    steward = spec.get("steward", "")
    if not isinstance(steward, str) or len(steward) > MAX_STEWARD:
        raise InvalidArgument("spec.steward", f"must be a contact of at most {MAX_STEWARD} characters")
    return Dataset(summary=summary, claim=claim, steward=steward)


@dataclass(frozen=True)
class Verdict:
    """What the site decides about one Dataset object."""

    namespace: str
    name: str
    phase: DatasetPhase
    reason: str = ""
    dataset: Dataset | None = None  # set exactly when offered


def judge(objs: list[Obj], country: str, namespaces: list[str]) -> list[Verdict]:
    """One verdict per object, sorted by namespace and name. ``namespaces``: where the federation
    may write now (operator settings and SitePolicy); ``country``: the site's."""
    seen: dict[str, list[str]] = {}
    for obj in objs:
        meta = obj.get("metadata") or {}
        seen.setdefault(str(meta.get("name", "")), []).append(str(meta.get("namespace", "")))
    out = []
    for obj in sorted(objs, key=lambda o: (o["metadata"].get("namespace", ""), o["metadata"]["name"])):
        ns, name = str(obj["metadata"].get("namespace", "")), str(obj["metadata"]["name"])
        refused = ""
        dataset = None
        try:
            dataset = parse(obj)
        except InvalidArgument as e:
            refused = str(e)
        if not refused and dataset is not None:
            refused = dataset.refusal(country) or ""
        if not refused and ns not in namespaces:
            refused = (
                f"namespace {ns} is not one the federation may write to ({', '.join(namespaces) or 'none'}): "
                "a job could not mount the claim"
            )
        if not refused and len(seen[name]) > 1:
            others = ", ".join(sorted(n for n in seen[name] if n != ns))
            refused = f"the name is also used in namespace {others}: the federation knows datasets by name"
        if refused:
            out.append(Verdict(ns, name, DatasetPhase.REFUSED, refused[:1024]))
        else:
            out.append(Verdict(ns, name, DatasetPhase.OFFERED, dataset=dataset))
    return out


def status(verdict: Verdict, obj: Obj) -> Obj | None:
    """The status to write for ``verdict``, or None when the object already says so."""
    want: Obj = {
        "phase": str(verdict.phase),
        "reason": verdict.reason or None,  # None removes it (merge patch): an offered one has none
        "observedGeneration": (obj.get("metadata") or {}).get("generation", 0),
    }
    have = obj.get("status") or {}
    if all(have.get(k) == v for k, v in want.items()):
        return None
    return want
