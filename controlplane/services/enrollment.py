"""Join tokens and enrollment.

A token is 256 random bits shown once; the store keeps only its SHA-256 (the key under which it is
found), so a store dump does not let anyone enroll. Enrollment consumes the token, registers the
site and records the issued certificate in one transaction: a failure leaves nothing behind.
"""

from __future__ import annotations

import datetime as dt
import hmac
import secrets
from dataclasses import dataclass
from typing import NoReturn

from cryptography.x509.oid import NameOID

from controlplane.domain import roster as rd
from controlplane.domain import site_input
from controlplane.domain.ratelimit import peer_host
from controlplane.domain.records import SiteRecord, TokenRecord, site_key, token_key
from controlplane.domain.tokens import format_token, hash_token
from controlplane.domain.validation import validate_country, validate_dns_label, validate_security_tier
from controlplane.errors import FailedPrecondition, InvalidArgument, PermissionDenied, StargateError
from controlplane.pki.ca import SITE_TTL, CertificateAuthority, parse_csr
from controlplane.pki.identity import Identity, Kind, Role
from controlplane.pki.keys import certificate_pem, fingerprint
from controlplane.services import clock
from controlplane.services.audit import AuditLog, Entry
from controlplane.services.refusals import Refusals
from controlplane.store import Compare, Put, Store

DEFAULT_TOKEN_TTL = dt.timedelta(hours=1)
MAX_TOKEN_TTL = dt.timedelta(days=7)


@dataclass(frozen=True)
class SiteFactsIn:
    site_id: str
    country: str
    region: str = ""
    labels: dict[str, str] | None = None
    capacity: dict[str, dict[str, int]] | None = None
    security_tier: int = 1
    operator_version: str = ""


@dataclass(frozen=True)
class Issued:
    certificate_pem: bytes
    ca_pem: bytes
    not_after: dt.datetime


class Enrollment:
    def __init__(
        self,
        store: Store,
        audit: AuditLog,
        ca: CertificateAuthority,
        site_ttl: dt.timedelta = SITE_TTL,
        refusals: Refusals | None = None,
    ):
        self._store = store
        self._audit = audit
        self._ca = ca
        self._site_ttl = site_ttl
        #: Failed enrollments are unauthenticated: audited per peer and window, with a count.
        self.refusals = refusals if refusals is not None else Refusals(audit)

    async def create_token(
        self, actor: str, site_id: str, country: str, ttl: dt.timedelta | None
    ) -> tuple[str, TokenRecord]:
        validate_dns_label("site_id", site_id)
        validate_country(country)
        ttl = ttl or DEFAULT_TOKEN_TTL
        if not dt.timedelta(seconds=1) <= ttl <= MAX_TOKEN_TTL:
            raise InvalidArgument("ttl", f"must be between 1s and {MAX_TOKEN_TTL.days} days")
        existing = await self._store.get(site_key(site_id))
        if existing is not None and SiteRecord.from_json(existing.value).country != country:
            raise InvalidArgument("country", f"site {site_id!r} is already enrolled in another country")
        token = format_token(site_id, country, secrets.token_urlsafe(32))
        now = clock.now()
        record = TokenRecord(hash_token(token), site_id, country, now + ttl.total_seconds(), actor, now)
        entry = Entry(
            actor,
            "token.create",
            f"site/{site_id}",
            details={"country": country, "ttl_s": str(int(ttl.total_seconds()))},
        )
        await self._audit.commit(
            [Compare.absent(token_key(record.token_hash))],
            [Put(token_key(record.token_hash), record.to_json())],
            [entry],
        )
        return token, record

    async def _refuse(self, actor: str, site_id: str, reason: str, error: StargateError) -> NoReturn:
        """Audit a refused enrollment (with the precise reason, per peer and window) and raise."""
        await self.refusals.note(actor, "site.enroll", f"site/{site_id[:63] or '?'}", reason)
        raise error

    async def enroll(self, peer: str, token: str, csr_pem: str, facts: SiteFactsIn) -> Issued:
        actor = f"anonymous@{peer_host(peer)}"
        try:
            validate_dns_label("site_id", facts.site_id)
            validate_country(facts.country)
            validate_security_tier(facts.security_tier, "facts.security_tier")
            site_input.validate_facts(
                region=facts.region,
                labels=facts.labels or {},
                capacity={
                    k: (v.get("total", 0), v.get("free", 0)) for k, v in (facts.capacity or {}).items()
                },
                operator_version=facts.operator_version,
            )
            if not token or len(token) > 256:
                raise InvalidArgument("token", "is required (at most 256 characters)")
            csr = parse_csr(csr_pem)
        except InvalidArgument as e:
            await self._refuse(actor, facts.site_id, e.public, e)
        token_hash = hash_token(token)
        kv = await self._store.get(token_key(token_hash))
        if kv is None:
            await self._refuse(
                actor, facts.site_id, "unknown join token", PermissionDenied("join token is unknown")
            )
        rec = TokenRecord.from_json(kv.value)
        if not hmac.compare_digest(rec.token_hash, token_hash):
            await self._refuse(
                actor, facts.site_id, "token hash mismatch", PermissionDenied("join token is unknown")
            )
        if rec.used_at:
            await self._refuse(
                actor, facts.site_id, "join token reused", PermissionDenied("join token was already used")
            )
        if rec.expires_at < clock.now():
            await self._refuse(
                actor, facts.site_id, "join token expired", PermissionDenied("join token has expired")
            )
        if rec.site_id != facts.site_id or rec.country != facts.country:
            await self._refuse(
                actor,
                facts.site_id,
                f"token bound to {rec.site_id}/{rec.country}",
                PermissionDenied("facts.site_id: the join token is bound to another site id or country"),
            )
        cn = [a.value for a in csr.subject.get_attributes_for_oid(NameOID.COMMON_NAME)]
        if cn != [facts.site_id]:
            await self._refuse(
                actor,
                facts.site_id,
                f"CSR names {cn!r}",
                InvalidArgument("csr_pem", f"subject must name exactly site {facts.site_id!r}"),
            )
        identity = Identity(self._ca.trust_domain, Kind.SITE, facts.site_id, Role.SITE, facts.country)
        cert = self._ca.sign_csr(csr, identity, ttl=self._site_ttl)
        now = clock.now()
        site_kv = await self._store.get(site_key(facts.site_id))
        base = (
            SiteRecord.from_json(site_kv.value)
            if site_kv
            else SiteRecord(facts.site_id, facts.country, enrolled_at=now)
        )
        site = base.replace(
            region=facts.region,
            labels=dict(facts.labels or {}),
            capacity=dict(facts.capacity or {}),
            security_tier=facts.security_tier,
            operator_version=facts.operator_version,
            certificate_fingerprint=fingerprint(cert),
            certificate_not_after=cert.not_valid_after_utc.timestamp(),
        )
        site_cmp = Compare.absent(site_key(facts.site_id)) if site_kv is None else Compare.unchanged(site_kv)
        used = rec.replace(used_at=now)
        sid = f"site/{facts.site_id}"
        result = await self._audit.commit(
            [Compare.unchanged(kv), site_cmp],
            [Put(kv.key, used.to_json()), Put(site_key(facts.site_id), site.to_json())],
            [
                Entry(
                    actor,
                    "site.enroll",
                    sid,
                    details={"country": facts.country, "token_created_by": rec.created_by},
                ),
                Entry(
                    actor,
                    "certificate.issue",
                    sid,
                    details={
                        "fingerprint": fingerprint(cert),
                        "not_after": cert.not_valid_after_utc.isoformat(),
                    },
                ),
            ],
        )
        if not result.succeeded:
            await self._refuse(
                actor,
                facts.site_id,
                "raced with another enrollment",
                PermissionDenied("join token was already used"),
            )
        return Issued(certificate_pem(cert), self._ca.cert_pem, cert.not_valid_after_utc)

    async def renew(self, identity: Identity, csr_pem: str) -> Issued:
        """A fresh certificate for a new site key; the CSR must name the caller's own site."""
        csr = parse_csr(csr_pem)
        cn = [a.value for a in csr.subject.get_attributes_for_oid(NameOID.COMMON_NAME)]
        sid = f"site/{identity.name}"
        if cn != [identity.name]:
            await self._audit.record(
                Entry(identity.spiffe_id, "certificate.renew", sid, "denied", f"CSR names {cn!r}")
            )
            raise InvalidArgument("csr_pem", f"subject must name exactly site {identity.name!r}")
        cert = self._ca.sign_csr(csr, identity, ttl=self._site_ttl)
        kv = await self._store.get(site_key(identity.name))
        if kv is None:
            raise FailedPrecondition("site is not enrolled")
        site = SiteRecord.from_json(kv.value).replace(
            certificate_fingerprint=fingerprint(cert),
            certificate_not_after=cert.not_valid_after_utc.timestamp(),
        )
        await self._audit.commit(
            [Compare.unchanged(kv)],
            [Put(kv.key, site.to_json())],
            [
                Entry(
                    identity.spiffe_id,
                    "certificate.issue",
                    sid,
                    details={"fingerprint": fingerprint(cert), "renewal": "true"},
                )
            ],
        )
        return Issued(certificate_pem(cert), self._ca.cert_pem, cert.not_valid_after_utc)

    async def issue_user(
        self,
        actor: str,
        name: str,
        role: Role,
        country: str,
        csr_pem: str,
        ttl: dt.timedelta,
        *,
        roster: rd.Roster,
        csr_signature: bytes = b"",
    ) -> Issued:
        if role not in (Role.ADMIN, Role.STEWARD, Role.AUDITOR):
            raise InvalidArgument("role", "must be admin, steward or auditor")
        identity = Identity(self._ca.trust_domain, Kind.USER, name, role, country)
        why = rd.issuance_problem(
            roster, name=name, role=role.value, csr_pem=csr_pem, signature=csr_signature
        )
        if why is not None:  # identity is bound at issuance: a certificate names a roster person
            await self._audit.record(Entry(actor, "certificate.issue", f"user/{name}", "denied", why[:512]))
            raise PermissionDenied(why)
        csr = parse_csr(csr_pem)
        cert = self._ca.sign_csr(csr, identity, ttl=ttl)
        await self._audit.record(
            Entry(
                actor,
                "certificate.issue",
                f"user/{name}",
                details={"role": role.value, "country": country, "fingerprint": fingerprint(cert)},
            )
        )
        return Issued(certificate_pem(cert), self._ca.cert_pem, cert.not_valid_after_utc)
