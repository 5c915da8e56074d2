"""C2SP signed notes (c2sp.org/signed-note) and their verifier keys, Ed25519 only. Pure.

A note is UTF-8 text ending in a newline, a blank line, then one or more signature lines
``— <key name> <base64(4-byte key id || signature)>``. Key ids follow the spec exactly:
SHA-256(name || 0x0A || type || public key)[:4], with type 0x01 for Ed25519 note signatures (the
log's key) and 0x04 for tlog-cosignature/v1 (witnesses), whose signature is 8 bytes of big-endian
POSIX time then the Ed25519 signature of ``cosignature/v1\\ntime <t>\\n`` + the note text. A
verifier key (vkey) is ``<name>+<8 hex key id>+<base64(type || 32-byte public key)>``.

Opening a note follows the spec's rules: signatures from keys the verifier does not know are
ignored, a known key's signature that does not verify rejects the whole note, and a note with no
verified signature is rejected. Tested against golang.org/x/mod/sumdb/note's published vectors.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

ED25519 = 0x01
COSIGNATURE_V1 = 0x04
DASH = "\u2014"
#: More than any real note carries (Go's note package stops at 100 as well): bounds hostile input.
MAX_SIGNATURES = 100
MAX_NOTE_BYTES = 64 * 1024


class NoteError(ValueError):
    """A note, key or signature is malformed or does not verify; the message says which."""


def _b64decode(text: str, what: str) -> bytes:
    try:
        return base64.b64decode(text.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError) as e:
        raise NoteError(f"{what}: not valid base64") from e


def validate_name(name: str, what: str = "key name") -> str:
    if not name or any(c.isspace() or c == "+" or ord(c) < 0x20 for c in name) or len(name) > 255:
        raise NoteError(f"{what} {name[:64]!r}: must be 1-255 characters without spaces or '+'")
    return name


def key_id(name: str, alg: int, public: bytes) -> bytes:
    return hashlib.sha256(name.encode() + b"\n" + bytes([alg]) + public).digest()[:4]


def cosignature_message(text: str, timestamp: int) -> bytes:
    return f"cosignature/v1\ntime {timestamp}\n".encode() + text.encode()


@dataclass(frozen=True)
class Verifier:
    name: str
    alg: int
    public: bytes

    @property
    def key_id(self) -> bytes:
        return key_id(self.name, self.alg, self.public)

    @property
    def vkey(self) -> str:
        return f"{self.name}+{self.key_id.hex()}+{base64.b64encode(bytes([self.alg]) + self.public).decode()}"

    def verify(self, text: str, data: bytes) -> int | None:
        """Whether ``data`` (a signature line's bytes after the key id) signs ``text``: None if not;
        else the cosignature's timestamp (0 for a plain note signature)."""
        timestamp = 0
        message = text.encode()
        if self.alg == COSIGNATURE_V1:
            if len(data) != 72:
                return None
            timestamp = int.from_bytes(data[:8], "big")
            if timestamp >= 1 << 63:
                return None
            message, data = cosignature_message(text, timestamp), data[8:]
        if len(data) != 64:
            return None
        try:
            Ed25519PublicKey.from_public_bytes(self.public).verify(data, message)
        except InvalidSignature:
            return None
        return timestamp


def parse_vkey(vkey: str, what: str = "verifier key") -> Verifier:
    """A vkey string as a Verifier; only Ed25519 (0x01) and cosignature/v1 (0x04) keys."""
    parts = vkey.strip().split("+", 2)  # the base64 key may contain "+" itself
    if len(parts) != 3:
        raise NoteError(f"{what}: must be <name>+<8 hex key id>+<base64 key>")
    name, hexid, b64 = parts
    validate_name(name, f"{what} name")
    if len(hexid) != 8 or hexid.lower() != hexid or any(c not in "0123456789abcdef" for c in hexid):
        raise NoteError(f"{what}: the key id must be 8 lowercase hex digits")
    raw = _b64decode(b64, what)
    if len(raw) != 33 or raw[0] not in (ED25519, COSIGNATURE_V1):
        raise NoteError(f"{what}: must be an Ed25519 key (type 0x01 or 0x04, 32 bytes)")
    v = Verifier(name, raw[0], raw[1:])
    if v.key_id.hex() != hexid:
        raise NoteError(f"{what}: key id {hexid} does not match the key (expected {v.key_id.hex()})")
    return v


@dataclass(frozen=True)
class Signer:
    name: str
    private: Ed25519PrivateKey
    alg: int = ED25519

    @property
    def verifier(self) -> Verifier:
        raw = self.private.public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw
        )
        return Verifier(self.name, self.alg, raw)

    def signature_line(self, text: str, timestamp: int = 0) -> str:
        if self.alg == COSIGNATURE_V1:
            data = timestamp.to_bytes(8, "big") + self.private.sign(cosignature_message(text, timestamp))
        else:
            data = self.private.sign(text.encode())
        sig = base64.b64encode(self.verifier.key_id + data).decode()
        return f"{DASH} {self.name} {sig}\n"


@dataclass(frozen=True)
class Signature:
    name: str
    key_id: bytes
    data: bytes
    line: str


@dataclass(frozen=True)
class Note:
    text: str
    signatures: tuple[Signature, ...]


def parse_note(note: str) -> Note:
    """Split a signed note into text and signature lines (syntax only: nothing is verified)."""
    if len(note.encode()) > MAX_NOTE_BYTES:
        raise NoteError(f"note: larger than {MAX_NOTE_BYTES} bytes")
    if any(ord(c) < 0x20 and c != "\n" for c in note):
        raise NoteError("note: contains control characters")
    cut = note.rfind("\n\n")
    if cut < 0 or not note.endswith("\n"):
        raise NoteError("note: no blank line before the signatures")
    text, sig_block = note[: cut + 1], note[cut + 2 :]
    lines = sig_block.splitlines(keepends=True)
    if not lines or len(lines) > MAX_SIGNATURES:
        raise NoteError(f"note: must carry 1-{MAX_SIGNATURES} signature lines")
    sigs = []
    for line in lines:
        fields = line[:-1].split(" ")
        if not line.endswith("\n") or len(fields) != 3 or fields[0] != DASH:
            raise NoteError(f"note: malformed signature line {line[:80]!r}")
        validate_name(fields[1], "signature name")
        raw = _b64decode(fields[2], f"signature of {fields[1]}")
        if len(raw) < 5:
            raise NoteError(f"note: signature of {fields[1]} is too short")
        sigs.append(Signature(fields[1], raw[:4], raw[4:], line))
    return Note(text, tuple(sigs))


def open_note(note: str, verifiers: Sequence[Verifier]) -> tuple[Note, dict[str, int]]:
    """Parse and verify ``note``. Returns it with the verified signers (name -> cosignature time,
    0 for plain signatures). Raises NoteError when a known key's signature fails, or none verifies."""
    parsed = parse_note(note)
    known = {(v.name, v.key_id): v for v in verifiers}
    verified: dict[str, int] = {}
    for sig in parsed.signatures:
        v = known.get((sig.name, sig.key_id))
        if v is None:
            continue  # an unknown key: ignored, as the spec requires
        timestamp = v.verify(parsed.text, sig.data)
        if timestamp is None:
            raise NoteError(f"note: the signature of {sig.name}+{sig.key_id.hex()} does not verify")
        verified[sig.name] = timestamp
    if not verified:
        raise NoteError("note: no signature from a trusted key")
    return parsed, verified


def sign_note(text: str, signer: Signer) -> str:
    if not text.endswith("\n"):
        raise NoteError("note text must end with a newline")
    return text + "\n" + signer.signature_line(text)
