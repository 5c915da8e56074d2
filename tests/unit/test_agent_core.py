"""The site agent's own rules: local policy, idempotent backends, and the application record."""

from __future__ import annotations

import json
import stat
from pathlib import Path
from typing import Any

import pytest

from operators.agent.backend import MemoryBackend, Refused, Workload
from operators.agent.policy import LocalPolicy
from operators.agent.records import ApplicationRecord, Applied, FileRecord

DIGEST = "sha256:" + "ab" * 32


def payload(**changes: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "deployment_name": "llm-fr",
        "model": "mistral-7b",
        "version": "1.0",
        "digest": DIGEST,
        "replicas": 2,
        "accelerator": "h100",
        "accelerators_per_replica": 4,
        "risk_tier": 2,
    }
    base.update(changes)
    return base


# --- local policy ----------------------------------------------------------------------------------


def test_default_policy_accepts_what_fits() -> None:
    assert LocalPolicy().check_deploy(payload(), {"h100": 8}) is None


@pytest.mark.parametrize("tier", [3, 4])
def test_refuses_a_risk_tier_it_does_not_accept(tier: int) -> None:
    reason = LocalPolicy(accepted_risk_tiers={1, 2}).check_deploy(payload(risk_tier=tier), {"h100": 64})
    assert reason is not None
    assert reason.startswith("policy: ")
    assert f"risk tier {tier}" in reason


@pytest.mark.parametrize("tier", [1, 2, 0])
def test_accepts_listed_tiers_and_low_level_deploys(tier: int) -> None:
    # Tier 0 is a low-level deploy (no release): not subject to the release tier policy.
    assert LocalPolicy(accepted_risk_tiers={1, 2}).check_deploy(payload(risk_tier=tier), {"h100": 64}) is None


def test_refuses_what_does_not_fit() -> None:
    # 2 replicas x 4 h100 = 8 needed.
    policy = LocalPolicy()
    assert policy.check_deploy(payload(), {"h100": 8}) is None
    reason = policy.check_deploy(payload(), {"h100": 7})
    assert reason is not None and reason.startswith("capacity: ")
    assert "8 h100" in reason and "7 free" in reason


def test_refuses_an_accelerator_the_site_does_not_have() -> None:
    reason = LocalPolicy().check_deploy(payload(accelerator="mi300"), {"h100": 64})
    assert reason is not None and "0 free" in reason


def test_deploys_without_accelerators_need_no_capacity() -> None:
    assert LocalPolicy().check_deploy(payload(accelerator="", accelerators_per_replica=0), {}) is None
    assert LocalPolicy().check_deploy(payload(replicas=0), {}) is None


def test_risk_tier_is_checked_before_capacity() -> None:
    reason = LocalPolicy(accepted_risk_tiers={1}).check_deploy(payload(risk_tier=4), {})
    assert reason is not None and reason.startswith("policy: ")


# --- memory backend --------------------------------------------------------------------------------


async def test_deploy_twice_is_one_workload() -> None:
    backend = MemoryBackend()
    await backend.deploy(payload())
    first = [vars(w).copy() for w in await backend.workloads()]
    await backend.deploy(payload())
    workloads = await backend.workloads()
    assert len(workloads) == 1
    assert [vars(w) for w in workloads] == first
    w = workloads[0]
    assert (w.name, w.model, w.version, w.digest) == ("llm-fr", "mistral-7b", "1.0", DIGEST)
    assert w.source == "federation"
    assert w.ready_replicas == w.replicas == 2
    assert w.phase == "Running"


async def test_redeploy_updates_in_place_and_keeps_a_halt() -> None:
    backend = MemoryBackend()
    await backend.deploy(payload())
    backend.items["llm-fr"].halted = True
    await backend.deploy(payload(version="1.1", replicas=3))
    (w,) = await backend.workloads()
    assert (w.version, w.replicas) == ("1.1", 3)
    assert w.halted and w.phase == "Halted"


async def test_refuses_to_overwrite_a_local_workload() -> None:
    backend = MemoryBackend()
    local = Workload(name="llm-fr", model="in-house", version="7", source="local", ready_replicas=1)
    backend.items["llm-fr"] = local
    with pytest.raises(Refused) as e:
        await backend.deploy(payload())
    assert "local" in e.value.reason
    assert backend.items["llm-fr"] is local
    assert (local.model, local.version) == ("in-house", "7")


async def test_undeploy_is_idempotent_and_spares_local_workloads() -> None:
    backend = MemoryBackend()
    await backend.deploy(payload())
    await backend.deploy(payload(deployment_name="other"))
    backend.items["mine"] = Workload(name="mine", model="m", version="1", source="local")
    await backend.undeploy("llm-fr")
    await backend.undeploy("llm-fr")
    await backend.undeploy("never-existed")
    await backend.undeploy("mine")
    assert sorted(w.name for w in await backend.workloads()) == ["mine", "other"]


# --- application records ---------------------------------------------------------------------------


def applied(seq: int, did: str | None = None, outcome: str = "applied") -> Applied:
    return Applied(seq, did or f"d-{seq}", "DEPLOY", outcome, "" if outcome == "applied" else "policy: no")


@pytest.mark.parametrize("kind", ["memory", "file"])
def test_an_id_is_recorded_once_and_last_sequence_grows(kind: str, tmp_path: Path) -> None:
    record = ApplicationRecord() if kind == "memory" else FileRecord(tmp_path / "record.json")
    assert record.last_sequence == 0
    seen = []
    for entry in (applied(1), applied(2, outcome="rejected"), applied(3)):
        record.add(entry)
        seen.append(record.last_sequence)
    assert seen == [1, 2, 3]
    # Re-delivery of a recorded id (even under another sequence) is not recorded again.
    record.add(applied(1))
    record.add(Applied(4, "d-2", "DEPLOY", "applied"))
    assert len(record.entries) == 3
    assert record.last_sequence == 3
    assert record.get("d-2") == applied(2, outcome="rejected")
    assert record.get("d-9") is None
    assert record.applied_ids() == ["d-1", "d-3"]


def test_file_record_reloads_from_disk(tmp_path: Path) -> None:
    path = tmp_path / "site" / "record.json"
    first = FileRecord(path)
    for entry in (applied(1), applied(2, outcome="rejected"), applied(3)):
        first.add(entry)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600

    again = FileRecord(path)
    assert again.entries == first.entries
    assert again.last_sequence == 3
    assert again.get("d-2") == applied(2, outcome="rejected")
    again.add(applied(2))  # known after the restart: still recorded once
    again.add(applied(4))
    assert [e.sequence for e in FileRecord(path).entries] == [1, 2, 3, 4]


def test_file_record_writes_json_on_every_entry(tmp_path: Path) -> None:
    path = tmp_path / "record.json"
    record = FileRecord(path)
    assert not path.exists()
    record.add(applied(1))
    assert json.loads(path.read_text()) == [
        {"sequence": 1, "directive_id": "d-1", "kind": "DEPLOY", "outcome": "applied", "reason": ""}
    ]
    record.add(applied(1))
    assert len(json.loads(path.read_text())) == 1


def test_record_is_bounded_and_keeps_its_last_sequence(tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from operators.agent import records

    monkeypatch.setattr(records, "KEEP", 4)
    rec = records.FileRecord(tmp_path / "applied.json")
    for i in range(1, 12):
        rec.add(records.Applied(i, f"d{i}", "Deploy", "applied"))
    for i in range(1, 12):  # a burst of safety-lane entries after the last ordinary one
        rec.add(records.Applied(0, f"h{i}", "Halt", "applied", safety_sequence=i))
    assert len(rec.entries) <= 2 * 4 + 1
    assert rec.last_sequence == 11
    reloaded = records.FileRecord(tmp_path / "applied.json")
    assert reloaded.last_sequence == 11 and reloaded.get("h11") is not None
