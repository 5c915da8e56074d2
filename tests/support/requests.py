"""Requests the tests send often (test infrastructure)."""

from __future__ import annotations

from controlplane.api.v1 import federation_pb2 as fpb
from controlplane.api.v1 import types_pb2 as tpb

DIGEST = "sha256:" + "ab" * 32


def deploy_request(
    site_id: str, name: str = "atlas", *, ttl: int = 0, model: str = "atlas"
) -> fpb.DeployRequest:
    """A low-level Deploy of one replica of ``model`` 1.2.0 as ``name`` at ``site_id``."""
    payload = tpb.DeployPayload(deployment_name=name, model=model, version="1.2.0", digest=DIGEST, replicas=1)
    return fpb.DeployRequest(site_id=site_id, deploy=payload, ttl_seconds=ttl)
