"""stargatectl datasets / jobs as real processes against a control plane with simulated sites
holding datasets: the issue's manifest, tables and -o json, status --watch over the Watch stream
naming the site, and one-line errors for refusals and bad manifests."""

from __future__ import annotations

import asyncio
import json
import sys
from asyncio.subprocess import PIPE
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from controlplane.api.v1 import jobs_pb2 as jpb
from controlplane.pki.identity import Role
from tests.support.federation import Federation
from tests.support.job_world import JobWorld
from tests.support.procs import Result, assert_one_line_error

EXAMPLE = Path(__file__).resolve().parents[2] / "docs" / "examples" / "localization-job.yaml"


@pytest.fixture
async def world(fed: Federation, tmp_path: Path) -> AsyncIterator[JobWorld]:
    w = await JobWorld(fed, tmp_path).start()
    try:
        yield w
    finally:
        await w.close()


async def cli(w: JobWorld, *args: str, stdin: str | None = None, timeout: float = 60) -> Result:
    cmd = [sys.executable, "-m", "controlplane.cli.main", "--config", str(w.fed.dir / "stargatectl.yaml")]
    proc = await asyncio.create_subprocess_exec(
        *cmd,
        "--server",
        w.fed.address,
        *args,
        stdin=PIPE if stdin is not None else None,
        stdout=PIPE,
        stderr=PIPE,
    )
    out, err = await asyncio.wait_for(
        proc.communicate(stdin.encode() if stdin is not None else None), timeout
    )
    return Result(int(proc.returncode or 0), out.decode(), err.decode())


async def test_datasets_list_table_json_and_filters(world: JobWorld) -> None:
    r = await cli(world, "datasets", "list")
    assert r.code == 0, r.err
    head, *rows = r.out.splitlines()
    assert head.split()[:3] == ["NAME", "SITE", "COUNTRY"]
    assert sorted(row.split()[0] for row in rows) == ["de-news", "fr-news"]
    r = await cli(world, "datasets", "list", "--country", "FR", "--language", "fr", "-o", "json")
    items = json.loads(r.out)["items"]
    assert [(d["site"], d["name"], d["languages"], d["size"]) for d in items] == [
        ("fr-par-1", "fr-news", ["fr"], "large")
    ]
    assert_one_line_error(await cli(world, "datasets", "list", "--language", "french"), "language")


async def test_the_issues_manifest_from_create_to_succeeded(world: JobWorld) -> None:
    r = await cli(world, "jobs", "create", "-f", str(EXAMPLE), "-o", "json")
    assert r.code == 0, r.err
    job = json.loads(r.out)
    assert (job["phase"], job["sites"], job["pending_countries"]) == (
        "WaitingForApproval",
        ["fr-par-1"],
        ["FR"],
    )
    assert {e["site"] for e in job["excluded"]} == {"fr-lyo-1", "de-fra-1", "jp-tyo-1"}
    r = await cli(world, "jobs", "status", "atlas-fr-news")
    assert "Excluded sites:" in r.out and "dataset: the data is in FR, this site in DE" in r.out, r.out
    # An admin may not consent for France: one line, non-zero, no traceback.
    assert_one_line_error(
        await cli(world, "jobs", "approve", "atlas-fr-news", "--country", "FR"), "only the country's steward"
    )
    r = await cli(world, "jobs", "list", "-o", "name")
    assert r.out == "job/atlas-fr-news\n"
    async with world.person("claire", Role.STEWARD, "FR") as fr:
        await fr.call("ApproveJob", jpb.ApproveJobRequest(name="atlas-fr-news", country="FR"))
    r = await cli(world, "jobs", "status", "atlas-fr-news", "--watch", "-o", "json", "--timeout", "30s")
    assert r.code == 0, (r.out, r.err)
    frames = [json.loads(line) for line in r.out.splitlines()]
    assert frames[-1]["phase"] == "Succeeded" and frames[-1]["sites"] == ["fr-par-1"]
    assert frames[-1]["progress"]["output_digest"].startswith("sha256:")
    assert_one_line_error(await cli(world, "jobs", "cancel", "atlas-fr-news"), "nothing to cancel")


@pytest.mark.parametrize(
    ("change", "needle"),
    [
        (("purpose: fine-tune", "purpose: train"), "spec.purpose"),
        (("maxHours: 12", "maxHours: 99999"), "spec.resources.maxHours"),
        (("accelerators: 8", "accelerators: many"), "spec.resources.accelerators"),
        (("kind: LocalizationJob", "kind: Job"), "kind"),
        (("base: atlas-1.2.0 ", "base: atlas-9 "), "spec.base"),
    ],
)
async def test_a_bad_manifest_is_one_line_naming_the_field(
    world: JobWorld, change: tuple[str, str], needle: str
) -> None:
    text = EXAMPLE.read_text()
    assert change[0] in text
    r = await cli(world, "jobs", "create", "-f", "-", stdin=text.replace(*change))
    assert_one_line_error(r, needle)
    assert not (await world.admin.call("ListJobs", jpb.ListJobsRequest())).jobs  # nothing half-stored
