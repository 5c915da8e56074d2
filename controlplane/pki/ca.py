"""The federation certificate authority.

One self-signed ECDSA P-256 root per federation. It signs server, site and people certificates,
each carrying exactly one SPIFFE id (URI SAN) and its role/country in the subject. Lifetimes are
short by default so that a stolen credential is useful briefly: sites 24 h (renewed over the link
at two thirds of their life), people 30 days, servers 90 days. The CA key never leaves ``init``'s
directory (mode 0600).
"""

from __future__ import annotations

import datetime as dt
import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from controlplane.errors import InvalidArgument
from controlplane.pki.identity import Identity, Kind, validate_trust_domain
from controlplane.pki.keys import (
    PrivateKey,
    certificate_pem,
    generate_private_key,
    load_certificate,
    load_private_key,
    write_atomic,
    write_private_key,
)

SITE_TTL = dt.timedelta(hours=24)
USER_TTL = dt.timedelta(days=30)
SERVER_TTL = dt.timedelta(days=90)
CA_TTL = dt.timedelta(days=3650)
#: Tolerated clock skew between the CA and verifiers (certificates are back-dated by this much).
CLOCK_SKEW = dt.timedelta(minutes=5)
MAX_TTL = dt.timedelta(days=365)


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@dataclass
class CertificateAuthority:
    cert: x509.Certificate
    key: PrivateKey
    trust_domain: str

    @classmethod
    def create(cls, trust_domain: str, *, ttl: dt.timedelta = CA_TTL) -> CertificateAuthority:
        validate_trust_domain(trust_domain)
        key = generate_private_key()
        name = x509.Name(
            [
                x509.NameAttribute(NameOID.ORGANIZATION_NAME, trust_domain),
                x509.NameAttribute(NameOID.COMMON_NAME, f"Stargate Federation CA ({trust_domain})"),
            ]
        )
        now = utcnow()
        ski = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
        cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - CLOCK_SKEW)
            .not_valid_after(now + ttl)
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(
                x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True
            )
            .add_extension(x509.NameConstraints([x509.UniformResourceIdentifier(trust_domain)], None), False)
            .add_extension(ski, critical=False)
            .sign(key, hashes.SHA256())
        )
        return cls(cert, key, trust_domain)

    @classmethod
    def load(cls, directory: Path) -> CertificateAuthority:
        cert = load_certificate(directory / "ca.crt")
        key = load_private_key(directory / "ca.key")
        td = str(cert.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)[0].value)
        return cls(cert, key, td)

    def save(self, directory: Path) -> None:
        write_private_key(directory / "ca.key", self.key)
        write_atomic(directory / "ca.crt", certificate_pem(self.cert), 0o644)

    @property
    def cert_pem(self) -> bytes:
        return certificate_pem(self.cert)

    def sign(
        self,
        public_key: object,
        identity: Identity,
        *,
        ttl: dt.timedelta,
        dns_names: Sequence[str] = (),
        ip_addresses: Sequence[str] = (),
    ) -> x509.Certificate:
        """Sign ``public_key`` for ``identity``. The identity comes from the caller's checks, never
        from the CSR's subject, so a CSR cannot smuggle in a role."""
        if identity.trust_domain != self.trust_domain:
            raise InvalidArgument("trust_domain", "does not match the federation's trust domain")
        if not dt.timedelta(0) < ttl <= MAX_TTL:
            raise InvalidArgument("ttl", f"must be between 1 s and {MAX_TTL.days} days")
        now = utcnow()
        not_after = min(now + ttl, self.cert.not_valid_after_utc)
        # Back-date for clock skew, but never by more than 5% of the lifetime, so that renewal at
        # 2/3 of (not_after - not_before) stays close to 2/3 of the requested ttl.
        skew = min(CLOCK_SKEW, ttl * 0.05)
        sans: list[x509.GeneralName] = [x509.UniformResourceIdentifier(identity.spiffe_id)]
        sans += [x509.DNSName(n) for n in dns_names]
        sans += [x509.IPAddress(ipaddress.ip_address(a)) for a in ip_addresses]
        usages = [ExtendedKeyUsageOID.CLIENT_AUTH]
        if identity.kind is Kind.SERVER:
            usages.insert(0, ExtendedKeyUsageOID.SERVER_AUTH)
        return (
            x509.CertificateBuilder()
            .subject_name(identity.subject())
            .issuer_name(self.cert.subject)
            .public_key(public_key)  # type: ignore[arg-type]
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - skew)
            .not_valid_after(not_after)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(
                x509.KeyUsage(True, False, False, False, False, False, False, False, False), critical=True
            )
            .add_extension(x509.ExtendedKeyUsage(usages), critical=False)
            .add_extension(x509.SubjectAlternativeName(sans), critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(self.key.public_key()), critical=False
            )
            .sign(self.key, hashes.SHA256())
        )

    def sign_csr(
        self, csr: x509.CertificateSigningRequest, identity: Identity, *, ttl: dt.timedelta
    ) -> x509.Certificate:
        if not csr.is_signature_valid:
            raise InvalidArgument("csr_pem", "signature does not verify (proof of key possession failed)")
        return self.sign(csr.public_key(), identity, ttl=ttl)

    def issue(
        self,
        identity: Identity,
        *,
        ttl: dt.timedelta,
        dns_names: Sequence[str] = (),
        ip_addresses: Sequence[str] = (),
    ) -> tuple[PrivateKey, x509.Certificate]:
        """Generate a key and certificate in this process: only for the holder's own machine
        (``init`` for the server and first admin; tests)."""
        key = generate_private_key()
        cert = self.sign(key.public_key(), identity, ttl=ttl, dns_names=dns_names, ip_addresses=ip_addresses)
        return key, cert


def parse_csr(pem: str, field: str = "csr_pem") -> x509.CertificateSigningRequest:
    if not pem or len(pem) > 16_384:
        raise InvalidArgument(field, "must be a PEM certificate signing request under 16 KiB")
    try:
        csr = x509.load_pem_x509_csr(pem.encode())
    except ValueError as e:
        raise InvalidArgument(field, "is not a PEM certificate signing request") from e
    if not csr.is_signature_valid:
        raise InvalidArgument(field, "signature does not verify (proof of key possession failed)")
    return csr
