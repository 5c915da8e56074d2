"""Sites check what they are told (issue 13 part 5), with a real federation over mTLS, simulated
sites running the real agent, and a real `stargatectl witness run` process:

- a site shown a forked checkpoint (the log key signs a second root for the size it holds) alarms,
  keeps the alarm across a restart, and refuses Deploys until an operator clears it;
- a site with minWitnesses 1 refuses a Deploy whose checkpoint its witness did not cosign, and
  applies one that a running witness cosigned;
- a halt applies at once; one whose event is never proven alarms after the bound, one proven
  does not.
"""

from __future__ import annotations

import asyncio
import base64
import signal
import time
from collections.abc import Callable
from pathlib import Path

from controlplane.api.v1 import federation_pb2 as fpb
from controlplane.api.v1 import safety_pb2 as xpb
from controlplane.api.v1 import types_pb2 as tpb
from controlplane.domain.checkpoints import Checkpoint
from controlplane.domain.notes import sign_note
from controlplane.domain.records import checkpoint_key
from controlplane.services.checkpoints import CheckpointRecord
from operators.agent.policy import LocalPolicy
from operators.agent.site_log import SiteLog
from tests.support.federation import Federation
from tests.support.procs import CLI, run
from tests.support.requests import deploy as send_deploy

DIGEST = "sha256:" + "ab" * 32


async def _until(what: Callable[[], object], timeout: float, why: str) -> None:
    end = time.monotonic() + timeout
    while not what():
        if time.monotonic() > end:
            raise AssertionError(why)
        await asyncio.sleep(0.05)


def _deploy(site: str, name: str) -> fpb.DeployRequest:
    payload = tpb.DeployPayload(
        deployment_name=name, model="atlas", version="1.2.0", digest=DIGEST, replicas=1
    )
    return fpb.DeployRequest(site_id=site, deploy=payload)


async def _outcome(fed: Federation, site: str, directive_id: str, timeout: float = 20) -> tpb.DirectiveRecord:
    end = time.monotonic() + timeout
    async with fed.client() as c:
        while True:
            recs = (await c.call("ListDirectives", fpb.ListDirectivesRequest(site_id=site))).directives
            rec = next((r for r in recs if r.directive.id == directive_id), None)
            if rec is not None and rec.state != tpb.DIRECTIVE_STATE_PENDING:
                return rec
            assert time.monotonic() < end, f"directive {directive_id} still pending"
            await asyncio.sleep(0.1)


async def test_a_site_shown_a_forked_checkpoint_alarms_and_refuses_deploys(fed: Federation) -> None:
    site = await fed.add_site("fr-par-1", "FR")
    sl = site.agent.log
    assert (site.directory / "log.vkey").exists()  # given at enrollment
    await _until(lambda: sl.view.size > 0, 10, "the site never took a checkpoint from a beacon")
    async with fed.client() as c:  # a Deploy with its proof is applied
        d = (await send_deploy(c, _deploy("fr-par-1", "one"))).directive
    assert (await _outcome(fed, "fr-par-1", d.id)).state == tpb.DIRECTIVE_STATE_ACKED
    await asyncio.sleep(1.5)  # the newest checkpoint covers everything so far
    rt = fed.cp.runtime  # type: ignore[union-attr]
    held = (await rt.checkpoints.retained())[-1].size
    # Someone with the store and the log key serves a second history: another root for that size.
    key = rt.checkpoints.key
    forked = sign_note(Checkpoint(key.origin, held, b"\x07" * 32).body(), key.signer)
    rec = CheckpointRecord(held, base64.b64encode(b"\x07" * 32).decode(), forked, time.time())
    await fed.store.put(checkpoint_key(held), rec.to_json())
    rt.log_proofs._latest = (-1e9, [])
    await site.stop()
    site.start()  # a new link shows it the newest checkpoint again
    await _until(lambda: bool(sl.alarm), 10, "the site did not alarm on a forked checkpoint")
    assert "two different roots for size" in sl.alarm or f"checkpoint {held} does not extend" in sl.alarm, (
        sl.alarm
    )
    async with fed.client() as c:
        d = (await send_deploy(c, _deploy("fr-par-1", "two"))).directive
    rec2 = await _outcome(fed, "fr-par-1", d.id, timeout=40)
    assert rec2.state == tpb.DIRECTIVE_STATE_REJECTED and "alarmed" in rec2.reason, rec2.reason
    # Persistent: a restarted site still alarms (its state file) until an operator clears it.
    await site.stop()
    again = SiteLog("fr-par-1", site.directory, LocalPolicy())
    assert again.alarm == sl.alarm
    again.clear_alarm()
    assert SiteLog("fr-par-1", site.directory, LocalPolicy()).alarm == ""


async def test_min_witnesses_refuses_an_uncosigned_deploy_and_applies_a_cosigned_one(
    fed: Federation, tmp_path: Path
) -> None:
    fed.cp.runtime.deploy_proof_wait = 1.0  # type: ignore[union-attr]
    cfg = fed.dir / "stargatectl.yaml"
    wkey = tmp_path / "w.key"
    r = await asyncio.to_thread(
        run, "witness", "keygen", "--name", "witness.fr/w1", "--key", str(wkey), "-o", "json"
    )
    vkey = str(r.json()["verifier_key"])
    policy = LocalPolicy(witnesses=[vkey], min_witnesses=1)
    site = await fed.add_site("fr-par-1", "FR", policy=policy)
    async with fed.client() as c:
        d = (await send_deploy(c, _deploy("fr-par-1", "one"))).directive
    rec = await _outcome(fed, "fr-par-1", d.id)
    assert rec.state == tpb.DIRECTIVE_STATE_REJECTED, rec
    assert "cosigned by 0 of the trusted witnesses" in rec.reason or "no inclusion proof" in rec.reason, (
        rec.reason
    )
    assert "one" not in site.backend.items
    # The country runs its witness (a real process); the federation waits for its cosignature.
    add = await asyncio.to_thread(run, "--server", fed.address, "witness", "add", "--vkey", vkey, config=cfg)
    assert add.code == 0, add.err
    args = ["witness", "run", "--name", "witness.fr/w1", "--key", str(wkey), "--state", str(tmp_path / "ws")]
    proc = await asyncio.create_subprocess_exec(
        *[
            *CLI,
            "--config",
            str(cfg),
            "--server",
            fed.address,
            *args,
            "--log-key",
            str(fed.dir / "log.vkey"),
            "--interval",
            "1s",
        ],
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        fed.cp.runtime.deploy_proof_wait = 30.0  # type: ignore[union-attr]
        async with fed.client() as c:
            d = (await send_deploy(c, _deploy("fr-par-1", "two"))).directive
        rec = await _outcome(fed, "fr-par-1", d.id, timeout=40)
        assert rec.state == tpb.DIRECTIVE_STATE_ACKED, (rec.reason, proc.returncode)
        assert "two" in site.backend.items and site.agent.log.alarm == ""
    finally:
        if proc.returncode is None:
            proc.send_signal(signal.SIGTERM)
        await proc.wait()


async def _halt(fed: Federation, release: str) -> str:
    async with fed.client() as c:
        resp = await c.call("Halt", xpb.HaltRequest(release=release, scope="global", reason="test"))
    return str(resp.action.id)


async def test_a_halt_applies_at_once_and_alarms_when_never_proven(fed: Federation, tmp_path: Path) -> None:
    # The site requires a witness nobody runs: no checkpoint will ever be cosigned for it.
    r = await asyncio.to_thread(
        run, "witness", "keygen", "--name", "w.x/w", "--key", str(tmp_path / "k"), "-o", "json"
    )
    unproven = await fed.add_site(
        "fr-par-1", "FR", policy=LocalPolicy(witnesses=[r.json()["verifier_key"]], min_witnesses=1)
    )
    proven = await fed.add_site("de-fra-1", "DE")
    for s in (unproven, proven):
        s.agent.log.halt_bound = 1.5
    events: list[tuple[str, dict[str, object]]] = []
    unproven.agent.log.on_event = lambda kind, data: events.append((kind, data))
    started = time.monotonic()
    halt_id = await _halt(fed, "atlas-1")
    await _until(lambda: halt_id in unproven.agent.safety.state.accepted_ids, 5, "the halt was not applied")
    applied = time.monotonic() - started
    assert applied < 1.5, applied  # at once, before any proof
    await _until(lambda: bool(unproven.agent.log.alarm), 10, "no alarm for a halt never proven")
    assert f"halt {halt_id} was not proven in the log within 1.5 s" in unproven.agent.log.alarm
    assert events and events[0][0] == "log_alarm"
    await _until(lambda: halt_id in proven.agent.safety.state.accepted_ids, 5, "the halt was not applied")
    await _until(lambda: not proven.agent.log.view.pending_halts, 10, "the halt was never proven")
    assert proven.agent.log.alarm == ""
