"""The rollout step as a pure function: evidence, analysis during the bake, outcomes that match
the sites. Each case drives ``tests.support.rollout_world.World`` (sites that apply, refuse, get
lost and report) and asserts what the rollout says against what the sites run."""

from __future__ import annotations

from controlplane.domain import gates as g
from controlplane.domain.gates import GateSpec, Probe, Report, SiteView
from controlplane.domain.rollout_step import Deploy
from tests.support.rollout_world import DIGEST, OLD_DIGEST, SimSite, World, gates, record

FR, DE = "FR", "DE"


def world(waves: list[list[tuple[str, str]]], sites: list[SimSite] | None = None, **kw: object) -> World:
    names = {s for w in waves for s, _ in w}
    sites = sites or []
    have = {s.site_id for s in sites}
    sites += [SimSite(s, c) for w in waves for s, c in w if s not in have]
    assert names == {s.site_id for s in sites}
    return World(record(waves, **kw), sites)  # type: ignore[arg-type]


def test_happy_path_completes_only_with_evidence_from_every_wave() -> None:
    w = world([[("a", FR)], [("b", DE), ("c", FR)]])
    w.run(lambda w: w.rec.phase == "Completed")
    assert set(w.states().values()) == {"Ready"}
    assert all(s.get("verified") for wave in w.rec.waves for s in wave["sites"])
    assert all(s.running["atlas"][1] == DIGEST for s in w.sites.values())
    assert w.last is not None and "rollout.complete" in [a.action for a in w.last.audits]


def test_a_later_wave_never_starts_while_the_canary_awaits_approval() -> None:
    w = world([[("a", FR)], [("b", DE), ("c", DE)]], needs=[FR, DE])
    w.rec = w.rec.replace(approved=[DE])  # only the later wave's country approved
    for _ in range(30):
        w.tick()
    assert w.states() == {"a": "WaitingForApproval", "b": "Pending", "c": "Pending"}
    assert w.rec.phase == "WaitingForApproval" and w.wave(1)["phase"] == "Pending"
    assert not [d for k, d in w.log.items() if not k.startswith("prev-")]  # nothing was sent
    w.rec = w.rec.replace(approved=[DE, FR])
    w.run(lambda w: w.rec.phase == "Completed")


def test_a_wave_whose_sites_all_refuse_fails_the_rollout_with_their_reasons() -> None:
    sites = [SimSite("b", DE, refuses="policy: risk tier 3"), SimSite("c", FR, refuses="capacity: none")]
    w = world([[("a", FR)], [("b", DE), ("c", FR)]], sites)
    w.run(lambda w: w.rec.phase == "Failed")
    assert "every site refused" in w.rec.message and "policy: risk tier 3" in w.rec.message
    assert w.states() == {"a": "Ready", "b": "Refused", "c": "Refused"}


def test_refusal_everywhere_never_completes() -> None:
    sites = [SimSite(s, FR, refuses="policy: no") for s in "abc"]
    w = world([[("a", FR)], [("b", FR), ("c", FR)]], sites)
    w.run(lambda w: w.rec.phase in ("Completed", "Failed"))
    assert w.rec.phase == "Failed" and w.wave(1)["phase"] == "Pending"  # wave 2 never started
    assert w.states() == {"a": "Refused", "b": "Pending", "c": "Pending"}


def test_lost_sites_wait_while_the_others_give_evidence() -> None:
    sites = [SimSite("b", DE, reachable=False)]
    w = world([[("a", FR), ("b", DE)], [("c", FR)]], sites)
    w.run(lambda w: w.wave(0)["phase"] == "Completed")  # a's evidence passes the wave
    w.run(lambda w: w.states()["c"] == "Ready")
    assert w.states()["b"] == "Lost" and w.rec.phase == "Progressing" and "1 sites lost" in w.rec.message
    for _ in range(20):
        w.tick()
    assert w.rec.phase != "Completed"  # never while a site is lost
    w.sites["b"].reachable = True
    w.run(lambda w: w.rec.phase == "Completed")
    assert w.sites["b"].running["atlas"][1] == DIGEST


def test_a_stale_report_or_another_digest_is_no_evidence() -> None:
    report = Report("atlas", "atlas-1.3.0", DIGEST, "1.3.0", 1, 1, False, True, 0.0, 10.0, None)
    fresh = SiteView("a", True, 7, (report,))
    assert fresh.running("atlas-1.3.0", DIGEST, after_sequence=7) is report
    assert fresh.running("atlas-1.3.0", DIGEST, after_sequence=8) is None  # before the Deploy
    assert fresh.running("atlas-1.3.0", OLD_DIGEST, after_sequence=7) is None
    assert fresh.running("atlas-1.3.0", DIGEST, after_sequence=0) is None  # no Deploy known yet
    assert SiteView("a", False, 7, (report,)).running("atlas-1.3.0", DIGEST, 7) is None  # unreachable


def test_unmeasured_metrics_are_inconclusive_then_pause_after_the_timeout() -> None:
    sites = [SimSite("a", FR, error_rate=None)]
    w = world([[("a", FR)]], sites, g=gates(max_error_rate=0.01, timeout_seconds=20))
    w.run(lambda w: w.wave(0)["last_outcome"] == "inconclusive")
    assert "error rate not measured at a" in w.wave(0)["gate"]
    w.run(lambda w: w.rec.phase == "Paused")
    assert "paused for a human" in w.rec.message and w.rec.paused_from == "Progressing"
    assert w.last is not None and [a.action for a in w.last.audits] == ["rollout.gate.inconclusive"]


def test_a_failing_metric_rolls_back_after_failure_limit_measurements_one_interval_apart() -> None:
    sites = [SimSite("a", FR, error_rate=0.2)]
    w = world([[("a", FR)], [("b", DE)]], sites, g=gates(max_error_rate=0.01, failure_limit=2))
    w.run(lambda w: w.wave(0)["failures"] == 1)
    t1 = w.now
    w.run(lambda w: w.rec.phase == "RollingBack", steps=100)
    assert w.wave(0)["failures"] == 3 and w.now - t1 >= 2 * 10  # the interval between measurements
    assert "error rate 0.200 > 0.01 at a" in w.rec.message
    w.run(lambda w: w.rec.phase == "RolledBack")
    assert w.states() == {"a": "RolledBack", "b": "Skipped"}
    assert w.sites["a"].running["atlas"][1] == OLD_DIGEST  # the site runs the previous release again


def test_readiness_not_reached_within_the_progress_deadline_fails_the_gate() -> None:
    sites = [SimSite("a", FR, ready=False)]
    w = world([[("a", FR)]], sites, g=gates(progress_deadline_seconds=30))
    w.run(lambda w: w.wave(0)["last_outcome"] == "waiting")
    w.run(lambda w: w.rec.phase == "RollingBack", steps=60)
    assert "not ready after progressDeadline 30s at a" in w.rec.message


def test_a_rejected_restore_is_rollback_failed_and_pauses_naming_the_site() -> None:
    sites = [SimSite("a", FR, error_rate=0.5, refuses_restore="policy: version 1.2.0 withdrawn")]
    w = world([[("a", FR), ("b", FR)]], sites, g=gates(max_error_rate=0.01))
    w.run(lambda w: w.rec.phase == "Paused")
    assert w.states() == {"a": "RollbackFailed", "b": "RolledBack"}
    assert "rollback failed at a (policy: version 1.2.0 withdrawn)" in w.rec.message
    assert w.rec.paused_from == "RollingBack"
    assert w.sites["a"].running["atlas"][1] == DIGEST  # still the new release: never "RolledBack"


def test_an_acked_restore_is_rolled_back_only_once_the_site_reports_the_previous_release() -> None:
    w = world([[("a", FR)]], [SimSite("a", FR, error_rate=0.5)], g=gates(max_error_rate=0.01))
    w.run(lambda w: w.rec.phase == "RollingBack")
    w.sites["a"].reachable = False  # the restore waits in the queue
    for _ in range(5):
        w.tick()
    assert w.states() == {"a": "RollingBack"}
    w.sites["a"].reachable = True
    w.run(lambda w: w.rec.phase == "RolledBack")
    assert w.sites["a"].running["atlas"][1] == OLD_DIGEST


def test_an_acked_restore_the_site_does_not_report_is_never_rolled_back() -> None:
    w = world(
        [[("a", FR)]], [SimSite("a", FR, error_rate=0.5, restore_noop=True)], g=gates(max_error_rate=0.01)
    )
    w.run(lambda w: w.rec.phase == "RollingBack")
    for _ in range(10):
        w.tick()
    restore = w.log[w.rec.waves[0]["sites"][0]["rollback_id"]]
    assert restore.state == "Acked" and w.sites["a"].running["atlas"][1] == DIGEST
    assert w.states() == {"a": "RollingBack"} and w.rec.phase == "RollingBack"
    assert "waiting for the site to report the previous release" in w.rec.waves[0]["sites"][0]["reason"]
    w.sites["a"].running["atlas"] = ("atlas-1.2.0", OLD_DIGEST, "1.2.0", 1)  # now it does
    w.run(lambda w: w.rec.phase == "RolledBack")


def test_late_approval_joins_its_wave_after_the_others_and_is_gated_too() -> None:
    sites = [SimSite("b", DE, error_rate=0.3)]
    w = world([[("a", FR)], [("b", DE), ("c", FR)]], sites, needs=[FR, DE], g=gates(max_error_rate=0.05))
    w.rec = w.rec.replace(approved=[FR])
    w.run(lambda w: w.rec.phase == "WaitingForApproval" and w.wave(1)["phase"] == "Completed")
    assert w.states() == {"a": "Ready", "b": "WaitingForApproval", "c": "Ready"}
    w.rec = w.rec.replace(approved=[FR, DE])
    w.run(lambda w: w.rec.phase in ("Completed", "RollingBack"))
    assert w.rec.phase == "RollingBack" and "error rate 0.300 > 0.05 at b" in w.rec.message


def test_measurements_during_the_bake_and_one_at_its_end() -> None:
    w = world([[("a", FR)], [("b", DE)]], bake=25.0)
    w.run(lambda w: w.wave(0)["phase"] == "Baking")
    start, n = w.now, w.wave(0)["measurements"]
    w.run(lambda w: w.wave(0)["phase"] == "Completed")
    assert w.now - start >= 24 and w.wave(0)["measurements"] >= n + 2  # every 10 s, and at the end
    assert w.wave(0)["last_check_at"] >= w.wave(0)["bake_until"]


def test_no_evidence_from_a_deploy_never_marks_a_site_ready() -> None:
    w = world([[("a", FR)]])
    out = w.tick()
    assert [type(i) for i in out.intents] == [Deploy] and w.states() == {"a": "Deploying"}
    w.sites["a"].running["atlas"] = ("atlas-1.3.0", DIGEST, "1.3.0", 1)  # a report from before...
    w.sites["a"].applied = 1  # ...the heartbeat had not applied the Deploy yet
    w.log[out.intents[0].directive_id].state = "Acked"
    w.tick()
    assert w.states() == {"a": "Deploying"}


def test_measure_table() -> None:
    spec = GateSpec(max_error_rate=0.01, max_latency_p95_ms=500, min_safety_score=0.9, progress_deadline=60)

    def probe(
        site: str, ready: int = 1, err: float | None = 0.0, p95: float | None = 100, ss: float | None = 0.95
    ):
        return Probe(site, 1, 0.0, Report("m", "r", DIGEST, "1", 1, ready, False, True, err, p95, ss))

    def outcome(*probes: Probe, now: float = 10.0) -> str:
        return str(g.measure(spec, probes, now, 0.0).outcome)

    assert outcome(probe("a"), probe("b")) == "pass"
    assert outcome(probe("a"), probe("b", err=0.2)) == "fail"
    assert outcome(probe("a"), probe("b", p95=900)) == "fail"
    assert outcome(probe("a"), probe("b", ss=0.5)) == "fail"
    assert outcome(probe("a"), probe("b", ss=None)) == "inconclusive"
    assert outcome(probe("a", err=None), probe("b", err=0.5)) == "fail"  # a measured failure wins
    assert outcome(probe("a"), probe("b", ready=0)) == "waiting"
    assert outcome(probe("a"), probe("b", ready=0), now=61) == "fail"  # past the progress deadline
    assert outcome(probe("a"), Probe("b", 1, 0.0, None)) == "waiting"  # no report: not ready
    assert outcome() == "waiting"  # zero evidence never passes
    m = g.measure(spec, [probe("a"), probe("b", err=0.02)], 10, 0)
    assert m.summary == "fail: error rate 0.020 > 0.01 at b" and m.verified == ()
    by = {x.name: x for x in g.measure(spec, [probe("a", ss=None)], 10, 0).gates}
    assert by["minSafetyScore"].outcome == "inconclusive" and not by["minSafetyScore"].measured
    assert by["maxErrorRate"].outcome == "pass" and by["maxErrorRate"].value == 0.0


def test_stored_reports_read_unmeasured_as_none_never_zero() -> None:
    r = Report.from_dict({"name": "m", "release": "r", "digest": DIGEST, "measured": [g.ERROR_RATE]})
    assert r.error_rate == 0.0 and r.latency_p95_ms is None and r.safety_score is None
    old = Report.from_dict({"name": "m", "error_rate": 0.0, "safety_score": -1.0})  # an older site
    assert old.error_rate is None and old.safety_score is None


def test_a_sites_nan_or_infinite_aggregate_is_stored_as_not_measured() -> None:
    from controlplane.api.v1 import types_pb2 as tpb
    from controlplane.server.runtime import _coarse

    d = tpb.DeploymentStatus(
        name="atlas",
        error_rate=float("nan"),
        latency_p95_ms=float("inf"),
        safety_score=7.0,
        measured=[
            tpb.HEALTH_METRIC_ERROR_RATE,
            tpb.HEALTH_METRIC_LATENCY_P95,
            tpb.HEALTH_METRIC_SAFETY_SCORE,
        ],
    )
    stored = _coarse(d)  # must not raise (round(inf) would): a site cannot break its own link
    assert stored["measured"] == [g.SAFETY_SCORE] and stored["safety_score"] == 1.0
    r = Report.from_dict(stored)
    assert r.error_rate is None and r.latency_p95_ms is None and r.safety_score == 1.0


def test_resume_restarts_the_analysis_window_and_retries_refused_restores() -> None:
    from controlplane.services import rollouts as svc

    w = world(
        [[("a", FR)]], [SimSite("a", FR, error_rate=None)], g=gates(max_error_rate=0.01, timeout_seconds=5)
    )
    w.run(lambda w: w.rec.phase == "Paused")
    wave = w.wave(0)
    assert wave["measurements"] > 1 and wave["inconclusive_since"] > 0
    resumed = svc._resumed(w.rec)
    again = resumed.waves[0]
    assert resumed.phase == "Progressing" and resumed.message == "resumed"
    assert (again["measurements"], again["failures"], again["inconclusive_since"], again["evidence"]) == (
        0,
        0,
        0.0,
        "",
    )
    assert again["window_start"] > wave["window_start"]
    w.rec = resumed
    w.tick()
    assert w.wave(0)["measurements"] == 1  # measured again at once, in the new window
    # From a refused restore: those sites get a new restore directive.
    sites = [SimSite("b", FR, error_rate=0.5, refuses_restore="policy: no")]
    r = world([[("b", FR)]], sites, g=gates(max_error_rate=0.01))
    r.run(lambda r: r.rec.phase == "Paused")
    first = r.wave(0)["sites"][0]["rollback_id"]
    r.sites["b"].refuses_restore = ""
    r.rec = svc._resumed(r.rec)
    assert r.rec.phase == "RollingBack" and r.wave(0)["sites"][0]["rollback_attempt"] == 1
    r.run(lambda r: r.rec.phase == "RolledBack")
    assert r.wave(0)["sites"][0]["rollback_id"] != first


def test_promote_passes_only_the_current_wave() -> None:
    import pytest

    from controlplane.errors import FailedPrecondition, InvalidArgument
    from controlplane.services import rollouts as svc

    w = world([[("a", FR)], [("b", DE)]], bake=3600.0)
    w.run(lambda w: w.wave(0)["phase"] == "Baking")
    with pytest.raises(FailedPrecondition, match="only the current wave"):
        svc._promoted(w.rec, "admin", "w1", "why")
    with pytest.raises(InvalidArgument, match="no wave 'nope'"):
        svc._promoted(w.rec, "admin", "nope", "why")
    w.rec = svc._promoted(w.rec, "spiffe://x/user/admin", "w0", "reviewed")
    assert w.wave(0)["phase"] == "Completed" and w.wave(0)["promoted"] == "spiffe://x/user/admin: reviewed"
    w.run(lambda w: w.wave(1)["phase"] == "Baking")  # the next wave started, and is gated as usual
    w.rec = svc._promoted(w.rec, "admin", "w1", "reviewed too")
    w.run(lambda w: w.rec.phase == "Completed")
    assert w.states() == {"a": "Ready", "b": "Ready"}
