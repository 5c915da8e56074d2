"""Signed checkpoints of the audit log, the witnesses' cosignatures on them, and proofs.

After a commit that appended events, each replica signs a C2SP checkpoint of the tree with the log
key at most once per ``interval`` (1 s by default): never one signature per commit, so that the
~50 commits of 1,000 sites acknowledging a halt cost at most one signature (benchmarks measure it).
A checkpoint is stored under ``audit/checkpoints/<size>``; the newest ``RETAIN`` are kept.

The log never signs a tree that is not an append-only extension of the newest checkpoint it
stored, nor of the last one this replica signed (a C2SP requirement): if someone with store access
truncated or rewrote the log, the replica stops signing and says why (``alarm``). Witnesses and
``stargatectl audit verify`` check the same thing on their own, without trusting this code.
"""

from __future__ import annotations

import asyncio
import base64
import hmac
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from controlplane.domain import merkle
from controlplane.domain.checkpoints import Checkpoint, verify_checkpoint
from controlplane.domain.notes import NoteError, open_note, sign_note
from controlplane.domain.records import AUDIT_CHECKPOINTS, Record, audit_key, checkpoint_key
from controlplane.errors import FailedPrecondition, InvalidArgument, NotFound, StargateError
from controlplane.pki.log_key import LogKey
from controlplane.services import cas, clock
from controlplane.services.log_tree import LogTree
from controlplane.services.witnesses import WitnessList
from controlplane.store import Compare, Delete, KeyValue, Op, Put, Store, TxnResult

log = logging.getLogger(__name__)
#: A cosignature time this far ahead of ours is refused (C2SP allows refusing future times).
MAX_CLOCK_SKEW = 300
#: Cosignatures of one checkpoint race only each other (one line per witness, a handful of
#: witnesses): 5 attempts, then the witness retries.
COSIGN = cas.CasPolicy(5, lambda: FailedPrecondition("checkpoint changed meanwhile, retry"))


@dataclass(frozen=True)
class CheckpointRecord(Record):
    size: int
    root: str
    #: The signed note: the checkpoint body and the log's signature line.
    note: str
    signed_at: float
    #: Witness name -> its cosignature/v1 signature line.
    cosignatures: dict[str, str] = field(default_factory=dict)

    @property
    def root_hash(self) -> bytes:
        return base64.b64decode(self.root)

    def signed_note(self) -> str:
        """The note with every cosignature appended (sorted by witness name)."""
        return self.note + "".join(self.cosignatures[name] for name in sorted(self.cosignatures))


@dataclass(frozen=True)
class InclusionProof:
    leaf_index: int
    tree_size: int
    leaf: bytes
    leaf_hash: bytes
    path: list[bytes]
    checkpoint: CheckpointRecord


class Checkpoints:
    RETAIN = 64

    def __init__(
        self, store: Store, tree: LogTree, key: LogKey, witnesses: WitnessList, *, interval: float = 1.0
    ) -> None:
        self._store = store
        self._tree = tree
        self.key = key
        self.witnesses = witnesses
        self.interval = interval
        self._dirty = asyncio.Event()
        self._lock = asyncio.Lock()
        self._last_attempt = -1e9
        #: The last (size, root) this replica signed or checked: it never signs a contradiction.
        self._trusted: tuple[int, bytes] | None = None
        #: Why this replica stopped signing, if it did ("" while all is well).
        self.alarm = ""

    def notify(self, size: int) -> None:
        """A commit appended events (AuditLog listener: cheap, never blocks the hot path)."""
        self._dirty.set()

    async def run(self) -> None:
        """Sign what is unsigned now, then after commits, at most once per interval."""
        while True:
            self._last_attempt = time.monotonic()  # also after a failure: at most one try per interval
            try:
                await self.sign_latest()
            except StargateError as e:
                log.warning("audit checkpoint not signed: %s", e.public)
            except Exception:  # never let the signer die: checkpoints would silently stop
                log.exception("audit checkpoint signing failed")
            await self._dirty.wait()
            self._dirty.clear()
            wait = self._last_attempt + self.interval - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)

    async def retained(self, after: int = 0) -> list[CheckpointRecord]:
        """The stored checkpoints with a size above ``after``, smallest first."""
        res = await self._store.range(AUDIT_CHECKPOINTS, start=checkpoint_key(after + 1))
        out = []
        for kv in res.items:
            try:
                out.append(CheckpointRecord.from_json(kv.value))
            except (ValueError, TypeError):
                log.warning("unreadable checkpoint record %s skipped", kv.key)
        return out

    def _refuse(self, reason: str) -> FailedPrecondition:
        if reason != self.alarm:
            log.error("audit log: refusing to sign checkpoints: %s", reason)
        self.alarm = reason
        return FailedPrecondition(f"the audit log is not signed: {reason}")

    async def _check_extends(self, latest: CheckpointRecord | None, size: int, root: bytes) -> None:
        anchors: list[tuple[int, bytes, str]] = []
        if latest is not None:
            try:
                verify_checkpoint(latest.note, self.key.verifier)
            except NoteError as e:
                raise self._refuse(
                    f"stored checkpoint {latest.size} is not signed by this replica's log key "
                    f"{self.key.vkey} ({e}); every replica needs the same log.key"
                ) from e
            anchors.append((latest.size, latest.root_hash, "the newest stored checkpoint"))
        if self._trusted is not None:
            anchors.append((*self._trusted, "the last checkpoint this replica signed"))
        for m, old_root, what in anchors:
            if m > size:
                raise self._refuse(f"the log shrank to {size} events below {what} ({m}): it was rewritten")
            if m == size and not hmac.compare_digest(old_root, root):
                raise self._refuse(f"the tree of {size} events differs from {what}: the log was rewritten")
            if m < size:
                try:
                    merkle.verify_consistency(m, size, old_root, root, await self._tree.consistency(m, size))
                except merkle.ProofError as e:
                    raise self._refuse(
                        f"the tree of {size} events does not extend {what} ({m}): it was rewritten ({e})"
                    ) from e
        if not anchors and not hmac.compare_digest(await self._tree.root(size), root):
            raise self._refuse("the tree record does not match its tiles")

    async def sign_latest(self) -> CheckpointRecord | None:
        """Sign the tree as committed now, unless the newest checkpoint covers it already."""
        async with self._lock:
            # The checkpoints first, then the tree: a checkpoint stored in between is not newer
            # than the tree read after it (reading the other way round looks like a shrink).
            retained = await self.retained()
            latest = retained[-1] if retained else None
            size, root = await self._tree.state()
            if size == 0 and latest is None:
                return None
            if self._trusted == (size, root) and latest is not None and latest.size >= size:
                return latest  # nothing new since the last check
            await self._check_extends(latest, size, root)
            self.alarm = ""
            self._trusted = (size, root)
            if latest is not None and latest.size == size:
                return latest
            note = sign_note(Checkpoint(self.key.origin, size, root).body(), self.key.signer)
            rec = CheckpointRecord(size, base64.b64encode(root).decode(), note, clock.now())
            drop = retained[: max(0, len(retained) + 1 - self.RETAIN)]
            old = [Delete(checkpoint_key(r.size)) for r in drop]
            key = checkpoint_key(size)
            await self._store.txn([Compare.absent(key)], [Put(key, rec.to_json()), *old])
            return await self.at(size)  # ours, or the same one another replica stored first

    async def at(self, size: int) -> CheckpointRecord:
        kv = await self._store.get(checkpoint_key(size))
        if kv is None:
            raise NotFound(f"no checkpoint of size {size} is held (the newest {self.RETAIN} are)")
        return CheckpointRecord.from_json(kv.value)

    async def latest(self, min_cosignatures: int = 0, covering: int = 0) -> CheckpointRecord:
        """The newest checkpoint with at least ``min_cosignatures`` and ``covering`` events; signs
        one first when no unsigned events would otherwise be left out."""
        found = [r for r in await self.retained(covering - 1) if len(r.cosignatures) >= min_cosignatures]
        if not found and min_cosignatures == 0:
            signed = await self.sign_latest()
            found = [signed] if signed is not None and signed.size >= covering else []
        if not found:
            words = ["no checkpoint"]
            words += [f"with {min_cosignatures} cosignatures"] if min_cosignatures else []
            words += [f"covers event {covering}"] if covering else []
            raise FailedPrecondition(" ".join([*words, "yet"]))
        return found[-1]

    async def prove_event(
        self, sequence: int, tree_size: int = 0, min_cosignatures: int = 0
    ) -> InclusionProof:
        """Event ``sequence`` and its inclusion proof against a checkpoint: the one of ``tree_size``,
        or the newest with ``min_cosignatures`` (what a Deploy will carry to its site)."""
        if sequence < 1:
            raise InvalidArgument("sequence", "must be 1 or more")
        cp = await (self.at(tree_size) if tree_size else self.latest(min_cosignatures, covering=sequence))
        if sequence > cp.size:
            raise InvalidArgument("sequence", f"event {sequence} is not in the checkpoint of size {cp.size}")
        kv = await self._store.get(audit_key(sequence))
        if kv is None:
            raise NotFound(f"audit event {sequence} is not stored")
        path = await self._tree.inclusion(sequence - 1, cp.size)
        return InclusionProof(sequence - 1, cp.size, kv.value, merkle.leaf_hash(kv.value), path, cp)

    async def add_cosignature(self, size: int, line: str) -> CheckpointRecord:
        """Attach a listed witness's cosignature to the checkpoint of ``size``. Raises
        InvalidArgument (not a listed witness, does not verify, from the future) or NotFound."""
        if not line.endswith("\n"):
            line += "\n"
        if line.count("\n") != 1 or len(line) > 512:
            raise InvalidArgument("cosignature", "must be one signature line of at most 512 characters")

        async def decide(kv: KeyValue | None) -> CheckpointRecord | cas.Write[CheckpointRecord]:
            if kv is None:
                raise NotFound(f"no checkpoint of size {size} is held (cosign a newer one)")
            rec = CheckpointRecord.from_json(kv.value)
            try:
                _, signers = open_note(rec.note + line, await self.witnesses.verifiers())
            except NoteError as e:
                raise InvalidArgument("cosignature", f"not a cosignature of a listed witness: {e}") from e
            ((name, when),) = signers.items()
            if when > clock.now() + MAX_CLOCK_SKEW:
                raise InvalidArgument("cosignature", f"its time {when} is in the future")
            if rec.cosignatures.get(name) == line:
                return rec
            new = rec.replace(cosignatures={**rec.cosignatures, name: line})
            return cas.Write(new.to_json(), new)

        async def commit(compares: Sequence[Compare], ops: Sequence[Op], entries: object) -> TxnResult:
            return await self._store.txn(compares, ops)  # cosignatures are not audited events

        return await cas.mutate(self._store, commit, checkpoint_key(size), decide, policy=COSIGN)
