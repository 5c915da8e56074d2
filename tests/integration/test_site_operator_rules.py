"""The site operator's pure rules (no cluster, no federation): SitePolicy parsing and fail-closed
combination, Deploy payload -> ModelDeployment -> Deployment, status, and settings."""

from __future__ import annotations

import pytest

from operators.agent.policy import JobsPolicy
from operators.kube import policy, workloads
from operators.kube.settings import Settings

DIGEST = "sha256:" + "cd" * 32
KEY = "RLnPUCO/EiYd6zokZQLKUQ6oRCY8p1N47xT8I02vW6k="


def test_site_policy_maps_to_local_policy() -> None:
    spec = {
        "acceptedRiskTiers": [1, 2],
        "federationCapacityShare": 0.25,
        "federationNamespaces": ["ai-workloads"],
        "requireLocalApproval": True,
        "trustedPublisherKeys": [{"name": "eu", "publicKey": KEY}],
        "linkLossTolerance": [{"riskTier": 3, "seconds": 600}],
        "acceptedExportClasses": ["open"],
    }
    p = policy.from_spec(spec)
    assert p.accepted_risk_tiers == {1, 2} and p.federation_capacity_share == 0.25
    assert p.federation_namespaces == {"ai-workloads"} and p.require_local_approval
    assert p.link_loss_tolerance == {3: 600.0} and len(next(iter(p.trusted_publisher_keys))) == 32
    assert p.allowed_namespaces(["other", "ai-workloads"]) == ["ai-workloads"]
    reason = p.check_deploy(
        {"replicas": 1, "accelerator": "h100", "accelerators_per_replica": 4},
        {"h100": 16},
        total={"h100": 16},
        federation_used={"h100": 1},
    )
    assert reason is not None and "federation's share" in reason and "leaves 3" in reason
    assert p.jobs == JobsPolicy()  # no spec.jobs: no restriction beyond the Datasets' own purposes


def test_site_policy_jobs_map_to_jobs_policy() -> None:
    spec = {
        "jobs": {
            "allowPurposes": ["fine-tune"],
            "allowPublishers": ["eu-model-registry"],
            "allowImages": ["registry.example/trainer@sha256:" + "ab" * 32],
            "maxAccelerators": 8,
            "maxHours": 12,
        }
    }
    assert policy.from_spec(spec).jobs == JobsPolicy(
        allow_purposes=frozenset({"fine-tune"}),
        allow_publishers=frozenset({"eu-model-registry"}),
        allow_images=frozenset({"registry.example/trainer@sha256:" + "ab" * 32}),
        max_accelerators=8,
        max_hours=12.0,
    )


@pytest.mark.parametrize(
    ("spec", "field"),
    [
        ({"acceptedRiskTiers": [5]}, "acceptedRiskTiers"),
        ({"federationCapacityShare": 2}, "federationCapacityShare"),
        ({"requireLocalApproval": "yes"}, "requireLocalApproval"),
        ({"trustedPublisherKeys": [{"name": "x", "publicKey": "short"}]}, "trustedPublisherKeys"),
        ({"linkLossTolerance": [{"riskTier": 9, "seconds": 1}]}, "linkLossTolerance"),
        ({"jobs": []}, "spec.jobs"),
        ({"jobs": {"allowPurposes": ["training"]}}, "spec.jobs.allowPurposes"),
        ({"jobs": {"allowImages": "registry.example/trainer"}}, "spec.jobs.allowImages"),
        ({"jobs": {"allowPublishers": ["x"] * 65}}, "spec.jobs.allowPublishers"),
        ({"jobs": {"maxAccelerators": -1}}, "spec.jobs.maxAccelerators"),
        ({"jobs": {"maxAccelerators": True}}, "spec.jobs.maxAccelerators"),
        ({"jobs": {"maxHours": "12h"}}, "spec.jobs.maxHours"),
        ({"jobs": {"maxHours": float("inf")}}, "spec.jobs.maxHours"),
    ],
)
def test_an_unreadable_policy_refuses_everything(spec: dict[str, object], field: str) -> None:
    effective, problems = policy.effective({"site": spec})
    assert field in problems["site"]
    assert (effective.check_deploy({"replicas": 1}, {}) or "").startswith(
        "policy: SitePolicy site is invalid"
    )


def test_two_policies_refuse_everything_and_none_accepts_all() -> None:
    effective, problems = policy.effective({"a": {}, "b": {}})
    assert "more than one SitePolicy (a, b)" in (effective.check_deploy({}, {}) or "")
    assert set(problems) == {"a", "b"}
    assert policy.effective({})[0].check_deploy({"risk_tier": 4}, {}) is None


def test_payload_to_model_deployment_to_deployment() -> None:
    payload = {
        "deployment_name": "atlas",
        "model": "atlas",
        "version": "1.2",
        "digest": DIGEST,
        "replicas": 3,
        "accelerator": "h100",
        "accelerators_per_replica": 2,
        "risk_tier": 0,
        "directive_id": "d-1",
        "directive_sequence": 7,
    }
    md = workloads.model_deployment("atlas", "ai-workloads", payload)
    assert md["spec"] == {
        "model": "atlas",
        "version": "1.2",
        "digest": DIGEST,
        "replicas": 3,
        "accelerator": "h100",
        "acceleratorsPerReplica": 2,
        "source": "federation",
    }  # no riskTier for a low-level deploy (0 on the wire, absent on the CRD)
    md["metadata"]["generation"] = 1
    dep = workloads.deployment(md, Settings(runtime_image="registry.site/runtime:7", runtime_class="gpu"))
    pod = dep["spec"]["template"]["spec"]
    assert dep["spec"]["replicas"] == 3 and pod["runtimeClassName"] == "gpu"
    assert pod["containers"][0]["image"] == "registry.site/runtime:7"
    assert pod["containers"][0]["resources"]["limits"] == {"nvidia.com/gpu": "2"}
    assert pod["nodeSelector"] == {"federation.stargate.io/accelerator": "h100"}
    md["spec"]["halted"] = True
    assert workloads.deployment(md, Settings())["spec"]["replicas"] == 0
    st = workloads.status(md, workloads.Observed(ready_replicas=0))
    assert st["phase"] == "Halted" and st["directiveId"] == "d-1" and st["directiveSequence"] == 7
    assert not workloads.drifted(md, payload)  # halted is the site's, not drift
    md["spec"]["replicas"] = 9
    assert workloads.drifted(md, payload)


def test_status_phases_and_stable_transition_times() -> None:
    md = {
        "metadata": {"name": "m", "generation": 2},
        "spec": {"model": "m", "version": "1", "digest": DIGEST, "replicas": 2, "source": "federation"},
    }
    progressing = workloads.status(md, workloads.Observed(ready_replicas=1))
    assert progressing["phase"] == "Progressing" and progressing["observedGeneration"] == 2
    md["status"] = progressing
    again = workloads.status(md, workloads.Observed(ready_replicas=1))
    assert again["conditions"][0]["lastTransitionTime"] == progressing["conditions"][0]["lastTransitionTime"]
    assert workloads.status(md, workloads.Observed(ready_replicas=2))["phase"] == "Running"
    assert workloads.status(md, workloads.Observed(held=True))["phase"] == "Pending"
    assert workloads.awaiting_approval(md, True) and not workloads.awaiting_approval(md, False)
    assert workloads.spec_problem({"model": "m", "version": "1", "digest": "sha256:x"}).startswith(
        "spec.digest"
    )
    assert workloads.spec_problem({**md["spec"], "replicas": -1}).startswith("spec.replicas")


def test_settings_from_the_charts_environment() -> None:
    s = Settings.from_env(
        {
            "STARGATE_NAMESPACE": "ops",
            "STARGATE_FEDERATION_NAMESPACES": " a, b ,",
            "STARGATE_LOG_LEVEL": "debug",
        }
    )
    assert (s.namespace, s.federation_namespaces, s.log_level) == ("ops", ("a", "b"), "debug")
    assert Settings.from_env({}).federation_namespaces == ("ai-workloads",)
