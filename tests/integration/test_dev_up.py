"""`stargatectl dev up` as a real process: 3 Ready sites in 3 countries, then a clean stop."""

from __future__ import annotations

from pathlib import Path

from tests.support.procs import CLI, Proc, assert_one_line_error, free_port_pair, run


def test_dev_up_brings_up_three_ready_sites_and_stops_cleanly(tmp_path: Path) -> None:
    port = free_port_pair()
    d = tmp_path / "dev"
    proc = Proc(
        [*CLI, "dev", "up", "--dir", str(d), "--listen", f"127.0.0.1:{port}", "--store", "memory"],
        tmp_path / "dev.log",
    )
    try:
        proc.wait_for("running; Ctrl-C to stop", timeout=60)
        out = proc.output()
        assert f"config: {d / 'stargatectl.yaml'}" in out and "memory store" in out
        assert str(d / "admin2" / "stargatectl.yaml") in out
        r = run("sites", "list", "-o", "json", config=d / "stargatectl.yaml")
        assert r.code == 0, r.err
        items = r.json()["items"]
        assert len(items) == 3 and {s["status"] for s in items} == {"Ready"}
        assert len({s["country"] for s in items}) == 3
        # Two admins, each with their own approval key: the two-person rule can be tried.
        admin, admin2 = d / "stargatectl.yaml", d / "admin2" / "stargatectl.yaml"
        assert run("status", "-o", "json", config=admin).json()["roster"]["single_admin"] is False
        args = [
            "safety",
            "halt",
            "--release",
            "atlas-r1",
            "--scope",
            "global",
            "--reason",
            "try",
            "-o",
            "json",
        ]
        r = run(*args, config=admin)
        assert r.code == 0, r.err
        halt = r.json()
        r = run("safety", "resume", halt["id"], "-o", "json", config=admin)
        assert r.code == 0, r.err
        resume = r.json()
        assert resume["state"] == "PendingApproval" and resume["approvals_required"] == 2
        r = run("safety", "approve", resume["id"], "-o", "json", config=admin2)
        assert r.code == 0 and r.json()["approvals"][-1].endswith("/user/admin2"), r.err
        r = run("safety", "status", halt["id"], "--watch", "-o", "json", config=admin, timeout=30)
        assert r.code == 0 and '"Resumed"' in r.out.splitlines()[-1], r.out
    finally:
        code = proc.terminate()
    assert code == 0, proc.output()
    assert "Traceback" not in proc.output()


def test_dev_up_with_a_sites_file(tmp_path: Path) -> None:
    port = free_port_pair()
    sites = tmp_path / "sites.yaml"
    sites.write_text(
        "- {id: br-sao-1, country: BR, region: sao-paulo, accelerators: {h100: 8}, securityTier: 2}\n"
        "- {id: in-mum-1, country: IN, labels: {tier: gold}}\n"
    )
    d = tmp_path / "dev"
    proc = Proc(
        [
            *CLI,
            "dev",
            "up",
            "--dir",
            str(d),
            "--listen",
            f"127.0.0.1:{port}",
            "--store",
            "memory",
            "--sites-file",
            str(sites),
        ],
        tmp_path / "dev.log",
    )
    try:
        proc.wait_for("running; Ctrl-C to stop", timeout=60)
        items = run("sites", "list", "-o", "json", config=d / "stargatectl.yaml").json()["items"]
        assert [(s["id"], s["country"], s["status"]) for s in items] == [
            ("br-sao-1", "BR", "Ready"),
            ("in-mum-1", "IN", "Ready"),
        ]
        assert items[0]["capacity"] == {"h100": {"total": 8, "free": 8}}
    finally:
        assert proc.terminate() == 0


def test_dev_up_rejects_a_bad_sites_file(tmp_path: Path) -> None:
    sites = tmp_path / "sites.yaml"
    sites.write_text("- {id: br-sao-1, country: BR}\n- {id: xx-1, country: Brazil}\n")
    assert_one_line_error(
        run("dev", "up", "--dir", str(tmp_path / "d"), "--sites-file", str(sites)), "sites[1].country"
    )


def test_dev_up_starts_afresh_when_its_admin_certificate_expired(tmp_path: Path) -> None:
    import datetime as dt
    import time

    from controlplane.pki.ca import CertificateAuthority
    from controlplane.pki.identity import Identity, Kind, Role
    from controlplane.pki.keys import certificate_pem
    from controlplane.server.bootstrap import InitOptions, init

    d = tmp_path / "dev"
    init(InitOptions(d, "stargate.local"))
    ca = CertificateAuthority.load(d)
    _, expired = ca.issue(
        Identity("stargate.local", Kind.USER, "admin", Role.ADMIN), ttl=dt.timedelta(seconds=1)
    )
    (d / "admin.crt").write_bytes(certificate_pem(expired))
    old_ca = (d / "ca.crt").read_bytes()
    time.sleep(1.2)
    port = free_port_pair()
    proc = Proc(
        [*CLI, "dev", "up", "--dir", str(d), "--listen", f"127.0.0.1:{port}", "--store", "memory"],
        tmp_path / "dev.log",
    )
    try:
        proc.wait_for("running; Ctrl-C to stop", timeout=60)
        assert (d / "ca.crt").read_bytes() != old_ca  # a new dev federation
        assert run("sites", "list", config=d / "stargatectl.yaml").code == 0
    finally:
        assert proc.terminate() == 0
