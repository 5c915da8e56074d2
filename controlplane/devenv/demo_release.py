"""The release `dev up` registers, so that a low-level deploy has a registered release to name.

A publisher ``dev`` whose key is made once in the dev directory (``publisher-dev.key``, 0600) and
the release ``quickstart-1.0.0`` (model quickstart, version 1.0.0, an all-zero digest), signed with it. Both
are registered only when absent, so restarting `dev up` on the same directory changes nothing.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from controlplane.api.v1 import release_pb2 as rpb
from controlplane.api.v1 import rollouts_pb2 as opb
from controlplane.client.federation import FederationClient
from controlplane.domain import releases as rel
from controlplane.errors import AlreadyExists
from controlplane.pki.keys import write_atomic

PUBLISHER = "dev"
RELEASE = "quickstart-1.0.0"
DIGEST = "sha256:" + "0" * 64


def _key(directory: Path) -> Ed25519PrivateKey:
    path = directory / "publisher-dev.key"
    if not path.exists():
        pem = Ed25519PrivateKey.generate().private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        write_atomic(path, pem, 0o600)
    key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    assert isinstance(key, Ed25519PrivateKey)
    return key


async def register(admin: FederationClient, directory: Path) -> str:
    """Register the demo publisher and release when absent; returns the release name."""
    key = _key(directory)
    raw = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    with contextlib.suppress(AlreadyExists):
        await admin.call("AddPublisher", opb.AddPublisherRequest(name=PUBLISHER, public_key=raw))
    release = rpb.ModelRelease(name=RELEASE, model="quickstart", version="1.0.0", digest=DIGEST, risk_tier=1)
    signed = rpb.SignedRelease(release=release, publisher=PUBLISHER, signature=rel.sign(key, release))
    with contextlib.suppress(AlreadyExists):
        await admin.call("CreateRelease", opb.CreateReleaseRequest(signed=signed))
    return RELEASE
