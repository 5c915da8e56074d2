"""A low-level Deploy names a registered release: the federation fills in what the site checks.

The caller chooses the site, the deployment name and the sizing (replicas, accelerator, locale);
the model, version, digest, risk tier and the publisher's signed release come from the registered
release, and ``release``/``rollout`` are the federation's to set, never free text. So a low-level
Deploy passes the same checks as a rollout's: the halted-artifact check at the queue
(services/directives.py) and, at the site, the publisher's signature and the directive key's.
"""

from __future__ import annotations

from typing import Any

from controlplane.domain import admission
from controlplane.domain.validation import validate_dns_subdomain
from controlplane.errors import FailedPrecondition, InvalidArgument
from controlplane.services.registry import Registry
from controlplane.services.releases import Releases, signed_to_dict

#: Payload fields only the federation sets.
FEDERATION_FIELDS = ("release", "rollout", "signed_release", "risk_tier")


async def admit(registry: Registry, releases: Releases, site_id: str, release: str) -> None:
    """The admission chain for a low-level Deploy (domain/admission.py, without the filters in
    ``EXPLICIT_SITE``): the same export, security-tier and site-policy rules as a rollout's
    placement, and every rule registered later, so no path to a site bypasses them."""
    site = await registry.get(site_id)
    signed, _ = await releases.get(release)
    reasons = admission.reasons(site, admission.Workload.of(signed.release), skip=admission.EXPLICIT_SITE)
    if reasons:
        raise FailedPrecondition(f"site {site_id} may not run release {release}: " + "; ".join(reasons))


async def release_payload(releases: Releases, release: str, deploy: dict[str, Any]) -> dict[str, Any]:
    """The Deploy payload for ``deploy`` (a DeployPayload as a dict) running the registered
    ``release``; InvalidArgument naming the field for anything a caller may not set or that
    disagrees with the release; NotFound for an unknown release."""
    if not release:
        raise InvalidArgument("release", "is required: name a registered release (stargatectl releases list)")
    validate_dns_subdomain("release", release)
    for name in FEDERATION_FIELDS:
        if deploy.get(name):
            raise InvalidArgument(f"deploy.{name}", "is set by the federation from the registered release")
    signed, _ = await releases.get(release)
    r = signed.release
    for name in ("model", "version", "digest"):
        given, value = deploy.get(name, ""), getattr(r, name)
        if given and given != value:
            raise InvalidArgument(f"deploy.{name}", f"{given!r} differs from release {release}'s {value!r}")
    out = dict(deploy)
    out.update(
        model=r.model,
        version=r.version,
        digest=r.digest,
        release=r.name,
        risk_tier=int(r.risk_tier),
        signed_release=signed_to_dict(signed),
    )
    if not out.get("accelerator") and r.resources.accelerator:
        out["accelerator"] = r.resources.accelerator
        out["accelerators_per_replica"] = int(r.resources.accelerators_per_replica)
    out.pop("rollout", None)
    return out
