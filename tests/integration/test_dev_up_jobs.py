"""`dev up --sites-file docs/examples/sites-localisation.yaml` as a real process: the simulated
sites hold the file's datasets (a dataset under another country's law is refused by its site), and the issue's
LocalizationJob runs at the French site with its steward's consent, for the file's 3 s."""

from __future__ import annotations

import json
from pathlib import Path

from tests.support.procs import CLI, Proc, free_port_pair, run

EXAMPLES = Path(__file__).resolve().parents[2] / "docs" / "examples"


def test_dev_up_sites_file_datasets_and_a_job(tmp_path: Path) -> None:
    port = free_port_pair()
    d = tmp_path / "dev"
    args = ["--dir", str(d), "--listen", f"127.0.0.1:{port}", "--store", "memory"]
    proc = Proc(
        [*CLI, "dev", "up", *args, "--sites-file", str(EXAMPLES / "sites-localisation.yaml")],
        tmp_path / "dev.log",
    )
    admin = d / "stargatectl.yaml"
    try:
        proc.wait_for("running; Ctrl-C to stop", timeout=60)
        r = run("datasets", "list", "-o", "json", config=admin)
        assert r.code == 0, r.err
        got = {(x["site"], x["name"]) for x in r.json()["items"]}
        # de-fra-1 holds fr-mirror under French law: it refuses to offer it.
        assert got == {("fr-par-1", "fr-news"), ("de-fra-1", "de-web"), ("jp-tyo-1", "ja-eval")}
        assert "fr-mirror" in proc.output() and "not offered" in proc.output()
        job = tmp_path / "job.yaml"
        job.write_text(
            (EXAMPLES / "localization-job.yaml")
            .read_text()
            .replace("base: atlas-1.2.0", "base: quickstart-1.0.0")
        )
        r = run("jobs", "create", "-f", str(job), "-o", "json", config=admin)
        assert r.code == 0 and r.json()["sites"] == ["fr-par-1"], (r.out, r.err)
        steward = tmp_path / "claire"
        issue = ["users", "issue", "--name", "claire", "--role", "steward", "--country", "FR"]
        r = run(*issue, "--out", str(steward), "--lab-generate-key", config=admin)
        assert r.code == 0, r.err
        r = run(
            "jobs",
            "approve",
            "atlas-fr-news",
            "--country",
            "FR",
            "-o",
            "json",
            config=steward / "stargatectl.yaml",
        )
        assert r.code == 0 and r.json()["phase"] == "Admitted", (r.out, r.err)
        r = run("jobs", "status", "atlas-fr-news", "--watch", "-o", "json", config=admin, timeout=30)
        assert r.code == 0, (r.out, r.err)
        last = json.loads(r.out.splitlines()[-1])
        assert last["phase"] == "Succeeded" and last["sites"] == ["fr-par-1"]
    finally:
        assert proc.terminate() == 0
    assert "Traceback" not in proc.output()
