"""Someone with write access to etcd rewrites the audit log with etcdctl, recomputing everything
the store holds (hash chain, tiles, tree record, head): truncate the newest events, edit one and
recompute, delete one and renumber the rest. Each rewrite is detected by `stargatectl audit verify
--since` with a checkpoint saved before it, the replica that wrote the log stops signing, and once
the attacker also deletes the checkpoints and restarts the replica (which then signs the rewritten
log), a country's witness refuses it, and keeps refusing after a restart.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import time
from pathlib import Path

import pytest

from controlplane.store.embedded import EmbeddedEtcd, etcd_binary
from tests.support.etcd_tls import EtcdPki, running_etcd
from tests.support.procs import SERVER, Proc, free_port_pair, run, wait_port
from tests.support.rewrite import REWRITES, rewritten

pytestmark = pytest.mark.slow


class Etcdctl:
    def __init__(self, etcd: EmbeddedEtcd, pki: EtcdPki) -> None:
        binary = etcd_binary()
        assert binary is not None
        self.base = [
            os.path.join(os.path.dirname(binary), "etcdctl"),
            "--endpoints",
            ",".join(etcd.client_urls),
            "--cacert",
            str(pki.ca_file),
            "--cert",
            str(pki.client_cert),
            "--key",
            str(pki.client_key),
        ]

    def __call__(self, *args: str, stdin: bytes | None = None) -> bytes:
        done = subprocess.run([*self.base, *args], input=stdin, capture_output=True, check=True, timeout=20)
        return done.stdout

    def get_prefix(self, prefix: str) -> dict[str, bytes]:
        out = json.loads(self("get", "--prefix", prefix, "-w", "json"))
        kvs = out.get("kvs", [])
        return {base64.b64decode(kv["key"]).decode(): base64.b64decode(kv["value"]) for kv in kvs}


class Replica:
    def __init__(self, pki_dir: Path, port: int, etcd: EmbeddedEtcd, tls: EtcdPki) -> None:
        self.cmd = [
            *SERVER,
            "serve",
            "--dir",
            str(pki_dir),
            "--listen",
            f"127.0.0.1:{port}",
            "--checkpoint-interval",
            "0.1",
            "--store",
            "etcd",
            "--etcd-endpoints",
            ",".join(etcd.client_urls),
            "--etcd-ca-file",
            str(tls.ca_file),
            "--etcd-cert-file",
            str(tls.client_cert),
            "--etcd-key-file",
            str(tls.client_key),
        ]
        self.port, self.log, self.runs = port, pki_dir.parent / "server", 0
        self.proc: Proc | None = None

    def start(self) -> None:
        self.runs += 1
        self.proc = Proc(self.cmd, self.log.with_suffix(f".{self.runs}.log"))
        wait_port(self.port)

    def stop(self) -> None:
        assert self.proc is not None
        assert self.proc.terminate() == 0, self.proc.output()


def until(check, timeout: float = 10.0):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result or time.monotonic() > deadline:
            return result
        time.sleep(0.1)


@pytest.mark.parametrize("name", sorted(REWRITES))
async def test_a_rewrite_with_etcdctl_is_detected_and_refused(tmp_path: Path, name: str) -> None:
    async with running_etcd(tmp_path / "etcd") as (etcd, tls):
        etcdctl = Etcdctl(etcd, tls)
        pki, port = tmp_path / "pki", free_port_pair()
        args = ["init", "--dir", str(pki), "--trust-domain", "rw.test"]
        args += ["--server-address", f"127.0.0.1:{port}"]
        init = subprocess.run([*SERVER, *args], capture_output=True, text=True)
        assert init.returncode == 0, init.stderr
        replica = Replica(pki, port, etcd, tls)
        replica.start()
        cfg, log_key, saved = pki / "stargatectl.yaml", str(pki / "log.vkey"), tmp_path / "saved"

        def event(i: int) -> None:
            r = run("sites", "token", "create", "--site-id", f"s-{i}", "--country", "FR", config=cfg)
            assert r.code == 0, r.err

        try:
            for i in range(5):
                event(i)
            wkey = tmp_path / "w.key"
            wvkey = run("witness", "keygen", "--name", "witness.fr/w1", "--key", str(wkey)).out.strip()
            assert run("witness", "add", "--vkey", wvkey, config=cfg).code == 0
            witness = ("witness", "run", "--name", "witness.fr/w1", "--key", str(wkey))
            witness += ("--state", str(tmp_path / "w"), "--log-key", log_key, "--once")
            r = run(*witness, config=cfg)
            assert r.code == 0 and "cosigned" in r.out, r.out + r.err
            r = run("audit", "verify", "--log-key", log_key, "--save", str(saved), config=cfg)
            assert r.code == 0, r.out + r.err
            verify = ("audit", "verify", "--log-key", log_key, "--since", str(saved))

            # The rewrite, with etcdctl, while the replica runs; then the log goes on.
            puts, deletes = rewritten(etcdctl.get_prefix("/stargate/audit/"), REWRITES[name])
            for key, value in puts.items():
                etcdctl("put", key, stdin=value)
            for key in deletes:
                etcdctl("del", key)
            event(100)
            # The replica refuses to sign the rewritten log, and says so...
            r = until(lambda: (c := run("audit", "checkpoint", config=cfg)).err and c)
            assert r and "stopped signing checkpoints" in r.err and "rewritten" in r.err, r
            # ... and the listed events do not verify against the checkpoint it signed before.
            r = run(*verify, config=cfg)
            assert r.code == 1 and "FAILED" in r.out, r.out + r.err

            # The attacker also deletes the checkpoints and restarts the replica, which then signs
            # the rewritten log (it has nothing to compare it with).
            replica.stop()
            etcdctl("del", "--prefix", "/stargate/audit/checkpoints/")
            replica.start()
            r = until(lambda: (c := run("audit", "checkpoint", config=cfg)).code == 0 and c)
            assert r and not r.err, r
            r = run(*verify, config=cfg)
            assert r.code == 1 and "error:" in r.err, r.out + r.err
            assert any(w in r.err for w in ("inconsistent", "no consistency proof", "shrank")), r.err
            r = run(*witness, config=cfg)
            assert r.code == 1 and "REFUSED checkpoint" in r.out, r.out + r.err
            again = run(*witness, config=cfg)  # a restarted witness keeps its refusal
            assert again.code == 1 and "REFUSED checkpoint" in again.out and "refused earlier" in again.err
            assert "cosigned" not in r.out + again.out
            state = json.loads((tmp_path / "w" / "state.json").read_text())
            assert state["refusals"] and state["size"] >= 5
        finally:
            replica.stop()
