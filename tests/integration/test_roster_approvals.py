"""No single insider completes a resume: approvals are signatures by roster persons, and the sites
count them themselves.

The first two tests are the attacks of issue #12 as people would try them: real `stargatectl`
processes against a real `stargate-controlplane serve` process over mTLS (two admins in roster v1:
admin and bob). One admin mints a second admin (`users issue --name admin-alt --role admin`) or a
certificate for the existing admin bob, and tries to approve their own resume; even with a
certificate minted straight from the CA key (the control-plane host), the approval is refused.

The last test is the insider who controls the store and the federation's safety key: the store says
the resume is approved by two admins, the Resume directive is validly signed by the federation, and
the site still refuses it because the persons' signatures do not meet its roster's threshold.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from controlplane.api.v1 import federation_pb2 as fpb
from controlplane.api.v1 import safety_pb2 as xpb
from controlplane.client.config import write_config
from controlplane.domain import roster as rd
from controlplane.domain.safety import ActionKind, SafetyActionRecord
from controlplane.pki import approval_key
from controlplane.pki.ca import CertificateAuthority
from controlplane.pki.identity import Identity, Kind, Role
from controlplane.pki.keys import certificate_pem, write_atomic, write_private_key
from controlplane.services.audit import Entry
from controlplane.services.roster import version_key
from tests.integration.test_safety import deploy
from tests.support.federation import TD as FED_TD
from tests.support.federation import Federation
from tests.support.procs import assert_one_line_error, run, two_admin_federation
from tests.support.requests import deploy as send_deploy
from tests.support.wait import until

TD = "roster.test"


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, int]]:
    with two_admin_federation(tmp_path_factory.mktemp("roster"), TD, "--heartbeat-interval", "0.5") as fed:
        yield fed


def _pending_resume(pki: Path) -> tuple[str, str]:
    """A global halt by admin and admin's signed resume request: (halt id, resume id)."""
    admin = pki / "stargatectl.yaml"
    args = ["safety", "halt", "--release", f"r-{uuid.uuid4().hex[:8]}", "--scope", "global", "--reason", "x"]
    r = run(*args, "-o", "json", config=admin)
    assert r.code == 0, r.err
    halt = r.json()["id"]
    r = run("safety", "resume", halt, "--reason", "fixed", "-o", "json", config=admin)
    assert r.code == 0, r.err
    resume = r.json()
    assert resume["state"] == "PendingApproval" and resume["approvals_required"] == 2
    assert resume["roster_version"] == 1 and not resume["single_admin"]
    return halt, resume["id"]


def _ca_minted(pki: Path, port: int, out: Path, name: str, approval: Path) -> Path:
    """What the control-plane host can do with the CA key: a certificate for ``name`` as admin, and
    a config naming ``approval`` as the approval key."""
    key, cert = CertificateAuthority.load(pki).issue(
        Identity(TD, Kind.USER, name, Role.ADMIN), ttl=dt.timedelta(hours=1)
    )
    write_private_key(out / f"{name}.key", key)
    write_atomic(out / f"{name}.crt", certificate_pem(cert), 0o644)
    cfg = out / "stargatectl.yaml"
    write_config(
        cfg,
        trust_domain=TD,
        user=name,
        servers=[f"127.0.0.1:{port}"],
        enroll_server=f"127.0.0.1:{port + 1}",
        ca_file=str(pki / "ca.crt"),
        cert_file=f"{name}.crt",
        key_file=f"{name}.key",
        approval_key=str(approval),
    )
    return cfg


def _still_pending(pki: Path, halt: str, resume: str) -> None:
    admin = pki / "stargatectl.yaml"
    r = run("safety", "status", resume, "-o", "json", config=admin)
    assert r.json()["state"] == "PendingApproval" and len(r.json()["approvals"]) == 1, r.out
    assert run("safety", "status", halt, "-o", "json", config=admin).json()["state"] == "Halted"


def test_a_self_minted_admin_cannot_complete_a_resume(served: tuple[Path, int], tmp_path: Path) -> None:
    pki, port = served
    admin = pki / "stargatectl.yaml"
    halt, resume = _pending_resume(pki)
    alt = tmp_path / "admin-alt"
    # The product refuses to mint an admin the roster does not list, in every way it can be asked.
    assert_one_line_error(
        run("users", "issue", "--name", "admin-alt", "--role", "admin", "--out", str(alt), config=admin),
        "--csr",
    )
    lab = [
        "users",
        "issue",
        "--name",
        "admin-alt",
        "--role",
        "admin",
        "--out",
        str(alt),
        "--lab-generate-key",
    ]
    assert_one_line_error(run(*lab, config=admin), "admin-alt is not an admin of roster v1")
    assert run("keys", "create", "--out", str(alt / "admin-alt.approval.key")).code == 0
    assert run("users", "request", "--name", "admin-alt", "--out", str(alt)).code == 0
    csr = [
        "users",
        "issue",
        "--csr",
        str(alt / "admin-alt.request.json"),
        "--role",
        "admin",
        "--out",
        str(alt),
    ]
    assert_one_line_error(run(*csr, config=admin), "admin-alt is not an admin of roster v1")
    assert not (alt / "admin-alt.crt").exists()
    # A certificate minted with the CA key itself approves nothing: admin-alt is no roster person.
    cfg = _ca_minted(pki, port, alt, "admin-alt", alt / "admin-alt.approval.key")
    assert_one_line_error(
        run("safety", "approve", resume, config=cfg), "admin-alt is not a person of roster v1"
    )
    _still_pending(pki, halt, resume)
    events = run("audit", "list", "-o", "json", config=admin).json()["items"]
    denied = {(e["action"], e["object"]) for e in events if e["outcome"] == "denied"}
    assert ("certificate.issue", "user/admin-alt") in denied and (
        "safety.approve",
        f"safety/{resume}",
    ) in denied


def test_an_impersonated_admin_cannot_complete_a_resume(served: tuple[Path, int], tmp_path: Path) -> None:
    pki, port = served
    admin = pki / "stargatectl.yaml"
    own_key = pki.parent / "admin.approval.key"  # the impersonator's own approval key
    halt, resume = _pending_resume(pki)
    fake = tmp_path / "bob"
    lab = ["users", "issue", "--name", "bob", "--role", "admin", "--out", str(fake), "--lab-generate-key"]
    assert_one_line_error(run(*lab, config=admin), "bob is a person of roster v1", "approval key")
    # A request for bob signed with the impersonator's key instead of bob's.
    r = run("users", "request", "--name", "bob", "--approval-key", str(own_key), "--out", str(fake))
    assert r.code == 0, r.err
    csr = ["users", "issue", "--csr", str(fake / "bob.request.json"), "--role", "admin", "--out", str(fake)]
    assert_one_line_error(run(*csr, config=admin), "does not verify with bob's roster approval key")
    assert not (fake / "bob.crt").exists()
    # With a certificate for bob minted from the CA key, the approval is still signed with the
    # impersonator's key, which is not bob's: refused, and the audit names the attempt.
    cfg = _ca_minted(pki, port, fake, "bob", own_key)
    assert_one_line_error(
        run("safety", "approve", resume, config=cfg),
        "the signature of bob does not verify with their roster key",
    )
    _still_pending(pki, halt, resume)


# --- the store says approved; the site counts for itself ---------------------------------------------


def _forge(kind: str, keys: dict[str, Ed25519PrivateKey], statement: bytes) -> list[dict[str, str]]:
    """Signed approvals as a store writer could assemble them (``keys``: the real admin's and bob's)."""
    intruder = Ed25519PrivateKey.generate()
    sig = {n: k.sign(statement).hex() for n, k in keys.items()}
    return {
        "one-signature": [{"person": "admin", "signature": sig["admin"]}],
        "same-person-twice": [{"person": "admin", "signature": sig["admin"]}] * 2,
        "self-minted-person": [
            {"person": "admin", "signature": sig["admin"]},
            {"person": "admin-alt", "signature": intruder.sign(statement).hex()},
        ],
        "bob-signed-by-admin": [
            {"person": "admin", "signature": sig["admin"]},
            {"person": "bob", "signature": keys["admin"].sign(statement).hex()},
        ],
        "valid": [{"person": n, "signature": s} for n, s in sig.items()],
    }[kind]


@pytest.mark.parametrize(
    ("kind", "reason"),
    [
        ("one-signature", "approvals: resume needs 2 distinct admins of roster v1; 1 signed (admin)"),
        ("same-person-twice", "approvals: admin is listed twice"),
        ("self-minted-person", "approvals: 'admin-alt' is not a person of roster v1"),
        ("bob-signed-by-admin", "approvals: the signature of bob does not verify"),
        ("valid", ""),
    ],
)
async def test_a_site_refuses_a_resume_the_store_says_is_approved_without_the_roster_threshold(
    fed: Federation, kind: str, reason: str
) -> None:
    site = await fed.add_site("fr-par-1", "FR")
    rt: Any = fed.cp.runtime  # type: ignore[union-attr]
    async with fed.client() as c:
        await send_deploy(c, deploy("fr-par-1", "atlas", "atlas-r1"))
        await until(lambda: "atlas" in site.backend.items)
        halt = (await c.call("Halt", xpb.HaltRequest(release="atlas-r1", scope="site:fr-par-1"))).action
        await until(lambda: site.backend.items["atlas"].halted)
    keys = {n: approval_key.load_private(fed.dir / f"{n}.approval.key") for n in ("admin", "bob")}
    statement = rd.resume_statement(halt_id=halt.id, release="atlas-r1", scope="site:fr-par-1")
    # The insider: write access to the store and the federation's safety key. The action is stored
    # as approved by two admins and takes effect; its Resume is signed by the federation's key.
    admins = [f"spiffe://{FED_TD}/user/admin", f"spiffe://{FED_TD}/user/bob"]
    forged = SafetyActionRecord(
        id=str(uuid.uuid4()),
        kind=ActionKind.RESUME,
        scope="site:fr-par-1",
        requested_by=admins[0],
        created_at=time.time(),
        release="atlas-r1",
        approvals=admins,
        approvals_required=2,
        related_id=halt.id,
        signed_approvals=_forge(kind, keys, statement),
    )
    await rt.safety._take_effect(forged, [Entry(admins[0], "safety.resume", "release/atlas-r1")], create=True)
    stored = SafetyActionRecord.from_json((await rt.store.get(f"/stargate/safety/actions/{forged.id}")).value)
    assert stored.effective_at and len(stored.approvals) == 2  # the store says: approved, in effect
    async with fed.client() as c:

        async def answered() -> Any:
            a = (await c.call("GetSafetyAction", xpb.GetSafetyActionRequest(id=forged.id))).action
            return a if a.acked or a.rejected else None

        await until(answered, what="the site's answer")
        action = await answered()
    if not reason:  # the control: the same path with valid signatures resumes
        assert action.acked == 1 and not site.backend.items["atlas"].halted
        return
    assert action.rejected == 1 and action.sites[0].reason.startswith(reason), action.sites[0].reason
    await asyncio.sleep(0.2)
    assert site.backend.items["atlas"].halted


# --- roster versions: only what the previous version's admins signed ---------------------------------


def _bob_config(pki: Path) -> Path:
    """bob's own config: his TLS key and CSR made in his directory, certified by admin."""
    bob = pki.parent / "people" / "bob"
    if not (bob / "stargatectl.yaml").exists():
        assert run("users", "request", "--name", "bob", "--out", str(bob)).code == 0
        args = [
            "users",
            "issue",
            "--csr",
            str(bob / "bob.request.json"),
            "--role",
            "admin",
            "--out",
            str(bob),
        ]
        r = run(*args, config=pki / "stargatectl.yaml")
        assert r.code == 0, r.err
    return bob / "stargatectl.yaml"


def test_a_roster_change_needs_the_current_rosters_threshold_from_the_cli(
    served: tuple[Path, int], tmp_path: Path
) -> None:
    pki, _ = served
    admin, bob = pki / "stargatectl.yaml", _bob_config(pki)
    assert run("keys", "create", "--out", str(tmp_path / "carol.key")).code == 0
    proposal = tmp_path / "v2.json"
    r = run(
        "roster",
        "propose",
        "--out",
        str(proposal),
        "--add",
        f"carol=@{tmp_path / 'carol.key.pub'}",
        config=admin,
    )
    assert_one_line_error(r, "--add")  # NAME[:ROLE]=PUB[@CC]: the country goes last
    r = run(
        "roster",
        "propose",
        "--out",
        str(proposal),
        "--add",
        f"carol={tmp_path / 'carol.key.pub'}",
        config=admin,
    )
    assert r.code == 0, r.err
    assert run("roster", "sign", str(proposal), config=admin).code == 0
    assert_one_line_error(
        run("roster", "apply", str(proposal), config=admin),
        "roster-change needs 2 distinct admins of roster v1",
    )
    assert run("roster", "show", "-o", "json", config=admin).json()["version"] == 1
    r = run("roster", "sign", str(proposal), "-o", "json", config=bob)
    assert r.code == 0 and r.json()["signers"] == ["admin", "bob"], r.err
    r = run("roster", "apply", str(proposal), "-o", "json", config=admin)
    assert r.code == 0, r.err
    shown = run("roster", "show", "-o", "json", config=admin).json()
    assert shown["version"] == 2 and [p["id"] for p in shown["persons"]] == ["admin", "bob", "carol"]
    status = run("status", "-o", "json", config=admin).json()
    assert status["roster"]["version"] == 2 and not status["roster"]["single_admin"]
    # The same file again is no successor of v2.
    assert_one_line_error(run("roster", "apply", str(proposal), config=admin), "version 2 does not follow 2")


async def test_a_site_refuses_a_roster_version_below_the_threshold_and_applies_a_valid_one(
    fed: Federation, tmp_path: Path
) -> None:
    site = await fed.add_site("fr-par-1", "FR")
    rt: Any = fed.cp.runtime  # type: ignore[union-attr]
    keys = {n: approval_key.load_private(fed.dir / f"{n}.approval.key") for n in ("admin", "bob")}
    carol = Ed25519PrivateKey.generate()
    v1 = (await rt.roster.chain())[0]
    pinned = site.directory / rd.ROSTER_FILE
    assert rd.SignedRoster.from_json(pinned.read_bytes()) == v1  # pinned at enrollment

    def v2(**thresholds: int) -> rd.Roster:
        persons = (
            *v1.roster.persons,
            rd.Person("carol", "admin", approval_key.public_line(carol.public_key())),
        )
        return rd.validate(rd.Roster(2, persons, {**v1.roster.thresholds, **thresholds}, v1.roster.hash()))

    def signed(r: rd.Roster, *names: str) -> rd.SignedRoster:
        return rd.SignedRoster(r, tuple(rd.Signature(n, keys[n].sign(r.canonical_bytes())) for n in names))

    # A control plane that lowers the resume threshold with one admin's signature: the federation
    # refuses it, and a site sent it anyway (the host itself forging the link) refuses it too.
    forged = signed(v2(resume=1), "admin")
    with pytest.raises(Exception, match="roster-change needs 2 distinct admins of roster v1"):
        await rt.roster.apply("spiffe://x/user/admin", forged)
    # Written straight into the store, it is no version of the roster the federation serves.
    await rt.store.put(version_key(2), forged.to_json())
    assert [c.roster.version for c in await rt.roster.chain()] == [1]
    await rt.store.delete(version_key(2))
    real = rt.roster.wire_chain
    rt.roster.wire_chain = _sends([v1.to_json(), forged.to_json()])
    events: list[dict[str, Any]] = []
    site.agent.on_event = lambda kind, data: events.append(data) if kind == "roster" else None
    await site.stop()
    site.start()
    await until(lambda: bool(events), what="the roster update")
    assert events[-1]["refused"].startswith("roster: v2 refused: roster-change needs 2"), events
    assert (
        rd.SignedRoster.from_json(pinned.read_bytes()) == v1
        and site.agent.safety.approvals.roster.version == 1
    )

    # The valid v2, signed by both of v1's admins, applied through the federation, reaches the site.
    rt.roster.wire_chain = real
    good = signed(v2(), "admin", "bob")
    async with fed.client() as c:
        await c.call("ApplyRoster", fpb.ApplyRosterRequest(roster=good.to_json()))
    await until(lambda: site.agent.safety.approvals.roster.version == 2, timeout=10, what="v2 at the site")
    assert rd.SignedRoster.from_json(pinned.read_bytes()) == good  # persisted before use
    # And the site now counts carol, whom only v2 lists: admin + carol resume a halt.
    async with fed.client() as c:
        await send_deploy(c, deploy("fr-par-1", "atlas", "atlas-r1"))
        await until(lambda: "atlas" in site.backend.items)
        halt = (await c.call("Halt", xpb.HaltRequest(release="atlas-r1", scope="site:fr-par-1"))).action
        await until(lambda: site.backend.items["atlas"].halted)
    statement = rd.resume_statement(halt_id=halt.id, release="atlas-r1", scope="site:fr-par-1")
    admins = [f"spiffe://{FED_TD}/user/admin", f"spiffe://{FED_TD}/user/carol"]
    resume = SafetyActionRecord(
        id=str(uuid.uuid4()),
        kind=ActionKind.RESUME,
        scope="site:fr-par-1",
        requested_by=admins[0],
        created_at=time.time(),
        release="atlas-r1",
        approvals=admins,
        approvals_required=2,
        related_id=halt.id,
        signed_approvals=[
            {"person": "admin", "signature": keys["admin"].sign(statement).hex()},
            {"person": "carol", "signature": carol.sign(statement).hex()},
        ],
    )
    await rt.safety._take_effect(resume, [Entry(admins[0], "safety.resume", "release/atlas-r1")], create=True)
    await until(lambda: not site.backend.items["atlas"].halted, what="resumed under roster v2")


def _sends(chain: list[bytes]) -> Any:
    async def wire_chain() -> tuple[str, list[bytes]]:
        return "forged", chain

    return wire_chain


def test_join_pins_the_roster_hash_given_out_of_band(served: tuple[Path, int], tmp_path: Path) -> None:
    pki, port = served
    admin = pki / "stargatectl.yaml"
    v1 = rd.SignedRoster.from_json((pki / rd.ROSTER_FILE).read_bytes()).roster

    def join(site: str, roster_hash: str) -> Any:
        r = run("sites", "token", "create", "--site-id", site, "--country", "FR", "-o", "json", config=admin)
        assert r.code == 0, r.err
        args = ["join", "--server", f"127.0.0.1:{port + 1}", "--ca-file", str(pki / "ca.crt")]
        return run(
            *args, "--token", r.json()["token"], "--roster-hash", roster_hash, "--out", str(tmp_path / site)
        )

    assert_one_line_error(join("fr-pin-1", "sha256:" + "0" * 64), "roster-hash", "not the pinned")
    assert not (tmp_path / "fr-pin-1").exists()  # nothing written: no key, no certificate
    r = join("fr-pin-2", v1.hash())
    assert r.code == 0, r.err
    held = rd.SignedRoster.from_json((tmp_path / "fr-pin-2" / rd.ROSTER_FILE).read_bytes()).roster
    assert (
        held.hash() == run("roster", "show", "-o", "json", config=admin).json()["hash"]
    )  # the newest that chains


def test_a_pki_directory_made_before_rosters_gets_roster_v1_once(tmp_path: Path) -> None:
    import subprocess

    from tests.support.procs import SERVER, init_pki

    pki = tmp_path / "old"
    init_pki(pki, TD, 7443)
    (pki / rd.ROSTER_FILE).unlink()  # as a directory made before rosters existed
    assert run("keys", "create", "--out", str(tmp_path / "alice.key")).code == 0
    cmd = [
        *SERVER,
        "roster",
        "--dir",
        str(pki),
        "--admin",
        "admin",
        "--admin-key",
        f"{tmp_path / 'alice.key.pub'}",
    ]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    roster = rd.SignedRoster.from_json((pki / rd.ROSTER_FILE).read_bytes()).roster
    assert [p.id for p in roster.admins()] == ["admin"] and roster.hash() in done.stdout
    again = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    assert again.returncode == 1 and again.stderr.count("error:") == 1 and "exists" in again.stderr
