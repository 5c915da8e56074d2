"""The directive key: Ed25519, signs every directive the control plane sends a site.

``stargate-controlplane init`` creates ``directive.key`` (0600, PKCS#8 PEM) and ``directive.pub`` in
the PKI directory; a replica started on a directory made before the key existed creates them on
first start (exclusively, so replicas racing on one shared directory end with one key), and
``stargate-controlplane directive-key --dir`` makes them on a writable copy for a read-only mount.
The private key lives only on the replicas' disks, never in the store: someone who can write the
store can queue a record, but not one a site accepts.

What a signature covers (``signing_bytes``): a domain-separation prefix, the site id the directive
is for, and the deterministic protobuf serialization of the ``Directive`` with the directive
signature fields (14, 15) and the send-time fields 35-39 (a transparency-log inclusion proof, which
authenticates itself) cleared. The sequence, kind, payload, expiry and, for halts and resumes, the
safety-key signature (fields 8/9) are all covered; so a directive cannot be altered, sent to another
site, or moved to another place in a site's queue.
"""

from __future__ import annotations

import base64
import json
import logging
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from controlplane.api.v1 import types_pb2 as tpb
from controlplane.pki.keys import ensure_ed25519, write_atomic
from controlplane.pki.safety_key import key_id as _raw_key_id
from controlplane.pki.safety_key import load_public_pem, public_pem, verify

KEY_FILE = "directive.key"
PUB_FILE = "directive.pub"
#: Where a site keeps the directive public key it received at enrollment (PEM).
SITE_KEY_FILE = "directive-key.pem"
#: Where a site keeps the publishers it trusts (name -> base64 raw Ed25519 key).
PUBLISHERS_FILE = "publishers.json"
CONTEXT = b"stargate-directive-v1\n"
#: Fields left out of what the signature covers: the signature itself, and 35-39, which the link
#: may attach at send time (each authenticates itself).
log = logging.getLogger(__name__)
UNSIGNED_FIELDS = frozenset({14, 15, 35, 36, 37, 38, 39})


def key_id(public_key: Ed25519PublicKey) -> str:
    return "dk-" + _raw_key_id(public_key).removeprefix("sk-")


def signing_bytes(site_id: str, d: tpb.Directive) -> bytes:
    """The bytes the directive signature covers for ``site_id`` (see the module docstring)."""
    body = tpb.Directive()
    body.CopyFrom(d)
    for f in body.DESCRIPTOR.fields:
        if f.number in UNSIGNED_FIELDS:
            body.ClearField(f.name)
    return CONTEXT + site_id.encode() + b"\n" + body.SerializeToString(deterministic=True)


@dataclass(frozen=True)
class DirectiveKey:
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

    def sign(self, site_id: str, d: tpb.Directive) -> None:
        """Set ``d``'s directive signature fields for ``site_id`` (~60 us on the reference machine)."""
        d.directive_key_id = self.key_id
        d.directive_signature = self.private.sign(signing_bytes(site_id, d))

    @classmethod
    def generate(cls) -> DirectiveKey:
        return cls(Ed25519PrivateKey.generate())


def check(key: Ed25519PublicKey | None, site_id: str, d: tpb.Directive) -> str | None:
    """Why a site must refuse ``d`` on its directive signature, or None when it verifies."""
    if key is None:
        return "signature: this site has no directive key (enroll again to receive it)"
    if not d.directive_signature:
        return "signature: the directive is not signed by the control plane's directive key"
    if d.directive_key_id != key_id(key):
        return f"signature: signed by unknown directive key {d.directive_key_id[:40]!r}"
    if not verify(key, d.directive_signature, signing_bytes(site_id, d)):
        return "signature: does not verify with the directive key for this site"
    return None


def ensure_directive_key(directory: Path) -> DirectiveKey:
    """Load the directive key from ``directory``; create directive.key/.pub first when absent."""
    fix = (
        "run `stargate-controlplane directive-key --dir` on a writable copy of the directory and add "
        "directive.key and directive.pub to it (every replica needs the same key)"
    )
    key = ensure_ed25519(
        directory / KEY_FILE, directory / PUB_FILE, lambda k: public_pem(k.public_key()), fix=fix
    )
    return DirectiveKey(key)


# --- the site's copy ---------------------------------------------------------------------------------


def write_site_key(directory: Path, pem: str) -> None:
    load_public_pem(pem)  # refuse to store what is not an Ed25519 key
    write_atomic(directory / SITE_KEY_FILE, pem.encode(), 0o644)


def read_site_key(directory: Path) -> Ed25519PublicKey | None:
    path = directory / SITE_KEY_FILE
    if not path.exists():
        return None
    try:
        return load_public_pem(path.read_bytes())
    except ValueError:
        return None


def write_publishers(directory: Path, publishers: list[tpb.TrustedPublisher]) -> None:
    """Store the publisher set (name -> base64 raw key); only well-formed 32-byte keys."""
    body = {p.name: base64.b64encode(p.public_key).decode() for p in publishers if len(p.public_key) == 32}
    data = json.dumps({"publishers": body}, sort_keys=True).encode()
    write_atomic(directory / PUBLISHERS_FILE, data, 0o644)


def read_publishers(directory: Path) -> dict[str, bytes]:
    path = directory / PUBLISHERS_FILE
    if not path.exists():
        return {}
    try:
        raw = json.loads(path.read_text()).get("publishers", {})
        return {str(k): base64.b64decode(v) for k, v in raw.items()}
    except (ValueError, AttributeError, TypeError):
        log.error("%s is unreadable: no publisher is trusted until the next Publishers directive", path)
        return {}
