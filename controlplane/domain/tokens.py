"""Join token format. Pure functions; the secret part is 256 random bits from ``secrets``."""

from __future__ import annotations

import hashlib

TOKEN_PREFIX = "sgjt_"  # noqa: S105 - a prefix, not a secret; recognisable in logs and by secret scanners


def format_token(site_id: str, country: str, secret: str) -> str:
    """``sgjt_<site id>.<country>.<secret>``: the binding is readable (so ``join`` needs no more
    flags, like kubeadm's id.secret tokens) but only the secret part makes it valid, and the
    federation checks the binding against its own record, never against the token's text."""
    return f"{TOKEN_PREFIX}{site_id}.{country}.{secret}"


def parse_token(token: str) -> tuple[str, str]:
    """The (site id, country) a token names, or ("", "") when it is not in that form."""
    body = token.removeprefix(TOKEN_PREFIX)
    parts = body.split(".")
    if not token.startswith(TOKEN_PREFIX) or len(parts) != 3:
        return "", ""
    return parts[0], parts[1]


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()
