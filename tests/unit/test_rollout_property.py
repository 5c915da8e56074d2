"""The canary no one can skip, as a property: random approval orders, refusals and losses over
6-40 sites, and no site of wave k+1 ever leaves Pending before wave k passed with evidence.

Each example drives the pure rollout step (tests/support/rollout_world.py) through a random
schedule of events; after every step the invariants are checked against what the sites run.
"""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from controlplane.api.v1 import rollouts_pb2 as opb
from controlplane.domain.rollouts import assign_waves
from tests.support.rollout_world import DIGEST, SimSite, World, gates, record

COUNTRIES = ["BR", "DE", "FR", "JP", "US"]


@st.composite
def scenarios(draw: st.DrawFn) -> dict:
    n = draw(st.integers(6, 40))
    countries = COUNTRIES[: draw(st.integers(1, len(COUNTRIES)))]
    sites = [(f"s{i}", countries[i % len(countries)]) for i in range(n)]
    refusing = draw(st.sets(st.sampled_from([s for s, _ in sites]), max_size=n))
    steward = draw(st.booleans())
    order = draw(st.permutations(countries))
    # Per country: after how many steps its steward approves (None: never).
    approve_at = {c: draw(st.one_of(st.none(), st.integers(0, 60))) for c in order} if steward else {}
    losses = draw(
        st.lists(
            st.tuples(st.sampled_from([s for s, _ in sites]), st.integers(0, 80), st.integers(1, 40)),
            max_size=8,
        )
    )
    return {
        "sites": sites,
        "refusing": refusing,
        "approve_at": approve_at,
        "losses": losses,
        "steward": steward,
        "bake": draw(st.sampled_from([0.0, 3.0])),
    }


def build(sc: dict) -> World:
    waves_spec = [
        opb.Wave(name="c", sites=1),
        opb.Wave(name="h", percent=50),
        opb.Wave(name="a", percent=100),
    ]
    sizes = assign_waves(waves_spec, len(sc["sites"]))
    waves, i = [], 0
    for n in sizes:
        waves.append(sc["sites"][i : i + n])
        i += n
    needs = sorted({c for _, c in sc["sites"]}) if sc["steward"] else []
    rec = record(waves, bake=sc["bake"], needs=needs, g=gates(progress_deadline_seconds=10_000))
    sims = [SimSite(s, c, refuses="policy: no" if s in sc["refusing"] else "") for s, c in sc["sites"]]
    return World(rec, sims)


def runs_release(w: World, site: str) -> bool:
    return w.sites[site].running.get("atlas", ("", "", "", 0))[1] == DIGEST


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenarios())
def test_no_wave_starts_before_the_one_before_passed_with_evidence(sc: dict) -> None:
    w = build(sc)
    passed_with_evidence: dict[int, bool] = {}
    for t in range(160):
        for c, at in sc["approve_at"].items():
            if at is not None and t == at and c not in w.rec.approved:
                w.rec = w.rec.replace(approved=sorted({*w.rec.approved, c}))
        for site, start, length in sc["losses"]:
            w.sites[site].reachable = not start <= t < start + length
        before = [wave["phase"] for wave in w.rec.waves]
        w.tick()
        for k, wave in enumerate(w.rec.waves):
            if wave["phase"] == "Completed" and before[k] != "Completed":
                # The moment wave k passed: at least one of its sites ran the release, verified.
                sites = [s["site"] for s in wave["sites"]]
                passed_with_evidence[k] = not sites or any(
                    s.get("verified") and runs_release(w, s["site"]) for s in wave["sites"]
                )
                assert passed_with_evidence[k], (k, wave)
        for k in range(1, len(w.rec.waves)):
            left = [s["site"] for s in w.rec.waves[k]["sites"] if s["state"] != "Pending"]
            if left:
                assert all(passed_with_evidence.get(j) for j in range(k)), (k, left, w.rec.message)
                assert all(not runs_release(w, s) for s in left) or passed_with_evidence.get(k - 1)
        if w.rec.phase in ("Completed", "Failed", "RolledBack"):
            break
    if w.rec.phase == "Completed":
        # Completed means evidence: some site runs it, and every site it counts as Ready does.
        ready = [s for s, v in w.states().items() if v == "Ready"]
        assert ready and all(runs_release(w, s) for s in ready)
    if len(sc["refusing"]) == len(sc["sites"]):
        assert w.rec.phase != "Completed"
    if (
        not sc["refusing"]
        and all(at is not None for at in sc["approve_at"].values())
        and all(start + length < 120 for _, start, length in sc["losses"])
    ):
        assert w.rec.phase == "Completed", (w.rec.message, w.states())
