"""docs/localisation.md is true: the manifest it shows is the shipped example, its table of what
crosses the border lists every field of the messages a site sends for localisation (with the
classification the wire API gives it), and its worked example runs as written against `dev up`."""

from __future__ import annotations

import json
import re
from pathlib import Path

from controlplane.api.v1 import options_pb2, types_pb2
from tests.integration.test_docs_rollouts import SHOWN, WORKED, _argv
from tests.support.procs import CLI, Proc, free_port_pair, run

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "localisation.md"
ROW = re.compile(r"^\| `(\w+)\.(\w+)` \| (metadata|aggregate) \|", re.M)
CLASSES = {options_pb2.DATA_CLASS_METADATA: "metadata", options_pb2.DATA_CLASS_AGGREGATE: "aggregate"}


def test_the_border_table_lists_every_field_with_its_classification() -> None:
    rows = {(m, f): c for m, f, c in ROW.findall(DOC.read_text())}
    wire = {}
    for name in ("DatasetSummary", "JobStatus", "JobsPolicySummary"):
        for field in types_pb2.DESCRIPTOR.message_types_by_name[name].fields:
            cls = field.GetOptions().Extensions[options_pb2.classification]  # type: ignore[index]
            wire[(name, field.name)] = CLASSES[cls]
    assert rows == wire


def test_the_manifest_it_shows_is_the_shipped_example() -> None:
    shown = dict(SHOWN.findall(DOC.read_text()))
    assert (
        shown["docs/examples/rollout-fr-variant.yaml"]
        == (ROOT / "docs/examples/rollout-fr-variant.yaml").read_text()
    )


def test_the_worked_example_runs_as_written(tmp_path: Path) -> None:
    blocks = WORKED.findall(DOC.read_text())
    assert len(blocks) == 2, "one block for `dev up`, one for the commands"
    (up,) = [line for line in blocks[0].splitlines() if line.strip()]
    argv, _ = _argv(up, tmp_path)
    argv = [a if a != ".dev" else str(tmp_path / ".dev") for a in argv]
    port = free_port_pair()
    server = Proc(
        [*CLI, *argv, "--listen", f"127.0.0.1:{port}", "--store", "memory"], tmp_path / "dev-up.log"
    )
    try:
        server.wait_for("running; Ctrl-C to stop", timeout=90)
        results = []
        for line in (line for line in blocks[1].splitlines() if line.strip()):
            args, expected = _argv(line, tmp_path)
            args = [
                a.replace("claire/", f"{tmp_path}/claire/") if a.startswith("claire/") else a for a in args
            ]
            r = run(*args, timeout=150, cwd=tmp_path)
            assert "Traceback" not in r.err, (line, r.err)
            assert r.code == (expected or 0), (line, r.code, r.out[-2000:], r.err)
            results.append((line, r))
        out = {line.split()[3] + " " + line.split()[4]: r for line, r in results}
        assert "fr-news" in out["datasets list"].out and "fr-mirror" not in out["datasets list"].out
        status = next(
            r for line, r in results if "jobs status atlas-fr-news" in line and "--watch" not in line
        )
        assert "dataset: the data is in FR, this site in DE" in status.out
        watched = json.loads(
            next(r for line, r in results if "jobs status" in line and "--watch" in line).out.splitlines()[-1]
        )
        assert (watched["phase"], watched["sites"], watched["variant"]) == (
            "Succeeded",
            ["fr-par-1"],
            "atlas-1.2.0-fr",
        )
        variant = json.loads(next(r for line, r in results if "releases get" in line).out)
        assert variant["release"]["variantOf"] == "atlas-1.2.0"
        assert (
            variant["release"]["export"] == {"allowCountries": ["FR"]}
            and variant["publisher"] == "s-fr-par-1"
        )
        plan = next(r for line, r in results if "rollouts plan" in line).out
        assert (
            "export: DE not in allowCountries ['FR']" in plan
            and "export: JP not in allowCountries ['FR']" in plan
        )
        lyon = results[-1][1].json()
        assert [d["release"] for d in lyon["deployments"]] == ["atlas-1.2.0-fr"]
        assert "fr-mirror" in server.output()  # the German site says why it does not offer it
    finally:
        assert server.terminate() == 0, server.output()
