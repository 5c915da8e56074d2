"""A tiny async Kubernetes client over aiohttp (kopf depends on it; kopf itself ships no writer).

Only what the operator needs: get, list, create, JSON merge patch (main and status), delete. It
connects with the same ``kopf.ConnectionInfo`` kopf logged in with, so the operator has one
identity (its ServiceAccount) for both.
"""

from __future__ import annotations

import base64
import ssl
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import kopf

Obj = dict[str, Any]


@dataclass(frozen=True)
class Res:
    group: str
    version: str
    plural: str
    namespaced: bool = True

    def path(self, namespace: str | None = None, name: str = "", sub: str = "") -> str:
        base = f"/apis/{self.group}/{self.version}" if self.group else f"/api/{self.version}"
        if self.namespaced and namespace:
            base += f"/namespaces/{namespace}"
        return "/".join(p for p in (base + "/" + self.plural, name, sub) if p)


SECRETS = Res("", "v1", "secrets")
CONFIGMAPS = Res("", "v1", "configmaps")
SERVICES = Res("", "v1", "services")
PODS = Res("", "v1", "pods")
DEPLOYMENTS = Res("apps", "v1", "deployments")
JOBS = Res("batch", "v1", "jobs")
NETWORKPOLICIES = Res("networking.k8s.io", "v1", "networkpolicies")
PVCS = Res("", "v1", "persistentvolumeclaims")
DATASETS = Res("federation.stargate.io", "v1alpha1", "datasets")
MODELDEPLOYMENTS = Res("federation.stargate.io", "v1alpha1", "modeldeployments")
FEDERATIONLINKS = Res("federation.stargate.io", "v1alpha1", "federationlinks", namespaced=False)
SITEPOLICIES = Res("federation.stargate.io", "v1alpha1", "sitepolicies", namespaced=False)


class KubeError(Exception):
    """An API answer other than success. ``status`` 0 means the server could not be reached."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"{status or 'unreachable'}: {message}")
        self.status, self.message = status, message

    @property
    def temporary(self) -> bool:
        """Worth retrying: unreachable, overloaded, a conflict, or a server error. Anything else
        (403 forbidden, 422 invalid, 404 on a write) will fail the same way next time."""
        return self.status in (0, 409, 429) or self.status >= 500


def secret_value(secret: Obj, key: str) -> bytes | None:
    raw = (secret.get("data") or {}).get(key)
    if raw is not None:
        return base64.b64decode(raw)
    text = (secret.get("stringData") or {}).get(key)
    return None if text is None else str(text).encode()


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _pem(data: str | bytes) -> bytes:
    """kubeconfig's ``*-data`` fields are base64 of the PEM; accept the PEM itself too."""
    raw = data if isinstance(data, bytes) else data.encode()
    return raw if raw.lstrip().startswith(b"-----BEGIN") else base64.b64decode(raw)


class KubeAPI:
    def __init__(self, info: kopf.ConnectionInfo, *, timeout: float = 10.0) -> None:
        self.info, self.timeout = info, timeout
        self._session: aiohttp.ClientSession | None = None

    def _ssl(self) -> ssl.SSLContext | bool:
        i = self.info
        if not i.server.startswith("https"):
            return False
        if i.insecure:
            return False
        ctx = ssl.create_default_context(
            cafile=str(i.ca_path) if i.ca_path else None,
            cadata=_pem(i.ca_data).decode() if i.ca_data else None,
        )
        if i.certificate_path and i.private_key_path:
            ctx.load_cert_chain(str(i.certificate_path), str(i.private_key_path))
        elif i.certificate_data and i.private_key_data:
            # ssl loads client certificates only from files: a private directory, removed at once.
            with tempfile.TemporaryDirectory(prefix="stargate-kube-") as d:
                cert, key = Path(d) / "client.crt", Path(d) / "client.key"
                for path, data in ((cert, i.certificate_data), (key, i.private_key_data)):
                    path.write_bytes(_pem(data))
                    path.chmod(0o600)
                ctx.load_cert_chain(str(cert), str(key))
        return ctx

    def _session_now(self) -> aiohttp.ClientSession:
        # Created lazily: a session belongs to the loop it was made in (the operator's thread).
        if self._session is None or self._session.closed:
            headers = {"Accept": "application/json"}
            if self.info.token:
                headers["Authorization"] = f"{self.info.scheme or 'Bearer'} {self.info.token}"
            self._session = aiohttp.ClientSession(
                base_url=self.info.server.rstrip("/"),
                headers=headers,
                connector=aiohttp.TCPConnector(ssl=self._ssl()),
                timeout=aiohttp.ClientTimeout(total=self.timeout),
            )
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def request(
        self, method: str, path: str, *, body: Any = None, params: dict[str, str] | None = None
    ) -> Obj:
        headers = {"Content-Type": "application/merge-patch+json"} if method == "PATCH" else {}
        try:
            async with self._session_now().request(
                method, path, json=body, params=params, headers=headers
            ) as resp:
                data = await resp.json(content_type=None)
                if resp.status >= 400:
                    message = data.get("message", "") if isinstance(data, dict) else str(data)
                    raise KubeError(resp.status, f"{method} {path}: {message}")
                return data if isinstance(data, dict) else {}
        except (aiohttp.ClientError, TimeoutError) as e:
            raise KubeError(0, f"{method} {path}: {e!r}") from e

    async def get(self, res: Res, namespace: str | None, name: str) -> Obj | None:
        try:
            return await self.request("GET", res.path(namespace, name))
        except KubeError as e:
            if e.status == 404:
                return None
            raise

    async def list(
        self, res: Res, namespace: str | None = None, *, labels: str = "", fields: str = ""
    ) -> list[Obj]:
        params = {k: v for k, v in (("labelSelector", labels), ("fieldSelector", fields)) if v} or None
        return list((await self.request("GET", res.path(namespace), params=params)).get("items", []))

    async def create(self, res: Res, namespace: str | None, body: Obj) -> Obj:
        return await self.request("POST", res.path(namespace), body=body)

    async def patch(
        self, res: Res, namespace: str | None, name: str, body: Obj, *, status: bool = False
    ) -> Obj:
        return await self.request("PATCH", res.path(namespace, name, "status" if status else ""), body=body)

    async def delete(self, res: Res, namespace: str | None, name: str, *, propagation: str = "") -> None:
        """No error if absent. ``propagation`` (Background, Foreground, Orphan): what happens to
        what the object owns; a batch/v1 Job deleted without it orphans its pods."""
        params = {"propagationPolicy": propagation} if propagation else None
        try:
            await self.request("DELETE", res.path(namespace, name), params=params)
        except KubeError as e:
            if e.status != 404:
                raise

    async def apply(self, res: Res, namespace: str | None, body: Obj) -> Obj:
        """Create, or merge-patch what exists (no server-side apply: the test emulator lacks it)."""
        name = body["metadata"]["name"]
        if await self.get(res, namespace, name) is None:
            try:
                return await self.create(res, namespace, body)
            except KubeError as e:
                if e.status != 409:  # created meanwhile: fall through to patch it
                    raise
        return await self.patch(res, namespace, name, body)
