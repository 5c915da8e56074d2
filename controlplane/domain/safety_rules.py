"""Incident rules: when incidents reported by sites halt a release automatically.

A rule reads: "at least ``min_incidents`` incidents of severity ``max_severity`` or worse (1 is the
worst) for one release, from at least ``min_sites`` distinct sites, within ``window_s`` seconds ->
halt that release in ``scope``". The default is the federation's standing rule:
≥ 3 severity-1 incidents from ≥ 2 sites within 10 minutes -> halt the release globally.

Rules come from the server flag ``--safety-rules FILE`` (JSON or YAML: a list of objects with the
fields of ``IncidentRule``); without it the default applies. ``evaluate`` is pure: the leader's
controller feeds it the incidents it read and acts on what it returns.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from controlplane.domain.safety import IncidentRecord, parse_scope
from controlplane.domain.validation import validate_dns_label
from controlplane.errors import InvalidArgument


@dataclass(frozen=True)
class IncidentRule:
    name: str = "sev1-burst"
    min_incidents: int = 3
    max_severity: int = 1
    min_sites: int = 2
    window_s: float = 600.0
    #: Only halting is automatic; anything milder is for people.
    action: str = "halt"
    scope: str = "global"

    def __post_init__(self) -> None:
        validate_dns_label("rules.name", self.name)
        if self.min_incidents < 1 or self.min_sites < 1:
            raise InvalidArgument("rules.min_incidents", "min_incidents and min_sites must be >= 1")
        if not 1 <= self.max_severity <= 4:
            raise InvalidArgument("rules.max_severity", "must be 1..4")
        if not 0 < self.window_s <= 7 * 86400:
            raise InvalidArgument("rules.window_s", "must be between 0 and 7 days")
        if self.action != "halt":
            raise InvalidArgument("rules.action", "only halt is supported")
        parse_scope(self.scope, "rules.scope")


DEFAULT_RULES: tuple[IncidentRule, ...] = (IncidentRule(),)


def parse_rules(data: Any) -> tuple[IncidentRule, ...]:
    """Rules from the parsed rules file: a list of objects (or {"rules": [...]})."""
    if isinstance(data, Mapping):
        data = data.get("rules")
    if not isinstance(data, list) or not data:
        raise InvalidArgument("rules", "must be a non-empty list of rules")
    names = set(IncidentRule.__dataclass_fields__)
    rules = []
    for item in data:
        if not isinstance(item, Mapping) or set(item) - names:
            raise InvalidArgument("rules", f"each rule is an object with fields {sorted(names)}")
        rules.append(IncidentRule(**dict(item)))
    if len({r.name for r in rules}) != len(rules):
        raise InvalidArgument("rules.name", "must be unique")
    return tuple(rules)


@dataclass(frozen=True)
class Firing:
    rule: IncidentRule
    release: str
    incidents: int
    sites: tuple[str, ...]


def evaluate(
    rules: Iterable[IncidentRule],
    incidents: Iterable[IncidentRecord],
    now: float,
    *,
    not_before: Mapping[str, float] | None = None,
) -> list[Firing]:
    """What fires now. ``not_before``: per release, incidents at or before this instant are not
    counted (the release was resumed since: old incidents must not halt it again at once)."""
    incidents = list(incidents)
    not_before = not_before or {}
    fired: list[Firing] = []
    for rule in rules:
        per_release: dict[str, tuple[int, set[str]]] = {}
        for i in incidents:
            if i.severity < 1 or i.severity > rule.max_severity:
                continue
            if i.at < now - rule.window_s or i.at <= not_before.get(i.release, 0.0):
                continue
            n, sites = per_release.get(i.release, (0, set()))
            sites.add(i.site_id)
            per_release[i.release] = (n + max(1, i.count), sites)
        for release, (n, sites) in sorted(per_release.items()):
            if n >= rule.min_incidents and len(sites) >= rule.min_sites:
                fired.append(Firing(rule, release, n, tuple(sorted(sites))))
    return fired
