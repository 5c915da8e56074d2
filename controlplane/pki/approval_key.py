"""A person's Ed25519 approval key: made on their own machine (``stargatectl keys create``), the
private half never leaves it. ``K`` is PKCS#8 PEM (0600); ``K.pub`` is one line, the base64 of the
raw 32-byte public key, which is what a roster lists (``controlplane/domain/roster.py``)."""

from __future__ import annotations

import base64
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from controlplane.errors import AlreadyExists, InvalidArgument
from controlplane.pki.keys import write_atomic


def public_line(key: Ed25519PublicKey) -> str:
    return base64.b64encode(key.public_bytes_raw()).decode()


def create(out: Path, *, force: bool = False) -> Ed25519PrivateKey:
    """Write ``out`` (0600) and ``out.pub``; refuses to overwrite unless ``force``."""
    if out.exists() and not force:
        raise AlreadyExists(f"{out} exists (an approval key is never overwritten silently)")
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    write_atomic(out, pem, 0o600)
    write_atomic(pub_path(out), (public_line(key.public_key()) + "\n").encode(), 0o644)
    return key


def pub_path(out: Path) -> Path:
    return out.with_name(out.name + ".pub")


def load_private(path: Path, field_name: str = "approval-key") -> Ed25519PrivateKey:
    try:
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except OSError as e:
        raise InvalidArgument(field_name, f"cannot read {path}: {e.strerror}") from e
    except ValueError as e:
        raise InvalidArgument(field_name, f"{path} is not a PEM private key") from e
    if not isinstance(key, Ed25519PrivateKey):
        raise InvalidArgument(field_name, f"{path} is not an Ed25519 key")
    return key


def load_public(path: Path, field_name: str = "--admin-key") -> bytes:
    """The raw 32 bytes from a ``.pub`` file (base64 line)."""
    try:
        text = path.read_text(encoding="ascii").strip()
    except (OSError, UnicodeDecodeError) as e:
        raise InvalidArgument(field_name, f"cannot read {path} as a public key line") from e
    try:
        raw = base64.b64decode(text, validate=True)
    except ValueError as e:
        raise InvalidArgument(
            field_name, f"{path} is not base64 (make one with `stargatectl keys create`)"
        ) from e
    if len(raw) != 32:
        raise InvalidArgument(field_name, f"{path} does not hold a 32-byte Ed25519 public key")
    return raw


def sign(key: Ed25519PrivateKey, data: bytes) -> bytes:
    return key.sign(data)


__all__ = ["create", "load_private", "load_public", "pub_path", "public_line", "sign"]
