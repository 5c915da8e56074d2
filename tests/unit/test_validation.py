"""Validation of names and payloads that cross trust boundaries; every error names its field."""

from __future__ import annotations

from typing import Any

import pytest

from controlplane.domain.validation import (
    ISO_3166_ALPHA2,
    validate_country,
    validate_digest,
    validate_dns_label,
    validate_dns_subdomain,
    validate_security_tier,
)
from controlplane.errors import InvalidArgument
from controlplane.services.validation import MAX_REPLICAS, deploy_payload

DIGEST = "sha256:" + "0123456789abcdef" * 4

# Python's `$` also matches before a final "\n": validation must use fullmatch (tested below).


# --- DNS labels ------------------------------------------------------------------------------------


@pytest.mark.parametrize("value", ["a", "fr-par-1", "0", "a" * 63, "x-y-z", "1abc"])
def test_dns_label_accepted(value: str) -> None:
    assert validate_dns_label("site_id", value) == value


@pytest.mark.parametrize(
    "value",
    ["", "A", "Fr-par-1", "-a", "a-", "a_b", "a.b", "a b", "a" * 64, "é", "fr-par-1 ", " fr-par-1", "a/b"],
)
def test_dns_label_refused_naming_the_field(value: str) -> None:
    with pytest.raises(InvalidArgument) as e:
        validate_dns_label("facts.site_id", value)
    assert e.value.field == "facts.site_id"
    assert str(e.value).startswith("facts.site_id: ")


def test_dns_label_with_trailing_newline_refused() -> None:
    with pytest.raises(InvalidArgument):
        validate_dns_label("site_id", "fr-par-1\n")


def test_dns_label_error_does_not_echo_unbounded_input() -> None:
    with pytest.raises(InvalidArgument) as e:
        validate_dns_label("site_id", "X" * 10_000)
    assert len(str(e.value)) < 300


# --- countries -------------------------------------------------------------------------------------


@pytest.mark.parametrize("value", ["FR", "DE", "JP", "US", "GB", "AX", "ZW"])
def test_country_accepted(value: str) -> None:
    assert validate_country(value) == value


@pytest.mark.parametrize("value", ["", "ZZ", "EU", "UK", "fr", "Fr", "FRA", "F", "FR ", "FR\n", "XK"])
def test_country_refused_naming_the_field(value: str) -> None:
    with pytest.raises(InvalidArgument) as e:
        validate_country(value)
    assert e.value.field == "country"
    with pytest.raises(InvalidArgument) as e:
        validate_country(value, "facts.country")
    assert e.value.field == "facts.country"


def test_country_table_is_iso_3166_alpha2() -> None:
    assert len(ISO_3166_ALPHA2) == 249
    assert all(len(c) == 2 and c.isascii() and c.isupper() for c in ISO_3166_ALPHA2)


# --- digests ---------------------------------------------------------------------------------------


def test_digest_accepted() -> None:
    assert validate_digest(DIGEST) == DIGEST


@pytest.mark.parametrize(
    "value",
    [
        "",
        "0123456789abcdef" * 4,  # no algorithm
        "sha256:" + "0123456789ABCDEF" * 4,  # uppercase hex
        "sha256:" + "0" * 63,
        "sha256:" + "0" * 65,
        "sha512:" + "0" * 64,
        "sha256:" + "g" * 64,
        "SHA256:" + "0" * 64,
    ],
)
def test_digest_refused_naming_the_field(value: str) -> None:
    with pytest.raises(InvalidArgument) as e:
        validate_digest(value, "deploy.digest")
    assert e.value.field == "deploy.digest"


def test_digest_with_trailing_newline_refused() -> None:
    with pytest.raises(InvalidArgument):
        validate_digest(DIGEST + "\n")


# --- security tiers --------------------------------------------------------------------------------


@pytest.mark.parametrize("value", [1, 2, 3, 4])
def test_security_tier_accepted(value: int) -> None:
    assert validate_security_tier(value) == value


@pytest.mark.parametrize("value", [0, -1, 5, 100])
def test_security_tier_refused_naming_the_field(value: int) -> None:
    with pytest.raises(InvalidArgument) as e:
        validate_security_tier(value, "facts.security_tier")
    assert e.value.field == "facts.security_tier"
    assert str(value) in e.value.reason


# --- deploy payloads -------------------------------------------------------------------------------


def payload(**changes: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "deployment_name": "llm-fr",
        "model": "mistral-7b",
        "version": "1.2.0+build_3",
        "digest": DIGEST,
        "replicas": 2,
        "accelerator": "h100",
        "accelerators_per_replica": 4,
        "locale": "fr-FR",
        "release": "spring",
        "risk_tier": 2,
    }
    base.update(changes)
    return {k: v for k, v in base.items() if v is not None}


def test_deploy_payload_accepted_unchanged() -> None:
    assert deploy_payload(payload()) == payload()


def test_deploy_payload_defaults() -> None:
    minimal = {"deployment_name": "llm", "model": "m", "version": "1", "digest": DIGEST}
    out = deploy_payload(minimal)
    assert out["replicas"] == 1
    assert out["accelerators_per_replica"] == 0
    assert out["risk_tier"] == 0
    assert minimal == {"deployment_name": "llm", "model": "m", "version": "1", "digest": DIGEST}


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"deployment_name": None}, "deployment_name"),
        ({"deployment_name": "LLM"}, "deployment_name"),
        ({"model": ""}, "model"),
        ({"model": "mistral_7b"}, "model"),
        ({"version": None}, "version"),
        ({"version": ""}, "version"),
        ({"version": "-1"}, "version"),
        ({"version": "1 0"}, "version"),
        ({"version": "v" * 65}, "version"),
        ({"digest": None}, "digest"),
        ({"digest": "sha256:abc"}, "digest"),
        ({"replicas": -1}, "replicas"),
        ({"replicas": MAX_REPLICAS + 1}, "replicas"),
        ({"accelerator": "H100"}, "accelerator"),
        ({"accelerator": "a" * 33}, "accelerator"),
        ({"accelerators_per_replica": -1}, "accelerators_per_replica"),
        ({"accelerators_per_replica": 65}, "accelerators_per_replica"),
        ({"locale": "fr_FR"}, "locale"),
        ({"locale": "FR"}, "locale"),
        ({"locale": "fr-fr"}, "locale"),
        ({"risk_tier": 5}, "risk_tier"),
        ({"risk_tier": -1}, "risk_tier"),
    ],
)
def test_deploy_payload_refused_naming_the_field(changes: dict[str, Any], field: str) -> None:
    with pytest.raises(InvalidArgument) as e:
        deploy_payload(payload(**changes))
    assert e.value.field == "deploy." + field
    with pytest.raises(InvalidArgument) as e:
        deploy_payload(payload(**changes), prefix="")
    assert e.value.field == field


@pytest.mark.parametrize(
    "changes",
    [
        {"replicas": 0},
        {"replicas": MAX_REPLICAS},
        {"accelerator": ""},
        {"accelerators_per_replica": 64},
        {"locale": ""},
        {"locale": "fr"},
        {"locale": "fil-PH"},
        {"risk_tier": 0},
        {"risk_tier": 4},
    ],
)
def test_deploy_payload_bounds_accepted(changes: dict[str, Any]) -> None:
    deploy_payload(payload(**changes))


@pytest.mark.parametrize("field", ["version", "locale", "accelerator"])
def test_deploy_payload_trailing_newline_refused(field: str) -> None:
    with pytest.raises(InvalidArgument):
        deploy_payload(payload(**{field: payload()[field] + "\n"}))


@pytest.mark.parametrize(
    "value", ["atlas-1.2.0", "atlas", "a", "x" * 63 + "." + "y" * 63, ("a" * 50 + ".") * 4 + "b"]
)
def test_dns_subdomain_accepted(value: str) -> None:
    assert validate_dns_subdomain("metadata.name", value) == value


@pytest.mark.parametrize(
    "value",
    [
        "",
        "Atlas-1.2.0",
        "atlas..1",
        ".atlas",
        "atlas.",
        "atlas-.1",
        "a_b",
        "x" * 64 + ".y",
        "a." * 127 + "ab",
        "a\n",
    ],
)
def test_dns_subdomain_refused_naming_the_field(value: str) -> None:
    with pytest.raises(InvalidArgument) as e:
        validate_dns_subdomain("metadata.name", value)
    assert e.value.field == "metadata.name" and len(e.value.public) < 250
