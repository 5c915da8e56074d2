"""docs/rollouts.md is true: the manifests it shows are the shipped examples, byte for byte, and its
worked example (the ```sh worked-example blocks) runs as written - `stargatectl dev up` with the
example sites file in the background, then every command in order, with the exit code the
comments announce - against a fresh directory and a free port."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

from tests.support.procs import CLI, Proc, free_port_pair, run

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "rollouts.md"
SHOWN = re.compile(r"^`(docs/examples/[\w.-]+)`[^\n]*:\n\n```yaml\n(.*?)```\n", re.S | re.M)
WORKED = re.compile(r"^```sh worked-example\n(.*?)```\n", re.S | re.M)
EXIT = re.compile(r"#\s*exit (\d+)")


def test_the_manifests_the_doc_shows_are_the_shipped_examples() -> None:
    shown = SHOWN.findall(DOC.read_text())
    assert {p for p, _ in shown} >= {
        "docs/examples/release.yaml",
        "docs/examples/rollout.yaml",
        "docs/examples/sites.yaml",
        "docs/examples/canary-1.2.0.yaml",
    }
    for path, body in shown:
        assert body == (ROOT / path).read_text(), f"{path} differs from what docs/rollouts.md shows"
    # The one shown by difference differs only as the doc says.
    a, b = ((ROOT / "docs/examples" / f"canary-1.{v}.0.yaml").read_text().splitlines() for v in (2, 3))
    changed = [(x, y) for x, y in zip(a, b, strict=True) if x != y]
    assert all("1.2.0" in x and "1.3.0" in y for x, y in changed if not x.startswith("#")), changed


def _argv(line: str, tmp: Path) -> tuple[list[str], int | None]:
    expected = EXIT.search(line)
    words = shlex.split(line, comments=True)
    assert words[0] == "stargatectl", line
    out = []
    for w in words[1:]:
        w = w.replace(".dev/", f"{tmp}/.dev/") if w.startswith(".dev/") else w
        out.append(str(ROOT / w) if w.startswith("docs/examples/") else w)
    return out, int(expected.group(1)) if expected else None


def test_the_worked_example_runs_as_written(tmp_path: Path) -> None:
    blocks = WORKED.findall(DOC.read_text())
    assert len(blocks) == 2, "one block for `dev up`, one for the commands"
    (up,) = [line for line in blocks[0].splitlines() if line.strip()]
    argv, _ = _argv(up, tmp_path)
    assert argv[:2] == ["dev", "up"]
    argv = [a if a != ".dev" else str(tmp_path / ".dev") for a in argv]
    port = free_port_pair()
    server = Proc([*CLI, *argv, "--listen", f"127.0.0.1:{port}"], tmp_path / "dev-up.log")
    try:
        server.wait_for("running; Ctrl-C to stop", timeout=90)
        results = []
        for line in (line for line in blocks[1].splitlines() if line.strip()):
            args, expected = _argv(line, tmp_path)
            r = run(*args, timeout=150, cwd=tmp_path)
            assert "Traceback" not in r.err, (line, r.err)
            if expected is not None:
                assert r.code == expected, (line, r.code, r.out[-2000:], r.err)
            else:
                assert r.code == 0, (line, r.err)
            results.append((line, r))
        watched = [r for line, r in results if "--watch" in line]
        assert "RolledBack" in watched[1].out and "error rate 0.200 > 0.01 at fr-par-1" in watched[1].out
        site = results[-1][1].json()
        atlas = [d for d in site["deployments"] if d["name"] == "atlas"]
        assert [(d["version"], d["release"]) for d in atlas] == [("1.2.0", "atlas-1.2.0")], atlas
        assert (tmp_path / "acme.key").exists()  # the commands ran in the fresh directory
    finally:
        assert server.terminate() == 0, server.output()
