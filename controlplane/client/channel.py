"""mTLS channels with the options every stargate client needs."""

from __future__ import annotations

import datetime as dt

import grpc
from cryptography import x509
from cryptography.exceptions import InvalidSignature

from controlplane.errors import InvalidArgument, Unauthenticated

#: Reconnect quickly after a refused connect (gRPC's default waits ~1 s before the first retry).
FAST_RECONNECT = (
    ("grpc.initial_reconnect_backoff_ms", 100),
    ("grpc.min_reconnect_backoff_ms", 100),
    ("grpc.max_reconnect_backoff_ms", 2000),
)
OPTIONS = (
    *FAST_RECONNECT,
    ("grpc.max_receive_message_length", 8 * 1024 * 1024),
    ("grpc.max_send_message_length", 8 * 1024 * 1024),
    # Detect a dead peer on an idle link within ~40 s instead of the TCP default of hours.
    ("grpc.keepalive_time_ms", 30_000),
    ("grpc.keepalive_timeout_ms", 10_000),
    ("grpc.keepalive_permit_without_calls", 1),
)


def check_client_certificate(cert_pem: bytes, ca_pem: bytes) -> x509.Certificate:
    """Refuse locally, with a clear reason, what the server's TLS handshake would refuse silently."""
    try:
        cert = x509.load_pem_x509_certificate(cert_pem)
        ca = x509.load_pem_x509_certificate(ca_pem)
    except ValueError as e:
        raise InvalidArgument("client-certificate", "is not a PEM certificate") from e
    now = dt.datetime.now(dt.UTC)
    if cert.not_valid_after_utc < now:
        raise Unauthenticated(
            f"client certificate expired at {cert.not_valid_after_utc.isoformat()}; "
            "ask an admin for a new one"
        )
    try:
        cert.verify_directly_issued_by(ca)
    except (ValueError, TypeError, InvalidSignature):
        raise Unauthenticated("client certificate was not issued by this federation's CA")
    return cert


def secure_channel(
    target: str, ca_pem: bytes, key_pem: bytes | None = None, cert_pem: bytes | None = None
) -> grpc.aio.Channel:
    creds = grpc.ssl_channel_credentials(
        root_certificates=ca_pem, private_key=key_pem, certificate_chain=cert_pem
    )
    return grpc.aio.secure_channel(target, creds, options=OPTIONS)
