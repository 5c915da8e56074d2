"""The federation CA: persistence, identities bound into certificates, CSR checks, lifetimes, key files."""

from __future__ import annotations

import datetime as dt
import os
import stat
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from controlplane.errors import InvalidArgument, Unauthenticated
from controlplane.pki import keys
from controlplane.pki.ca import (
    CLOCK_SKEW,
    MAX_TTL,
    SERVER_TTL,
    SITE_TTL,
    USER_TTL,
    CertificateAuthority,
    parse_csr,
)
from controlplane.pki.identity import Identity, Kind, Role, identity_from_certificate
from controlplane.pki.keys import (
    csr_pem,
    generate_private_key,
    load_private_key,
    make_csr,
    private_key_pem,
    write_private_key,
)

TD = "stargate.example"


@pytest.fixture(scope="module")
def ca() -> CertificateAuthority:
    return CertificateAuthority.create(TD)


def site(name: str = "fr-par-1", country: str = "FR") -> Identity:
    return Identity(TD, Kind.SITE, name, Role.SITE, country)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def lifetime(cert: x509.Certificate) -> dt.timedelta:
    return cert.not_valid_after_utc - cert.not_valid_before_utc


def eku(cert: x509.Certificate) -> set[x509.ObjectIdentifier]:
    return set(cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value)


# --- CA persistence -------------------------------------------------------------------------------


def test_ca_save_load_round_trip(ca: CertificateAuthority, tmp_path: Path) -> None:
    ca.save(tmp_path / "pki")
    assert mode(tmp_path / "pki" / "ca.key") == 0o600
    assert mode(tmp_path / "pki" / "ca.crt") == 0o644

    loaded = CertificateAuthority.load(tmp_path / "pki")
    assert loaded.trust_domain == TD
    assert loaded.cert == ca.cert
    assert private_key_pem(loaded.key) == private_key_pem(ca.key)

    # The loaded CA signs certificates that the original CA certificate verifies.
    _, cert = loaded.issue(site(), ttl=SITE_TTL)
    cert.verify_directly_issued_by(ca.cert)


def test_ca_certificate_is_a_constrained_root(ca: CertificateAuthority) -> None:
    bc = ca.cert.extensions.get_extension_for_class(x509.BasicConstraints).value
    assert bc.ca and bc.path_length == 0
    assert ca.cert.issuer == ca.cert.subject
    ca.cert.verify_directly_issued_by(ca.cert)


def test_ca_refuses_a_bad_trust_domain() -> None:
    with pytest.raises(InvalidArgument) as e:
        CertificateAuthority.create("Not A Domain")
    assert e.value.field == "trust_domain"


# --- identities -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("identity", "uri", "role", "country"),
    [
        (site(), f"spiffe://{TD}/site/fr-par-1", "site", "FR"),
        (Identity(TD, Kind.USER, "alice", Role.ADMIN), f"spiffe://{TD}/user/alice", "admin", ""),
        (Identity(TD, Kind.USER, "bob", Role.STEWARD, "DE"), f"spiffe://{TD}/user/bob", "steward", "DE"),
        (Identity(TD, Kind.USER, "carol", Role.AUDITOR), f"spiffe://{TD}/user/carol", "auditor", ""),
        (Identity(TD, Kind.SERVER, "cp-0", Role.SERVER), f"spiffe://{TD}/server/cp-0", "server", ""),
    ],
)
def test_issued_certificate_carries_the_identity(
    ca: CertificateAuthority, identity: Identity, uri: str, role: str, country: str
) -> None:
    _, cert = ca.issue(identity, ttl=USER_TTL)
    cert.verify_directly_issued_by(ca.cert)
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.UniformResourceIdentifier) == [uri]

    back = identity_from_certificate(cert)
    assert back == identity
    assert back.spiffe_id == uri
    assert back.role.value == role
    assert back.country == country
    countries = cert.subject.get_attributes_for_oid(NameOID.COUNTRY_NAME)
    assert [a.value for a in countries] == ([country] if country else [])


def test_only_server_certificates_can_serve(ca: CertificateAuthority) -> None:
    _, server = ca.issue(
        Identity(TD, Kind.SERVER, "cp-0", Role.SERVER),
        ttl=SERVER_TTL,
        dns_names=["localhost"],
        ip_addresses=["127.0.0.1"],
    )
    _, site_cert = ca.issue(site(), ttl=SITE_TTL)
    assert eku(server) == {ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH}
    assert eku(site_cert) == {ExtendedKeyUsageOID.CLIENT_AUTH}
    bc = site_cert.extensions.get_extension_for_class(x509.BasicConstraints).value
    assert not bc.ca
    san = server.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["localhost"]
    assert [str(a) for a in san.get_values_for_type(x509.IPAddress)] == ["127.0.0.1"]


def test_steward_without_country_is_refused() -> None:
    with pytest.raises(InvalidArgument) as e:
        Identity(TD, Kind.USER, "bob", Role.STEWARD)
    assert e.value.field == "country"


def test_site_without_country_is_refused() -> None:
    with pytest.raises(InvalidArgument) as e:
        Identity(TD, Kind.SITE, "fr-par-1", Role.SITE)
    assert e.value.field == "country"


@pytest.mark.parametrize("role", [Role.ADMIN, Role.AUDITOR])
def test_people_other_than_stewards_have_no_country(role: Role) -> None:
    with pytest.raises(InvalidArgument) as e:
        Identity(TD, Kind.USER, "alice", role, "FR")
    assert e.value.field == "country"


@pytest.mark.parametrize(
    ("kind", "role", "field"),
    [
        (Kind.SITE, Role.ADMIN, "role"),  # a site cannot be an admin
        (Kind.USER, Role.SITE, "role"),  # a person cannot be a site
        (Kind.USER, Role.SERVER, "role"),
        (Kind.SERVER, Role.ADMIN, "role"),
    ],
)
def test_kind_and_role_must_agree(kind: Kind, role: Role, field: str) -> None:
    with pytest.raises(InvalidArgument) as e:
        Identity(TD, kind, "x1", role, "FR" if role in (Role.SITE, Role.STEWARD) else "")
    assert e.value.field == field


def test_site_name_must_be_a_dns_label() -> None:
    with pytest.raises(InvalidArgument) as e:
        Identity(TD, Kind.SITE, "FR_Paris", Role.SITE, "FR")
    assert e.value.field == "site_id"


def test_certificate_without_spiffe_id_is_unauthenticated(ca: CertificateAuthority) -> None:
    key = generate_private_key()
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "nobody")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(ca.cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + dt.timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("nobody.example")]), critical=False)
        .sign(ca.key, hashes.SHA256())
    )
    with pytest.raises(Unauthenticated):
        identity_from_certificate(cert)


# --- CSRs ------------------------------------------------------------------------------------------


def _tampered_csr(site_id: str = "fr-par-1") -> x509.CertificateSigningRequest:
    """A CSR whose subject was changed after signing: the signature no longer covers it."""
    csr = make_csr(generate_private_key(), x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, site_id)]))
    der = csr.public_bytes(serialization.Encoding.DER)
    forged = site_id[:-1] + ("2" if site_id[-1] != "2" else "3")
    assert der.count(site_id.encode()) == 1
    tampered = x509.load_der_x509_csr(der.replace(site_id.encode(), forged.encode()))
    assert tampered.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == forged
    return tampered


def test_sign_csr_issues_for_the_given_identity_not_the_csr_subject(ca: CertificateAuthority) -> None:
    key = generate_private_key()
    csr = make_csr(key, x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "someone-else")]))
    cert = ca.sign_csr(parse_csr(csr_pem(csr)), site(), ttl=SITE_TTL)
    assert identity_from_certificate(cert) == site()
    assert cert.public_key() == key.public_key()


def test_sign_csr_refuses_an_invalid_signature(ca: CertificateAuthority) -> None:
    csr = _tampered_csr()
    assert not csr.is_signature_valid
    with pytest.raises(InvalidArgument) as e:
        ca.sign_csr(csr, site(), ttl=SITE_TTL)
    assert e.value.field == "csr_pem"


def test_parse_csr_refuses_tampered_and_garbage() -> None:
    tampered = _tampered_csr().public_bytes(serialization.Encoding.PEM).decode()
    garbage = "-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n"
    for pem in (tampered, "", garbage):
        with pytest.raises(InvalidArgument) as e:
            parse_csr(pem)
        assert e.value.field == "csr_pem"
    with pytest.raises(InvalidArgument):
        parse_csr("x" * 20_000)


def test_identity_from_another_trust_domain_is_refused(ca: CertificateAuthority) -> None:
    foreign = Identity("other.example", Kind.SITE, "fr-par-1", Role.SITE, "FR")
    with pytest.raises(InvalidArgument) as e:
        ca.issue(foreign, ttl=SITE_TTL)
    assert e.value.field == "trust_domain"


def test_certificates_of_another_federation_do_not_verify(ca: CertificateAuthority) -> None:
    other = CertificateAuthority.create("other.example")
    _, foreign = other.issue(Identity("other.example", Kind.SITE, "fr-par-1", Role.SITE, "FR"), ttl=SITE_TTL)
    with pytest.raises((InvalidSignature, ValueError)):
        foreign.verify_directly_issued_by(ca.cert)
    # Same trust domain name, different root key: still not ours.
    impostor = CertificateAuthority.create(TD)
    _, forged = impostor.issue(site(), ttl=SITE_TTL)
    with pytest.raises(InvalidSignature):
        forged.verify_directly_issued_by(ca.cert)


# --- lifetimes -------------------------------------------------------------------------------------


def test_default_lifetimes() -> None:
    assert dt.timedelta(hours=24) == SITE_TTL
    assert dt.timedelta(days=30) == USER_TTL
    assert dt.timedelta(days=90) == SERVER_TTL


def test_site_certificate_lives_24_hours(ca: CertificateAuthority) -> None:
    before = dt.datetime.now(dt.UTC).replace(microsecond=0)
    _, cert = ca.issue(site(), ttl=SITE_TTL)
    after = dt.datetime.now(dt.UTC)
    # Back-dated by the clock skew allowance, expiring 24 h from now.
    assert lifetime(cert) == SITE_TTL + CLOCK_SKEW
    assert before + SITE_TTL <= cert.not_valid_after_utc <= after + SITE_TTL
    assert cert.not_valid_before_utc <= before


def test_certificate_never_outlives_the_ca() -> None:
    short = CertificateAuthority.create(TD, ttl=dt.timedelta(hours=1))
    _, cert = short.issue(site(), ttl=SITE_TTL)
    assert cert.not_valid_after_utc <= short.cert.not_valid_after_utc


ONE_SECOND = dt.timedelta(seconds=1)


@pytest.mark.parametrize("ttl", [dt.timedelta(0), -ONE_SECOND, MAX_TTL + ONE_SECOND])
def test_out_of_range_lifetime_is_refused(ca: CertificateAuthority, ttl: dt.timedelta) -> None:
    with pytest.raises(InvalidArgument) as e:
        ca.issue(site(), ttl=ttl)
    assert e.value.field == "ttl"


# --- key files -------------------------------------------------------------------------------------


def test_write_private_key_is_0600_and_round_trips(tmp_path: Path) -> None:
    key = generate_private_key()
    path = tmp_path / "deep" / "dir" / "site.key"
    old_umask = os.umask(0)
    try:
        write_private_key(path, key)
    finally:
        os.umask(old_umask)
    assert mode(path) == 0o600
    assert private_key_pem(load_private_key(path)) == private_key_pem(key)
    assert [p.name for p in path.parent.iterdir()] == ["site.key"]  # no temporary left behind


def test_write_private_key_replaces_a_world_readable_file(tmp_path: Path) -> None:
    path = tmp_path / "site.key"
    path.write_bytes(b"old")
    path.chmod(0o644)
    write_private_key(path, generate_private_key())
    assert mode(path) == 0o600
    assert path.read_bytes().startswith(b"-----BEGIN PRIVATE KEY-----")


def test_write_private_key_is_atomic(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "site.key"
    original = generate_private_key()
    write_private_key(path, original)

    def crash(src: object, dst: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(keys.os, "replace", crash)
    with pytest.raises(OSError, match="disk full"):
        write_private_key(path, generate_private_key())
    # The old key is intact and the half-written temporary is gone.
    assert private_key_pem(load_private_key(path)) == private_key_pem(original)
    assert [p.name for p in tmp_path.iterdir()] == ["site.key"]


@pytest.mark.parametrize(("td", "name"), [(TD + "\n", "fr-par-1"), (TD, "fr-par-1\n")])
def test_identity_with_trailing_newline_is_refused(td: str, name: str) -> None:
    with pytest.raises(InvalidArgument):
        Identity(td, Kind.SITE, name, Role.SITE, "FR")
