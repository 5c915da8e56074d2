"""Prometheus /metrics and --log-format json on real processes: ``serve`` and ``dev up`` (a
replica plus simulated sites, whose links, directives and halts the series must count). Scraped
over HTTP and parsed with prometheus_client's text parser, as Prometheus would read them. The kube
operator's endpoint is scraped in tests/envtest (it needs a Kubernetes API)."""

from __future__ import annotations

import json
import re
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from tests.support.procs import CLI, SERVER, Proc, free_port, free_port_pair, init_pki, run, wait_port

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def scrape(url: str) -> Samples:
    with urllib.request.urlopen(url, timeout=5) as r:
        assert r.headers["Content-Type"].startswith("text/plain")
        text = r.read().decode()
    out: Samples = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def value(samples: Samples, name: str, **labels: str) -> float | None:
    return samples.get((name, tuple(sorted(labels.items()))))


def eventually(url: str, check: Callable[[Samples], bool], timeout: float = 20) -> Samples:
    deadline = time.monotonic() + timeout
    while True:
        s = scrape(url)
        if check(s) or time.monotonic() > deadline:
            return s
        time.sleep(0.1)


def json_lines(text: str) -> list[dict[str, str]]:
    lines = [line for line in text.splitlines() if line.startswith("{")]
    return [json.loads(line) for line in lines]


def test_serve_metrics_and_json_logs(tmp_path: Path) -> None:
    pki, port, mport = tmp_path / "pki", free_port_pair(), free_port()
    init_pki(pki, "metrics.test", port)
    proc = Proc(
        [
            *SERVER,
            "--log-format",
            "json",
            "serve",
            "--dir",
            str(pki),
            "--listen",
            f"127.0.0.1:{port}",
            "--store",
            "memory",
            "--lease-ttl",
            "2",
            "--metrics-listen",
            f"127.0.0.1:{mport}",
        ],
        tmp_path / "serve.log",
    )
    try:
        wait_port(port)
        url = f"http://127.0.0.1:{mport}/metrics"
        s = eventually(url, lambda s: value(s, "stargate_leader_changes_total", event="elected") == 1)
        assert value(s, "stargate_is_leader") == 1
        assert value(s, "stargate_leader_changes_total", event="elected") == 1
        assert value(s, "stargate_links_connected") == 0
        # init issues a server certificate of 90 days: far more than the 7-day alert threshold.
        server_left = value(s, "stargate_certificate_expiry_seconds", identity="server")
        assert server_left is not None and 89 * 86400 < server_left <= 90 * 86400
        assert (value(s, "stargate_certificate_expiry_seconds", identity="federation-ca") or 0) > server_left
        assert (value(s, "stargate_store_request_duration_seconds_count", op="txn") or 0) > 0
        r = run("status", config=pki / "stargatectl.yaml")
        assert r.code == 0, r.err
    finally:
        assert proc.terminate() == 0, proc.output()
    out = proc.output()
    records = json_lines(out)
    # Every line is one JSON object: no plain-text warning slips past the logger.
    assert len(records) == len(out.splitlines()) and records, out
    for rec in records:
        assert {"time", "level", "logger", "message"} <= set(rec), rec
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+00:00", rec["time"]), rec
    warn = [r for r in records if "--store memory: nothing is persisted" in r["message"]]
    assert warn and warn[0]["level"] == "WARNING" and warn[0]["logger"] == "controlplane.server.stores"
    assert any(r["message"].startswith("metrics: http://127.0.0.1:") for r in records)


def test_serve_refuses_a_bad_metrics_address(tmp_path: Path) -> None:
    pki, port = tmp_path / "pki", free_port_pair()
    init_pki(pki, "metrics.test", port)
    for bad, why in (("127.0.0.1:http", "port must be a number"), ("nowhere:9000", "host must be an IP")):
        r = Proc(
            [*SERVER, "serve", "--dir", str(pki), "--store", "memory", "--metrics-listen", bad],
            tmp_path / "bad.log",
        )
        assert r.p.wait(30) == 1
        out = r.output()
        r.terminate()
        assert f"error: --metrics-listen: {why}" in out and "Traceback" not in out, out


def test_dev_up_metrics_count_links_directives_and_halt_latency(tmp_path: Path) -> None:
    port, d = free_port_pair(), tmp_path / "dev"
    proc = Proc(
        [
            *CLI,
            "--log-format",
            "json",
            "dev",
            "up",
            "--dir",
            str(d),
            "--listen",
            f"127.0.0.1:{port}",
            "--store",
            "memory",
            "--sites",
            "2",
            "--heartbeat-interval",
            "0.5",
        ],
        tmp_path / "dev.log",
    )
    try:
        proc.wait_for("running; Ctrl-C to stop", timeout=60)
        m = re.search(
            r"metrics: (http://127\.0\.0\.1:\d+/metrics) \(the replica and the 2 simulated", proc.output()
        )
        assert m, proc.output()
        url = m.group(1)
        s = scrape(url)
        assert value(s, "stargate_links_connected") == 2
        sites = {dict(k[1])["site"] for k in s if k[0] == "stargate_site_link_connected"}
        assert len(sites) == 2, s
        for site in sites:
            assert value(s, "stargate_site_link_connected", site=site) == 1
            left = value(s, "stargate_certificate_expiry_seconds", identity=f"site/{site}")
            assert left is not None and 0 < left <= 24 * 3600  # site certificates live 24 h
        assert value(s, "stargate_halt_propagation_seconds_count") in (None, 0)

        r = run(
            "safety", "halt", "--release", "atlas-r1", "--scope", "global", "--reason", "metrics test",
            config=d / "stargatectl.yaml",
        )  # fmt: skip
        assert r.code == 0, r.err

        def halted(s: Samples) -> bool:
            return value(s, "stargate_halt_propagation_seconds_count") == 2

        s = eventually(url, halted)
        assert halted(s), s
        assert value(s, "stargate_directives_total", kind="Halt", event="sent") == 2
        assert value(s, "stargate_directives_total", kind="Halt", event="acked") == 2
        for site in sites:
            assert value(s, "stargate_site_directives_total", site=site, kind="Halt", outcome="applied") == 1
        # A halt on loopback reaches both sites well inside the 1 s bucket.
        assert value(s, "stargate_halt_propagation_seconds_bucket", le="1.0") == 2
    finally:
        code = proc.terminate()
    assert code == 0, proc.output()
    assert "Traceback" not in proc.output()
    # --log-format json: whatever is logged is a JSON object, never a text log line.
    assert not re.search(r"^(DEBUG|INFO|WARNING|ERROR|CRITICAL) ", proc.output(), re.M), proc.output()
    for rec in json_lines(proc.output()):
        assert {"time", "level", "logger", "message"} <= set(rec), rec
