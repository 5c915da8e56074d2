"""C2SP tlog-checkpoint bodies and the checks a verifier makes on a signed checkpoint. Pure.

A checkpoint's note text is three lines: the log's origin, the tree size in decimal (no leading
zeroes), the base64 root hash; the log signs it (an Ed25519 signed note), witnesses add
cosignature/v1 lines. A verifier trusts a checkpoint only when the log's own key signed it and, if
it asks for a quorum, at least that many of the witnesses it chose cosigned it.

``Verified`` is what every client of the log (stargatectl audit verify, witnesses, and sites once
they check what they are told) works with: never the server's word, only what these functions
derived from signatures and proofs.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from controlplane.domain.merkle import HASH_SIZE, ProofError, leaf_hash, verify_consistency, verify_inclusion
from controlplane.domain.notes import ED25519, NoteError, Verifier, open_note, parse_note, validate_name

_SIZE = re.compile(r"0|[1-9][0-9]{0,19}")


@dataclass(frozen=True)
class Checkpoint:
    origin: str
    size: int
    root: bytes
    extensions: tuple[str, ...] = ()

    def body(self) -> str:
        lines = [self.origin, str(self.size), base64.b64encode(self.root).decode(), *self.extensions]
        return "\n".join(lines) + "\n"


def parse_checkpoint(text: str) -> Checkpoint:
    """A checkpoint body (the note text, signatures removed)."""
    if not text.endswith("\n"):
        raise NoteError("checkpoint: must end with a newline")
    lines = text[:-1].split("\n")
    if len(lines) < 3 or any(not line for line in lines):
        raise NoteError("checkpoint: needs origin, size and root hash lines, none empty")
    origin, size, root, *ext = lines
    validate_name(origin, "checkpoint origin")
    if not _SIZE.fullmatch(size) or int(size) >= 1 << 63:
        raise NoteError(f"checkpoint: tree size {size[:24]!r} is not a decimal without leading zeroes")
    try:
        raw = base64.b64decode(root.encode("ascii"), validate=True)
    except ValueError as e:
        raise NoteError("checkpoint: the root hash is not base64") from e
    if len(raw) != HASH_SIZE or base64.b64encode(raw).decode() != root:
        raise NoteError(f"checkpoint: the root hash must be base64 of {HASH_SIZE} bytes")
    return Checkpoint(origin, int(size), raw, tuple(ext))


@dataclass(frozen=True)
class Verified:
    """A checkpoint whose log signature verified, with the witnesses whose cosignature verified."""

    checkpoint: Checkpoint
    note: str
    #: Witness name -> cosignature time (POSIX seconds).
    cosigners: dict[str, int] = field(default_factory=dict)


def verify_checkpoint(
    note: str, log: Verifier, witnesses: Sequence[Verifier] = (), min_witnesses: int = 0
) -> Verified:
    """Check ``note`` is a checkpoint of ``log`` signed with its key, cosigned by at least
    ``min_witnesses`` of ``witnesses``. Raises NoteError saying what is missing."""
    if log.alg != ED25519:
        raise NoteError("the log's verifier key must be an Ed25519 note key (type 0x01)")
    parsed, signers = open_note(note, [log, *witnesses])
    if log.name not in signers:
        raise NoteError(f"checkpoint: not signed by the log key {log.vkey}")
    cp = parse_checkpoint(parsed.text)
    if cp.origin != log.name:
        raise NoteError(f"checkpoint: origin {cp.origin!r} is not the log's ({log.name!r})")
    cosigners = {name: t for name, t in signers.items() if name != log.name}
    if len(cosigners) < min_witnesses:
        raise NoteError(
            f"checkpoint of size {cp.size}: cosigned by {len(cosigners)} of the trusted witnesses "
            f"({', '.join(sorted(cosigners)) or 'none'}), {min_witnesses} required"
        )
    return Verified(cp, note, cosigners)


def checkpoint_text(note: str) -> Checkpoint:
    """The checkpoint a note claims, unverified (for display, and to ask for the right proofs)."""
    return parse_checkpoint(parse_note(note).text)


def verify_leaf(leaf_data: bytes, index: int, path: Sequence[bytes], checkpoint: Checkpoint) -> bytes:
    """Check ``leaf_data`` is leaf ``index`` of ``checkpoint``'s tree; returns its leaf hash."""
    h = leaf_hash(leaf_data)
    verify_inclusion(index, checkpoint.size, h, path, checkpoint.root)
    return h


def verify_extends(old: Checkpoint, new: Checkpoint, path: Sequence[bytes]) -> None:
    """Check ``new`` is an append-only extension of ``old`` (same log). Raises ProofError."""
    if old.origin != new.origin:
        raise ProofError(f"checkpoints of two logs ({old.origin!r}, {new.origin!r})")
    if new.size < old.size:
        raise ProofError(f"the log shrank from {old.size} to {new.size} entries: its history was rewritten")
    if old.size == 0:
        if path:
            raise ProofError("a proof from the empty tree is empty")
        return
    verify_consistency(old.size, new.size, old.root, new.root, path)


def verify_event_proof(
    leaf_data: bytes,
    leaf_index: int,
    path: Sequence[bytes],
    note: str,
    log: Verifier,
    witnesses: Sequence[Verifier] = (),
    min_witnesses: int = 0,
) -> Verified:
    """What a site checks before it acts on what it is told (issue 13 part 5): ``note`` is the
    log's checkpoint, cosigned by at least ``min_witnesses`` of ``witnesses``, and ``leaf_data``
    is leaf ``leaf_index`` of its tree. Raises NoteError or ProofError saying which failed."""
    verified = verify_checkpoint(note, log, witnesses, min_witnesses)
    verify_leaf(leaf_data, leaf_index, path, verified.checkpoint)
    return verified
