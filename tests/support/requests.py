"""Requests the tests send often (test infrastructure).

A low-level Deploy names a registered release (services/low_level_deploy.py): ``deploy`` registers
the release a test's DeployPayload describes (named ``<model>-<version>`` unless the payload or the
caller names it), signed by the test publisher ``tests``, then sends the Deploy naming it.
Federation.start registers that publisher before any site enrolls, so that sites receive it at
enrollment (no Publishers directive shifts their sequences).
"""

from __future__ import annotations

import contextlib
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from controlplane.api.v1 import federation_pb2 as fpb
from controlplane.api.v1 import release_pb2 as rpb
from controlplane.api.v1 import rollouts_pb2 as opb
from controlplane.api.v1 import types_pb2 as tpb
from controlplane.domain import releases as rel
from controlplane.errors import AlreadyExists

DIGEST = "sha256:" + "ab" * 32
PUBLISHER = "tests"
PUBLISHER_KEY = Ed25519PrivateKey.from_private_bytes(bytes(range(32)))
PUBLISHER_PUB = PUBLISHER_KEY.public_key().public_bytes_raw()


def deploy_request(
    site_id: str, name: str = "atlas", *, ttl: int = 0, model: str = "atlas"
) -> fpb.DeployRequest:
    """A low-level Deploy of one replica of release ``<model>-1.2.0`` as ``name`` at ``site_id``
    (send it with ``deploy``, or register the release with ``register_release`` first)."""
    payload = tpb.DeployPayload(deployment_name=name, model=model, version="1.2.0", digest=DIGEST, replicas=1)
    return fpb.DeployRequest(site_id=site_id, deploy=payload, ttl_seconds=ttl, release=f"{model}-1.2.0")


async def add_publisher(c: Any) -> None:
    with contextlib.suppress(AlreadyExists):
        await c.call("AddPublisher", opb.AddPublisherRequest(name=PUBLISHER, public_key=PUBLISHER_PUB))


def signed_release(name: str, model: str, version: str, digest: str, risk_tier: int = 0) -> rpb.SignedRelease:
    r = rpb.ModelRelease(name=name, model=model, version=version, digest=digest, risk_tier=risk_tier)
    return rpb.SignedRelease(release=r, publisher=PUBLISHER, signature=rel.sign(PUBLISHER_KEY, r))


async def register_release(
    c: Any, name: str, model: str = "atlas", version: str = "1.2.0", digest: str = DIGEST, risk_tier: int = 1
) -> str:
    """Register release ``name`` (once; the test publisher too, if absent)."""
    await add_publisher(c)
    with contextlib.suppress(AlreadyExists):
        await c.call(
            "CreateRelease",
            opb.CreateReleaseRequest(signed=signed_release(name, model, version, digest, risk_tier)),
        )
    return name


async def deploy(c: Any, request: fpb.DeployRequest, release: str = "") -> Any:
    """Send a low-level Deploy of what ``request.deploy`` describes, naming a registered release
    (``release``, else the request's, else ``<model>-<version>``), registered first if absent."""
    req = fpb.DeployRequest()
    req.CopyFrom(request)
    p = req.deploy
    tier = f"-t{p.risk_tier}" if p.risk_tier else ""  # the risk tier is the release's: one per tier
    name = release or req.release or p.release or f"{p.model}-{p.version}{tier}"
    await register_release(c, name, p.model, p.version, p.digest, p.risk_tier or 1)
    p.release, p.risk_tier, req.release = "", 0, name
    return await c.call("Deploy", req)
