"""A leader failover in the middle of a rollout (replica processes on a 3-member etcd) resumes it
without losing or repeating a directive."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from controlplane.api.v1 import release_pb2 as rpb
from controlplane.api.v1 import rollouts_pb2 as opb
from controlplane.domain import releases as rel
from tests.support.replicas import DIGEST, harness

pytestmark = pytest.mark.slow


async def test_failover_mid_rollout_resumes_it_exactly_once(tmp_path: Path) -> None:
    async with harness(tmp_path) as h:
        leader, follower = await h.start_pair()
        both = [leader, follower]
        for i in range(4):
            await h.add_site(f"fr-s-{i}", both)
        key = Ed25519PrivateKey.generate()
        pub = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        r = rpb.ModelRelease(name="atlas-2", model="atlas", version="2.0.0", digest=DIGEST, risk_tier=1)
        spec = opb.RolloutSpec(
            name="ha",
            release="atlas-2",
            placement=opb.Placement(replicas_per_site=1),
            waves=[
                opb.Wave(name="canary", sites=1, bake_seconds=1.5),
                opb.Wave(name="half", percent=50, bake_seconds=1.5),
                opb.Wave(name="all", percent=100),
            ],
            gates=opb.Gates(min_ready_ratio=1.0, timeout_seconds=30),
        )
        async with h.client(*both) as c:
            await c.call("AddPublisher", opb.AddPublisherRequest(name="acme", public_key=pub))
            await c.call(
                "CreateRelease",
                opb.CreateReleaseRequest(
                    signed=rpb.SignedRelease(release=r, publisher="acme", signature=rel.sign(key, r))
                ),
            )
            await c.call("CreateRollout", opb.CreateRolloutRequest(spec=spec))
            deadline = time.monotonic() + 20
            while True:  # kill the leader while the second wave is under way
                ro = (await c.call("GetRollout", opb.GetRolloutRequest(name="ha"))).rollout
                if ro.waves[0].phase == "Completed" and ro.waves[1].phase in ("Progressing", "Baking"):
                    break
                assert time.monotonic() < deadline, ro
                await asyncio.sleep(0.05)
        os.kill(leader.pid, signal.SIGKILL)
        await h.wait_leader(follower, expect=follower.rid, timeout=10)
        async with h.client(follower) as c:
            deadline = time.monotonic() + 30
            while True:
                ro = (await c.call("GetRollout", opb.GetRolloutRequest(name="ha"))).rollout
                if ro.phase in ("Completed", "RolledBack", "Paused", "Aborted"):
                    break
                assert time.monotonic() < deadline, ro
                await asyncio.sleep(0.1)
            assert ro.phase == "Completed", ro.message
            audit = (await h.audit(c)).events
        for sid, site in h.sites.items():
            assert site.backend.items["atlas"].version == "2.0.0", sid
            assert h.deploy_calls[(sid, "atlas")] == 1, sid  # never applied twice
            deploys = [e for e in site.agent.record.entries if e.kind == "Deploy" and e.outcome == "applied"]
            assert len(deploys) == 1, sid  # never queued twice (the other is the publisher set)
        actors = {e.actor for e in audit if e.action.startswith("rollout.wave")}
        assert f"controller/rollouts@{follower.rid}" in actors  # the survivor finished it
