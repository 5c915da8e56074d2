"""Every unary rpc of the people's services has a typed client method that calls it by name."""

from __future__ import annotations

from typing import Any

import pytest

from controlplane.api.v1 import audit_pb2, federation_pb2, jobs_pb2, rollouts_pb2, safety_pb2
from controlplane.client.calls import TypedCalls
from controlplane.client.federation import RPCS

SERVICES = [
    federation_pb2.DESCRIPTOR.services_by_name["FederationService"],
    rollouts_pb2.DESCRIPTOR.services_by_name["ReleaseService"],
    safety_pb2.DESCRIPTOR.services_by_name["SafetyService"],
    audit_pb2.DESCRIPTOR.services_by_name["AuditService"],
    jobs_pb2.DESCRIPTOR.services_by_name["JobService"],
]
UNARY = [m for s in SERVICES for m in s.methods if not (m.client_streaming or m.server_streaming)]


class Recorder(TypedCalls):
    def __init__(self) -> None:
        self.calls: list[tuple[str, Any]] = []

    async def call(self, method: str, request: Any) -> Any:
        self.calls.append((method, request))
        return "answer"


def snake(name: str) -> str:
    return "".join(f"_{c.lower()}" if c.isupper() and i else c.lower() for i, c in enumerate(name))


@pytest.mark.parametrize("method", UNARY, ids=lambda m: m.name)
async def test_typed_method_calls_its_rpc(method: Any) -> None:
    rec = Recorder()
    request = method.input_type._concrete_class()
    assert await getattr(rec, snake(method.name))(request) == "answer"
    assert rec.calls == [(method.name, request)]
    assert method.name in RPCS  # and the client knows which service carries it


def test_no_typed_method_without_an_rpc() -> None:
    names = {n for n in vars(TypedCalls) if not n.startswith("_") and n != "call"}
    assert names == {snake(m.name) for m in UNARY}
