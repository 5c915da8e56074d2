"""Generate the Python stubs of the wire API into the source tree (``make proto``).

Run from anywhere; ``out`` defaults to the repository root. The stale-stub test calls
``generate(tmpdir)`` and compares the result with what is committed.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PROTO = ROOT / "proto"


def proto_files() -> list[str]:
    return sorted(str(p.relative_to(PROTO)) for p in (PROTO / "controlplane").rglob("*.proto"))


def generate(out: Path) -> None:
    import grpc_tools
    from grpc_tools import protoc  # test-only dependency (grpcio-tools)

    include = str(Path(grpc_tools.__file__).parent / "_proto")
    args = [
        "protoc",
        f"-I{PROTO}",
        f"-I{include}",
        f"--python_out={out}",
        f"--pyi_out={out}",
        f"--grpc_python_out={out}",
        *proto_files(),
    ]
    code = protoc.main(args)
    if code != 0:
        raise SystemExit(f"protoc failed with exit code {code}")
    sys.path.insert(0, str(PROTO))
    try:
        from calls import generate_calls  # proto/calls.py: the typed client methods
    finally:
        sys.path.remove(str(PROTO))
    generate_calls(PROTO, include, proto_files(), out)


if __name__ == "__main__":
    generate(Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT)
