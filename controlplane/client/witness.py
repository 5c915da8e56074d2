"""A country's witness: fetch each new checkpoint, check it, remember it durably, cosign it.

``stargatectl witness run`` drives ``Witness.step`` in a loop. The witness holds its own Ed25519
key (made where it runs, ``stargatectl witness keygen``) and the log's verifier key (obtained out
of band). Each step lists the checkpoints the federation holds from the size it cosigned last,
and for each in order: verifies the log's signature, asks for a consistency proof from that size,
lets ``controlplane.domain.witness.judge`` decide, writes its state to disk (fsync, rename, fsync
of the directory) and only then sends the cosignature. Refusals are written to the same state,
so a restarted witness keeps refusing what it refused, and says so.
"""

from __future__ import annotations

import base64
import logging
import os
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from controlplane.api.v1 import audit_pb2 as apb
from controlplane.client.federation import FederationClient
from controlplane.domain.checkpoints import verify_checkpoint
from controlplane.domain.notes import COSIGNATURE_V1, NoteError, Signer, Verifier, validate_name
from controlplane.domain.witness import Verdict, WitnessState, judge, refuse
from controlplane.errors import FailedPrecondition, InvalidArgument, NotFound, StargateError

log = logging.getLogger(__name__)
STATE_FILE = "state.json"


def write_durably(path: Path, data: bytes) -> None:
    """Replace ``path`` with ``data``: a crash leaves the old file or the new one, never neither."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    dfd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dfd)
    finally:
        os.close(dfd)


def generate_key(name: str, path: Path) -> Verifier:
    """A new witness key written to ``path`` (0600, never overwritten); returns its verifier."""
    validate_name(name, "--name")
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError as e:
        raise InvalidArgument("--key", f"{path} exists: a witness key is never replaced") from e
    with os.fdopen(fd, "wb") as f:
        f.write(pem)
    return Signer(name, key, COSIGNATURE_V1).verifier


def load_key(name: str, path: Path) -> Signer:
    validate_name(name, "--name")
    try:
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except (OSError, ValueError) as e:
        raise InvalidArgument("--key", f"cannot load an Ed25519 key from {path}") from e
    if not isinstance(key, Ed25519PrivateKey):
        raise InvalidArgument("--key", f"{path} is not an Ed25519 key")
    return Signer(name, key, COSIGNATURE_V1)


@dataclass(frozen=True)
class Outcome:
    size: int
    cosigned: bool
    reason: str


class Witness:
    def __init__(self, signer: Signer, state_dir: Path, log_key: Verifier) -> None:
        self.signer = signer
        self.log_key = log_key
        self.path = state_dir / STATE_FILE
        state_dir.mkdir(parents=True, exist_ok=True)
        if self.path.exists():
            self.state = WitnessState.from_json(self.path.read_bytes())
            if self.state.log_vkey != log_key.vkey:
                raise FailedPrecondition(
                    f"{self.path} belongs to the log {self.state.log_vkey}, not {log_key.vkey}"
                )
        else:
            self.state = WitnessState(log_key.vkey)
            write_durably(self.path, self.state.to_json())

    def _persist(self, verdict: Verdict) -> None:
        if verdict.state != self.state:
            write_durably(self.path, verdict.state.to_json())  # before the answer leaves
            self.state = verdict.state

    async def step(self, c: FederationClient) -> list[Outcome]:
        """Check, remember and cosign every checkpoint newer than (or as large as) the last one."""
        try:
            latest = (await c.call("GetCheckpoint", apb.GetCheckpointRequest())).checkpoint
        except FailedPrecondition:
            return []  # the log has no checkpoint yet
        if latest.tree_size < self.state.size:
            candidates = [latest]  # the newest is smaller than what we cosigned: refused below
        else:
            after = max(0, self.state.size - 1)
            got = await c.call("ListCheckpoints", apb.ListCheckpointsRequest(after_size=after))
            candidates = list(got.checkpoints) or [latest]
        outcomes = []
        for cp in candidates:
            same = cp.tree_size == self.state.size and cp.root_hash == self.state.root
            if same and self.signer.name in cp.cosigners:
                continue  # cosigned already (the federation holds our line)
            outcomes.append(await self._one(c, cp))
        return outcomes

    async def _one(self, c: FederationClient, cp: apb.Checkpoint) -> Outcome:
        now = time.time()
        try:
            verified = verify_checkpoint(cp.note, self.log_key)
        except NoteError as e:
            log.error("refused checkpoint %d: %s", cp.tree_size, e)
            return Outcome(cp.tree_size, False, f"not signed by the log key: {e}")
        checkpoint = verified.checkpoint
        proof: list[bytes] = []
        if 0 < self.state.size < checkpoint.size:
            try:
                got = await c.call(
                    "GetConsistencyProof",
                    apb.GetConsistencyProofRequest(first=self.state.size, second=checkpoint.size),
                )
                proof = list(got.consistency_path)
            except StargateError as e:
                why = f"no consistency proof from {self.state.size}: {e.public}"
                verdict = refuse(self.state, checkpoint, why, now)
                self._persist(verdict)
                log.error("refused checkpoint %d: %s", checkpoint.size, verdict.reason)
                return Outcome(checkpoint.size, False, verdict.reason)
        note_text = checkpoint.body()
        verdict = judge(self.state, checkpoint, cp.note, proof, now)
        self._persist(verdict)
        if not verdict.cosign:
            log.error("refused checkpoint %d: %s", checkpoint.size, verdict.reason)
            return Outcome(checkpoint.size, False, verdict.reason)
        line = self.signer.signature_line(note_text, int(now))
        try:
            await c.call(
                "AddCosignature", apb.AddCosignatureRequest(tree_size=checkpoint.size, cosignature=line)
            )
        except NotFound:  # pruned meanwhile: the next, newer one will carry our cosignature
            log.warning("checkpoint %d no longer held by the federation", checkpoint.size)
        log.info("cosigned checkpoint %d (%s)", checkpoint.size, base64.b64encode(checkpoint.root).decode())
        return Outcome(checkpoint.size, True, verdict.reason)
