"""A LocalizationJob's spec checked with the federation's rules. Pure: every error names the field.

The trainer image must be pinned by digest (``…@sha256:<64 hex>``): a site's ``jobs.allowImages``
and its audit of what ran must name bytes, not a tag that can move.
"""

from __future__ import annotations

import re
from typing import Any

from controlplane.domain.datasets import DatasetWant, Purpose
from controlplane.domain.site_input import validate_version
from controlplane.domain.validation import validate_dns_subdomain
from controlplane.errors import InvalidArgument

#: Arguments of a trainer's command, and the length of one (a command line is not a config file).
MAX_ARGS = 64
MAX_ARG = 1024
_IMAGE = re.compile(r"^[a-z0-9][a-z0-9._/:-]{0,254}@sha256:[0-9a-f]{64}$")
_ACCELERATOR = re.compile(r"^[a-z0-9][a-z0-9-]{0,31}$")


def validate(spec: dict[str, Any]) -> DatasetWant:
    """Check the dict form of a LocalizationJobSpec; returns its dataset selector."""
    validate_dns_subdomain("metadata.name", str(spec.get("name", "")))
    if not spec.get("base"):
        raise InvalidArgument("spec.base", "is required (a registered release)")
    validate_dns_subdomain("spec.base", str(spec["base"]))
    d = spec.get("dataset") or {}
    want = DatasetWant.parse(str(d.get("name", "")), str(d.get("language", "")), str(d.get("country", "")))
    purpose = str(spec.get("purpose", ""))
    if purpose not in {p.value for p in Purpose}:
        raise InvalidArgument("spec.purpose", f"{purpose[:40]!r} is not one of fine-tune, evaluate")
    trainer = spec.get("trainer") or {}
    image = str(trainer.get("image", ""))
    if not _IMAGE.fullmatch(image):
        raise InvalidArgument(
            "spec.trainer.image", "must be an image pinned by digest (name@sha256:<64 hex>)"
        )
    command = list(trainer.get("command") or ())
    if len(command) > MAX_ARGS or any(len(str(a)) > MAX_ARG for a in command):
        raise InvalidArgument("spec.trainer.command", f"at most {MAX_ARGS} arguments of {MAX_ARG} characters")
    res = spec.get("resources") or {}
    accel, n = str(res.get("accelerator", "")), int(res.get("accelerators") or 0)
    if n and not _ACCELERATOR.fullmatch(accel):
        raise InvalidArgument("spec.resources.accelerator", "is required with accelerators (e.g. h100)")
    output = spec.get("output") or {}
    if purpose == Purpose.FINE_TUNE and not (output.get("name") and output.get("version")):
        raise InvalidArgument("spec.output", "a fine-tune needs output.name and output.version")
    if output.get("name"):
        validate_dns_subdomain("spec.output.name", str(output["name"]))
        if output["name"] == spec["base"]:
            raise InvalidArgument("spec.output.name", "must differ from the base release")
    if output.get("version"):
        validate_version("spec.output.version", str(output["version"]))
    return want
