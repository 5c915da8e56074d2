"""The federation's safety key: Ed25519, signs Halt/Resume directives and liveness beacons.

``stargate-controlplane init`` creates ``safety.key`` (0600, PKCS#8 PEM) and ``safety.pub`` in the
PKI directory; a replica started on an older directory creates them on first start (created
exclusively with a hard link, so two replicas racing on a shared directory end with one key and
both load it). Sites receive the public key at enrollment (``EnrollResponse.safety_keys``) and
keep a key ring by key id, so that rotation can add a key before the old one is retired.

The key is separate from the CA key on purpose: whoever holds the store, a replica's TLS key or
the link cannot forge a halt or resume, nor keep a site alive with beacons, without this key.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from controlplane.pki.keys import ensure_ed25519, write_atomic

KEY_FILE = "safety.key"
PUB_FILE = "safety.pub"
#: Where a site keeps the key ring it received at enrollment: {"keys": {key_id: pem}}.
SITE_RING_FILE = "safety-keys.json"


def key_id(public_key: Ed25519PublicKey) -> str:
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return "sk-" + hashlib.sha256(raw).hexdigest()[:16]


def public_pem(public_key: Ed25519PublicKey) -> str:
    return public_key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode()


def load_public_pem(pem: str | bytes) -> Ed25519PublicKey:
    key = serialization.load_pem_public_key(pem.encode() if isinstance(pem, str) else pem)
    if not isinstance(key, Ed25519PublicKey):
        raise ValueError("not an Ed25519 public key")
    return key


@dataclass(frozen=True)
class SafetyKey:
    private: Ed25519PrivateKey

    @property
    def public(self) -> Ed25519PublicKey:
        return self.private.public_key()

    @property
    def key_id(self) -> str:
        return key_id(self.public)

    @property
    def public_pem(self) -> str:
        return public_pem(self.public)

    def sign(self, data: bytes) -> bytes:
        return self.private.sign(data)

    @classmethod
    def generate(cls) -> SafetyKey:
        return cls(Ed25519PrivateKey.generate())


def verify(public_key: Ed25519PublicKey, signature: bytes, data: bytes) -> bool:
    try:
        public_key.verify(signature, data)
    except InvalidSignature:
        return False
    return True


def ensure_safety_key(directory: Path) -> SafetyKey:
    """Load the safety key from ``directory``; create safety.key/safety.pub first when absent."""
    return SafetyKey(
        ensure_ed25519(directory / KEY_FILE, directory / PUB_FILE, lambda k: public_pem(k.public_key()))
    )


# --- the site's key ring -----------------------------------------------------------------------------


def write_site_ring(directory: Path, keys: dict[str, str]) -> None:
    """Store the public keys a site received (key id -> PEM), merged with those it already has."""
    path = directory / SITE_RING_FILE
    ring = read_site_ring_pems(directory)
    ring.update(keys)
    write_atomic(path, json.dumps({"keys": ring}, sort_keys=True).encode(), 0o644)


def read_site_ring_pems(directory: Path) -> dict[str, str]:
    path = directory / SITE_RING_FILE
    if not path.exists():
        return {}
    return {str(k): str(v) for k, v in json.loads(path.read_text()).get("keys", {}).items()}


def read_site_ring(directory: Path) -> dict[str, Ed25519PublicKey]:
    """Key id -> public key; a key whose id does not match its content is dropped."""
    ring: dict[str, Ed25519PublicKey] = {}
    for kid, pem in read_site_ring_pems(directory).items():
        with contextlib.suppress(ValueError):
            pk = load_public_pem(pem)
            if key_id(pk) == kid:
                ring[kid] = pk
    return ring
