"""Signed notes, verifier keys, checkpoints and cosignatures, against published vectors.

Vectors: golang.org/x/mod/sumdb/note's note_test.go (the PeterNeumann key, its vkey and the signed
"If you think cryptography..." note; commit 02c991387e35f9e4c0a9b7ce137717055f8d716d), and a
cosignature/v1 witness vkey from transparency-dev/formats note/note_cosigv1_test.go
("remora.n621.de", commit 091ce41666c09683aa9350785e572be27f0c026d) for the 0x04 key id rule.
"""

from __future__ import annotations

import base64

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from controlplane.domain.checkpoints import Checkpoint, parse_checkpoint, verify_checkpoint
from controlplane.domain.notes import (
    COSIGNATURE_V1,
    DASH,
    ED25519,
    NoteError,
    Signer,
    open_note,
    parse_note,
    parse_vkey,
    sign_note,
)

PETER_SKEY = "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz"
PETER_VKEY = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
TEXT = "If you think cryptography is the answer to your problem,\nthen you don't know what your problem is.\n"
PETER_SIGNED = (
    TEXT + "\n" + f"{DASH} PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfq"
    "dngotpRZb6KE6RyyBwJnAM=\n"
)
ENOCH_VKEY = "EnochRoot+af0cfe78+ATtqJ7zOtqQtYqOo0CpvDXNlMhV3HeJDpjrASKGLWdop"
ENOCH_SIG = (
    f"{DASH} EnochRoot rwz+eBzmZa0SO3NbfRGzPCpDckykFXSdeX+MNtCOXm2/5n2tiOHp+vAF1aGrQ5ovTG01oOTGwnWLox33WWd1"
    "RvMc+QQ=\n"
)


def peter() -> Signer:
    seed = base64.b64decode(PETER_SKEY.split("+", 4)[4])[1:]  # PRIVATE+KEY+name+id+base64(0x01 || seed)
    return Signer("PeterNeumann", Ed25519PrivateKey.from_private_bytes(seed))


def test_go_note_vectors() -> None:
    assert peter().verifier.vkey == PETER_VKEY
    assert parse_vkey(PETER_VKEY) == peter().verifier
    assert sign_note(TEXT, peter()) == PETER_SIGNED  # Ed25519 is deterministic
    note, signers = open_note(PETER_SIGNED + ENOCH_SIG, [parse_vkey(PETER_VKEY)])
    assert note.text == TEXT and signers == {"PeterNeumann": 0}  # Enoch's key is unknown: ignored
    _, both = open_note(PETER_SIGNED + ENOCH_SIG, [parse_vkey(PETER_VKEY), parse_vkey(ENOCH_VKEY)])
    assert set(both) == {"PeterNeumann", "EnochRoot"}
    with pytest.raises(NoteError, match="no signature from a trusted key"):
        open_note(PETER_SIGNED, [parse_vkey(ENOCH_VKEY)])


def test_a_known_keys_bad_signature_rejects_the_note() -> None:
    sig_at = PETER_SIGNED.index("x08go")
    bad = PETER_SIGNED[: sig_at + 10] + "ABCD" + PETER_SIGNED[sig_at + 14 :]
    with pytest.raises(NoteError, match="does not verify"):
        open_note(bad, [parse_vkey(PETER_VKEY)])
    with pytest.raises(NoteError, match="does not verify"):
        open_note(PETER_SIGNED.replace("cryptography", "cryptographY"), [parse_vkey(PETER_VKEY)])


@pytest.mark.parametrize(
    "note",
    [
        TEXT,
        TEXT + "\n",
        PETER_SIGNED[:-1],
        "\x01" + PETER_SIGNED,
        TEXT + "\n" + f"{DASH} Bad Name x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2p=\n",
        PETER_SIGNED + "Unexpected line.\n",
    ],
)
def test_malformed_notes(note: str) -> None:  # the Go package's badMsgs
    with pytest.raises(NoteError):
        open_note(note, [parse_vkey(PETER_VKEY)])


def test_vkey_manglings_are_refused() -> None:
    for i in range(len(PETER_VKEY)):
        mangled = PETER_VKEY[:i] + chr(ord(PETER_VKEY[i]) + 1) + PETER_VKEY[i + 1 :]
        with pytest.raises(NoteError):  # a changed name or key no longer matches the key id
            parse_vkey(mangled)
    with pytest.raises(NoteError, match="32 bytes"):
        parse_vkey("PeterNeumann+cc469956+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TWBADKEY==")
    with pytest.raises(NoteError, match="does not match"):
        parse_vkey("PeterNeumann+c74f20a4+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW")


def test_cosignature_v1_key_ids_and_lines() -> None:
    remora = parse_vkey("remora.n621.de+da77ade7+BOvN63jn/bLvkieywe8R6UYAtVtNbZpXh34x7onlmtw2")
    assert remora.alg == COSIGNATURE_V1 and remora.key_id.hex() == "da77ade7"
    log = Signer("example.org/log", Ed25519PrivateKey.generate())
    witness = Signer("witness.example/w1", Ed25519PrivateKey.generate(), COSIGNATURE_V1)
    body = Checkpoint("example.org/log", 5, bytes(range(32))).body()
    note = sign_note(body, log) + witness.signature_line(body, 1_700_000_000)
    raw = base64.b64decode(note.splitlines()[-1].split(" ")[2])
    assert raw[:4] == witness.verifier.key_id and int.from_bytes(raw[4:12], "big") == 1_700_000_000
    assert len(raw) == 4 + 8 + 64
    v = verify_checkpoint(note, log.verifier, [witness.verifier], min_witnesses=1)
    assert v.checkpoint.size == 5 and v.cosigners == {"witness.example/w1": 1_700_000_000}
    # The same key as a plain note key has another key id: its signature line is not a cosignature.
    as_note_key = Signer(witness.name, witness.private, ED25519).verifier
    assert as_note_key.key_id != witness.verifier.key_id
    with pytest.raises(NoteError, match="1 required"):
        verify_checkpoint(note, log.verifier, [as_note_key], min_witnesses=1)
    # A cosignature moved onto another checkpoint does not verify.
    other = sign_note(Checkpoint("example.org/log", 6, bytes(32)).body(), log) + note.splitlines(True)[-1]
    with pytest.raises(NoteError, match="does not verify"):
        verify_checkpoint(other, log.verifier, [witness.verifier])


def test_checkpoint_bodies() -> None:
    body = "example.com/behind-the-sofa\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n"
    cp = parse_checkpoint(body)  # the spec's example
    assert cp.size == 20852163 and cp.body() == body
    for bad in (
        "o\n01\n" + body.split("\n")[2] + "\n",
        "o\n-1\n" + body.split("\n")[2] + "\n",
        "o\n1\nAAAA\n",
        "o\n1\n",
        "o p\n1\n" + body.split("\n")[2] + "\n",
        body.rstrip("\n"),
    ):
        with pytest.raises(NoteError):
            parse_checkpoint(bad)


def test_a_checkpoint_from_another_origin_or_key_is_refused() -> None:
    log = Signer("example.org/log", Ed25519PrivateKey.generate())
    other = Signer("example.org/log", Ed25519PrivateKey.generate())
    note = sign_note(Checkpoint("example.org/log", 1, bytes(32)).body(), other)
    with pytest.raises(NoteError):
        verify_checkpoint(note, log.verifier)
    forged = sign_note(Checkpoint("example.org/elsewhere", 1, bytes(32)).body(), log)
    with pytest.raises(NoteError, match="origin"):
        verify_checkpoint(forged, log.verifier)
    assert parse_note(note).signatures[0].name == "example.org/log"


def test_a_vkey_whose_base64_holds_a_plus_parses() -> None:
    for _ in range(1000):  # about one key in three has a "+" in its base64
        v = Signer("w.example/1", Ed25519PrivateKey.generate(), COSIGNATURE_V1).verifier
        if "+" in v.vkey.split("+", 2)[2]:
            break
    assert "+" in v.vkey.split("+", 2)[2] and parse_vkey(v.vkey) == v
