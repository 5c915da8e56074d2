"""What a Kubernetes site measures, pure parts: revision-correct readiness, PromQL templates and
answers, scrape windows and quantiles, the safety evaluation's termination message, SitePolicy."""

from __future__ import annotations

import math
from typing import Any

import pytest

from operators.kube import metrics as m
from operators.kube import safety_eval as se
from operators.kube.policy import PolicyError, effective, from_spec, health_from_spec
from operators.kube.settings import Settings
from operators.kube.workloads import deployment, revision_ready, workload

DIGEST, OLD = "sha256:" + "ab" * 32, "sha256:" + "cd" * 32


def md(
    version: str = "1.3.0", digest: str = DIGEST, replicas: int = 3, generation: int = 2
) -> dict[str, Any]:
    return {
        "metadata": {"name": "atlas", "namespace": "ai-workloads", "generation": generation},
        "spec": {
            "model": "atlas",
            "version": version,
            "digest": digest,
            "replicas": replicas,
            "source": "federation",
        },
    }


def dep(of: dict[str, Any], generation: int = 5, **status: int) -> dict[str, Any]:
    d = deployment(of, Settings())
    d["metadata"]["generation"] = generation
    d["status"] = status
    return d


@pytest.mark.parametrize(
    ("deployment_of", "status", "ready"),
    [
        # Steady state: the controller observed generation 5, every replica updated and ready.
        ("new", {"observedGeneration": 5, "replicas": 3, "updatedReplicas": 3, "readyReplicas": 3}, 3),
        # The controller has not seen the new template yet: the counts describe the old revision.
        ("new", {"observedGeneration": 4, "replicas": 3, "updatedReplicas": 3, "readyReplicas": 3}, 0),
        # Mid rolling update: 3 ready, but 2 of them are old pods still serving the previous release.
        ("new", {"observedGeneration": 5, "replicas": 4, "updatedReplicas": 2, "readyReplicas": 3}, 1),
        ("new", {"observedGeneration": 5, "replicas": 5, "updatedReplicas": 2, "readyReplicas": 3}, 0),
        # The Deployment still carries the previous version's pod template.
        ("old", {"observedGeneration": 5, "replicas": 3, "updatedReplicas": 3, "readyReplicas": 3}, 0),
        ("new", {}, 0),
    ],
)
def test_readiness_counts_only_the_revision_that_carries_this_release(
    deployment_of: str, status: dict[str, int], ready: int
) -> None:
    target = md()
    template = target if deployment_of == "new" else md(version="1.2.0", digest=OLD)
    assert revision_ready(target, dep(template, **status)) == ready


def test_a_status_computed_for_an_older_spec_is_not_reported_ready() -> None:
    obj = {**md(generation=3), "status": {"phase": "Running", "readyReplicas": 3, "observedGeneration": 2}}
    w = workload(obj)
    assert w.ready_replicas == 0 and w.phase == "Progressing" and w.digest == DIGEST
    obj["status"]["observedGeneration"] = 3
    assert workload(obj).ready_replicas == 3


def test_promql_templates_and_answers() -> None:
    t = 'sum(rate(x{namespace="$namespace",deployment="${deployment}",v="$version"}[5m]))'
    assert m.check_template(t, "q") == t
    with pytest.raises(ValueError, match=r"unknown placeholder \$pod"):
        m.check_template('x{pod="$pod"}', "spec.metrics.errorRateQuery")
    out = m.render(t, {"namespace": "ai", "deployment": 'a"b', "version": "1.3.0"})
    assert out == 'sum(rate(x{namespace="ai",deployment="a\\"b",v="1.3.0"}[5m]))'
    vec = {
        "status": "success",
        "data": {
            "resultType": "vector",
            "result": [
                {"metric": {"a": "1"}, "value": [1, "0.02"]},
                {"metric": {"a": "2"}, "value": [1, "0.07"]},
            ],
        },
    }
    assert m.instant_value(vec) == 0.07  # the worst series
    assert m.instant_value({"status": "success", "data": {"resultType": "vector", "result": []}}) is None
    nan = {"status": "success", "data": {"resultType": "vector", "result": [{"value": [1, "NaN"]}]}}
    assert m.instant_value(nan) is None  # 0/0: no traffic, not "0 errors"
    assert m.instant_value({"status": "success", "data": {"resultType": "scalar", "result": [1, "5"]}}) == 5
    assert m.instant_value({"status": "error", "error": "bad query"}) is None


EXPOSITION = """\
# TYPE model_requests counter
model_requests_total{{code="200"}} {ok}
model_requests_total{{code="500"}} {bad}
# TYPE model_request_errors counter
model_request_errors_total {bad}
# TYPE model_request_duration_seconds histogram
model_request_duration_seconds_bucket{{le="0.1"}} {fast}
model_request_duration_seconds_bucket{{le="0.5"}} {fast}
model_request_duration_seconds_bucket{{le="1.0"}} {all}
model_request_duration_seconds_bucket{{le="+Inf"}} {all}
model_request_duration_seconds_count {all}
model_request_duration_seconds_sum 1.0
"""


def scrape(ok: int, bad: int, fast: int) -> m.Scrape:
    text = EXPOSITION.format(ok=ok, bad=bad, fast=fast, all=ok + bad)
    return m.parse_scrape(text, m.MetricsPolicy())


def test_scrape_windows_are_differences_between_two_scrapes() -> None:
    a = {"pod-1": scrape(90, 10, 90), "pod-2": scrape(0, 0, 0)}
    b = {"pod-1": scrape(180, 20, 180), "pod-2": scrape(90, 10, 90), "pod-3": scrape(5, 5, 10)}
    rate, p95 = m.window(a, b)
    assert rate == pytest.approx(0.1)  # 20 errors of 200 requests; pod-3 was seen once only
    assert p95 == pytest.approx(750.0)  # rank 190 of 200 in the (0.5, 1.0] bucket, interpolated
    assert m.window(b, b) == (None, None)  # no traffic: not measured
    restarted = {"pod-1": scrape(1, 0, 1)}
    assert m.window(b, restarted) == (None, None)  # counters went backwards: left out
    assert m.quantile(0.95, {0.1: 0.0, math.inf: 0.0}) is None


def test_safety_evaluation_job_and_its_one_number() -> None:
    ev = se.SafetyEvaluation("registry.site/eval:1", args=("--suite", "eu-ai-act"))
    job = se.job(md(), ev, 8000)
    assert job["metadata"]["name"] == "atlas-safety-abababababab" and len(job["metadata"]["name"]) <= 63
    c = job["spec"]["template"]["spec"]["containers"][0]
    assert c["terminationMessagePolicy"] == "File" and c["args"] == ["--suite", "eu-ai-act"]
    assert {"name": "MODEL_DIGEST", "value": DIGEST} in c["env"]
    assert job["spec"]["template"]["spec"]["restartPolicy"] == "Never" and job["spec"]["backoffLimit"] == 0
    assert len(se.job_name("x" * 63, DIGEST)) <= 63
    assert se.score_of_message(" 0.93\n") == 0.93
    for bad in ("", "ok", "1.5", "-0.1", "nan", "0.9 and some text"):
        assert se.score_of_message(bad) is None, bad
    pod = {"status": {"containerStatuses": [{"state": {"terminated": {"exitCode": 0, "message": "0.4"}}}]}}
    assert se.terminated(pod) == (0, "0.4") and se.terminated({"status": {}}) is None


def test_site_policy_metrics_and_safety_evaluation() -> None:
    h = health_from_spec({})
    assert h.metrics.prometheus_url == "" and h.safety is None  # scrape the pods, no evaluation
    spec = {
        "metrics": {
            "prometheusUrl": "http://prometheus.monitoring:9090",
            "errorRateQuery": 'sum(rate(e{deployment="$deployment"}[5m]))',
            "latencyP95Query": "histogram_quantile(0.95, x) * 1000",
        },
        "safetyEvaluation": {"image": "eval:1", "deadlineSeconds": 600},
    }
    h = health_from_spec(spec)
    assert h.metrics.prometheus_url.endswith(":9090") and h.safety == se.SafetyEvaluation(
        "eval:1", deadline_seconds=600
    )
    for bad, field in (
        ({"metrics": {"prometheusUrl": "prometheus:9090", "errorRateQuery": "x"}}, "prometheusUrl"),
        ({"metrics": {"prometheusUrl": "http://p:9090"}}, "needs errorRateQuery"),
        ({"metrics": {"errorRateQuery": 'x{p="$pod"}'}}, "$pod"),
        ({"metrics": {"scrapePort": 70000}}, "scrapePort"),
        ({"safetyEvaluation": {"args": ["x"]}}, "safetyEvaluation.image"),
    ):
        with pytest.raises(PolicyError, match=field.replace("$", r"\$")):
            from_spec(bad)
        policy, problems = effective({"site": bad})
        assert policy.refusal and field.split(".")[-1].strip("$") in problems["site"]


def test_the_charts_example_site_policy_is_one_the_operator_accepts() -> None:
    import pathlib

    import yaml

    example = pathlib.Path(__file__).resolve().parents[2] / "charts/stargate-site/examples/sitepolicy.yaml"
    spec = yaml.safe_load(example.read_text())["spec"]
    from_spec(spec)
    h = health_from_spec(spec)
    assert h.metrics.prometheus_url and "$deployment" in h.metrics.error_rate_query and h.safety is not None
