"""stargatectl rollouts/releases as real processes against a control plane with simulated sites:
``-f -``, ``-o name``/``-o wide``, delete, promote, and ``status --watch`` exit codes, timeout,
one frame (or one JSON line) per change."""

from __future__ import annotations

import asyncio
import itertools
import json
import sys
from asyncio.subprocess import PIPE
from pathlib import Path

from controlplane.api.v1 import rollouts_pb2 as opb
from operators.agent.backend import SimHealth
from operators.agent.policy import LocalPolicy
from tests.integration.test_rollouts import Rig, release, rig, spec
from tests.support.procs import Result

__all__ = ["rig"]  # the fixture
EXAMPLES = Path(__file__).resolve().parents[2] / "docs" / "examples"

ROLLOUT = """\
apiVersion: federation.stargate.io/v1alpha1
kind: Rollout
metadata: {{name: {name}}}
spec:
  release: {release}
  placement: {{replicasPerSite: 1}}
  waves:
    - {{name: canary, sites: 1, bake: {bake}}}
    - {{name: rest, percent: 100, bake: 0s}}
  gates: {{maxErrorRate: 0.05, interval: 1s, timeout: 30s}}
"""


async def cli(rig: Rig, *args: str, stdin: str | None = None, timeout: float = 60) -> Result:
    cmd = [sys.executable, "-m", "controlplane.cli.main", "--config", str(rig.fed.dir / "stargatectl.yaml")]
    proc = await asyncio.create_subprocess_exec(
        *cmd,
        "--server",
        rig.fed.address,
        *args,
        stdin=PIPE if stdin is not None else None,
        stdout=PIPE,
        stderr=PIPE,
    )
    out, err = await asyncio.wait_for(
        proc.communicate(stdin.encode() if stdin is not None else None), timeout
    )
    return Result(int(proc.returncode or 0), out.decode(), err.decode())


async def test_watch_exits_0_on_completed_with_one_json_line_per_change(rig: Rig, tmp_path: Path) -> None:
    await rig.sites()
    await rig.publish(release("atlas-1.2.0", "1.2.0"))
    # A 3 s bake: the watching process (started after the create returns, ~1-2 s to start on a
    # loaded 2-core machine) must see the rollout before it completes.
    manifest = ROLLOUT.format(name="atlas-1.2.0-all", release="atlas-1.2.0", bake="3s")
    r = await cli(rig, "rollouts", "create", "-f", "-", "-o", "name", stdin=manifest)
    assert (r.code, r.out) == (0, "rollout/atlas-1.2.0-all\n"), r.err
    r = await cli(rig, "rollouts", "status", "atlas-1.2.0-all", "-w", "-o", "json")
    assert r.code == 0, r.err
    lines = r.out.splitlines()
    frames = [json.loads(line) for line in lines]  # every line is one whole JSON document
    assert frames[-1]["phase"] == "Completed"
    assert all(a != b for a, b in itertools.pairwise(frames)), "a line repeated an unchanged state"
    # Streamed by the Watch rpc over seconds of bake, printed only on change.
    assert 2 <= len(lines) < 20, len(lines)
    baking = [f for f in frames if f["waves"][0]["phase"] == "Baking"]
    assert baking and baking[0]["waves"][0]["gates"][0]["name"] == "minReadyRatio"
    r = await cli(rig, "rollouts", "list", "-o", "name")
    assert r.out == "rollout/atlas-1.2.0-all\n"
    r = await cli(rig, "rollouts", "list", "-o", "wide")
    assert r.code == 0 and "READY" in r.out and "6/6" in r.out, r.out
    r = await cli(rig, "rollouts", "status", "atlas-1.2.0-all")  # the table frame
    assert "(elapsed " in r.out and "maxErrorRate" in r.out and "0.000 <= 0.050" in r.out, r.out


async def test_watch_exits_non_zero_on_rolled_back_and_on_failed(rig: Rig) -> None:
    await rig.sites()
    await rig.publish(release("atlas-1.1.0", "1.1.0"))
    for s in rig.fed.sites.values():
        s.backend.health["atlas-1.1.0"] = SimHealth(error_rate=0.5)
    async with rig.fed.client() as admin:
        await admin.call("CreateRollout", opb.CreateRolloutRequest(spec=spec("bad", "atlas-1.1.0")))
    r = await cli(rig, "rollouts", "status", "bad", "--watch", "--interval", "0.1")
    assert r.code == 1, (r.out, r.err)
    heads = [line for line in r.out.splitlines() if line.startswith("rollout bad ")]
    assert heads[-1].startswith("rollout bad (atlas-1.1.0): RolledBack"), heads
    assert "fail" in r.out and "error rate 0.500 > 0.01" in r.out
    # Refusal everywhere: Failed, never "Completed", and a non-zero exit.
    for s in rig.fed.sites.values():
        s.agent.policy = LocalPolicy(trusted_publisher_keys={b"\1" * 32})
    await rig.publish(release("atlas-1.2.0", "1.2.0"))
    async with rig.fed.client() as admin:
        await admin.call("CreateRollout", opb.CreateRolloutRequest(spec=spec("nobody", "atlas-1.2.0")))
    r = await cli(rig, "rollouts", "status", "nobody", "-w", "--interval", "0.1")
    assert r.code == 1 and "Failed" in r.out and "Completed" not in r.out, r.out


async def test_watch_times_out_with_exit_3_and_promote_moves_it_on(rig: Rig) -> None:
    await rig.sites()
    await rig.publish(release("atlas-1.2.0", "1.2.0"))
    manifest = ROLLOUT.format(name="slow", release="atlas-1.2.0", bake="1h")
    assert (await cli(rig, "rollouts", "create", "-f", "-", stdin=manifest)).code == 0
    await rig.wait("slow", lambda r: r.waves[0].phase == "Baking")
    r = await cli(rig, "rollouts", "status", "slow", "-w", "--timeout", "1s", "--interval", "0.1")
    assert r.code == 3 and "timed out after 1s" in r.err and "Baking" in r.out, (r.out, r.err)
    assert "bake 59m" in r.out  # the countdown
    assert (await cli(rig, "rollouts", "promote", "slow", "--wave", "canary")).code == 2  # --reason required
    r = await cli(
        rig, "rollouts", "promote", "slow", "--wave", "canary", "--reason", "reviewed", "-o", "json"
    )
    assert r.code == 0, r.err
    assert r.json()["waves"][0]["promoted"].endswith(": reviewed")
    r = await cli(rig, "rollouts", "status", "slow", "-w", "--timeout", "30s", "--interval", "0.1")
    assert r.code == 0, (r.out, r.err)


async def test_releases_with_dots_delete_and_output_modes(rig: Rig, tmp_path: Path) -> None:
    await rig.sites()
    key = tmp_path / "acme"
    assert (await cli(rig, "releases", "keygen", "--out", str(key))).code == 0
    assert (await cli(rig, "publishers", "add", "--name", "acme", "--public-key", f"{key}.pub")).code == 0
    text = (EXAMPLES / "release.yaml").read_text()
    r = await cli(
        rig,
        "releases",
        "create",
        "-f",
        "-",
        "--sign-key",
        f"{key}.key",
        "--publisher",
        "acme",
        "-o",
        "name",
        stdin=text,
    )
    assert (r.code, r.out) == (0, "release/atlas-1.2.0\n"), r.err
    r = await cli(rig, "releases", "list", "-o", "wide")
    assert "DIGEST" in r.out and "allow FR,DE,JP" in r.out, r.out
    manifest = ROLLOUT.format(name="eu", release="atlas-1.2.0", bake="1h")
    assert (await cli(rig, "rollouts", "create", "-f", "-", stdin=manifest)).code == 0
    r = await cli(rig, "releases", "delete", "atlas-1.2.0")
    assert r.code == 1 and "referenced by rollouts eu" in r.err, r.err
    await rig.wait("eu", lambda r: r.waves[0].phase == "Baking")
    r = await cli(rig, "rollouts", "delete", "eu")
    assert r.code == 1 and "abort it first" in r.err, r.err
    assert (await cli(rig, "rollouts", "abort", "eu", "--reason", "enough")).code == 0
    assert (await cli(rig, "rollouts", "delete", "eu", "-o", "name")).out == "rollout/eu\n"
    r = await cli(rig, "releases", "delete", "atlas-1.2.0")  # the canary still runs it
    assert r.code == 1 and "running at sites" in r.err, r.err
    bad = ROLLOUT.format(name="Bad_Name", release="atlas-1.2.0", bake="0s")
    r = await cli(rig, "rollouts", "plan", "-f", "-", stdin=bad)
    assert r.code == 1 and "metadata.name" in r.err and "DNS subdomain" in r.err and "Traceback" not in r.err
