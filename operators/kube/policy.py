"""SitePolicy -> the agent's LocalPolicy.

One SitePolicy per site (like FederationLink). None: the defaults (every risk tier, the whole
capacity, the operator's namespaces, no approval). More than one, or one that cannot be read:
every deploy is refused with a reason that says so. A site that cannot tell what it allows must
not guess in the federation's favour.

``trustedPublisherKeys`` and ``linkLossTolerance`` go to the agent's safety lane (signed releases,
fail-closed halts without fresh beacons). ``metrics`` and ``safetyEvaluation`` say how the site
measures its deployments (operators/kube/health.py). ``jobs`` (allowPurposes, allowPublishers,
allowImages, maxAccelerators, maxHours) becomes ``LocalPolicy.jobs``, which the agent checks
before it starts a localisation job. ``acceptedExportClasses`` is not enforced:
directives carry no export class yet.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

from controlplane.domain.datasets import Purpose
from controlplane.domain.notes import NoteError, parse_vkey
from operators.agent.policy import JobsPolicy, LocalPolicy
from operators.kube.health import HealthPolicy
from operators.kube.metrics import MetricsPolicy, check_template
from operators.kube.safety_eval import SafetyEvaluation


class PolicyError(ValueError):
    pass


def from_spec(spec: dict[str, Any]) -> LocalPolicy:
    """Raises PolicyError, naming the field, for what the CRD schema would have refused."""
    tiers = spec.get("acceptedRiskTiers", [])
    if not isinstance(tiers, list) or not all(
        isinstance(t, int) and not isinstance(t, bool) and 1 <= t <= 4 for t in tiers
    ):
        raise PolicyError("spec.acceptedRiskTiers: must be a list of integers 1..4")
    share = spec.get("federationCapacityShare", 1.0)
    if isinstance(share, bool) or not isinstance(share, int | float) or not 0 <= share <= 1:
        raise PolicyError("spec.federationCapacityShare: must be a number between 0 and 1")
    namespaces = spec.get("federationNamespaces", [])
    if not isinstance(namespaces, list) or not all(isinstance(n, str) and n for n in namespaces):
        raise PolicyError("spec.federationNamespaces: must be a list of namespace names")
    approval = spec.get("requireLocalApproval", False)
    if not isinstance(approval, bool):
        raise PolicyError("spec.requireLocalApproval: must be true or false")
    tolerance: dict[int, float] = {}
    for item in spec.get("linkLossTolerance") or []:
        tier, seconds = (item or {}).get("riskTier"), (item or {}).get("seconds")
        if not isinstance(tier, int) or not 1 <= tier <= 4 or not isinstance(seconds, int) or seconds < 0:
            raise PolicyError("spec.linkLossTolerance: items need riskTier 1..4 and seconds >= 0")
        tolerance[tier] = float(seconds)
    keys: set[bytes] = set()
    for item in spec.get("trustedPublisherKeys") or []:
        try:
            raw = base64.b64decode(str((item or {}).get("publicKey", "")), validate=True)
        except (binascii.Error, ValueError):
            raw = b""
        if len(raw) != 32:
            raise PolicyError(
                f"spec.trustedPublisherKeys: {(item or {}).get('name')!r} is not a raw Ed25519 key"
            )
        keys.add(raw)
    witnesses, min_witnesses = _witnesses(spec)
    jobs = jobs_from_spec(spec)
    health_from_spec(spec)  # a SitePolicy whose measuring part is wrong is invalid as a whole
    return LocalPolicy(
        accepted_risk_tiers=set(tiers),
        federation_capacity_share=float(share),
        federation_namespaces=set(namespaces),
        require_local_approval=approval,
        link_loss_tolerance=tolerance,
        trusted_publisher_keys=keys,
        witnesses=witnesses,
        min_witnesses=min_witnesses,
        jobs=jobs,
    )


#: Bounds of spec.jobs' lists, as the CRD declares them (a SitePolicy written around the schema).
MAX_JOB_LIST = 64


def jobs_from_spec(spec: dict[str, Any]) -> JobsPolicy:
    """spec.jobs -> JobsPolicy; raises PolicyError naming the field. Empty = no restriction."""
    raw = spec.get("jobs")
    raw = {} if raw is None else raw
    if not isinstance(raw, dict):
        raise PolicyError("spec.jobs: must be a mapping")
    lists: dict[str, frozenset[str]] = {}
    for key in ("allowPurposes", "allowPublishers", "allowImages"):
        items = raw.get(key) or []
        if (
            not isinstance(items, list)
            or len(items) > MAX_JOB_LIST
            or not all(isinstance(i, str) and i for i in items)
        ):
            raise PolicyError(f"spec.jobs.{key}: must be a list of at most {MAX_JOB_LIST} non-empty strings")
        lists[key] = frozenset(items)
    wrong = sorted(lists["allowPurposes"] - {p.value for p in Purpose})
    if wrong:
        raise PolicyError(f"spec.jobs.allowPurposes: {wrong[0][:40]!r} is not fine-tune or evaluate")
    accel = raw.get("maxAccelerators", 0)
    if isinstance(accel, bool) or not isinstance(accel, int) or accel < 0:
        raise PolicyError("spec.jobs.maxAccelerators: must be a non-negative integer (0: no limit)")
    hours = raw.get("maxHours", 0)
    if isinstance(hours, bool) or not isinstance(hours, int | float) or not 0 <= hours < float("inf"):
        raise PolicyError("spec.jobs.maxHours: must be a non-negative number (0: no limit)")
    return JobsPolicy(
        allow_purposes=lists["allowPurposes"],
        allow_publishers=lists["allowPublishers"],
        allow_images=lists["allowImages"],
        max_accelerators=accel,
        max_hours=float(hours),
    )


def _witnesses(spec: dict[str, Any]) -> tuple[list[str], int]:
    """spec.witnesses (vkeys) and spec.minWitnesses, checked as the agent will use them."""
    vkeys = spec.get("witnesses") or []
    if not isinstance(vkeys, list):
        raise PolicyError("spec.witnesses: must be a list of witness verifier keys")
    for i, vkey in enumerate(vkeys):
        try:
            parse_vkey(str(vkey), f"spec.witnesses[{i}]")
        except NoteError as e:
            raise PolicyError(str(e)) from e
    need = spec.get("minWitnesses", 0)
    if isinstance(need, bool) or not isinstance(need, int) or not 0 <= need <= max(len(vkeys), 0):
        raise PolicyError(
            f"spec.minWitnesses: must be an integer from 0 to the {len(vkeys)} witnesses listed"
        )
    return [str(v) for v in vkeys], need


def _text(value: object, where: str, *, required: bool = False) -> str:
    if value is None and not required:
        return ""
    if not isinstance(value, str) or (required and not value):
        raise PolicyError(f"{where}: must be a string" + (" (required)" if required else ""))
    return value


def health_from_spec(spec: dict[str, Any]) -> HealthPolicy:
    """How the site measures health; raises PolicyError naming the field."""
    raw = spec.get("metrics") or {}
    if not isinstance(raw, dict):
        raise PolicyError("spec.metrics: must be a mapping")
    url = _text(raw.get("prometheusUrl"), "spec.metrics.prometheusUrl")
    if url and not url.startswith(("http://", "https://")):
        raise PolicyError("spec.metrics.prometheusUrl: must be an http(s) URL")
    queries = {}
    for key in ("errorRateQuery", "latencyP95Query"):
        text = _text(raw.get(key), f"spec.metrics.{key}")
        try:
            queries[key] = check_template(text, f"spec.metrics.{key}")
        except ValueError as e:
            raise PolicyError(str(e)) from e
    if url and not any(queries.values()):
        raise PolicyError("spec.metrics: prometheusUrl needs errorRateQuery or latencyP95Query")
    port = raw.get("scrapePort", 0)
    if isinstance(port, bool) or not isinstance(port, int) or not 0 <= port <= 65535:
        raise PolicyError("spec.metrics.scrapePort: must be a port 1..65535")
    defaults = MetricsPolicy()
    path = _text(raw.get("scrapePath"), "spec.metrics.scrapePath") or defaults.scrape_path
    if not path.startswith("/"):
        raise PolicyError("spec.metrics.scrapePath: must start with /")
    metrics = MetricsPolicy(
        prometheus_url=url,
        error_rate_query=queries["errorRateQuery"],
        latency_p95_query=queries["latencyP95Query"],
        scrape_port=port,
        scrape_path=path,
        requests_metric=_text(raw.get("requestsMetric"), "spec.metrics.requestsMetric")
        or defaults.requests_metric,
        errors_metric=_text(raw.get("errorsMetric"), "spec.metrics.errorsMetric") or defaults.errors_metric,
        latency_metric=_text(raw.get("latencyMetric"), "spec.metrics.latencyMetric")
        or defaults.latency_metric,
    )
    ev = spec.get("safetyEvaluation")
    if ev is None:
        return HealthPolicy(metrics)
    if not isinstance(ev, dict):
        raise PolicyError("spec.safetyEvaluation: must be a mapping with image")
    image = _text(ev.get("image"), "spec.safetyEvaluation.image", required=True)
    argv = {}
    for key in ("command", "args"):
        items = ev.get(key) or []
        if not isinstance(items, list) or not all(isinstance(a, str) for a in items):
            raise PolicyError(f"spec.safetyEvaluation.{key}: must be a list of strings")
        argv[key] = tuple(items)
    deadline = ev.get("deadlineSeconds", 1800)
    if isinstance(deadline, bool) or not isinstance(deadline, int) or deadline < 1:
        raise PolicyError("spec.safetyEvaluation.deadlineSeconds: must be a positive integer")
    return HealthPolicy(metrics, SafetyEvaluation(image, argv["command"], argv["args"], deadline))


def effective_health(policies: dict[str, dict[str, Any]]) -> HealthPolicy:
    """How the site measures, from the one valid SitePolicy (the defaults otherwise: scrape pods,
    no safety evaluation)."""
    if len(policies) != 1:
        return HealthPolicy()
    try:
        return health_from_spec(next(iter(policies.values())))
    except PolicyError:
        return HealthPolicy()


def effective(policies: dict[str, dict[str, Any]]) -> tuple[LocalPolicy, dict[str, str]]:
    """The policy in force given all SitePolicy specs by name, and a problem per name ("" = fine)."""
    problems: dict[str, str] = {}
    parsed: dict[str, LocalPolicy] = {}
    for name, spec in sorted(policies.items()):
        try:
            parsed[name] = from_spec(spec)
            problems[name] = ""
        except PolicyError as e:
            problems[name] = str(e)
    if len(policies) > 1:
        names = ", ".join(sorted(policies))
        reason = f"policy: more than one SitePolicy ({names}); keep exactly one"
        return LocalPolicy(refusal=reason), {n: reason.removeprefix("policy: ") for n in policies}
    for name, problem in problems.items():
        if problem:
            return LocalPolicy(refusal=f"policy: SitePolicy {name} is invalid: {problem}"), problems
    return (next(iter(parsed.values())) if parsed else LocalPolicy()), problems
