"""The transparency-log half of one site link (issue 13 part 5).

- Each beacon carries the newest checkpoint when it changed since the last one this link sent,
  with a consistency proof from the size the site said it holds (Hello.checkpoint_size), so the
  site can check that its history only grew.
- A Deploy is sent with the inclusion proof of its ``directive.issue`` event against the newest
  checkpoint that has the cosignatures the site requires (Hello.min_witnesses of Hello.witnesses).
  Until one exists the link holds the Deploy back (the queue is per site and ordered anyway; the
  safety lane and beacons keep going), re-trying every ``RETRY_S``; after ``DEPLOY_PROOF_WAIT_S``
  it sends the Deploy with what it has (no proof, or too few cosignatures) and the site refuses
  it, saying why: the queue never stalls for good.
- A site asks for the proof of a halt it applied (LogProofRequest); the answer goes out with the
  next turn of the link's send loop.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any

from controlplane.api import directive_kinds
from controlplane.api.v1 import logproof_pb2 as lpb
from controlplane.api.v1 import safety_pb2 as xpb
from controlplane.api.v1 import site_pb2 as spb
from controlplane.domain.records import DirectiveRecord
from controlplane.services.checkpoints import InclusionProof
from controlplane.services.log_proofs import LogProofs

log = logging.getLogger(__name__)
#: How long a Deploy waits for a checkpoint with the cosignatures its site requires (witnesses
#: cosign in rounds of a few seconds; checkpoints are signed at most once a second).
DEPLOY_PROOF_WAIT_S = 30.0
RETRY_S = 0.25
#: Proof answers queued per link at most (a site asks for each pending halt every few seconds).
MAX_REPLIES = 16


class LogLink:
    def __init__(
        self, proofs: LogProofs, site_id: str, hello: spb.Hello, session: Any, wait: Callable[[], float]
    ) -> None:
        self.proofs = proofs
        self.site_id = site_id
        self.min_witnesses = hello.min_witnesses
        self.witnesses = frozenset(hello.witnesses)
        #: The size of the site's checkpoint, as far as this link knows (it takes what it is sent).
        self.site_size = hello.checkpoint_size
        self.sent_size = -1
        #: How long a Deploy may wait for its checkpoint (read each time: an operational setting).
        self.wait = wait
        self._session = session
        self._waiting: dict[int, float] = {}
        self.replies: list[spb.ConnectResponse] = []
        self._answering: set[asyncio.Task[None]] = set()

    async def _consistency(self, size: int) -> lpb.LogConsistency | None:
        first, second = sorted((self.site_size, size))
        if first == 0 or first == second:
            return None
        path = await self.proofs.consistency(first, second)
        return lpb.LogConsistency(first=first, second=second, path=path)

    async def on_beacon(self, beacon: xpb.Beacon) -> None:
        """Put the newest checkpoint on ``beacon`` if this link has not sent it yet."""
        try:
            cp = await self.proofs.newest()
            if cp is None or cp.size == self.sent_size:
                return
            consistency = await self._consistency(cp.size)
        except Exception as e:  # a beacon must go out whatever the log's state
            log.warning("beacon of %s without a checkpoint: %s", self.site_id, e)
            return
        beacon.checkpoint = cp.signed_note()
        if consistency is not None:
            beacon.consistency.CopyFrom(consistency)
        self.sent_size = cp.size
        self.site_size = max(self.site_size, cp.size)

    async def _proof_pb(self, proof: InclusionProof) -> lpb.LogProof:
        out = lpb.LogProof(
            leaf_index=proof.leaf_index,
            leaf=proof.leaf,
            inclusion_path=proof.path,
            checkpoint=proof.checkpoint.signed_note(),
        )
        consistency = await self._consistency(proof.tree_size)
        if consistency is not None:
            out.consistency.CopyFrom(consistency)
        return out  # the site checks it against its checkpoint, which only beacons move

    async def attach(self, rec: DirectiveRecord, msg: spb.ConnectResponse) -> bool:
        """Attach a Deploy's proof to ``msg``; False to hold it back (retry soon)."""
        kind = directive_kinds.find(rec.kind)
        if kind is None or not kind.artifact:
            return True
        event = await self.proofs.directive_event(self.site_id, rec.sequence)
        proof, why = await self.proofs.prove(event, self.witnesses, self.min_witnesses)
        if proof is None:
            first = self._waiting.setdefault(rec.sequence, time.monotonic())
            if time.monotonic() - first < self.wait():
                asyncio.get_running_loop().call_later(RETRY_S, self._session.wake.set)
                return False
            log.warning(
                "deploy %d to %s sent without a log proof after %gs: %s",
                rec.sequence,
                self.site_id,
                self.wait(),
                why,
            )
            self._waiting.pop(rec.sequence, None)
            return True
        msg.directive.log_proof.CopyFrom(await self._proof_pb(proof))
        self._waiting.pop(rec.sequence, None)
        return True

    def request(self, request: lpb.LogProofRequest) -> None:
        """Answer a proof request beside the link's reader (acks behind it are not held up); at
        most ``MAX_REPLIES`` at a time, more are dropped (the site asks again)."""
        if len(self._answering) + len(self.replies) >= MAX_REPLIES:
            return
        task = asyncio.create_task(self._answer_logged(request))
        self._answering.add(task)
        task.add_done_callback(self._answering.discard)

    async def _answer_logged(self, request: lpb.LogProofRequest) -> None:
        try:
            await self.answer(request)
        except Exception as e:  # the site asks again; never take the link down for it
            log.warning("log proof for %s not answered: %s", self.site_id, e)

    def close(self) -> None:
        for task in list(self._answering):
            task.cancel()

    async def answer(self, request: lpb.LogProofRequest) -> None:
        """Queue the proof of a halt's audit event (or why there is none yet)."""
        reply = lpb.LogProofResponse(directive_id=request.directive_id)
        event = await self.proofs.halt_event(request.directive_id)
        proof, why = await self.proofs.prove(event, self.witnesses, self.min_witnesses)
        if proof is None:
            reply.error = why
        else:
            reply.proof.CopyFrom(await self._proof_pb(proof))
        self.replies.append(spb.ConnectResponse(log_proof=reply))
        self._session.wake.set()

    def take_replies(self) -> list[spb.ConnectResponse]:
        out, self.replies = self.replies, []
        return out
