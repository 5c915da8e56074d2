"""The status frame of `rollouts status`: elapsed time, bake countdown, gate values against their
thresholds, and a wave's sites counted by state beyond 10 (all of them with -o wide)."""

from __future__ import annotations

import datetime as dt
import re

from controlplane.api.v1 import rollouts_pb2 as opb
from controlplane.client.rollout_view import change_key, render_status, rollout_view
from controlplane.server import convert

NOW = dt.datetime(2030, 1, 1, 12, 0, 0, tzinfo=dt.UTC)


def rollout(sites: int) -> opb.Rollout:
    t = NOW.timestamp()
    states = ["Ready"] * (sites - 3) + ["Deploying", "Refused", "Lost"]
    wave = opb.RolloutWave(
        name="all",
        phase="Baking",
        bake_until=convert.ts(t + 95),
        gates=[
            opb.GateMeasurement(
                name="minReadyRatio", value=1.0, threshold=1.0, outcome="pass", measured=True
            ),
            opb.GateMeasurement(
                name="maxErrorRate", value=0.004, threshold=0.01, outcome="pass", measured=True
            ),
            opb.GateMeasurement(
                name="minSafetyScore",
                threshold=0.9,
                outcome="inconclusive",
                detail="safety score not measured at s-1",
            ),
        ],
        sites=[
            opb.RolloutSite(
                site=f"s-{i}", country="FR", state=st, reason="policy: no" if st == "Refused" else ""
            )
            for i, st in enumerate(states)
        ],
    )
    return opb.Rollout(
        spec=opb.RolloutSpec(name="r", release="atlas-1.3.0"),
        phase="Progressing",
        message="wave all: Baking",
        waves=[wave],
        created_at=convert.ts(t - 125),
    )


def test_frame_shows_elapsed_countdown_and_each_gate_against_its_threshold() -> None:
    frame = render_status(rollout_view(rollout(5)), NOW)
    assert frame.splitlines()[0] == "rollout r (atlas-1.3.0): Progressing (elapsed 2m05s) - wave all: Baking"
    assert "bake 1m35s left" in frame
    assert re.search(r"maxErrorRate\s+0\.004 <= 0\.010\s+pass", frame), frame
    assert re.search(r"minSafetyScore\s+- >= 0\.90\s+inconclusive\s+safety score not measured at s-1", frame)
    assert "s-3" in frame and "policy: no" in frame  # 5 sites: one line each


def test_more_than_ten_sites_are_counted_by_state_unless_wide() -> None:
    frame = render_status(rollout_view(rollout(40)), NOW)
    assert "37 Ready, 1 Deploying, 1 Refused, 1 Lost" in frame
    assert "s-0 " not in frame and "s-38" in frame and "policy: no" in frame  # the problems still named
    wide = render_status(rollout_view(rollout(40)), NOW, wide=True)
    assert sum(1 for line in wide.splitlines() if "s-" in line) >= 40


def test_a_watch_redraws_only_when_something_but_the_write_time_changed() -> None:
    a, b = rollout(5), rollout(5)
    b.updated_at.FromSeconds(12345)
    assert change_key(rollout_view(a)) == change_key(rollout_view(b))
    b.waves[0].sites[0].state = "Lost"
    assert change_key(rollout_view(a)) != change_key(rollout_view(b))
