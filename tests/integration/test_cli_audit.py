"""stargatectl audit checkpoint / prove / consistency / verify and stargatectl witness, as real
processes against a real server over mTLS: the documented shapes, checked by tools that share
none of the server's code paths (the domain verifiers, on the CLI's output)."""

from __future__ import annotations

import base64
import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from controlplane.domain import merkle
from controlplane.domain.checkpoints import Checkpoint, verify_checkpoint, verify_leaf
from controlplane.domain.notes import parse_vkey, sign_note
from controlplane.pki.log_key import LogKey
from tests.support.procs import SERVER, assert_one_line_error, run, served_federation


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, int]]:
    pki = tmp_path_factory.mktemp("audit") / "pki"
    with served_federation(pki, "audit.test", "--checkpoint-interval", "0.1") as fed:
        cfg = pki / "stargatectl.yaml"
        for i in range(6):  # a few events
            r = run("sites", "token", "create", "--site-id", f"s-{i}", "--country", "FR", config=cfg)
            assert r.code == 0, r.err
        yield fed


def b64(values: list[str]) -> list[bytes]:
    return [base64.b64decode(v) for v in values]


def test_checkpoint_prove_consistency_shapes(server: tuple[Path, int]) -> None:
    d, _ = server
    cfg = d / "stargatectl.yaml"
    vkey = (d / "log.vkey").read_text().strip()
    log = parse_vkey(vkey)
    r = run("audit", "checkpoint", "--vkey", config=cfg)
    key = base64.b64encode(b"\x01" + log.public).decode()
    assert r.code == 0 and r.out.strip() == vkey == f"audit.test/audit+{log.key_id.hex()}+{key}"
    r = run("audit", "checkpoint", config=cfg)
    assert r.code == 0, r.err
    note = r.out if r.out.endswith("\n") else r.out + "\n"
    cp = verify_checkpoint(note, log).checkpoint  # the plain output is the signed note itself
    assert cp.origin == "audit.test/audit" and cp.size >= 6
    events = run("audit", "list", "-o", "json", config=cfg).json()["items"]
    r = run("audit", "prove", "--event", "3", "-o", "json", config=cfg)
    assert r.code == 0, r.err
    p = r.json()
    assert set(p) == {"leaf_index", "tree_size", "leaf_hash", "inclusion_path", "checkpoint"}
    leaf = base64.b64decode(events[2]["leaf"])
    assert p["leaf_index"] == 2 and base64.b64decode(p["leaf_hash"]) == merkle.leaf_hash(leaf)
    proven = verify_checkpoint(p["checkpoint"], log).checkpoint
    assert p["tree_size"] == proven.size
    verify_leaf(leaf, 2, b64(p["inclusion_path"]), proven)
    r = run("audit", "consistency", "--first", "2", "--second", str(proven.size), "-o", "json", config=cfg)
    assert r.code == 0, r.err
    c = r.json()
    assert set(c) == {"first", "second", "consistency_path"} and c["first"] == 2
    hashes = [merkle.leaf_hash(base64.b64decode(e["leaf"])) for e in events]
    old_root = merkle.node_hash(hashes[0], hashes[1])
    merkle.verify_consistency(2, proven.size, old_root, proven.root, b64(c["consistency_path"]))


def test_verify_save_since_and_witnesses(server: tuple[Path, int], tmp_path: Path) -> None:
    d, _ = server
    cfg = d / "stargatectl.yaml"
    log_key = str(d / "log.vkey")
    saved = tmp_path / "saved.checkpoint"
    r = run("audit", "verify", "--log-key", log_key, "--save", str(saved), "-o", "json", config=cfg)
    assert r.code == 0, r.out + r.err
    out = r.json()
    assert out["failures"] == [] and out["events_verified"] == out["checkpoint"]["tree_size"] >= 6
    assert saved.read_text().startswith("audit.test/audit\n")
    # A witness: key made here, listed by an admin, one round of checks.
    wkey, state = tmp_path / "w.key", tmp_path / "state"
    r = run("witness", "keygen", "--name", "witness.fr/w1", "--key", str(wkey), "-o", "json")
    assert r.code == 0, r.err
    wvkey = r.json()["verifier_key"]
    assert run("witness", "add", "--vkey", wvkey, config=cfg).code == 0
    run("sites", "token", "create", "--site-id", "s-w", "--country", "FR", config=cfg)  # a newer checkpoint
    args = ("witness", "run", "--name", "witness.fr/w1", "--key", str(wkey), "--state", str(state))
    r = run(*args, "--log-key", log_key, "--once", config=cfg)
    assert r.code == 0 and "cosigned checkpoint" in r.out, r.out + r.err
    r = run("audit", "checkpoint", "--min-witnesses", "1", "-o", "json", config=cfg)
    assert r.code == 0 and r.json()["cosigners"] == ["witness.fr/w1"], r.out + r.err
    assert "\u2014 witness.fr/w1 " in r.json()["note"]
    common = ("audit", "verify", "--log-key", log_key, "--since", str(saved))
    r = run(*common, "--witness", wvkey, "--min-witnesses", "1", config=cfg)
    assert r.code == 0 and "cosigned by witness.fr/w1" in r.out, r.out + r.err
    assert "consistent with the saved checkpoint" in r.out
    other = tmp_path / "other.key"
    stranger = run("witness", "keygen", "--name", "witness.fr/w1", "--key", str(other)).out.strip()
    r = run(*common, "--witness", stranger, "--min-witnesses", "1", config=cfg)
    assert_one_line_error(r, "cosigned by 0 of the trusted witnesses")
    r = run("witness", "list", "-o", "json", config=cfg)
    assert [w["name"] for w in r.json()["items"]] == ["witness.fr/w1"]
    assert r.json()["signed_list"].startswith("audit.test/audit/witnesses\n" + wvkey + "\n\n")


def test_bad_input_is_one_line_and_names_the_field(server: tuple[Path, int], tmp_path: Path) -> None:
    d, _ = server
    cfg = d / "stargatectl.yaml"
    assert_one_line_error(run("audit", "verify", config=cfg), "--log-key", "out of band")
    assert_one_line_error(run("audit", "verify", "--log-key", "nope+1+2", config=cfg), "--log-key")
    assert_one_line_error(
        run("audit", "verify", "--log-key", str(tmp_path / "absent"), config=cfg), "cannot read"
    )
    assert_one_line_error(run("audit", "prove", "--event", "0", config=cfg), "sequence")
    assert_one_line_error(run("audit", "prove", "--event", "100000", config=cfg), "event 100000")
    assert_one_line_error(run("audit", "consistency", "--first", "5", "--second", "2", config=cfg), "first")
    log_vkey = (d / "log.vkey").read_text().strip()
    assert_one_line_error(run("witness", "add", "--vkey", log_vkey, config=cfg), "verifier_key", "0x04")
    forged = tmp_path / "forged"  # a checkpoint signed by someone else's key of the same name
    body = Checkpoint("audit.test/audit", 1, bytes(32)).body()
    forged.write_text(sign_note(body, LogKey.generate("audit.test").signer))
    r = run("audit", "verify", "--log-key", log_vkey, "--since", str(forged), config=cfg)
    assert_one_line_error(
        r, "--since", "not a checkpoint signed by the log key", "no signature from a trusted key"
    )
    assert json.loads(run("audit", "list", "-o", "json", config=cfg).out)["chain_verified"]


def test_log_key_for_a_directory_made_before_the_log(tmp_path: Path) -> None:
    pki = tmp_path / "old"
    init = subprocess.run(
        [*SERVER, "init", "--dir", str(pki), "--trust-domain", "old.test"], capture_output=True
    )
    assert init.returncode == 0
    (pki / "log.key").unlink()
    (pki / "log.vkey").unlink()
    made = subprocess.run([*SERVER, "log-key", "--dir", str(pki)], capture_output=True, text=True)
    assert made.returncode == 0 and made.stdout.startswith("old.test/audit+"), made.stderr
    again = subprocess.run([*SERVER, "log-key", "--dir", str(pki)], capture_output=True, text=True)
    assert again.stdout == made.stdout == (pki / "log.vkey").read_text()  # never replaced
