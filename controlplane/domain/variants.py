"""Localised variants stay home: the rules about a release derived from a country's data. Pure.

A variant (``ModelRelease.variant_of`` set) is registered only by the federation, from a succeeded
LocalizationJob, signed by the producing site's own publisher key, its export rule allowing only
its data's country. Its artifact's export rule is then locked: a release of the same artifact
(model and digest) must carry the variant's rule, or a rule the data country's steward explicitly
consented to (``ApproveVariantExport``, recorded on the variant as ``export_grants``). A publisher
registered for some countries only (a site's own key) signs releases for those countries only.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any


def rule_of(allow: Iterable[str]) -> str:
    return ",".join(sorted(set(allow)))


def refusal(r: Any, bodies: Iterable[Mapping[str, Any]], *, registering_variant: bool = False) -> str | None:
    """Why release ``r`` may not be registered given the stored release bodies, or None."""
    if r.variant_of and not registering_variant:
        return "spec.variantOf: a variant is registered only by the federation, from its LocalizationJob"
    if r.variant_of:
        allow = list(r.export.allow_countries)
        if len(allow) != 1 or r.export.deny_countries:
            return "export: a variant's export rule must allow exactly its data's country"
    for body in bodies:
        v = (body.get("signed") or {}).get("release") or {}
        if not v.get("variant_of") or v.get("model") != r.model or v.get("digest") != r.digest:
            continue
        if v.get("name") == r.name:
            continue  # the same release again: the store's create-if-absent refuses it
        locked = rule_of((v.get("export") or {}).get("allow_countries") or [])
        granted = {locked, *(body.get("export_grants") or [])}
        wanted = rule_of(r.export.allow_countries)
        if r.export.deny_countries or wanted not in granted:
            return (
                f"export: the artifact is variant {v.get('name')}, derived from {locked} data; its export "
                f"stays {locked} unless the {locked} steward approves another rule "
                f"(stargatectl jobs approve-export {v.get('name')} --allow ...)"
            )
    return None


def outside(r: Any, countries: Sequence[str]) -> str | None:
    """Why a publisher limited to ``countries`` may not sign ``r``: its export rule must stay within
    them (empty ``countries``: an ordinary publisher, no limit)."""
    if not countries:
        return None
    allow = set(r.export.allow_countries)
    if not allow or not allow <= set(countries) or r.export.deny_countries:
        only = ", ".join(countries)
        return f"publisher: publishes for {only} only; the release's export rule must allow only {only}"
    return None
