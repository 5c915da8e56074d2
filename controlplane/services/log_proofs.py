"""What the federation shows sites of the transparency log (issue 13 part 5), per replica.

- The newest checkpoint, for beacons: read at most once per ``LATEST_TTL_S`` (1,000 links send a
  beacon every 5 s: ~200 reads/s otherwise), and consistency proofs between sizes, cached
  (most sites ask for the same pair): a site verifies each new checkpoint against its last one.
- The inclusion proof of a directive's audit event. A Deploy's ``directive.issue`` event gets its
  sequence only when its transaction commits, so the issuer writes ``directive-events/<site>/<seq>``
  -> audit sequence right after (``index_directive``); a halt's ``safety.halt`` event is found
  among the newest ``HALT_SCAN`` events (a site asks within a minute of applying it) and cached.
- Which checkpoint to prove against: the newest one with at least ``min_witnesses`` cosignatures
  of the witnesses the site names (its SitePolicy), covering the event.
"""

from __future__ import annotations

import asyncio
import collections
import json
import time
from collections.abc import Collection

from controlplane.api import directive_kinds
from controlplane.domain.records import AUDIT_EVENTS, AUDIT_HEAD, ROOT, audit_key
from controlplane.errors import StargateError
from controlplane.services.checkpoints import CheckpointRecord, Checkpoints, InclusionProof
from controlplane.services.log_tree import LogTree
from controlplane.store import Store

DIRECTIVE_EVENTS = ROOT + "directive-events/"
LATEST_TTL_S = 0.5
CONSISTENCY_CACHE = 4096
#: How far back from the head a halt's event is looked for (about a minute of a busy log).
HALT_SCAN = 4096


def directive_event_key(site_id: str, sequence: int) -> str:
    return f"{DIRECTIVE_EVENTS}{site_id}/{sequence:020d}"


def deploy_details(kind: str, payload: dict[str, object]) -> dict[str, str]:
    """What a Deploy's audit event says beyond id, kind and sequence: the artifact it deploys,
    which the site checks against the directive (operators/agent/log_verdict.py)."""
    return {"digest": str(payload.get("digest", ""))} if directive_kinds.get(kind).artifact else {}


async def index_directive(store: Store, site_id: str, sequence: int, audit_sequences: list[int]) -> None:
    """Remember which audit event recorded directive ``sequence`` of ``site_id``. Written after the
    commit (the event's sequence is known only then): if the replica dies in between, the Deploy
    goes out without a proof after the link's wait and its site refuses it, saying so."""
    if audit_sequences:
        await store.put(directive_event_key(site_id, sequence), str(audit_sequences[0]).encode())


class LogProofs:
    def __init__(self, store: Store, checkpoints: Checkpoints, tree: LogTree) -> None:
        self._store = store
        self.checkpoints = checkpoints
        self._tree = tree
        self._latest: tuple[float, list[CheckpointRecord]] = (-1e9, [])
        self._lock = asyncio.Lock()
        self._consistency: collections.OrderedDict[tuple[int, int], list[bytes]] = collections.OrderedDict()
        self._halts: dict[str, int] = {}
        self._halt_lock = asyncio.Lock()
        #: The newest event sequence a halt scan has read.
        self._scanned = 0

    @property
    def vkey(self) -> str:
        return self.checkpoints.key.vkey

    async def retained(self) -> list[CheckpointRecord]:
        """The held checkpoints, smallest first, as read at most ``LATEST_TTL_S`` ago."""
        async with self._lock:
            at, recs = self._latest
            if time.monotonic() - at > LATEST_TTL_S:
                recs = await self.checkpoints.retained()
                self._latest = (time.monotonic(), recs)
            return recs

    async def newest(self) -> CheckpointRecord | None:
        recs = await self.retained()
        return recs[-1] if recs else None

    async def consistency(self, first: int, second: int) -> list[bytes]:
        if first == 0 or first == second:
            return []
        key = (first, second)
        if key in self._consistency:
            self._consistency.move_to_end(key)
            return self._consistency[key]
        path = await self._tree.consistency(first, second)
        self._consistency[key] = path
        if len(self._consistency) > CONSISTENCY_CACHE:
            self._consistency.popitem(last=False)
        return path

    async def for_site(
        self, covering: int, witnesses: Collection[str], min_witnesses: int
    ) -> CheckpointRecord | None:
        """The newest held checkpoint covering event ``covering`` with ``min_witnesses`` of
        ``witnesses``' cosignatures; None when there is none yet (with none required, one is
        signed at once if the newest does not cover the event)."""
        recs = [r for r in await self.retained() if r.size >= covering]
        ok = [r for r in recs if sum(1 for n in r.cosignatures if n in witnesses) >= min_witnesses]
        if ok:
            return ok[-1]
        if min_witnesses == 0:
            try:
                signed = await self.checkpoints.sign_latest()
            except StargateError:
                return None
            self._latest = (-1e9, [])
            return signed if signed is not None and signed.size >= covering else None
        return None

    async def directive_event(self, site_id: str, sequence: int) -> int:
        kv = await self._store.get(directive_event_key(site_id, sequence))
        return int(kv.value) if kv is not None and kv.value.isdigit() else 0

    async def halt_event(self, halt_id: str) -> int:
        """The sequence of the ``safety.halt`` event of ``halt_id`` among the newest events, or 0.

        Each scan reads only events newer than the last one read (at most ``HALT_SCAN``): a site
        asking for ids that do not exist costs a head read, not a range of 4,096 events each."""
        if halt_id in self._halts:
            return self._halts[halt_id]
        async with self._halt_lock:
            if halt_id in self._halts:
                return self._halts[halt_id]
            head = await self._store.get(AUDIT_HEAD)
            top = int(json.loads(head.value)["sequence"]) if head is not None else 0
            start = max(1, top - HALT_SCAN, self._scanned + 1)
            if start > top:
                return 0
            res = await self._store.range(AUDIT_EVENTS, start=audit_key(start), limit=HALT_SCAN + 1)
            self._scanned = top
            for kv in res.items:
                try:
                    event = json.loads(kv.value)
                except ValueError:
                    continue
                if isinstance(event, dict) and event.get("action") == "safety.halt":
                    hid = str((event.get("details") or {}).get("id", ""))
                    if hid:
                        self._halts.setdefault(hid, int(event.get("sequence", 0)))
            if len(self._halts) > 4 * HALT_SCAN:
                self._halts = dict(list(self._halts.items())[-HALT_SCAN:])
            return self._halts.get(halt_id, 0)

    async def prove(
        self, event: int, witnesses: Collection[str], min_witnesses: int
    ) -> tuple[InclusionProof | None, str]:
        """The inclusion proof of audit event ``event`` for a site, or None and why not."""
        if event < 1:
            return None, "its audit event is not indexed"
        cp = await self.for_site(event, witnesses, min_witnesses)
        if cp is None:
            need = f" with {min_witnesses} cosignatures of the site's witnesses" if min_witnesses else ""
            return None, f"no checkpoint{need} covers event {event} yet"
        try:
            return await self.checkpoints.prove_event(event, tree_size=cp.size), ""
        except StargateError as e:
            return None, e.public
