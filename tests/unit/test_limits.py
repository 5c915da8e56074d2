"""Every number at the API has a range (controlplane/domain/limits.py), and the walker enforces it.

The first test is the mechanical proof: it walks every message a person or a site can send (the
request of every rpc of the four services, through nested messages, map values and oneof members)
and fails on a number without a range, and on a range that names no field.
"""

from __future__ import annotations

import importlib
import math
import pkgutil
from typing import Any

import pytest
from google.protobuf.descriptor import Descriptor

from controlplane.api import bounds, v1
from controlplane.api.v1 import federation_pb2 as fpb
from controlplane.api.v1 import rollouts_pb2 as opb
from controlplane.api.v1 import safety_pb2 as xpb
from controlplane.api.v1 import site_pb2 as spb
from controlplane.api.v1 import types_pb2 as tpb
from controlplane.domain import limits
from controlplane.errors import InvalidArgument


def _all_services() -> list[Any]:
    """Every service of the wire API: a new proto file's rpcs are covered without editing this."""
    out = []
    for info in pkgutil.iter_modules(v1.__path__):
        if info.name.endswith("_pb2"):
            module = importlib.import_module(f"{v1.__name__}.{info.name}")
            out.extend(module.DESCRIPTOR.services_by_name.values())
    return out


SERVICES = _all_services()


def _numbers() -> set[str]:
    seen: set[str] = set()
    keys: set[str] = set()
    stack: list[Descriptor] = [m.input_type for s in SERVICES for m in s.methods]
    while stack:
        msg = stack.pop()
        if msg.full_name in seen:
            continue
        seen.add(msg.full_name)
        for field in msg.fields:
            if field.message_type is not None:
                stack.append(field.message_type)
            elif bounds.is_number(field) and not msg.GetOptions().map_entry:
                keys.add(bounds.key(msg, field))
    return keys


def test_every_service_of_the_wire_api_is_walked() -> None:
    names = {s.name for s in SERVICES}
    assert {"FederationService", "SafetyService", "ReleaseService", "SiteService", "AuditService"} <= names


def test_every_number_a_caller_can_send_has_a_range_and_every_range_a_field() -> None:
    numbers = _numbers()
    missing = sorted(numbers - set(limits.LIMITS))
    assert not missing, f"add a range to controlplane/domain/limits.py LIMITS for: {missing}"
    stale = sorted(set(limits.LIMITS) - numbers)
    assert not stale, f"LIMITS names fields no request carries: {stale}"


@pytest.mark.parametrize(
    ("value", "ok"),
    [
        (0, True),
        (30 * 86400, True),
        (30 * 86400 + 1, False),
        (-1, False),
        (2**63 - 1, False),
        (float("nan"), False),
        (float("inf"), False),
        (True, False),
        ("1", False),
        (1.5, True),
    ],
)
def test_a_range_accepts_only_finite_numbers_inside_it(value: object, ok: bool) -> None:
    if ok:
        assert limits.DIRECTIVE_TTL.check("ttl_seconds", value) == value  # type: ignore[arg-type]
    else:
        with pytest.raises(InvalidArgument, match=r"^ttl_seconds: must be"):
            limits.DIRECTIVE_TTL.check("ttl_seconds", value)  # type: ignore[arg-type]


def test_huge_values_are_shown_by_their_size_not_their_digits() -> None:
    with pytest.raises(InvalidArgument) as e:
        limits.SEQUENCE.check("sequence", 10**5000)
    assert "about 5001 digits" in e.value.public and len(e.value.public) < 200


@pytest.mark.parametrize(
    ("msg", "field"),
    [
        (fpb.DeployRequest(ttl_seconds=2**63 - 1), "ttl_seconds"),
        (fpb.DeployRequest(deploy=tpb.DeployPayload(replicas=10_001)), "deploy.replicas"),
        (fpb.CreateJoinTokenRequest(ttl_seconds=-5), "ttl_seconds"),
        (fpb.ListAuditEventsRequest(limit=-1), "limit"),
        (xpb.HaltRequest(ttl_seconds=91 * 86400), "ttl_seconds"),
        (
            opb.CreateRolloutRequest(
                spec=opb.RolloutSpec(waves=[opb.Wave(), opb.Wave(bake_seconds=math.inf)])
            ),
            "spec.waves[1].bake_seconds",
        ),
        (
            opb.PlanRolloutRequest(spec=opb.RolloutSpec(placement=opb.Placement(max_sites=-1))),
            "spec.placement.max_sites",
        ),
        (spb.ConnectRequest(hello=spb.Hello(last_applied_sequence=2**64 - 1)), "hello.last_applied_sequence"),
        (
            spb.ConnectRequest(heartbeat=spb.Heartbeat(capacity={"h100": tpb.AcceleratorCapacity(free=-3)})),
            "heartbeat.capacity['h100'].free",
        ),
        (
            spb.ConnectRequest(heartbeat=spb.Heartbeat(deployments=[tpb.DeploymentStatus(error_rate=2.0)])),
            "heartbeat.deployments[0].error_rate",
        ),
        (spb.ConnectRequest(heartbeat=spb.Heartbeat(health=99)), "heartbeat.health"),  # type: ignore[arg-type]
        (spb.EnrollRequest(facts=tpb.SiteFacts(security_tier=7)), "facts.security_tier"),
        (
            spb.EnrollRequest(facts=tpb.SiteFacts(policy=tpb.PolicySummary(accepted_risk_tiers=[2, 0]))),
            "facts.policy.accepted_risk_tiers[1]",
        ),
        (spb.ReportIncidentRequest(incident=xpb.IncidentReport(count=2**32 - 1)), "incident.count"),
        (fpb.IssueUserCertificateRequest(role=42), "role"),  # type: ignore[arg-type]
    ],
)
def test_the_walker_names_the_field_that_is_out_of_range(msg: object, field: str) -> None:
    with pytest.raises(InvalidArgument) as e:
        bounds.check(msg)
    assert e.value.field == field


def test_a_timestamp_past_year_9999_is_refused() -> None:
    inc = xpb.IncidentReport(count=1)
    inc.observed_at.seconds = limits.MAX_TIMESTAMP_S + 1
    with pytest.raises(InvalidArgument, match=r"^incident.observed_at.seconds:"):
        bounds.check(spb.ReportIncidentRequest(incident=inc))


def test_in_range_messages_pass() -> None:
    bounds.check(fpb.DeployRequest(ttl_seconds=3600, deploy=tpb.DeployPayload(replicas=3, risk_tier=2)))
    bounds.check(
        spb.ConnectRequest(
            heartbeat=spb.Heartbeat(
                capacity={"h100": tpb.AcceleratorCapacity(total=64, free=10)},
                deployments=[tpb.DeploymentStatus(replicas=2, ready_replicas=2, safety_score=-1.0)],
                health=tpb.SITE_HEALTH_HEALTHY,
            )
        )
    )


def test_a_number_without_a_range_is_refused_unless_unset() -> None:
    bounds.check(fpb.Replica())  # a response message: nothing set, nothing to check
    with pytest.raises(InvalidArgument, match="no range is defined"):
        bounds.check(fpb.Replica(connected_sites=3))
