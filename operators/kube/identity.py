"""The site's identity (key, certificate, federation CA), kept in a Secret in the operator's namespace.

The site-agent core reads credential files from a directory, so the Secret is materialised into
a private temporary directory (0700, files 0600) for the life of the process, and what the agent
writes there is written back to the Secret: enrollment and renewal (a new key generated here) at
once, other state the agent keeps beside its key (the safety lane's ring and state) at most once
per ``min_interval``. The key exists only in that directory and that Secret.
"""

from __future__ import annotations

import hashlib
import re
import shutil
import tempfile
import time
from pathlib import Path

from cryptography import x509

from controlplane.client.enroll import Facts, join
from controlplane.pki.identity import identity_from_certificate
from controlplane.pki.keys import write_atomic
from operators.kube.kubeapi import SECRETS, KubeAPI, b64, secret_value
from operators.kube.settings import MANAGED_BY, OPERATOR

FILES = {"site.key": 0o600, "site.crt": 0o644, "ca.crt": 0o644}
_SECRET_KEY = re.compile(r"[-._a-zA-Z0-9]{1,253}")


class IdentityMismatch(Exception):
    """The stored identity belongs to another site id than the FederationLink names."""


class SiteIdentity:
    def __init__(self, api: KubeAPI, namespace: str, secret: str) -> None:
        self.api, self.namespace, self.secret = api, namespace, secret
        self.dir = Path(tempfile.mkdtemp(prefix="stargate-site-"))  # mkdtemp: mode 0700
        self._stored = self._stored_identity = ""  # digests as last written to / read from the Secret
        self._synced_at = 0.0

    def _files(self) -> list[str]:
        return sorted(p.name for p in self.dir.iterdir() if p.is_file() and _SECRET_KEY.fullmatch(p.name))

    def _digest(self, names: list[str] | None = None) -> str:
        h = hashlib.sha256()
        for name in self._files() if names is None else names:
            path = self.dir / name
            h.update(name.encode() + b"\0" + (path.read_bytes() if path.exists() else b"-") + b"\0")
        return h.hexdigest()

    @property
    def present(self) -> bool:
        return all((self.dir / n).exists() for n in FILES)

    def site_id(self) -> str:
        cert = x509.load_pem_x509_certificate((self.dir / "site.crt").read_bytes())
        return identity_from_certificate(cert).name

    def not_after(self) -> str:
        cert = x509.load_pem_x509_certificate((self.dir / "site.crt").read_bytes())
        return cert.not_valid_after_utc.strftime("%Y-%m-%dT%H:%M:%SZ")

    async def load(self, site_id: str) -> bool:
        """Materialise the Secret; False when the site has not enrolled yet."""
        if not self.present:
            secret = await self.api.get(SECRETS, self.namespace, self.secret)
            if secret is None or any(secret_value(secret, n) is None for n in FILES):
                return False
            for name in secret.get("data") or {}:
                if _SECRET_KEY.fullmatch(name):
                    write_atomic(self.dir / name, secret_value(secret, name) or b"", FILES.get(name, 0o600))
            self._stored, self._stored_identity = self._digest(), self._digest(list(FILES))
        if self.site_id() != site_id:
            raise IdentityMismatch(
                f"Secret {self.namespace}/{self.secret} holds the identity of site {self.site_id()!r}, "
                f"not {site_id!r}; delete that Secret to enroll as a new site"
            )
        return True

    async def enroll(
        self, enroll_server: str, ca_pem: bytes, token: str, facts: Facts, *, roster_hash: str = ""
    ) -> None:
        """Join: key and CSR made here, token spent once; nothing written unless accepted (and,
        with ``roster_hash``, unless the federation's roster v1 hashes to it)."""
        await join(enroll_server, ca_pem, token, facts, self.dir, roster_hash=roster_hash)
        await self.sync()

    async def sync(self, *, min_interval: float = 0.0) -> bool:
        """Write the files back to the Secret when they changed: the identity at once (after
        enrollment or renewal), other files at most every ``min_interval`` seconds."""
        digest = self._digest()
        if not self.present or digest == self._stored:
            return False
        identity = self._digest(list(FILES))
        if identity == self._stored_identity and time.monotonic() - self._synced_at < min_interval:
            return False
        body = {
            "apiVersion": "v1",
            "kind": "Secret",
            "type": "Opaque",
            "metadata": {"name": self.secret, "labels": {MANAGED_BY: OPERATOR}},
            "data": {n: b64((self.dir / n).read_bytes()) for n in self._files()},
        }
        await self.api.apply(SECRETS, self.namespace, body)
        self._stored, self._stored_identity, self._synced_at = digest, identity, time.monotonic()
        return True

    def forget(self) -> None:
        """Drop the materialised copy (the Secret stays: it is the site's identity)."""
        shutil.rmtree(self.dir, ignore_errors=True)
        self.dir.mkdir(mode=0o700)
        self._stored = self._stored_identity = ""

    def close(self) -> None:
        shutil.rmtree(self.dir, ignore_errors=True)
