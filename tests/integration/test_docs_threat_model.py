"""docs/security.md's threat model names a test for every "cannot": each must exist."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "security.md"
REF = re.compile(r"`(tests/[\w/]+\.py)::(\w+)`")


def _section() -> str:
    text = DOC.read_text()
    start = text.index("## Threat model: who can do what")
    end = text.index("\n## ", start + 1)
    return text[start:end]


def _tests_in(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    return {n.name for n in ast.walk(tree) if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)}


def test_every_cannot_names_a_test_that_exists() -> None:
    strict = _section()
    rows = [line for line in strict.splitlines() if line.startswith("|") and "---" not in line][1:]
    refs = REF.findall(strict)
    assert len(refs) >= 25, refs
    insiders = {r.split("|")[1].strip() for r in rows} - {""}
    assert insiders == {
        "one admin",
        "one steward",
        "someone with etcd write access",
        "the control-plane host (CA key, safety key, store)",
        "a site operator",
        "an unauthenticated peer",
    }
    for row in rows:  # every row that says what cannot be done names its test
        if row.split("|")[3].strip():
            assert REF.search(row.split("|")[3]), row
    missing = [f"{f}::{t}" for f, t in refs if not (ROOT / f).exists() or t not in _tests_in(ROOT / f)]
    assert not missing, missing
