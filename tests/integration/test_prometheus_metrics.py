"""A real Prometheus (Debian's `prometheus` package) scraping a model-server stand-in with real
prometheus_client counters and histograms; the site operator reads error rate and p95 through
Prometheus' HTTP API with the SitePolicy's PromQL templates, and a rollout gated on them rolls back.

Prometheus is started here on a free port with a minimal scrape config (1 s interval) and its own
storage directory; the system service is never used. Where the binary is absent the test fails and
says how to install it (`.ci/run` does: `.ci/install-prometheus.sh`).
"""

from __future__ import annotations

import asyncio
import shutil
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import aiohttp
import pytest
import yaml

from controlplane.api.v1 import rollouts_pb2 as opb
from operators.kube.health import instant_query
from operators.kube.metrics import render
from tests.integration.test_rollouts import Rig, release, spec, states
from tests.integration.test_site_operator import phase
from tests.integration.test_site_operator_kit import FakeKubelet, site
from tests.support.federation import Federation
from tests.support.model_server import P95_MS, ModelServer
from tests.support.procs import Proc, free_port
from tests.support.wait import until

ERROR_RATE = (
    'sum(rate(model_request_errors_total{namespace="$namespace",deployment="$deployment"}[5s]))'
    ' / sum(rate(model_requests_total{namespace="$namespace",deployment="$deployment"}[5s]))'
)
LATENCY_P95 = (
    "histogram_quantile(0.95, sum by (le) (rate(model_request_duration_seconds_bucket"
    '{namespace="$namespace",deployment="$deployment"}[5s]))) * 1000'
)
INSTALL = (
    "the Prometheus integration test needs Debian's `prometheus` binary on PATH: "
    "as root, `apt-get install -y prometheus` (or run .ci/install-prometheus.sh, which .ci/run calls)"
)


def prometheus_binary() -> str:
    found = shutil.which("prometheus")
    if found is None:
        pytest.fail(INSTALL)
    return found


@pytest.fixture
def model_server() -> Iterator[ModelServer]:
    with ModelServer(error_rate=0.1) as server:
        yield server


@pytest.fixture
async def prometheus(tmp_path: Path, model_server: ModelServer) -> AsyncIterator[str]:
    binary = prometheus_binary()
    port = free_port()
    config = {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "scrape_configs": [
            {"job_name": "model", "static_configs": [{"targets": [f"127.0.0.1:{model_server.port}"]}]}
        ],
    }
    (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(config))
    proc = Proc(
        [
            binary,
            f"--config.file={tmp_path / 'prometheus.yml'}",
            f"--storage.tsdb.path={tmp_path / 'tsdb'}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--log.level=warn",
        ],
        tmp_path / "prometheus.log",
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        async with aiohttp.ClientSession() as s:
            while True:
                try:
                    async with s.get(url + "/-/ready") as r:
                        if r.status == 200:
                            break
                except aiohttp.ClientError:
                    pass
                if proc.p.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError(f"prometheus did not become ready:\n{proc.output()}")
                await asyncio.sleep(0.1)
        yield url
    finally:
        assert proc.terminate() == 0, proc.output()


async def test_error_rate_and_p95_through_prometheus_http_api(prometheus: str) -> None:
    values = {"namespace": "ai-workloads", "deployment": "atlas"}
    async with aiohttp.ClientSession() as session:

        async def measured() -> tuple[float, float] | None:
            err = await instant_query(session, prometheus, render(ERROR_RATE, values))
            p95 = await instant_query(session, prometheus, render(LATENCY_P95, values))
            return (err, p95) if err is not None and p95 is not None else None

        err, p95 = await until(measured, 30, "rates from Prometheus")
        assert abs(err - 0.1) <= 0.02, err
        assert abs(p95 - P95_MS) <= 100, p95
        # Another deployment's series do not exist: not measured (None), never 0.
        other = {"namespace": "ai-workloads", "deployment": "nope"}
        assert await instant_query(session, prometheus, render(ERROR_RATE, other)) is None


async def test_a_rollout_gated_on_prometheus_rolls_back_a_release_with_10_percent_errors(
    fed: Federation, tmp_path: Path, prometheus: str
) -> None:
    policy = {
        "metrics": {"prometheusUrl": prometheus, "errorRateQuery": ERROR_RATE, "latencyP95Query": LATENCY_P95}
    }
    rig = Rig(fed, tmp_path)
    async with site(fed, "fr-par-1", "FR", policy=policy) as fr, FakeKubelet([fr]):
        await until(lambda: fr.link_status().get("connected"), 15, "connected")
        await rig.publish(release("atlas-1.2.0", "1.2.0"))
        s = spec(
            "eu",
            "atlas-1.2.0",
            gates=opb.Gates(max_error_rate=0.05, max_latency_p95_ms=2000, timeout_seconds=60),
        )
        async with fed.client() as admin:
            await admin.call("CreateRollout", opb.CreateRolloutRequest(spec=s))
        await until(lambda: phase(fr, "atlas") == "Running", 15, "running at the site")
        r = await rig.wait("eu", lambda r: r.phase in ("RolledBack", "Completed"), timeout=60)
        assert r.phase == "RolledBack", r.message
        assert "error rate 0.1" in r.message and "> 0.05 at fr-par-1" in r.message
        gates = {g.name: g for g in r.waves[0].gates}
        assert (
            gates["maxLatencyP95Ms"].outcome == "pass" and abs(gates["maxLatencyP95Ms"].value - P95_MS) <= 100
        )
        assert states(r) == {"fr-par-1": "RolledBack"}
        # No previous release: the restore was an Undeploy, and the site reports the deployment gone.
        await until(lambda: phase(fr, "atlas") == "", 10, "undeployed at the site")
