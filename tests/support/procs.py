"""Real CLI and server processes for tests (test infrastructure)."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

CLI = [sys.executable, "-m", "controlplane.cli.main"]
SERVER = [sys.executable, "-m", "controlplane.server.main"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def free_port_pair() -> int:
    """A port P with P+1 also free (the enrollment port defaults to API port + 1)."""
    for _ in range(50):
        p = free_port()
        with socket.socket() as a, socket.socket() as b:
            try:
                a.bind(("127.0.0.1", p))
                b.bind(("127.0.0.1", p + 1))
            except OSError:
                continue
            return p
    raise RuntimeError("no free port pair")


@dataclass
class Result:
    code: int
    out: str
    err: str

    def json(self) -> Any:
        return json.loads(self.out)


def run(
    *args: str,
    config: Path | None = None,
    timeout: float = 30,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
) -> Result:
    cmd = [*CLI, *(["--config", str(config)] if config else []), *args]
    p = subprocess.run(
        cmd, capture_output=True, text=True, timeout=timeout, env={**os.environ, **(env or {})}, cwd=cwd
    )
    return Result(p.returncode, p.stdout, p.stderr)


def assert_one_line_error(r: Result, *needles: str) -> None:
    assert r.code != 0, r
    lines = [line for line in r.err.splitlines() if line.startswith("error:")]
    assert len(lines) == 1, r.err
    assert "Traceback" not in r.err, r.err
    for n in needles:
        assert n in lines[0], (n, lines[0])


def wait_port(port: int, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise TimeoutError(f"port {port} not listening after {timeout}s")


class Proc:
    """A long-running process, stopped with SIGTERM (then SIGKILL) at the end."""

    def __init__(self, cmd: list[str], log: Path, env: dict[str, str] | None = None) -> None:
        self.log = log
        self._f = log.open("wb")
        self.p = subprocess.Popen(cmd, stdout=self._f, stderr=subprocess.STDOUT, env=env)

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def wait_for(self, text: str, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if text in self.output():
                return
            if self.p.poll() is not None:
                raise RuntimeError(f"process exited with {self.p.returncode}:\n{self.output()}")
            time.sleep(0.05)
        raise TimeoutError(f"{text!r} not seen in {timeout}s:\n{self.output()}")

    def terminate(self, timeout: float = 15) -> int:
        if self.p.poll() is None:
            self.p.send_signal(signal.SIGTERM)
            try:
                self.p.wait(timeout)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait()
        self._f.close()
        return int(self.p.returncode)

    def kill(self) -> None:
        if self.p.poll() is None:
            self.p.kill()
            self.p.wait()
        self._f.close()


def init_pki(pki: Path, trust_domain: str, port: int, init_args: Sequence[str] = ()) -> None:
    """``stargate-controlplane init`` as a process, for a server on 127.0.0.1:``port``."""
    init = subprocess.run(
        [
            *SERVER,
            "init",
            "--dir",
            str(pki),
            "--trust-domain",
            trust_domain,
            "--server-address",
            f"127.0.0.1:{port}",
            *init_args,
        ],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert init.returncode == 0, init.stderr


@contextlib.contextmanager
def served_federation(
    pki: Path, trust_domain: str, *serve_args: str, init_args: Sequence[str] = ()
) -> Iterator[tuple[Path, int]]:
    """``stargate-controlplane init`` then ``serve`` as processes; yields (PKI dir, API port; the
    enrollment port is API port + 1). The server must stop gracefully on SIGTERM. Without a
    ``--store`` in ``serve_args`` it runs on its default, an embedded etcd under the PKI dir.
    ``init_args`` go to init (e.g. ``--admin-key``: without one, a single-admin lab roster)."""
    port = free_port_pair()
    init_pki(pki, trust_domain, port, init_args)
    proc = Proc(
        [*SERVER, "serve", "--dir", str(pki), "--listen", f"127.0.0.1:{port}", *serve_args],
        pki.parent / "server.log",
    )
    try:
        wait_port(port)
        wait_port(port + 1)
        yield pki, port
    finally:
        code = proc.terminate()
        assert code == 0, proc.output()


def join_site(pki: Path, port: int, site_id: str, country: str, out: Path) -> None:
    """An admin token for ``site_id``, then ``stargatectl join`` into ``out`` (key made there)."""
    r = run(
        "sites",
        "token",
        "create",
        "--site-id",
        site_id,
        "--country",
        country,
        "-o",
        "json",
        config=pki / "stargatectl.yaml",
    )
    assert r.code == 0, r.err
    r = run(
        "join",
        "--server",
        f"127.0.0.1:{port + 1}",
        "--ca-file",
        str(pki / "ca.crt"),
        "--token",
        r.json()["token"],
        "--out",
        str(out),
    )
    assert r.code == 0, r.err


@contextlib.contextmanager
def two_admin_federation(base: Path, trust_domain: str, *serve_args: str) -> Iterator[tuple[Path, int]]:
    """``served_federation`` with two admins in roster v1, each with an approval key made by
    ``stargatectl keys create``: admin's beside the PKI directory (its config names it), bob's in
    his own directory ``base/people/bob`` (he requests his certificate with ``users request``)."""
    keys = {"admin": base / "admin.approval.key", "bob": base / "people" / "bob" / "bob.approval.key"}
    for k in keys.values():
        r = run("keys", "create", "--out", str(k))
        assert r.code == 0, r.err
    init_args = [a for n, k in keys.items() for a in ("--admin-key", f"{n}={k}.pub")]
    with served_federation(base / "pki", trust_domain, *serve_args, init_args=init_args) as fed:
        yield fed
