"""A person's certificate request, made on their machine: a TLS key, a CSR whose subject is just
their name (the federation decides the identity), and the CSR signed with their approval key, so
that the federation issues a certificate for a roster person only to the holder of that person's
key (controlplane/domain/roster.py:issuance_problem)."""

from __future__ import annotations

from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.x509.oid import NameOID

from controlplane.domain import roster as rd
from controlplane.pki.keys import PrivateKey, csr_pem, generate_private_key, make_csr


@dataclass(frozen=True)
class PersonRequest:
    name: str
    key: PrivateKey
    csr_pem: str
    #: Ed25519 over rd.csr_statement(name, csr_pem); empty when made without an approval key.
    signature: bytes = b""


def person_request(name: str, approval: Ed25519PrivateKey | None) -> PersonRequest:
    key = generate_private_key()
    csr = csr_pem(make_csr(key, x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])))
    signature = approval.sign(rd.csr_statement(name=name, csr_pem=csr)) if approval is not None else b""
    return PersonRequest(name, key, csr, signature)
