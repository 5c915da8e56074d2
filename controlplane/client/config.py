"""stargatectl configuration: a kubeconfig-like YAML file with contexts.

    apiVersion: stargate.io/v1
    kind: Config
    current-context: admin@stargate.local
    contexts:
      - name: admin@stargate.local
        context: {federation: stargate.local, user: admin}
    federations:
      - name: stargate.local
        federation:
          servers: ["127.0.0.1:7443", "127.0.0.1:8443"]   # mTLS API, tried in order
          enroll-server: "127.0.0.1:7444"                  # server-authenticated TLS, for joins
          certificate-authority: ca.crt
    users:
      - name: admin
        user: {client-certificate: admin.crt, client-key: admin.key}

Relative paths are relative to the file's directory, so a config directory can be moved whole.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from controlplane.client import yamlfile
from controlplane.errors import InvalidArgument
from controlplane.pki.keys import write_atomic

DEFAULT_PATH = Path("~/.stargate/config.yaml")


def default_path() -> Path:
    env = os.environ.get("STARGATE_CONFIG")
    return Path(env) if env else DEFAULT_PATH.expanduser()


@dataclass(frozen=True)
class Context:
    name: str
    servers: tuple[str, ...]
    enroll_server: str
    ca_file: Path
    cert_file: Path
    key_file: Path
    trust_domain: str = ""
    #: The person's Ed25519 approval key (``users[].user.approval-key``); None when not configured.
    approval_key: Path | None = None

    def read_tls(self) -> tuple[bytes, bytes, bytes]:
        """(ca, key, cert) PEM bytes; errors name the file."""
        out = []
        for label, p in (
            ("certificate-authority", self.ca_file),
            ("client-key", self.key_file),
            ("client-certificate", self.cert_file),
        ):
            try:
                out.append(p.read_bytes())
            except OSError as e:
                raise InvalidArgument(label, f"cannot read {p}: {e.strerror}") from e
        return out[0], out[1], out[2]


@dataclass
class ConfigFile:
    path: Path
    data: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def load(cls, path: Path) -> ConfigFile:
        if not path.exists():
            raise InvalidArgument(
                "--config",
                f"{path} does not exist (run `stargate-controlplane init` or `stargatectl dev up`, "
                "or set STARGATE_CONFIG)",
            )
        raw = yamlfile.load(path, "--config")  # bounded: size, aliases, depth, digits, UTF-8
        if not isinstance(raw, dict) or raw.get("kind") != "Config":
            raise InvalidArgument("--config", f"{path} is not a stargatectl config (kind: Config)")
        return cls(path, raw)

    def _named(self, section: str, name: str) -> dict[str, Any]:
        for item in self.data.get(section) or []:
            if isinstance(item, dict) and item.get("name") == name:
                body = item.get(section.rstrip("s"))
                if isinstance(body, dict):
                    return body
        raise InvalidArgument(f"{section}", f"no entry named {name!r} in {self.path}")

    def context(self, name: str | None = None) -> Context:
        name = name or self.data.get("current-context")
        if not name:
            raise InvalidArgument("current-context", f"not set in {self.path}")
        ctx = self._named("contexts", name)
        fed = self._named("federations", str(ctx.get("federation")))
        user = self._named("users", str(ctx.get("user")))
        servers = fed.get("servers") or []
        if not servers or not all(isinstance(s, str) for s in servers):
            raise InvalidArgument("federations.servers", f"must list at least one HOST:PORT in {self.path}")
        base = self.path.parent

        def path(d: dict[str, Any], key: str) -> Path:
            v = d.get(key)
            if not v:
                raise InvalidArgument(key, f"missing in {self.path}")
            return (base / str(v)).resolve()

        return Context(
            name=name,
            servers=tuple(servers),
            enroll_server=str(fed.get("enroll-server", "")),
            ca_file=path(fed, "certificate-authority"),
            cert_file=path(user, "client-certificate"),
            key_file=path(user, "client-key"),
            trust_domain=str(fed.get("trust-domain", "")),
            approval_key=path(user, "approval-key") if user.get("approval-key") else None,
        )


def write_config(
    path: Path,
    *,
    trust_domain: str,
    user: str,
    servers: list[str],
    enroll_server: str,
    ca_file: str = "ca.crt",
    cert_file: str,
    key_file: str,
    approval_key: str = "",
) -> None:
    """Write a config with one context. File names are relative to the config's directory."""
    ctx = f"{user}@{trust_domain}"
    user_entry = {"client-certificate": cert_file, "client-key": key_file}
    if approval_key:
        user_entry["approval-key"] = approval_key
    data = {
        "apiVersion": "stargate.io/v1",
        "kind": "Config",
        "current-context": ctx,
        "contexts": [{"name": ctx, "context": {"federation": trust_domain, "user": user}}],
        "federations": [
            {
                "name": trust_domain,
                "federation": {
                    "servers": servers,
                    "enroll-server": enroll_server,
                    "certificate-authority": ca_file,
                    "trust-domain": trust_domain,
                },
            }
        ],
        "users": [{"name": user, "user": user_entry}],
    }
    write_atomic(path, yaml.safe_dump(data, sort_keys=False).encode(), 0o600)
