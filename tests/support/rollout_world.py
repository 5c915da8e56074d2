"""A world for the pure rollout step (test infrastructure): sites that apply, refuse, get lost and
report, and a directive log, driven one step at a time the way the engine drives the real thing.

``World.tick()`` runs ``rollout_step.step`` on the current record, carries out its intents as the
engine does (controlplane/services/rollout_engine.py: deploy/restore ids, sequences, what a restore
must bring back), then lets every reachable site apply what was sent to it and report.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from controlplane.domain.gates import Report, SiteView
from controlplane.domain.rollout_step import Deploy, DirectiveOutcome, Step, step
from controlplane.domain.rollouts import RolloutRecord, SiteState, WaveState

DIGEST = "sha256:" + "ab" * 32
OLD_DIGEST = "sha256:" + "cd" * 32


@dataclass
class SimSite:
    site_id: str
    country: str
    reachable: bool = True
    refuses: str = ""  # a reason: the site rejects our Deploy
    refuses_restore: str = ""
    #: Acks a restore but keeps running the new release (a broken or lying site).
    restore_noop: bool = False
    #: deployment name -> (release, digest, version, replicas ready)
    running: dict[str, tuple[str, str, str, int]] = field(default_factory=dict)
    applied: int = 0  # the site's last applied sequence
    error_rate: float | None = 0.0
    measured_p95: float | None = 20.0
    safety: float | None = None
    ready: bool = True  # whether a deployment's replicas become ready

    def view(self) -> SiteView:
        reports = tuple(
            Report(
                name,
                rel,
                digest,
                version,
                1,
                n if self.ready else 0,
                False,
                True,
                self.error_rate,
                self.measured_p95,
                self.safety,
            )
            for name, (rel, digest, version, n) in self.running.items()
        )
        return SiteView(self.site_id, self.reachable, self.applied, reports)


@dataclass
class Directive:
    site: str
    sequence: int
    kind: str
    payload: dict[str, Any]
    state: str = "Pending"
    reason: str = ""


def gates(**kw: Any) -> dict[str, Any]:
    base = {"min_ready_ratio": 1.0, "interval_seconds": 10.0, "timeout_seconds": 60.0}
    return {**base, **kw}


def record(
    waves: list[list[tuple[str, str]]],
    *,
    bake: float = 0.0,
    needs: list[str] | None = None,
    g: dict[str, Any] | None = None,
) -> RolloutRecord:
    ws = [
        WaveState(f"w{i}", bake, [SiteState(s, c, 1) for s, c in sites]).to_dict()
        for i, sites in enumerate(waves)
    ]
    release = {"release": {"name": "atlas-1.3.0", "model": "atlas", "version": "1.3.0", "digest": DIGEST}}
    return RolloutRecord(
        name="r",
        spec={"release": "atlas-1.3.0", "gates": g if g is not None else gates()},
        release=release,
        waves=ws,
        needs_approval=needs or [],
        uid="u",
    )


class World:
    def __init__(self, rec: RolloutRecord, sites: list[SimSite]) -> None:
        self.rec = rec
        self.sites = {s.site_id: s for s in sites}
        self.log: dict[str, Directive] = {}
        self.seq: dict[str, int] = {}
        self.now = 1000.0
        self.last: Step | None = None
        #: The previous release each site ran (what a restore must bring back).
        for s in sites:
            s.running.setdefault("atlas", ("atlas-1.2.0", OLD_DIGEST, "1.2.0", 1))
            self.issue(s.site_id, "prev-" + s.site_id, "Deploy", {"digest": OLD_DIGEST, "version": "1.2.0"})
            self.log["prev-" + s.site_id].state = "Acked"
            s.applied = self.seq[s.site_id]

    def issue(self, site: str, did: str, kind: str, payload: dict[str, Any]) -> Directive:
        if did not in self.log:
            self.seq[site] = self.seq.get(site, 0) + 1
            self.log[did] = Directive(site, self.seq[site], kind, payload)
        return self.log[did]

    def states(self) -> dict[str, str]:
        return {s["site"]: s["state"] for w in self.rec.waves for s in w["sites"]}

    def wave(self, i: int) -> dict[str, Any]:
        return self.rec.waves[i]

    def tick(self, dt: float = 1.0) -> Step:
        outcomes = {k: DirectiveOutcome(d.state, d.reason, d.sequence) for k, d in self.log.items()}
        views = {k: s.view() for k, s in self.sites.items()}
        out = step(self.rec, views, outcomes, self.now)
        by_site = {s.site: s for w in out.waves for s in w.sites}
        for intent in out.intents:
            s = by_site[intent.site]
            if isinstance(intent, Deploy):
                s.previous = "prev-" + s.site
                s.deploy_sequence = self.issue(s.site, intent.directive_id, "Deploy", {}).sequence
            else:
                before = self.log.get(intent.previous)
                kind, payload = ("Deploy", before.payload) if before else ("Undeploy", {})
                s.restore_digest = str(payload.get("digest", ""))
                s.restore_version = str(payload.get("version", ""))
                s.restore_replicas = 1 if before else 0
                s.rollback_sequence = self.issue(s.site, intent.directive_id, kind, payload).sequence
        self.rec = out.record.with_waves(out.waves)
        self.last = out
        self.deliver()
        self.now += dt
        return out

    def deliver(self) -> None:
        for d in sorted(self.log.values(), key=lambda d: d.sequence):
            site = self.sites[d.site]
            if d.state != "Pending" or not site.reachable or d.sequence != site.applied + 1:
                continue
            restore = d.payload.get("digest") == OLD_DIGEST or d.kind == "Undeploy"
            refusal = site.refuses_restore if restore else site.refuses
            if refusal:
                d.state, d.reason = "Rejected", refusal
            else:
                d.state = "Acked"
                if d.kind == "Undeploy":
                    site.running.pop("atlas", None)
                elif restore:
                    if not site.restore_noop:
                        site.running["atlas"] = ("atlas-1.2.0", OLD_DIGEST, "1.2.0", 1)
                else:
                    site.running["atlas"] = ("atlas-1.3.0", DIGEST, "1.3.0", 1)
            site.applied = d.sequence

    def run(self, until: Any, steps: int = 200, dt: float = 1.0) -> None:
        for _ in range(steps):
            if until(self):
                return
            self.tick(dt)
        raise AssertionError(f"not reached: {self.rec.phase} {self.rec.message} {self.states()}")
