"""`stargatectl safety …` and `stargatectl incidents report` as real processes against a real
server process over mTLS: the status document the issue specifies, the two-person rule as people
meet it (one-line refusals), bad input, and a site reporting an incident with its own certificate.

The site is enrolled with `stargatectl join` but runs no agent, so it stays unreachable: what
reaching sites looks like is covered in test_safety.py (in-process sites) and test_replicas.py.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from controlplane.client.config import write_config
from tests.support.procs import assert_one_line_error, join_site, run, two_admin_federation

TD = "safety.test"
STATUS_KEYS = {"id", "state", "acked", "pending", "unreachable", "rejected", "approvals", "sites"}


@pytest.fixture(scope="module")
def fed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, int]]:
    with two_admin_federation(
        tmp_path_factory.mktemp("cli-safety"), TD, "--heartbeat-interval", "0.5"
    ) as fed:
        yield fed


def _join(d: Path, port: int, out: Path, site: str, country: str) -> Path:
    """Enroll ``site`` and give it a stargatectl config of its own (its certificate as the user)."""
    join_site(d, port, site, country, out)
    site_cfg = out / "stargatectl.yaml"
    write_config(
        site_cfg,
        trust_domain=TD,
        user=site,
        servers=[f"127.0.0.1:{port}"],
        enroll_server=f"127.0.0.1:{port + 1}",
        cert_file="site.crt",
        key_file="site.key",
    )
    return site_cfg


def test_halt_status_list_and_the_two_person_rule_from_the_cli(fed: tuple[Path, int], tmp_path: Path) -> None:
    d, port = fed
    admin = d / "stargatectl.yaml"
    _join(d, port, tmp_path / "fr-par-1", "fr-par-1", "FR")

    r = run(
        "safety",
        "halt",
        "--release",
        "atlas-r1",
        "--scope",
        "global",
        "--reason",
        "sev1",
        "-o",
        "json",
        config=admin,
    )
    assert r.code == 0, r.err
    halt = r.json()
    # Every *reachable* site in scope acked (there is none): Halted; the offline one stays pending.
    assert set(halt) >= STATUS_KEYS and halt["state"] == "Halted"
    assert (halt["acked"], halt["pending"], halt["unreachable"], halt["rejected"]) == (0, 1, 1, 0)
    assert halt["approvals"] == [f"spiffe://{TD}/user/admin"]
    assert halt["sites"] == [{"site": "fr-par-1", "state": "Unreachable"}]

    r = run("safety", "status", halt["id"], "-o", "json", config=admin)
    assert r.code == 0 and set(r.json()) >= STATUS_KEYS and r.json()["id"] == halt["id"], r.err
    r = run("safety", "list", "-o", "json", config=admin)
    assert r.code == 0 and halt["id"] in [a["id"] for a in r.json()["items"]], r.err

    # Restarting needs a second, distinct admin.
    r = run("safety", "resume", halt["id"], "--reason", "fixed", "-o", "json", config=admin)
    assert r.code == 0, r.err
    resume = r.json()
    assert resume["state"] == "PendingApproval" and resume["approvals_required"] == 2
    assert_one_line_error(run("safety", "approve", resume["id"], config=admin), "second, distinct admin")
    # bob makes his TLS key and a CSR signed with his approval key; an admin certifies it.
    bob = d.parent / "people" / "bob"
    assert run("users", "request", "--name", "bob", "--out", str(bob)).code == 0
    r = run(
        "users",
        "issue",
        "--csr",
        str(bob / "bob.request.json"),
        "--role",
        "admin",
        "--out",
        str(bob),
        config=admin,
    )
    assert r.code == 0, r.err
    r = run("safety", "approve", resume["id"], "-o", "json", config=bob / "stargatectl.yaml")
    assert r.code == 0, r.err
    assert r.json()["approvals"] == [f"spiffe://{TD}/user/admin", f"spiffe://{TD}/user/bob"]
    # --watch returns once the action has settled.
    r = run("safety", "status", halt["id"], "--watch", "-o", "json", config=admin, timeout=20)
    assert r.code == 0, r.err
    assert [line for line in r.out.splitlines() if line.strip()][-1].count('"Resumed"') == 1

    r = run("audit", "list", "-o", "json", config=admin)
    actions = [e["action"] for e in r.json()["items"]]
    for a in ("safety.halt", "safety.resume.request", "safety.approve", "safety.resume"):
        assert a in actions, a


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["safety", "halt", "--release", "atlas-r1", "--scope", "region:eu", "--reason", "x"], "scope"),
        (["safety", "halt", "--release", "Bad_Release", "--scope", "global", "--reason", "x"], "release"),
        (["safety", "status", "not-a-uuid"], "id"),
        (["safety", "approve", "00000000-0000-4000-8000-000000000000"], "not found"),
        (["safety", "freeze", "--scope", "country:XX"], "scope"),
    ],
)
def test_bad_safety_input_is_one_line_naming_the_field(
    fed: tuple[Path, int], args: list[str], needle: str
) -> None:
    d, _ = fed
    assert_one_line_error(run(*args, config=d / "stargatectl.yaml"), needle)


def test_a_site_reports_incidents_as_itself_and_an_admin_cannot(
    fed: tuple[Path, int], tmp_path: Path
) -> None:
    d, port = fed
    site_cfg = _join(d, port, tmp_path / "de-fra-1", "de-fra-1", "DE")
    args = ["incidents", "report", "--release", "atlas-r1", "--severity", "2", "--category", "harmful-output"]
    r = run(*args, "--count", "3", "-o", "json", config=site_cfg)
    assert r.code == 0, r.err
    assert_one_line_error(run(*args, "--count", "0", config=site_cfg), "count")
    assert_one_line_error(run(*args, config=d / "stargatectl.yaml"), "site role")
    r = run("audit", "list", "-o", "json", config=d / "stargatectl.yaml")
    reports = [e for e in r.json()["items"] if e["action"] == "incident.report"]
    assert len(reports) == 1 and reports[0]["actor"] == f"spiffe://{TD}/site/de-fra-1"
    assert reports[0]["details"]["count"] == "3"
