"""The log key: Ed25519, signs the audit log's checkpoints as C2SP signed notes.

``stargate-controlplane init`` creates ``log.key`` (0600, PKCS#8 PEM) and ``log.vkey`` (the public
verifier key, ``<name>+<key id>+<base64>``) in the PKI directory; a replica started on a directory
made before the log existed creates them on first start, exactly as it does the safety key
(created exclusively, so replicas racing on one shared directory end with one key). Replicas on
separate disks must be given the same ``log.key``: a replica whose key did not sign the stored
checkpoints refuses to sign new ones and says so (services/checkpoints.py).

The key name, which is also every checkpoint's origin line, is ``<trust domain>/audit``. The key is
separate from the CA and safety keys: holding the store (or a replica's TLS key) is not enough to
sign a checkpoint, and a country verifies checkpoints with the vkey alone.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from controlplane.domain.notes import Signer, Verifier, validate_name
from controlplane.pki.keys import ensure_ed25519

KEY_FILE = "log.key"
VKEY_FILE = "log.vkey"


def origin(trust_domain: str) -> str:
    return validate_name(f"{trust_domain}/audit", "log origin")


@dataclass(frozen=True)
class LogKey:
    signer: Signer

    @property
    def origin(self) -> str:
        return self.signer.name

    @property
    def verifier(self) -> Verifier:
        return self.signer.verifier

    @property
    def vkey(self) -> str:
        return self.verifier.vkey

    @classmethod
    def generate(cls, trust_domain: str) -> LogKey:
        return cls(Signer(origin(trust_domain), Ed25519PrivateKey.generate()))


def ensure_log_key(directory: Path, trust_domain: str) -> LogKey:
    """Load the log key from ``directory``; create log.key/log.vkey first when absent."""
    fix = (
        "run `stargate-controlplane log-key --dir` on a writable copy of the directory and add "
        "log.key and log.vkey to it (every replica needs the same log.key)"
    )

    def vkey(k: Ed25519PrivateKey) -> str:
        return LogKey(Signer(origin(trust_domain), k)).vkey + "\n"

    return LogKey(
        Signer(
            origin(trust_domain), ensure_ed25519(directory / KEY_FILE, directory / VKEY_FILE, vkey, fix=fix)
        )
    )
