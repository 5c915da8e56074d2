"""Join tokens: sgjt_<site id>.<country>.<secret>, stored only as a SHA-256 hash."""

from __future__ import annotations

import hashlib
import secrets

import pytest

from controlplane.domain.tokens import TOKEN_PREFIX, format_token, hash_token, parse_token


def test_format_token() -> None:
    assert format_token("fr-par-1", "FR", "s3cr3t") == "sgjt_fr-par-1.FR.s3cr3t"
    assert TOKEN_PREFIX == "sgjt_"


def test_parse_round_trip_with_a_real_secret() -> None:
    for _ in range(50):
        token = format_token("de-fra-1", "DE", secrets.token_urlsafe(32))
        assert parse_token(token) == ("de-fra-1", "DE")


@pytest.mark.parametrize(
    "token",
    [
        "",
        "sgjt_",
        "fr-par-1.FR.secret",  # no prefix
        "xxjt_fr-par-1.FR.secret",
        "SGJT_fr-par-1.FR.secret",
        "sgjt_fr-par-1.FR",  # no secret
        "sgjt_fr-par-1.FR.sec.ret",  # too many parts
        "sgjt_fr-par-1",
        "garbage",
    ],
)
def test_parse_malformed_token_gives_empty_binding(token: str) -> None:
    assert parse_token(token) == ("", "")


def test_prefix_is_required_even_when_the_body_has_three_parts() -> None:
    # removeprefix is a no-op without the prefix; the body still splits into three parts.
    assert parse_token("a.FR.secret") == ("", "")


def test_hash_token_is_sha256_hex_of_the_whole_token() -> None:
    token = format_token("fr-par-1", "FR", "s3cr3t")
    assert hash_token(token) == hashlib.sha256(b"sgjt_fr-par-1.FR.s3cr3t").hexdigest()
    assert len(hash_token(token)) == 64
    assert hash_token(token) == hash_token(token)


def test_hash_binds_site_country_and_secret() -> None:
    base = hash_token(format_token("fr-par-1", "FR", "s3cr3t"))
    assert base != hash_token(format_token("fr-par-2", "FR", "s3cr3t"))
    assert base != hash_token(format_token("fr-par-1", "DE", "s3cr3t"))
    assert base != hash_token(format_token("fr-par-1", "FR", "s3cr3u"))


def test_hash_does_not_contain_the_secret() -> None:
    secret = secrets.token_urlsafe(32)
    assert secret not in hash_token(format_token("fr-par-1", "FR", secret))
