"""One rollout step as a pure function: ``step(record, sites, outcomes, now) -> Step``.

The engine (controlplane/services/rollout_engine.py) reads the record, the registry and the
directive outcomes, calls ``step``, carries out its intents (Deploy, Restore) and writes the new
record with the audit entries, fenced. Everything decided here is testable as a table.

Rules (docs/rollouts.md):

- A site leaves Pending only when its wave has started, and a wave starts only when every wave
  before it passed; a site whose country has not approved waits, and joins its wave when the
  approval comes (and is gated like the others).
- A wave passes only on evidence: a passing measurement over fresh reports, for this release, from
  at least one of its sites (``controlplane.domain.gates``). A wave whose sites all await approval
  or are lost waits; a wave whose sites all refused fails the rollout (``Failed``).
- Measurements are taken every ``gates.interval`` from the start of a wave to the end of its bake,
  and at once when new evidence arrives. A failed measurement beyond ``gates.failureLimit`` rolls
  the rollout back; measurements inconclusive for ``gates.timeout`` pause it for a human.
- A site is RolledBack only when it acked the restore and reports the previous release running
  (or the deployment gone, for an Undeploy); a rejected restore is RollbackFailed with the site's
  reason, and the rollout then pauses, naming those sites.
- A rollout in which no site ran the release never ends Completed.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from controlplane.domain.gates import GateSpec, Measurement, Outcome, Probe, Report, SiteView, measure
from controlplane.domain.records import UNDELIVERED, DirectiveState
from controlplane.domain.rollouts import (
    REACHED,
    Phase,
    RolloutRecord,
    SitePhase,
    SiteState,
    WavePhase,
    WaveState,
    current_wave,
    directive_id,
)

#: Directive states as the records store them.
ACKED, REJECTED = DirectiveState.ACKED, DirectiveState.REJECTED
#: UNDELIVERED (records.py): the federation could not send it (Failed) or an admin cancelled it
#: (Cancelled): the site will never get it, whether or not it is reachable now.
#: Outcomes that mean the site does not run what the directive asked for.
REFUSALS = frozenset({REJECTED, *UNDELIVERED})


@dataclass(frozen=True)
class DirectiveOutcome:
    """A directive's delivery state, as far as the engine needs it."""

    state: str  # Pending, Acked, Rejected, Failed, Cancelled
    reason: str = ""
    sequence: int = 0


@dataclass(frozen=True)
class Deploy:
    """Send the release to ``site`` (the engine records the previous release first)."""

    site: str
    directive_id: str


@dataclass(frozen=True)
class Restore:
    """Send ``site`` back what it ran before (``previous``: a Deploy id, "" for an Undeploy)."""

    site: str
    directive_id: str
    previous: str


@dataclass(frozen=True)
class Audit:
    action: str
    wave: str = ""
    reason: str = ""
    outcome: str = "success"
    site: str = ""


@dataclass
class Step:
    record: RolloutRecord
    waves: list[WaveState]
    intents: list[Deploy | Restore] = field(default_factory=list)
    audits: list[Audit] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return bool(self.intents or self.audits)


def _list(names: list[str], limit: int = 3) -> str:
    shown = ", ".join(names[:limit])
    return shown + (f" (+{len(names) - limit})" if len(names) > limit else "")


class _Stepper:
    def __init__(
        self,
        rec: RolloutRecord,
        sites: Mapping[str, SiteView],
        outcomes: Mapping[str, DirectiveOutcome],
        now: float,
    ) -> None:
        self.rec, self.sites, self.outcomes, self.now = rec, sites, outcomes, now
        self.waves = rec.wave_states()
        self.gates = GateSpec.of(rec.spec.get("gates") or {})
        r = rec.release.get("release") or {}
        self.release, self.digest, self.model = (
            str(r.get("name", "")),
            str(r.get("digest", "")),
            str(r.get("model", "")),
        )
        self.out = Step(rec, self.waves)
        self._reports: dict[tuple[str, int], Report | None] = {}
        # What the waves were, to tell whether the step changed anything: a steady step (the
        # common one) then returns the record as it was, without rebuilding 1,000 site dicts.
        self._before = self._snapshot()

    # --- helpers -------------------------------------------------------------------------------

    def audit(
        self, action: str, wave: str = "", reason: str = "", outcome: str = "success", site: str = ""
    ) -> None:
        self.out.audits.append(Audit(action, wave, reason, outcome, site))

    def _snapshot(self) -> list[tuple[object, ...]]:
        out = [tuple(v for k, v in w.__dict__.items() if k != "sites") for w in self.waves]
        out += [tuple(s.__dict__.values()) for w in self.waves for s in w.sites]
        return out

    def finish(self, phase: Phase | str, message: str, **changes: object) -> Step:
        rec = self.rec.replace(phase=str(phase), message=message, **changes)
        self.out.record = rec.with_waves(self.waves) if self._snapshot() != self._before else rec
        return self.out

    def evidence(self, s: SiteState) -> Probe:
        key = (s.site, s.deploy_sequence)
        if key in self._reports:  # each site is looked at twice per step: its own step, the analysis
            report = self._reports[key]
        else:
            view = self.sites.get(s.site)
            report = view.running(self.release, self.digest, s.deploy_sequence) if view is not None else None
            self._reports[key] = report
        return Probe(s.site, s.replicas, s.unready_since, report)

    # --- forward -------------------------------------------------------------------------------

    def site_step(self, s: SiteState) -> None:
        needs = s.country in self.rec.needs_approval and s.country not in self.rec.approved
        if s.state == SitePhase.PENDING and needs:
            s.state, s.reason = SitePhase.WAITING, f"awaiting the {s.country} steward's approval"
            return
        if s.state == SitePhase.WAITING and not needs:
            s.state, s.reason = SitePhase.PENDING, ""
        if s.state == SitePhase.PENDING:
            s.directive_id = directive_id(self.rec.key, s.site, "deploy")
            s.state, s.reason, s.unready_since, s.verified = SitePhase.DEPLOYING, "", self.now, False
            self.out.intents.append(Deploy(s.site, s.directive_id))
            return
        if s.state not in REACHED:
            return
        view = self.sites.get(s.site)
        done = self.outcomes.get(s.directive_id)
        undelivered = done is not None and done.state in UNDELIVERED  # final, reachable or not
        if (view is None or not view.reachable) and not undelivered:
            if s.state != SitePhase.LOST:
                why = "site unreachable" if view is not None else "site not in the registry"
                s.state, s.reason, s.verified = SitePhase.LOST, f"{why}; its part of the wave waits", False
            return
        if s.state == SitePhase.LOST:
            s.state, s.reason = SitePhase.DEPLOYING, ""
        if done is not None and done.state in REFUSALS:
            s.state, s.reason, s.verified = SitePhase.REFUSED, done.reason, False
            self.audit("rollout.site.refused", reason=done.reason, outcome="denied", site=s.site)
            return
        if done is not None and not s.deploy_sequence:
            s.deploy_sequence = done.sequence
        probe = self.evidence(s)
        if probe.ready:
            s.unready_since = 0.0
        elif not s.unready_since:
            s.unready_since = self.now
        if s.state == SitePhase.DEPLOYING and done is not None and done.state == ACKED and probe.ready:
            s.state, s.reason = SitePhase.READY, ""

    def start(self, w: WaveState) -> None:
        w.phase, w.started_at, w.window_start = WavePhase.PROGRESSING, self.now, self.now
        w.next_check_at, w.measurements, w.failures, w.inconclusive_since = self.now, 0, 0, 0.0
        self.audit("rollout.wave.start", w.name)

    def scope(self, upto: int) -> list[SiteState]:
        return [
            s
            for w in self.waves[: upto + 1]
            for s in w.sites
            if s.state in (SitePhase.DEPLOYING, SitePhase.READY)
        ]

    def analyse(self, w: WaveState, upto: int, *, periodic: bool) -> Measurement | None:
        """Take a measurement over the sites reached up to wave ``upto`` when one is due."""
        probes = [self.evidence(s) for s in self.scope(upto)]
        key = f"{sum(p.ready for p in probes)}/{len(probes)}"
        if not ((periodic and self.now >= w.next_check_at) or key != w.evidence):
            return None
        m = measure(self.gates, probes, self.now, w.window_start)
        w.measurements += 1
        w.gates = [g.to_dict() for g in m.gates]
        w.gate, w.evidence, w.last_outcome, w.last_check_at = m.summary, key, str(m.outcome), self.now
        w.next_check_at = self.now + self.gates.interval
        if w.phase == WavePhase.BAKING and self.now < w.bake_until:
            w.next_check_at = min(w.next_check_at, w.bake_until)  # one more at the end of the bake
        if m.outcome is Outcome.FAIL:
            w.failures += 1
        if m.outcome is Outcome.INCONCLUSIVE:
            w.inconclusive_since = w.inconclusive_since or self.now
        else:
            w.inconclusive_since = 0.0
        if m.outcome is Outcome.PASS:
            passed = set(m.verified)
            for s in self.scope(upto):
                if s.site in passed:
                    s.verified = True
        return m

    def verdict(self, w: WaveState, m: Measurement | None) -> Step | None:
        """Roll back or pause on what the measurement found; None to go on."""
        if m is not None and m.outcome is Outcome.FAIL and w.failures > self.gates.failure_limit:
            w.phase = WavePhase.FAILED
            self.audit("rollout.gate.fail", w.name, m.summary, "failed")
            return self.finish(Phase.ROLLING_BACK, f"wave {w.name}: gate {m.summary}; rolling back")
        if w.inconclusive_since and self.now - w.inconclusive_since > self.gates.timeout:
            self.audit("rollout.gate.inconclusive", w.name, w.gate, "failed")
            return self.finish(
                Phase.PAUSED,
                f"wave {w.name}: gate {w.gate} for {self.gates.timeout:g}s; paused for a human "
                "(resume restarts the analysis; promote, abort or rollback)",
                paused_from=str(Phase.PROGRESSING),
            )
        return None

    def advance(self) -> Step:
        started = [w for w in self.waves[: current_wave(self.waves) + 1] if w.phase != WavePhase.PENDING]
        for s in (s for w in started for s in w.sites):
            self.site_step(s)
        for _ in range(len(self.waves) + 1):
            cur = current_wave(self.waves)
            if cur == len(self.waves):
                return self.settle()
            w = self.waves[cur]
            if w.phase == WavePhase.PENDING:
                self.start(w)
                for s in w.sites:
                    self.site_step(s)
            if not w.sites:
                w.phase, w.gate = WavePhase.COMPLETED, "no sites in this wave"
                self.audit("rollout.wave.complete", w.name)
                continue
            stop = self.verdict(w, self.analyse(w, cur, periodic=True))
            if stop is not None:
                return stop
            if all(s.state in (SitePhase.REFUSED, SitePhase.SKIPPED) for s in w.sites):
                w.phase = WavePhase.FAILED
                reasons = "; ".join(f"{s.site}: {s.reason}" for s in w.sites[:5])
                message = f"wave {w.name}: every site refused the release ({reasons})"
                self.audit("rollout.failed", w.name, message, "failed")
                return self.finish(Phase.FAILED, message)
            passed = w.last_outcome == Outcome.PASS
            if w.phase == WavePhase.PROGRESSING and passed and any(s.verified for s in w.sites):
                w.phase, w.bake_until = WavePhase.BAKING, self.now + w.bake_seconds
                w.next_check_at = min(w.next_check_at, w.bake_until)
                self.audit("rollout.gate.pass", w.name)
            if (
                w.phase == WavePhase.BAKING
                and self.now >= w.bake_until
                and passed
                and w.last_check_at >= w.bake_until
            ):
                w.phase = WavePhase.COMPLETED
                self.audit("rollout.wave.complete", w.name)
                continue
            return self.finish(Phase.PROGRESSING if self.reachable(w) else Phase.WAITING, self.progress(w))
        return self.settle()  # pragma: no cover - the loop completes a wave per pass at most

    def reachable(self, w: WaveState) -> bool:
        """Whether the wave has a site that can give evidence now or later without an approval."""
        return any(s.state in REACHED for s in w.sites) or not any(
            s.state == SitePhase.WAITING for s in w.sites
        )

    def awaiting(self) -> list[str]:
        return [c for c in self.rec.needs_approval if c not in self.rec.approved]

    def progress(self, w: WaveState) -> str:
        pending = self.awaiting()
        head = f"wave {w.name}: {w.phase}"
        if w.gate:
            head += f"; gate {w.gate}"
        return head + (f"; awaiting approval from {', '.join(pending)}" if pending else "")

    def settle(self) -> Step:
        """Every wave passed: sites that joined late are gated too; then the outcome."""
        last = self.waves[-1]
        states = [s for w in self.waves for s in w.sites]
        unsettled = [
            s
            for s in states
            if s.state == SitePhase.DEPLOYING or (s.state == SitePhase.READY and not s.verified)
        ]
        if unsettled:
            stop = self.verdict(last, self.analyse(last, len(self.waves) - 1, periodic=True))
            if stop is not None:
                return stop
            unsettled = [
                s
                for s in states
                if s.state == SitePhase.DEPLOYING or (s.state == SitePhase.READY and not s.verified)
            ]
        waiting = sorted({s.country for s in states if s.state == SitePhase.WAITING})
        lost = [s.site for s in states if s.state == SitePhase.LOST]
        if unsettled or lost:
            parts = [f"{len(unsettled)} sites deploying or unverified"] if unsettled else []
            parts += [f"{len(lost)} sites lost"] if lost else []
            return self.finish(Phase.PROGRESSING, f"all waves done; {', '.join(parts)}")
        if waiting:
            return self.finish(Phase.WAITING, f"all waves done; waiting for approval: {', '.join(waiting)}")
        if not any(s.state == SitePhase.READY and s.verified for s in states):
            refused = [f"{s.site}: {s.reason}" for s in states if s.state == SitePhase.REFUSED]
            message = "no site runs the release" + (f" ({'; '.join(refused[:5])})" if refused else "")
            if self.rec.phase != Phase.FAILED:
                self.audit("rollout.failed", reason=message, outcome="failed")
            return self.finish(Phase.FAILED, message)
        refused = [s.site for s in states if s.state == SitePhase.REFUSED]
        if self.rec.phase != Phase.COMPLETED:
            self.audit("rollout.complete")
        return self.finish(
            Phase.COMPLETED, "all waves completed" + (f"; refused at {_list(refused)}" if refused else "")
        )

    # --- backward ------------------------------------------------------------------------------

    def rollback(self) -> Step:
        busy, failed = 0, []
        for w in self.waves:
            for s in w.sites:
                if s.state in REACHED or (s.state == SitePhase.ROLLING_BACK and not s.rollback_id):
                    action = "rollback" if not s.rollback_attempt else f"rollback-{s.rollback_attempt}"
                    s.rollback_id = directive_id(self.rec.key, s.site, action)
                    s.state, s.verified, s.rollback_sequence = SitePhase.ROLLING_BACK, False, 0
                    s.reason = (
                        "restoring the previous release"
                        if s.previous
                        else "undeploying (no previous release)"
                    )
                    self.out.intents.append(Restore(s.site, s.rollback_id, s.previous))
                if s.state == SitePhase.ROLLING_BACK:
                    done = self.outcomes.get(s.rollback_id)
                    if done is not None and done.state in REFUSALS:
                        s.state, s.reason = (
                            SitePhase.ROLLBACK_FAILED,
                            f"the site refused the restore: {done.reason}",
                        )
                        self.audit(
                            "rollout.site.rollback_failed", reason=done.reason, outcome="failed", site=s.site
                        )
                    elif done is not None and done.state == ACKED:
                        s.rollback_sequence = s.rollback_sequence or done.sequence
                        view = self.sites.get(s.site)
                        if view is not None and view.restored(
                            self.model,
                            s.restore_digest,
                            s.restore_version,
                            s.restore_replicas,
                            s.rollback_sequence,
                        ):
                            s.state, s.reason = SitePhase.ROLLED_BACK, ""
                        else:
                            s.reason = "restore acked; waiting for the site to report the previous release"
                            busy += 1
                    else:
                        busy += 1
                elif s.state in (SitePhase.PENDING, SitePhase.WAITING):
                    s.state, s.reason = SitePhase.SKIPPED, "rollout rolled back before this site was reached"
                if s.state == SitePhase.ROLLBACK_FAILED:
                    failed.append(f"{s.site} ({s.reason.removeprefix('the site refused the restore: ')})")
            if w.phase not in (WavePhase.PENDING, WavePhase.FAILED):
                w.phase = WavePhase.ROLLED_BACK
        cause = self.rec.message.split(" | ")[0] or "rolled back"  # why it rolls back stays in view
        if busy:
            return self.finish(Phase.ROLLING_BACK, f"{cause} | {busy} sites to confirm")
        if failed:
            message = f"{cause} | rollback failed at {_list(failed)}; paused for a human (fix it, resume)"
            self.audit("rollout.rollback.paused", reason=message, outcome="failed")
            return self.finish(Phase.PAUSED, message, paused_from=str(Phase.ROLLING_BACK))
        self.audit("rollout.rolledback", reason=cause)
        return self.finish(Phase.ROLLED_BACK, cause)


def step(
    rec: RolloutRecord, sites: Mapping[str, SiteView], outcomes: Mapping[str, DirectiveOutcome], now: float
) -> Step:
    """Decide one step of an active, unfrozen rollout (not Paused, not final)."""
    s = _Stepper(rec, sites, outcomes, now)
    return s.rollback() if rec.phase == Phase.ROLLING_BACK else s.advance()
