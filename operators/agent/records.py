"""The site's own application record: which directives it applied or refused, in order.

This is the site's ground truth (the federation's view is derived from acks). Tests assert
"exactly once" against it. ``FileRecord`` survives restarts of the agent process.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

from controlplane.pki.keys import write_atomic


@dataclass(frozen=True)
class Applied:
    sequence: int
    directive_id: str
    kind: str
    outcome: str  # "applied" | "rejected"
    reason: str = ""
    #: For Halt/Resume (the safety lane): its safety sequence; ``sequence`` is then 0.
    safety_sequence: int = 0


def _row(e: Applied) -> dict[str, object]:
    """An entry as stored; ``safety_sequence`` only for safety-lane entries (format unchanged otherwise)."""
    row = asdict(e)
    if not e.safety_sequence:
        del row["safety_sequence"]
    return row


#: Entries kept (in memory and on disk). Older ones are never needed again: the federation only
#: sends what comes after ``last_sequence``, and only the last 256 outcomes are ever re-sent; without
#: a bound a long-lived site would rewrite an ever-growing file on every directive.
KEEP = 4096


class ApplicationRecord:
    """In memory. ``last_sequence`` only grows; an id is recorded at most once (within the last
    ``KEEP`` entries; older directives are recognised by their sequence)."""

    def __init__(self) -> None:
        self.entries: list[Applied] = []
        self._by_id: dict[str, Applied] = {}

    @property
    def last_sequence(self) -> int:
        for e in reversed(self.entries):
            if not e.safety_sequence:  # safety-lane entries have their own sequence
                return e.sequence
        return 0

    def get(self, directive_id: str) -> Applied | None:
        return self._by_id.get(directive_id)

    def add(self, entry: Applied) -> None:
        if entry.directive_id in self._by_id:
            return
        self.entries.append(entry)
        self._by_id[entry.directive_id] = entry
        if len(self.entries) > 2 * KEEP:  # amortised: trim in steps of KEEP
            self._trim()
        self.save()

    def _trim(self) -> None:
        kept = self.entries[-KEEP:]
        if all(e.safety_sequence for e in kept):  # keep what ``last_sequence`` is read from
            last = next((e for e in reversed(self.entries) if not e.safety_sequence), None)
            kept = ([last] if last is not None else []) + kept
        self.entries = kept
        self._by_id = {e.directive_id: e for e in kept}

    def applied_ids(self) -> list[str]:
        return [e.directive_id for e in self.entries if e.outcome == "applied"]

    def save(self) -> None:
        """Persist (no-op in memory)."""

    async def flush(self) -> None:
        """Make what ``add``/``save`` recorded durable before the outcome goes upstream. Records
        kept behind a network call (the Kubernetes operator's ConfigMap) write here; file and
        memory records already did in ``save``."""


class FileRecord(ApplicationRecord):
    """Kept as JSON beside the site's key; rewritten atomically on every entry."""

    def __init__(self, path: Path) -> None:
        super().__init__()
        self.path = path
        if path.exists():
            for raw in json.loads(path.read_text()):
                e = Applied(**raw)
                self.entries.append(e)
                self._by_id[e.directive_id] = e

    def save(self) -> None:
        write_atomic(self.path, json.dumps([_row(e) for e in self.entries]).encode(), 0o600)
