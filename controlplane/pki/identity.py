"""Identities: who a verified certificate speaks for.

An identity is a SPIFFE id in the certificate's URI SAN (``spiffe://<td>/site/<id>``,
``spiffe://<td>/user/<name>``, ``spiffe://<td>/server/<name>``). The role and, for stewards and
sites, the country are bound into the same signed certificate as subject attributes (OU = role,
C = country), so they cannot be claimed in a request.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass

from cryptography import x509
from cryptography.x509.oid import NameOID

from controlplane.domain.validation import validate_country, validate_dns_label
from controlplane.errors import InvalidArgument, Unauthenticated


class Role(enum.StrEnum):
    ADMIN = "admin"
    STEWARD = "steward"
    AUDITOR = "auditor"
    SITE = "site"
    SERVER = "server"


class Kind(enum.StrEnum):
    SITE = "site"
    USER = "user"
    SERVER = "server"


_TRUST_DOMAIN = re.compile(r"^[a-z0-9]([a-z0-9.-]{0,253}[a-z0-9])?$")


def validate_trust_domain(td: str) -> str:
    if not _TRUST_DOMAIN.fullmatch(td):
        raise InvalidArgument("trust_domain", "must be a lowercase DNS name, e.g. stargate.example")
    return td


@dataclass(frozen=True, slots=True)
class Identity:
    trust_domain: str
    kind: Kind
    name: str
    role: Role
    country: str = ""

    def __post_init__(self) -> None:
        validate_trust_domain(self.trust_domain)
        validate_dns_label("name" if self.kind is not Kind.SITE else "site_id", self.name)
        if self.kind is Kind.SITE and self.role is not Role.SITE:
            raise InvalidArgument("role", "a site identity has the site role")
        if self.kind is Kind.SERVER and self.role is not Role.SERVER:
            raise InvalidArgument("role", "a server identity has the server role")
        if self.kind is Kind.USER and self.role not in (Role.ADMIN, Role.STEWARD, Role.AUDITOR):
            raise InvalidArgument("role", "must be one of admin, steward, auditor")
        if self.role in (Role.STEWARD, Role.SITE):
            validate_country(self.country)
        elif self.country:
            raise InvalidArgument("country", f"only stewards and sites have a country, not {self.role}")

    @property
    def spiffe_id(self) -> str:
        return f"spiffe://{self.trust_domain}/{self.kind}/{self.name}"

    def __str__(self) -> str:
        return self.spiffe_id

    def subject(self) -> x509.Name:
        attrs = [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, self.trust_domain),
            x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, self.role.value),
            x509.NameAttribute(NameOID.COMMON_NAME, self.name),
        ]
        if self.country:
            attrs.insert(0, x509.NameAttribute(NameOID.COUNTRY_NAME, self.country))
        return x509.Name(attrs)


def parse_spiffe_id(uri: str) -> tuple[str, Kind, str]:
    m = re.fullmatch(r"spiffe://([^/]+)/(site|user|server)/([^/]+)", uri)
    if not m:
        raise Unauthenticated("certificate has no stargate SPIFFE identity")
    return m.group(1), Kind(m.group(2)), m.group(3)


def _attr(name: x509.Name, oid: x509.ObjectIdentifier) -> str:
    values = name.get_attributes_for_oid(oid)
    return str(values[0].value) if values else ""


def identity_from_certificate(cert: x509.Certificate) -> Identity:
    """The identity a CA-verified certificate carries. Raises Unauthenticated when malformed."""
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        uris = san.get_values_for_type(x509.UniformResourceIdentifier)
    except x509.ExtensionNotFound as e:
        raise Unauthenticated("certificate has no SAN") from e
    if len(uris) != 1:
        raise Unauthenticated("certificate must carry exactly one SPIFFE id")
    td, kind, name = parse_spiffe_id(uris[0])
    try:
        return Identity(
            trust_domain=td,
            kind=kind,
            name=name,
            role=Role(_attr(cert.subject, NameOID.ORGANIZATIONAL_UNIT_NAME)),
            country=_attr(cert.subject, NameOID.COUNTRY_NAME),
        )
    except (ValueError, InvalidArgument) as e:
        raise Unauthenticated("certificate identity is malformed") from e
