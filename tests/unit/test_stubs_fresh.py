"""The committed Python stubs are exactly what proto/generate.py produces from the .proto files."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parents[2]
PROTO_DIR = ROOT / "proto" / "controlplane" / "api" / "v1"
STUB_DIR = ROOT / "controlplane" / "api" / "v1"
STUB_SUFFIXES = ("_pb2.py", "_pb2.pyi", "_pb2_grpc.py", "_pb2_grpc.pyi")
STALE = "stubs are stale: run `make proto`"


def _load_generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("stargate_proto_generate", ROOT / "proto" / "generate.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _stubs(directory: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(directory.iterdir()) if p.name.endswith(STUB_SUFFIXES)}


def stub_differences(generated: dict[str, bytes], committed: dict[str, bytes]) -> list[str]:
    problems = [f"{n}: generated but not committed" for n in sorted(generated.keys() - committed.keys())]
    problems += [f"{n}: committed but not generated" for n in sorted(committed.keys() - generated.keys())]
    both = sorted(generated.keys() & committed.keys())
    problems += [f"{n}: differs" for n in both if generated[n] != committed[n]]
    return problems


def test_committed_stubs_match_generated(tmp_path: Path) -> None:
    _load_generator().generate(tmp_path)
    generated = _stubs(tmp_path / "controlplane" / "api" / "v1")
    assert generated, "generate() produced no stubs"
    problems = stub_differences(generated, _stubs(STUB_DIR))
    assert not problems, f"{STALE}\n" + "\n".join(problems)


def test_committed_typed_calls_match_generated(tmp_path: Path) -> None:
    """controlplane/client/calls.py (one typed method per unary rpc) is generated too."""
    _load_generator().generate(tmp_path)
    calls = Path("controlplane") / "client" / "calls.py"
    assert (tmp_path / calls).read_text() == (ROOT / calls).read_text(), STALE


def test_every_committed_stub_has_a_proto_source() -> None:
    committed = _stubs(STUB_DIR)
    assert committed
    orphans = [n for n in committed if not (PROTO_DIR / (n.split("_pb2")[0] + ".proto")).is_file()]
    assert not orphans, f"{STALE} (stubs without a .proto source: {', '.join(sorted(orphans))})"


def test_a_stale_stub_is_detected() -> None:
    committed = _stubs(STUB_DIR)
    name = sorted(committed)[0]
    edited = {**committed, name: committed[name] + b"\n"}
    dropped = {k: v for k, v in committed.items() if k != name}
    assert stub_differences(committed, committed) == []
    assert stub_differences(edited, committed) == [f"{name}: differs"]
    assert stub_differences(committed, dropped) == [f"{name}: generated but not committed"]
    assert stub_differences(dropped, committed) == [f"{name}: committed but not generated"]
