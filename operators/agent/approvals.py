"""The site's own check of people's approvals: it keeps the roster it pinned at enrollment
(``roster.json`` beside its credentials; version 1's hash given out of band with ``join
--roster-hash``), moves only to versions that chain (signed by the previous version's roster-change
threshold), and counts a Resume's signed approvals itself against the threshold: distinct persons,
each listed once, each key once, each signature verifying with the person's roster key over the
resume's statement (halt id, release, scope). The federation's count of approvals is not trusted:
a Resume the store says is approved, with signatures that do not meet the threshold, is refused.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path

from controlplane.api.v1 import types_pb2 as tpb
from controlplane.domain import roster as rd
from controlplane.errors import InvalidArgument
from controlplane.pki.keys import write_atomic

log = logging.getLogger(__name__)

ROSTER_FILE = rd.ROSTER_FILE
#: Approval sets this process found valid, by (roster hash, the resume's fields, the signatures):
#: one process running many sites (the simulator, the benchmark) verifies a Resume's two Ed25519
#: signatures once, not once per site (like operators/agent/safety.py:_VERIFIED). An exact match
#: under the same roster is as good as verifying again; failures are never remembered.
_ACCEPTED: OrderedDict[tuple[object, ...], None] = OrderedDict()
ACCEPTED_CACHE_SIZE = 256


class RosterGuard:
    def __init__(self, state_dir: Path | None, roster: rd.Roster | None = None) -> None:
        self.state_dir = state_dir
        self._roster = roster

    @property
    def roster(self) -> rd.Roster | None:
        """The pinned roster (read once it exists: join writes it)."""
        if self._roster is None and self.state_dir is not None and (self.state_dir / ROSTER_FILE).exists():
            try:
                self._roster = rd.SignedRoster.from_json((self.state_dir / ROSTER_FILE).read_bytes()).roster
            except InvalidArgument as e:
                log.error("the pinned roster is unusable: %s", e)
        return self._roster

    def offer(self, chain: Sequence[bytes]) -> str | None:
        """Move to the newest version of ``chain`` that chains from the roster held, persisting it
        before it is used; returns why a version was refused (logged), or None. Versions already
        held are ignored; a version that does not chain is refused with every one after it."""
        current = self.roster
        if current is None:
            return "roster: this site has no pinned roster to check an update against (re-enroll)"
        problem = None
        newest: rd.SignedRoster | None = None
        for raw in chain:
            try:
                signed = rd.SignedRoster.from_json(raw)
            except InvalidArgument as e:
                problem = f"roster: unreadable version: {e}"
                break
            if signed.roster.version <= current.version:
                continue
            why = rd.successor_problem(current, signed)
            if why is not None:
                problem = f"roster: v{signed.roster.version} refused: {why}"
                break
            current, newest = signed.roster, signed
        if newest is not None:
            if self.state_dir is not None and self.state_dir.exists():
                write_atomic(self.state_dir / ROSTER_FILE, newest.to_json(), 0o644)  # durable first
            self._roster = newest.roster
            log.info("roster v%d accepted (%s)", newest.roster.version, newest.roster.hash())
        if problem is not None:
            log.warning("%s", problem)
        return problem

    def check_resume(self, d: tpb.Directive) -> str | None:
        """Why the Resume ``d`` must be refused for its approvals, or None."""
        roster = self.roster
        if roster is None:
            return "approvals: this site has no pinned roster (re-enroll with --roster-hash)"
        r = d.resume
        sigs = [rd.Signature(a.person, bytes(a.signature)) for a in d.approvals]
        seen = (roster.hash(), r.halt_id, r.release, r.scope, tuple(sigs))
        if seen in _ACCEPTED:
            _ACCEPTED.move_to_end(seen)
            return None
        statement = rd.resume_statement(halt_id=r.halt_id, release=r.release, scope=r.scope)
        why = rd.meets(roster, rd.ActionClass.RESUME, statement, sigs)
        if why is not None:
            return f"approvals: {why}"[:512]
        _ACCEPTED[seen] = None
        if len(_ACCEPTED) > ACCEPTED_CACHE_SIZE:
            _ACCEPTED.popitem(last=False)
        return None
