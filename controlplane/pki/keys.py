"""Keys, CSRs and PEM files. Private keys are written 0600 atomically and never logged."""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
from collections.abc import Callable
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from controlplane.errors import FailedPrecondition

PrivateKey = ec.EllipticCurvePrivateKey


def generate_private_key() -> PrivateKey:
    # P-256: supported by every TLS stack gRPC links against, and ~20x faster to generate than RSA-2048.
    return ec.generate_private_key(ec.SECP256R1())


def private_key_pem(key: PrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def certificate_pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def fingerprint(cert: x509.Certificate) -> str:
    return "sha256:" + hashlib.sha256(cert.public_bytes(serialization.Encoding.DER)).hexdigest()


def make_csr(key: PrivateKey, subject: x509.Name) -> x509.CertificateSigningRequest:
    return x509.CertificateSigningRequestBuilder().subject_name(subject).sign(key, hashes.SHA256())


def csr_pem(csr: x509.CertificateSigningRequest) -> str:
    return csr.public_bytes(serialization.Encoding.PEM).decode()


def write_atomic(path: Path, data: bytes, mode: int) -> None:
    """Write ``data`` so that readers never see a partial file and the mode is set before content."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_private_key(path: Path, key: PrivateKey) -> None:
    write_atomic(path, private_key_pem(key), 0o600)


def load_private_key(path: Path) -> PrivateKey:
    key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise ValueError(f"{path}: expected an EC private key")
    return key


def load_certificate(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


def create_exclusive(path: Path, data: bytes, mode: int) -> bool:
    """Create ``path`` with ``data`` only if absent (atomic, no partial file). Returns whether created."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        try:
            os.link(tmp, path)
        except FileExistsError:
            return False
        return True
    finally:
        Path(tmp).unlink(missing_ok=True)


def ensure_ed25519(
    key_path: Path, public_path: Path, public_text: Callable[[Ed25519PrivateKey], str], *, fix: str = ""
) -> Ed25519PrivateKey:
    """Load the Ed25519 key at ``key_path`` (PKCS#8 PEM, 0600), creating it first when absent, and
    keep ``public_path`` holding ``public_text(key)``. Created exclusively, so replicas racing on one
    shared directory end with one key. ``fix`` says how to provide the key where the directory is
    read-only (a Secret mount): without it, a failure to create is raised as it is."""
    if not key_path.exists():
        pem = Ed25519PrivateKey.generate().private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        try:
            create_exclusive(key_path, pem, 0o600)
        except OSError as e:
            if not fix:
                raise
            raise FailedPrecondition(
                f"{key_path} is missing and cannot be created ({e.strerror}): {fix}"
            ) from e
    key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
    if not isinstance(key, Ed25519PrivateKey):
        raise ValueError(f"{key_path}: expected an Ed25519 private key")
    text = public_text(key)
    if not public_path.exists() or public_path.read_text() != text:
        with contextlib.suppress(OSError):  # a read-only mount may hold the private key alone
            write_atomic(public_path, text.encode(), 0o644)
    return key
