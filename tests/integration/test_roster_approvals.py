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

from controlplane.api.v1 import safety_pb2 as xpb
from controlplane.client.config import write_config
from controlplane.domain import roster as rd
from controlplane.domain.safety import ActionKind, SafetyActionRecord
from controlplane.pki import approval_key
from controlplane.pki.ca import CertificateAuthority
from controlplane.pki.identity import Identity, Kind, Role
from controlplane.pki.keys import certificate_pem, write_atomic, write_private_key
from controlplane.services.audit import Entry
from tests.integration.test_safety import deploy, until
from tests.support.federation import TD as FED_TD
from tests.support.federation import Federation
from tests.support.procs import assert_one_line_error, run, two_admin_federation

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
        await c.call("Deploy", deploy("fr-par-1", "atlas", "atlas-r1"))
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
