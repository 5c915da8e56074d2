"""Datasets, described where they live: the shared vocabulary of the site and the federation.

A dataset is a site's custom resource (``Dataset``, operators/kube) or an entry of a simulated
site's sites file. The site keeps all of it; only ``DatasetSummary`` goes upstream: name,
jurisdiction, classification, languages, purposes and a coarse size bucket. Never the storage
claim, the steward's contact, a path, a finer size or a sample (the classification test of every
wire message enforces the wire side of this; ``summary()`` is the one way to build what is sent).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from controlplane.domain.validation import validate_country, validate_dns_subdomain
from controlplane.errors import InvalidArgument


class Classification(StrEnum):
    PUBLIC = "public"
    PERSONAL = "personal"
    SENSITIVE = "sensitive"


class Purpose(StrEnum):
    FINE_TUNE = "fine-tune"
    EVALUATE = "evaluate"


class SizeBucket(StrEnum):
    """Coarse on purpose: four buckets, decades apart, so the size says how big a job to expect
    and nothing about how many people are in the data."""

    SMALL = "small"  # under 1 GiB
    MEDIUM = "medium"  # under 100 GiB
    LARGE = "large"  # under 10 TiB
    XLARGE = "xlarge"  # 10 TiB and more


_GIB = 1 << 30
_BUCKETS = ((_GIB, SizeBucket.SMALL), (100 * _GIB, SizeBucket.MEDIUM), (10 * 1024 * _GIB, SizeBucket.LARGE))


def bucket_of(size_bytes: int) -> SizeBucket:
    """The bucket of a size in bytes (the site measures; only the bucket is sent)."""
    for bound, bucket in _BUCKETS:
        if size_bytes < bound:
            return bucket
    return SizeBucket.XLARGE


# BCP 47 language tag, the shapes in use (RFC 5646 section 2.1 without the private-use and
# grandfathered forms): language, optional script, region, variants. "fr", "fr-CA", "zh-Hant-TW".
_BCP47 = re.compile(
    r"^[a-z]{2,3}(-[A-Z][a-z]{3})?(-([A-Z]{2}|[0-9]{3}))?(-([a-z0-9]{5,8}|[0-9][a-z0-9]{3}))*$"
)
MAX_LANGUAGES = 16


def validate_language(value: str, field: str = "language") -> str:
    if not value:
        raise InvalidArgument(field, "is required")
    if len(value) > 35 or not _BCP47.fullmatch(value):
        raise InvalidArgument(field, f"{value[:40]!r} is not a BCP 47 language tag (e.g. fr, fr-CA, pt-BR)")
    return value


def _enum(cls: type[StrEnum], value: str, field: str) -> StrEnum:
    try:
        return cls(value)
    except ValueError:
        allowed = ", ".join(m.value for m in cls)  # type: ignore[attr-defined]
        raise InvalidArgument(field, f"{str(value)[:40]!r} is not one of {allowed}") from None


@dataclass(frozen=True)
class DatasetSummary:
    """What the federation knows of a dataset: exactly what may cross the border."""

    name: str
    jurisdiction: str
    classification: Classification
    languages: tuple[str, ...]
    purposes: tuple[Purpose, ...]
    size: SizeBucket

    @classmethod
    def parse(cls, d: dict[str, object], prefix: str = "") -> DatasetSummary:
        """From a dict (a report, a sites-file entry), validated: errors name ``prefix`` + field."""
        langs = d.get("languages") or []
        purposes = d.get("purposes") or []
        if not isinstance(langs, list | tuple) or not isinstance(purposes, list | tuple):
            raise InvalidArgument(prefix + "languages", "languages and purposes must be lists")
        if not langs or len(langs) > MAX_LANGUAGES:
            raise InvalidArgument(prefix + "languages", f"must list 1 to {MAX_LANGUAGES} languages")
        if not purposes:
            raise InvalidArgument(prefix + "purposes", "must list at least one purpose")
        pre = prefix
        return cls(
            name=validate_dns_subdomain(pre + "name", str(d.get("name") or "")),
            jurisdiction=validate_country(str(d.get("jurisdiction") or ""), pre + "jurisdiction"),
            classification=Classification(
                _enum(Classification, str(d.get("classification")), pre + "classification")
            ),
            languages=tuple(validate_language(str(x), f"{pre}languages[{i}]") for i, x in enumerate(langs)),
            purposes=tuple(
                Purpose(_enum(Purpose, str(x), f"{pre}purposes[{i}]")) for i, x in enumerate(purposes)
            ),
            size=SizeBucket(_enum(SizeBucket, str(d.get("size") or ""), pre + "size")),
        )

    def to_dict(self) -> dict[str, object]:
        return {
            "name": self.name,
            "jurisdiction": self.jurisdiction,
            "classification": str(self.classification),
            "languages": list(self.languages),
            "purposes": [str(p) for p in self.purposes],
            "size": str(self.size),
        }


@dataclass(frozen=True)
class Dataset:
    """A dataset as its site holds it. ``claim`` and ``steward`` never leave the site."""

    summary: DatasetSummary
    #: The PersistentVolumeClaim holding the data (mounted read-only into a job's pods).
    claim: str = ""
    #: The data steward's contact, for the site's people.
    steward: str = ""

    def refusal(self, site_country: str) -> str | None:
        """Why the site refuses to offer this dataset at all: data held under another country's
        law is not this site's to offer (the federation never hears of it)."""
        if self.summary.jurisdiction != site_country:
            return (
                f"jurisdiction {self.summary.jurisdiction} is not this site's country {site_country}: "
                "a dataset is offered only where its law applies"
            )
        return None


def language_matches(want: str, held: str) -> bool:
    """Whether a dataset holding ``held`` serves a job asking for ``want``: the same tag, or a
    more specific one of the asked language ("fr" is served by "fr-CA"; "fr-CA" only by "fr-CA")."""
    return held == want or held.startswith(want + "-")


@dataclass(frozen=True)
class DatasetWant:
    """Which dataset a job runs next to: by name, or by language in a country."""

    name: str = ""
    language: str = ""
    #: The data's country (its jurisdiction); resolved from the name when not given.
    country: str = ""

    @classmethod
    def parse(cls, name: str, language: str, country: str, prefix: str = "spec.dataset.") -> DatasetWant:
        if not name and not language:
            raise InvalidArgument(prefix + "name", "name a dataset, or give its language and country")
        if name:
            validate_dns_subdomain(prefix + "name", name)
        if language:
            validate_language(language, prefix + "language")
            if not country:
                raise InvalidArgument(prefix + "country", "is required with a language")
        if country:
            validate_country(country, prefix + "country")
        return cls(name, language, country)

    def describe(self) -> str:
        parts = [self.name] if self.name else []
        if self.language:
            parts.append(f"language {self.language}")
        if self.country:
            parts.append(f"in {self.country}")
        return " ".join(parts)

    def matches(self, d: dict[str, Any]) -> bool:
        """Whether the stored summary ``d`` (DatasetSummary.to_dict) is one this job may use."""
        if self.name and d.get("name") != self.name:
            return False
        if self.country and d.get("jurisdiction") != self.country:
            return False
        return not self.language or any(
            language_matches(self.language, str(x)) for x in d.get("languages") or ()
        )
