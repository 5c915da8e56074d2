"""Where directives take effect. The kopf operator implements this over Kubernetes objects; a
simulated site uses MemoryBackend. Every method MUST be idempotent: applying the same directive
twice has no second effect."""

from __future__ import annotations

import abc
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Workload:
    name: str
    model: str
    version: str
    digest: str = ""
    replicas: int = 1
    accelerator: str = ""
    accelerators_per_replica: int = 0
    locale: str = ""
    release: str = ""
    risk_tier: int = 0
    source: str = "federation"
    halted: bool = False
    ready_replicas: int = 0
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def phase(self) -> str:
        if self.halted:
            return "Halted"
        return "Running" if self.ready_replicas >= self.replicas else "Progressing"


class WorkloadBackend(abc.ABC):
    @abc.abstractmethod
    async def deploy(self, payload: dict[str, Any]) -> None:
        """Create or update the federation-owned workload named ``payload['deployment_name']``.

        MUST refuse (raise ``Refused``) to overwrite a locally created workload of that name."""

    @abc.abstractmethod
    async def undeploy(self, name: str) -> None:
        """Remove the federation-owned workload ``name``; no error if absent. MUST NOT remove a
        local one."""

    @abc.abstractmethod
    async def workloads(self) -> list[Workload]:
        """Everything the site runs, federation-owned and local."""


class Refused(Exception):
    """The site declines a directive; ``reason`` goes upstream in the Reject."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class MemoryBackend(WorkloadBackend):
    """Workloads in a dict, ready at once: what `make dev` and the benchmarks run by the hundreds."""

    def __init__(self) -> None:
        self.items: dict[str, Workload] = {}

    async def deploy(self, payload: dict[str, Any]) -> None:
        name = payload["deployment_name"]
        existing = self.items.get(name)
        if existing is not None and existing.source == "local":
            raise Refused(f"a local workload named {name!r} exists; the federation may not change it")
        fields = {k: payload[k] for k in Workload.__dataclass_fields__ if k in payload and k != "name"}
        w = Workload(name=name, **fields)
        w.ready_replicas = w.replicas
        if existing is not None:
            w.halted = existing.halted
        self.items[name] = w

    async def undeploy(self, name: str) -> None:
        w = self.items.get(name)
        if w is not None and w.source != "local":
            del self.items[name]

    async def workloads(self) -> list[Workload]:
        return list(self.items.values())
