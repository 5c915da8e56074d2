"""The site's witness of its own history: the I/O around operators/agent/log_verdict.py.

Holds the ``LogView`` (persisted as ``log-state.json`` beside the safety state, written before the
site acts on a verdict), the log's verifier key (``log.vkey``, written at enrollment) and the
witnesses the site's policy trusts. The link calls it on each beacon (a new checkpoint), on each
Deploy (its inclusion proof), when it applies a halt (its proof is then asked for every
``ASK_EVERY_S`` and must arrive within ``halt_bound`` seconds) and on each proof answer.

An alarm is logged at ERROR once, reported as an event (``log_alarm``: the Kubernetes operator shows
it on the FederationLink) and kept across restarts; Deploys are refused until an operator clears it
(``clear_alarm``). A site enrolled before the federation had a log key has no ``log.vkey``: it checks
nothing and says so at WARNING once, unless its policy requires witnesses, when it refuses every
Deploy (it cannot check them); enrolling again gives it the key.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from controlplane.api.v1 import logproof_pb2 as lpb
from controlplane.api.v1 import safety_pb2 as xpb
from controlplane.api.v1 import site_pb2 as spb
from controlplane.api.v1 import types_pb2 as tpb
from controlplane.domain.notes import NoteError, parse_vkey
from controlplane.pki.keys import write_atomic
from operators.agent import log_verdict as lv
from operators.agent.policy import LocalPolicy

log = logging.getLogger(__name__)
STATE_FILE = "log-state.json"
VKEY_FILE = "log.vkey"
#: How often the proof of an applied halt is asked for while it is awaited.
ASK_EVERY_S = 2.0


def _consistency(c: Any, present: bool) -> lv.Consistency | None:
    return lv.Consistency(c.first, c.second, tuple(c.path)) if present else None


def event_proof(p: lpb.LogProof) -> lv.EventProof:
    return lv.EventProof(
        p.leaf_index,
        p.leaf,
        tuple(p.inclusion_path),
        p.checkpoint,
        _consistency(p.consistency, p.HasField("consistency")),
    )


class SiteLog:
    def __init__(
        self,
        site_id: str,
        state_dir: Path,
        policy: LocalPolicy | Callable[[], LocalPolicy],
        *,
        persist: bool = True,
        on_event: Callable[[str, dict[str, Any]], None] | None = None,
        halt_bound: float = lv.HALT_PROOF_BOUND_S,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.site_id = site_id
        self.state_dir = state_dir
        #: Release of each halt applied in this process (its event names it).
        self._halts: dict[str, str] = {}
        #: The policy in force (a callable: the Kubernetes operator replaces the agent's on reload).
        self._policy = policy if callable(policy) else (lambda: policy)
        self._trust: tuple[tuple[str, tuple[str, ...], int], lv.Trust] | None = None
        self.persist = persist
        self.on_event = on_event or (lambda kind, data: None)
        self.halt_bound = halt_bound
        self.clock = clock
        self.view = self._load()
        self._warned = False
        self._send: Callable[[spb.ConnectRequest], None] | None = None
        self._connected: asyncio.Event | None = None

    # --- state ----------------------------------------------------------------------------------

    def _load(self) -> lv.LogView:
        path = self.state_dir / STATE_FILE
        if self.persist and path.exists():
            return lv.LogView.from_dict(json.loads(path.read_text()))
        return lv.LogView()

    def _save(self) -> None:
        if self.persist and self.state_dir.exists():
            write_atomic(self.state_dir / STATE_FILE, json.dumps(self.view.to_dict()).encode(), 0o600)

    @property
    def alarm(self) -> str:
        return self.view.alarm

    @property
    def policy(self) -> LocalPolicy:
        return self._policy()

    def trust(self) -> lv.Trust | None:
        """The log key and the trusted witnesses; None before the site has a log key."""
        path = self.state_dir / VKEY_FILE
        policy = self.policy
        key = (str(path), tuple(policy.witnesses), policy.min_witnesses)
        if self._trust is not None and self._trust[0] == key:
            return self._trust[1]  # the key file is written once, at enrollment
        if not path.exists():
            if not self._warned:
                log.warning(
                    "no %s (enrolled before the log key): checkpoints and proofs are not checked", path
                )
                self._warned = True
            return None
        witnesses = []
        for vkey in policy.witnesses:
            try:
                witnesses.append(parse_vkey(vkey, "policy witness"))
            except NoteError as e:
                log.error("site policy: %s (ignored)", e)
        log_key = parse_vkey(path.read_text().strip(), "log key")
        trust = lv.Trust(log_key, tuple(witnesses), policy.min_witnesses)
        self._trust = (key, trust)
        return trust

    def _take(self, verdict: lv.Verdict) -> lv.Verdict:
        raised = verdict.view.alarm and not self.view.alarm
        self.view = verdict.view
        self._save()  # before the site acts on it
        if raised:
            log.error("transparency log alarm: %s", self.view.alarm)
            self.on_event("log_alarm", {"reason": self.view.alarm})
        return verdict

    def clear_alarm(self) -> None:
        """An operator looked into the alarm: start again from the next checkpoint."""
        self.view = lv.clear_alarm(self.view)
        self._save()
        self.on_event("log_alarm_cleared", {})

    # --- the link -------------------------------------------------------------------------------

    def hello(self) -> dict[str, Any]:
        """The Hello fields that tell the federation what proofs this site needs."""
        trust = self.trust()
        names = [w.name for w in trust.witnesses] if trust else []
        return {
            "min_witnesses": self.policy.min_witnesses,
            "witnesses": names,
            "checkpoint_size": self.view.size,
        }

    def on_beacon(self, beacon: xpb.Beacon) -> None:
        trust = self.trust()
        if not beacon.checkpoint or trust is None:
            return
        c = _consistency(beacon.consistency, beacon.HasField("consistency"))
        verdict = self._take(lv.check_checkpoint(self.view, beacon.checkpoint, c, trust))
        if verdict.outcome == lv.Outcome.REFUSE:
            log.warning("beacon checkpoint not taken: %s", verdict.reason)

    def check_deploy(self, d: tpb.Directive) -> str | None:
        """Why the Deploy ``d`` must be refused as far as the log is concerned, or None."""
        trust = self.trust()
        if trust is None:
            if self.policy.min_witnesses:
                return "log: the site has no log key to check the Deploy's proof with (enroll it again)"
            return None
        proof = event_proof(d.log_proof) if d.HasField("log_proof") else None
        expect = lv.deploy_event(self.site_id, d.id, d.sequence, d.deploy.digest)
        verdict = self._take(lv.check_deploy(self.view, proof, trust, expect))
        return None if verdict.outcome == lv.Outcome.ACCEPT else verdict.reason

    def halt_applied(self, d: tpb.Directive) -> None:
        if self.trust() is None:
            return
        self.view = lv.halt_applied(self.view, d.id, self.clock())
        self._halts[d.id] = d.halt.release
        self._save()

    def ask(self, halt_id: str) -> None:
        """Ask for the proof of an applied halt now (the link calls it after the halt's ack, so the
        ask never delays the ack a halt's propagation waits for)."""
        if halt_id in self.view.pending_halts:
            self._ask(halt_id)

    def on_proof(self, resp: lpb.LogProofResponse) -> None:
        trust = self.trust()
        hid = resp.directive_id
        if trust is None or hid not in self.view.pending_halts:
            return
        if not resp.HasField("proof"):
            log.info("halt %s not yet proven: %s", hid, resp.error[:200])
            return
        release = self._halts.get(hid, "")
        expect = lv.halt_event(hid, release)
        if not release:
            expect.pop("object")  # applied before a restart: the id still binds the event
        verdict = self._take(lv.check_halt_proof(self.view, hid, event_proof(resp.proof), trust, expect))
        if verdict.outcome == lv.Outcome.ACCEPT:
            self.on_event("halt_proven", {"id": hid})
        else:
            log.warning("halt %s: proof not taken: %s", hid, verdict.reason)

    def _ask(self, halt_id: str) -> None:
        if self._send is not None and self._connected is not None and self._connected.is_set():
            self._send(
                spb.ConnectRequest(
                    log_proof_request=lpb.LogProofRequest(site_id=self.site_id, directive_id=halt_id)
                )
            )

    async def watch(self, send: Callable[[spb.ConnectRequest], None], connected: asyncio.Event) -> None:
        """Ask for the proofs of applied halts and alarm on those overdue, for ever."""
        self._send, self._connected = send, connected
        while True:
            await asyncio.sleep(min(ASK_EVERY_S, self.halt_bound / 4))
            for hid in list(self.view.pending_halts):
                self._ask(hid)
            if self.view.pending_halts:
                self._take(lv.overdue_halts(self.view, self.clock(), self.halt_bound))
