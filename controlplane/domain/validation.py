"""Validation of names that cross trust boundaries. Errors name the field and the reason."""

from __future__ import annotations

import re

from controlplane.errors import InvalidArgument

# RFC 1123 label, as Kubernetes uses for names: 1-63 chars, lowercase alnum and '-', alnum at ends.
_DNS_LABEL = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")
_DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")
# RFC 1123 subdomain, as Kubernetes uses for custom resource names: dot-separated DNS labels,
# at most 253 characters in all (``atlas-1.2.0``).
_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$")

# ISO 3166-1 alpha-2 officially assigned codes (249). Checked as a set so that "ZZ" or "EU" fail.
ISO_3166_ALPHA2 = frozenset(
    """
    AD AE AF AG AI AL AM AO AQ AR AS AT AU AW AX AZ BA BB BD BE BF BG BH BI BJ BL BM BN BO BQ BR
    BS BT BV BW BY BZ CA CC CD CF CG CH CI CK CL CM CN CO CR CU CV CW CX CY CZ DE DJ DK DM DO DZ
    EC EE EG EH ER ES ET FI FJ FK FM FO FR GA GB GD GE GF GG GH GI GL GM GN GP GQ GR GS GT GU GW
    GY HK HM HN HR HT HU ID IE IL IM IN IO IQ IR IS IT JE JM JO JP KE KG KH KI KM KN KP KR KW KY
    KZ LA LB LC LI LK LR LS LT LU LV LY MA MC MD ME MF MG MH MK ML MM MN MO MP MQ MR MS MT MU MV
    MW MX MY MZ NA NC NE NF NG NI NL NO NP NR NU NZ OM PA PE PF PG PH PK PL PM PN PR PS PT PW PY
    QA RE RO RS RU RW SA SB SC SD SE SG SH SI SJ SK SL SM SN SO SR SS ST SV SX SY SZ TC TD TF TG
    TH TJ TK TL TM TN TO TR TT TV TW TZ UA UG UM US UY UZ VA VC VE VG VI VN VU WF WS YE YT ZA ZM
    ZW
    """.split()  # noqa: SIM905 - a block of codes reads better than 249 lines
)


def validate_dns_label(field: str, value: str) -> str:
    if not value:
        raise InvalidArgument(field, "is required")
    if not _DNS_LABEL.fullmatch(value):
        raise InvalidArgument(
            field, f"{value[:64]!r} is not a DNS label (1-63 of a-z, 0-9, '-', starting and ending alnum)"
        )
    return value


def validate_dns_subdomain(field: str, value: str) -> str:
    """A DNS-1123 subdomain: what Kubernetes accepts as a custom resource's name."""
    if not value:
        raise InvalidArgument(field, "is required")
    if len(value) > 253 or not _DNS_SUBDOMAIN.fullmatch(value):
        raise InvalidArgument(
            field,
            f"{value[:64]!r} is not a DNS subdomain (at most 253 of a-z, 0-9, '-' and '.', in labels "
            "that start and end alphanumeric)",
        )
    return value


def validate_country(value: str, field: str = "country") -> str:
    if not value:
        raise InvalidArgument(field, "is required")
    if value not in ISO_3166_ALPHA2:
        raise InvalidArgument(field, f"{value[:8]!r} is not an ISO 3166-1 alpha-2 code (e.g. FR, DE, JP)")
    return value


def validate_digest(value: str, field: str = "digest") -> str:
    if not _DIGEST.fullmatch(value):
        raise InvalidArgument(field, "must be sha256:<64 lowercase hex>")
    return value


def validate_security_tier(value: int, field: str = "security_tier") -> int:
    if not 1 <= value <= 4:
        raise InvalidArgument(field, f"must be 1..4, got {value}")
    return value


# Kubernetes label syntax: a name is 1-63 of alnum, '-', '_', '.', alnum at both ends; a key may
# carry a DNS subdomain prefix and '/'; a value is a name or empty.
_LABEL_NAME = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9_.-]{0,61}[A-Za-z0-9])?$")
_DNS_SUBDOMAIN_PREFIX = re.compile(
    r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$"
)
#: As the FederationLink CRD allows (maxProperties).
MAX_LABELS = 64


def _shown(value: str) -> str:
    return repr(value[:64]) + ("..." if len(value) > 64 else "")


def validate_label_key(field: str, key: str) -> str:
    """A Kubernetes label key: ``[prefix/]name``, prefix a DNS subdomain of at most 253."""
    prefix, sep, name = key.rpartition("/")
    if (sep and (not prefix or len(prefix) > 253 or not _DNS_SUBDOMAIN_PREFIX.fullmatch(prefix))) or not (
        _LABEL_NAME.fullmatch(name)
    ):
        raise InvalidArgument(
            field, f"key {_shown(key)} is not a label key ([prefix/]name of a-z, 0-9, '-', '_', '.')"
        )
    return key


def validate_label_value(field: str, value: str) -> str:
    """A Kubernetes label value: empty, or 1-63 of alnum, '-', '_', '.', alnum at both ends."""
    if value and not _LABEL_NAME.fullmatch(value):
        raise InvalidArgument(
            field, f"{_shown(value)} is not a label value (1-63 of a-z, A-Z, 0-9, '-', '_', '.')"
        )
    return value


def validate_labels(field: str, labels: dict[str, str]) -> dict[str, str]:
    if len(labels) > MAX_LABELS:
        raise InvalidArgument(field, f"at most {MAX_LABELS} labels, got {len(labels)}")
    for k, v in labels.items():
        validate_label_key(field, k)
        validate_label_value(f"{field}[{k}]", v)
    return labels
