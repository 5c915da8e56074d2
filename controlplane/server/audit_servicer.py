"""AuditService: checkpoints, proofs, cosignatures and the witness list (services/checkpoints.py).

A refused cosignature is audited, at most once a minute per caller and reason on each replica: a
witness that keeps offering a bad one (it runs in a loop) must not grow the log it watches by an
event per attempt. Accepted cosignatures are not events either: each would make a new checkpoint
to cosign, for ever.
"""

from __future__ import annotations

import time
from typing import TypeAlias

import grpc

from controlplane.api.v1 import audit_pb2 as apb
from controlplane.api.v1 import audit_pb2_grpc as agrpc
from controlplane.errors import InvalidRequest
from controlplane.pki.identity import Identity
from controlplane.server import convert
from controlplane.server.rpc import authenticated
from controlplane.server.runtime import Runtime
from controlplane.services.audit import Entry
from controlplane.services.checkpoints import CheckpointRecord
from controlplane.services.witnesses import signed_list

Ctx: TypeAlias = grpc.aio.ServicerContext
#: Seconds between two audited refusals of the same caller for the same reason.
REFUSAL_AUDIT_INTERVAL = 60.0


def checkpoint_pb(rec: CheckpointRecord) -> apb.Checkpoint:
    return apb.Checkpoint(
        tree_size=rec.size,
        root_hash=rec.root_hash,
        note=rec.signed_note(),
        cosigners=sorted(rec.cosignatures),
        signed_at=convert.ts(rec.signed_at),
    )


class AuditServicer(agrpc.AuditServiceServicer):
    def __init__(self, rt: Runtime) -> None:
        self.rt = rt
        self.trust_domain = rt.ca.trust_domain
        self.audit = rt.audit
        #: Refused calls, audited in bounded volume (services/refusals.py; used by `authenticated`).
        self.refusals = rt.refusals
        self.checkpoints = rt.checkpoints
        self._refused: dict[tuple[str, str], float] = {}

    @authenticated("GetLogInfo")
    async def GetLogInfo(
        self, request: apb.GetLogInfoRequest, context: Ctx, caller: Identity
    ) -> apb.GetLogInfoResponse:
        size, _ = await self.audit.tree.state()
        key = self.checkpoints.key
        return apb.GetLogInfoResponse(
            origin=key.origin, verifier_key=key.vkey, tree_size=size, alarm=self.checkpoints.alarm
        )

    @authenticated("GetCheckpoint")
    async def GetCheckpoint(
        self, request: apb.GetCheckpointRequest, context: Ctx, caller: Identity
    ) -> apb.GetCheckpointResponse:
        if request.tree_size:
            rec = await self.checkpoints.at(request.tree_size)
        else:
            rec = await self.checkpoints.latest(max(0, request.min_cosignatures))
        return apb.GetCheckpointResponse(checkpoint=checkpoint_pb(rec))

    @authenticated("ListCheckpoints")
    async def ListCheckpoints(
        self, request: apb.ListCheckpointsRequest, context: Ctx, caller: Identity
    ) -> apb.ListCheckpointsResponse:
        recs = await self.checkpoints.retained(request.after_size)
        return apb.ListCheckpointsResponse(checkpoints=[checkpoint_pb(r) for r in recs])

    @authenticated("GetInclusionProof")
    async def GetInclusionProof(
        self, request: apb.GetInclusionProofRequest, context: Ctx, caller: Identity
    ) -> apb.GetInclusionProofResponse:
        proof = await self.checkpoints.prove_event(
            request.sequence, request.tree_size, max(0, request.min_cosignatures)
        )
        return apb.GetInclusionProofResponse(
            leaf_index=proof.leaf_index,
            tree_size=proof.tree_size,
            leaf_hash=proof.leaf_hash,
            inclusion_path=proof.path,
            checkpoint=checkpoint_pb(proof.checkpoint),
            leaf=proof.leaf,
        )

    @authenticated("GetConsistencyProof")
    async def GetConsistencyProof(
        self, request: apb.GetConsistencyProofRequest, context: Ctx, caller: Identity
    ) -> apb.GetConsistencyProofResponse:
        path = await self.audit.tree.consistency(request.first, request.second)
        return apb.GetConsistencyProofResponse(
            first=request.first, second=request.second, consistency_path=path
        )

    @authenticated("AddCosignature")
    async def AddCosignature(
        self, request: apb.AddCosignatureRequest, context: Ctx, caller: Identity
    ) -> apb.AddCosignatureResponse:
        try:
            rec = await self.checkpoints.add_cosignature(request.tree_size, request.cosignature)
        except InvalidRequest as e:  # not NotFound: a witness a little behind, cosigning a pruned one
            await self._audit_refusal(caller, request.tree_size, e.public)
            raise
        return apb.AddCosignatureResponse(checkpoint=checkpoint_pb(rec))

    async def _audit_refusal(self, caller: Identity, size: int, reason: str) -> None:
        now, key = time.monotonic(), (caller.spiffe_id, reason)
        if now - self._refused.get(key, -1e9) < REFUSAL_AUDIT_INTERVAL:
            return
        if len(self._refused) > 1000:
            self._refused.clear()
        self._refused[key] = now
        entry = Entry(caller.spiffe_id, "audit.cosign", f"checkpoint/{size}", "denied", reason[:512])
        await self.audit.record(entry)

    @authenticated("AddWitness")
    async def AddWitness(
        self, request: apb.AddWitnessRequest, context: Ctx, caller: Identity
    ) -> apb.AddWitnessResponse:
        rec = await self.rt.witnesses.add(caller.spiffe_id, request.verifier_key)
        return apb.AddWitnessResponse(witness=_witness_pb(rec))

    @authenticated("RemoveWitness")
    async def RemoveWitness(
        self, request: apb.RemoveWitnessRequest, context: Ctx, caller: Identity
    ) -> apb.RemoveWitnessResponse:
        await self.rt.witnesses.remove(caller.spiffe_id, request.name)
        return apb.RemoveWitnessResponse()

    @authenticated("ListWitnesses")
    async def ListWitnesses(
        self, request: apb.ListWitnessesRequest, context: Ctx, caller: Identity
    ) -> apb.ListWitnessesResponse:
        records = await self.rt.witnesses.records()
        verifiers = await self.rt.witnesses.verifiers()
        return apb.ListWitnessesResponse(
            witnesses=[_witness_pb(r) for r in records],
            signed_list=signed_list(self.checkpoints.key, verifiers),
        )


def _witness_pb(rec: dict[str, object]) -> apb.Witness:
    return apb.Witness(
        name=str(rec["name"]),
        verifier_key=str(rec["vkey"]),
        added_at=convert.ts(float(rec["added_at"])),  # type: ignore[arg-type]
        added_by=str(rec["added_by"]),
    )
