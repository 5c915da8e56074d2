"""Safety controls without a network: the site's verifier, beacons and fail-closed timing, and the
pure logic (scopes, freezes, incident rules, the state of a halt)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from controlplane.api.v1 import safety_pb2 as xpb
from controlplane.api.v1 import types_pb2 as tpb
from controlplane.domain import safety as sd
from controlplane.domain.safety_rules import IncidentRule, evaluate, parse_rules
from controlplane.errors import InvalidArgument
from controlplane.pki.safety_key import SafetyKey, ensure_safety_key, read_site_ring, write_site_ring
from controlplane.server.safety_link import safety_directive_to_pb
from controlplane.services.safety_lane import signing_bytes
from operators.agent.approvals import RosterGuard
from operators.agent.backend import MemoryBackend
from operators.agent.policy import LocalPolicy
from operators.agent.safety import SiteSafety
from tests.support.roster import keys, resume_approvals, roster_of

SITE = "fr-par-1"
ADMIN_A, ADMIN_B = "spiffe://t/user/alice", "spiffe://t/user/bob"
PEOPLE = keys("alice", "bob")
ROSTER = roster_of(PEOPLE)
BOTH = [("alice", PEOPLE["alice"]), ("bob", PEOPLE["bob"])]


def _copy(
    key: SafetyKey,
    *,
    seq: int = 1,
    kind: str = "Halt",
    scope: str = "global",
    ttl: float = 60.0,
    approvers: list[str] | None = None,
    did: str = "",
    signers: list[tuple[str, Any]] | None = None,
) -> sd.SafetyDirectiveRecord:
    now = time.time()
    payload = {
        "halt_id": "h-1",
        "release": "atlas-r1",
        "scope": scope,
        "reason": "bad" if kind == "Halt" else "fixed",
        "approvers": approvers
        if approvers is not None
        else [ADMIN_A]
        if kind == "Halt"
        else [ADMIN_A, ADMIN_B],
    }
    if kind == "Resume":
        payload["resume_id"] = "r-1"
    rec = sd.SafetyDirectiveRecord(
        safety_sequence=seq,
        id=did or f"d-{kind}-{seq}",
        kind=kind,
        scope=scope,
        payload=payload,
        issued_at=now,
        expires_at=now + ttl,
        issuer=ADMIN_A,
        key_id=key.key_id,
        signature="",
        approvals=[
            {"person": a.person, "signature": a.signature.hex()}
            for a in resume_approvals(
                BOTH if signers is None else signers, halt_id="h-1", release="atlas-r1", scope=scope
            )
        ]
        if kind == "Resume"
        else [],
    )
    return rec.replace(signature=key.sign(signing_bytes(rec)).hex())


async def _site(key: SafetyKey, policy: LocalPolicy | None = None, clock=time.time) -> SiteSafety:  # type: ignore[no-untyped-def]
    backend = MemoryBackend()
    await backend.deploy(
        {
            "deployment_name": "atlas",
            "model": "atlas",
            "version": "1",
            "release": "atlas-r1",
            "risk_tier": 3,
            "replicas": 2,
        }
    )
    await backend.deploy(
        {
            "deployment_name": "other",
            "model": "o",
            "version": "1",
            "release": "other-r1",
            "risk_tier": 2,
            "replicas": 1,
        }
    )
    site = SiteSafety(
        SITE, backend, policy or LocalPolicy(), None, country="FR", ring={key.key_id: key.public}, clock=clock
    )
    site.approvals = RosterGuard(None, ROSTER)
    return site


async def test_a_valid_halt_halts_the_release_and_a_resume_lifts_it() -> None:
    key = SafetyKey.generate()
    site = await _site(key)
    entry = await site.handle(safety_directive_to_pb(_copy(key)))
    assert (entry.outcome, entry.safety_sequence) == ("applied", 1)
    items = site.backend.items  # type: ignore[attr-defined]
    assert items["atlas"].halted and items["atlas"].ready_replicas == 0 and not items["other"].halted
    assert site.check_deploy({"release": "atlas-r1"}) == "safety: release atlas-r1 is halted (h-1)"
    entry = await site.handle(safety_directive_to_pb(_copy(key, seq=2, kind="Resume")))
    assert entry.outcome == "applied" and not items["atlas"].halted and items["atlas"].ready_replicas == 2
    assert site.check_deploy({"release": "atlas-r1"}) is None and site.last_sequence == 2


@pytest.mark.parametrize(
    ("make", "reason"),
    [
        (lambda k, o: _copy(o), "signature: unknown safety key"),
        (lambda k, o: _copy(o).replace(key_id=k.key_id), "signature: does not verify"),
        (lambda k, o: _copy(k, scope="site:de-fra-1"), "scope: signed for site:de-fra-1, which does not"),
        (lambda k, o: _copy(k, scope="country:DE"), "scope: signed for country:DE, which does not"),
        (lambda k, o: _copy(k, scope="everything"), "scope: malformed scope 'everything'"),
        (lambda k, o: _copy(k, ttl=-1.0), "expired:"),
        (
            lambda k, o: _copy(k, kind="Resume", signers=BOTH[:1]),
            "approvals: resume needs 2 distinct admins of roster v1; 1 signed (alice)",
        ),
        (
            lambda k, o: _copy(k, kind="Resume", signers=[BOTH[0], BOTH[0]]),
            "approvals: alice is listed twice",
        ),
        (
            lambda k, o: _copy(k, kind="Resume", signers=[BOTH[0], ("bob", PEOPLE["alice"])]),
            "approvals: the signature of bob does not verify",
        ),
    ],
    ids=[
        "wrong-key",
        "tampered",
        "other-site",
        "other-country",
        "malformed-scope",
        "expired",
        "one-approver",
        "same-approver-twice",
        "bob-signed-with-alices-key",
    ],
)
async def test_the_site_refuses_with_the_reason(make, reason) -> None:  # type: ignore[no-untyped-def]
    key, other = SafetyKey.generate(), SafetyKey.generate()
    site = await _site(key)
    entry = await site.handle(safety_directive_to_pb(make(key, other)))
    assert entry.outcome == "rejected" and entry.reason.startswith(reason), entry.reason
    assert not site.backend.items["atlas"].halted or "Resume" in entry.kind  # type: ignore[attr-defined]
    assert site.last_sequence == 0


async def test_replays_and_lower_sequences_are_refused() -> None:
    key = SafetyKey.generate()
    site = await _site(key)
    first = safety_directive_to_pb(_copy(key, seq=5))
    assert (await site.handle(first)).outcome == "applied"
    again = await site.handle(first)
    assert again.outcome == "rejected" and again.reason.startswith("replayed:")
    lower = await site.handle(safety_directive_to_pb(_copy(key, seq=4, did="d-new")))
    assert lower.outcome == "rejected" and lower.reason.startswith("sequence: safety sequence 4 is not above")
    equal = await site.handle(safety_directive_to_pb(_copy(key, seq=5, did="d-other")))
    assert equal.outcome == "rejected" and "sequence" in equal.reason


def _beacon(key: SafetyKey, t: float, seq: int = 1, site: str = SITE) -> xpb.Beacon:
    ns = int(t * 1e9)
    b = xpb.Beacon(site_id=site, sequence=seq, key_id=key.key_id)
    b.time.FromNanoseconds(ns)
    b.signature = key.sign(sd.beacon_bytes(site_id=site, sequence=seq, time_ns=ns, key_id=key.key_id))
    return b


async def test_fail_closed_halts_a_tier_after_its_tolerance_and_not_before() -> None:
    key = SafetyKey.generate()
    now = [1_000_000.0]
    site = await _site(key, LocalPolicy(link_loss_tolerance={3: 10.0}), clock=lambda: now[0])
    assert site.on_beacon(_beacon(key, now[0])) == []
    now[0] += 9.9
    assert await site.fail_closed() == []
    assert not site.backend.items["atlas"].halted  # type: ignore[attr-defined]
    # A forged, replayed or foreign beacon does not count as fresh.
    assert site.on_beacon(_beacon(SafetyKey.generate(), now[0])) == [] and site.beacons == 1
    assert site.on_beacon(_beacon(key, now[0] - 9.9)) == [] and site.beacons == 1
    now[0] += 0.2
    assert await site.fail_closed() == [3]
    items = site.backend.items  # type: ignore[attr-defined]
    assert items["atlas"].halted and not items["other"].halted  # only tier 3
    assert site.check_deploy({"release": "new", "risk_tier": 3}).startswith("safety: risk tier 3 is halted")
    reports = site.on_beacon(_beacon(key, now[0], seq=2))
    assert [r.local_halt.risk_tier for r in reports] == [3] and list(reports[0].local_halt.releases) == [
        "atlas-r1"
    ]
    assert items["atlas"].halted  # coming back does not fail open
    assert site.check_deploy({"release": "new", "risk_tier": 3}) is None


def test_safety_key_is_created_once_with_mode_0600_and_the_ring_round_trips(tmp_path: Path) -> None:
    k1 = ensure_safety_key(tmp_path)
    k2 = ensure_safety_key(tmp_path)
    assert k1.key_id == k2.key_id and k1.key_id.startswith("sk-")
    assert (tmp_path / "safety.key").stat().st_mode & 0o777 == 0o600
    write_site_ring(tmp_path, {k1.key_id: k1.public_pem, "sk-bogus": k1.public_pem})
    assert list(read_site_ring(tmp_path)) == [k1.key_id]  # an id that does not match its key is dropped


def test_scopes_and_freezes() -> None:
    assert str(sd.parse_scope("country:FR")) == "country:FR"
    for bad in ("country:XX", "site:Bad_Name", "region:eu", "everything"):
        with pytest.raises(InvalidArgument):
            sd.parse_scope(bad)
    freezes = [sd.FreezeRecord("site:fr-par-1", "a1", 1.0), sd.FreezeRecord("country:DE", "a2", 1.0)]
    assert sd.is_frozen(freezes, site_id="fr-par-1", country="FR").action_id == "a1"  # type: ignore[union-attr]
    assert sd.is_frozen(freezes, site_id="de-fra-1", country="DE").action_id == "a2"  # type: ignore[union-attr]
    assert sd.is_frozen(freezes, country="DE") is not None and sd.is_frozen(freezes, country="JP") is None
    assert sd.is_frozen([*freezes, sd.FreezeRecord("global", "g", 1.0)], site_id="x").action_id == "g"  # type: ignore[union-attr]


def test_incident_rule_needs_enough_incidents_from_enough_sites_in_the_window() -> None:
    rule = IncidentRule()
    now = 10_000.0

    def inc(site: str, at: float, sev: int = 1, count: int = 1) -> sd.IncidentRecord:
        return sd.IncidentRecord(site, "atlas-r1", sev, "harm", count, at)

    assert evaluate([rule], [inc("a", now), inc("a", now), inc("a", now)], now) == []  # one site
    assert evaluate([rule], [inc("a", now), inc("b", now)], now) == []  # two incidents
    assert evaluate([rule], [inc("a", now), inc("b", now), inc("b", now, sev=2)], now) == []  # severity
    assert evaluate([rule], [inc("a", now - 601), inc("b", now), inc("b", now)], now) == []  # window
    fired = evaluate([rule], [inc("a", now, count=2), inc("b", now)], now)
    assert [(f.release, f.incidents, f.sites) for f in fired] == [("atlas-r1", 3, ("a", "b"))]
    assert evaluate([rule], [inc("a", now, count=2), inc("b", now)], now, not_before={"atlas-r1": now}) == []
    assert parse_rules([{"name": "r2", "min_incidents": 5}])[0].min_incidents == 5
    with pytest.raises(InvalidArgument):
        parse_rules([{"name": "r", "prompt_regex": "x"}])


def test_halt_state_counts_unreachable_sites_as_pending() -> None:
    action = sd.SafetyActionRecord(
        "h", "Halt", "global", "a", 1.0, release="r", effective_at=2.0, targets=["s1", "s2", "s3"]
    )
    acked = sd.DeliveryRecord("s1", "Acked", 3.0, 1)
    view = sd.action_view(action, {"s1": acked}, reachable={"s1", "s2"})
    assert (view.state, view.acked, view.pending, view.unreachable) == ("Halting", 1, 2, 1)
    view = sd.action_view(action, {"s1": acked, "s2": acked.replace(site_id="s2")}, reachable={"s1", "s2"})
    assert (view.state, view.acked, view.pending, view.unreachable) == ("Halted", 2, 1, 1)
    # A site in scope that enrolled after the halt took effect counts once it answers.
    late = {"s1": acked, "s2": acked.replace(site_id="s2"), "s4": acked.replace(site_id="s4")}
    view = sd.action_view(action, late, reachable={"s1", "s2", "s4"})
    assert (view.acked, [s.site_id for s in view.sites]) == (3, ["s1", "s2", "s3", "s4"])
    assert sd.action_view(action.replace(resumed_at=3.0), {}, set()).state == "Resumed"


async def test_a_verified_directive_is_remembered_but_a_failure_never_is() -> None:
    from operators.agent import safety as agent_safety

    key, other = SafetyKey.generate(), SafetyKey.generate()
    d = safety_directive_to_pb(_copy(key, seq=7, did="d-cached"))
    assert not agent_safety.verify_directive(other.public, d)
    assert not agent_safety.verify_directive(other.public, d)  # not remembered as a success
    assert agent_safety.verify_directive(key.public, d)
    seen = (key.public.public_bytes_raw(), d.SerializeToString(deterministic=True))
    assert seen in agent_safety._VERIFIED
    # The same signature on a changed directive, or under another key: verified afresh, refused.
    tampered = tpb.Directive()
    tampered.CopyFrom(d)
    tampered.halt.release = "other-r1"
    assert not agent_safety.verify_directive(key.public, tampered)
    assert not agent_safety.verify_directive(other.public, d)


def test_halt_state_shows_sites_it_expired_for() -> None:
    action = sd.SafetyActionRecord(
        "h", "Halt", "global", "a", 1.0, release="r", effective_at=10.0, ttl_s=100.0, targets=["s1", "s2"]
    )
    acked = {"s1": sd.DeliveryRecord("s1", "Acked", 11.0, 1)}
    assert [s.state for s in sd.action_view(action, acked, {"s1", "s2"}, now=100.0).sites] == [
        "Halted",
        "Pending",
    ]
    late = sd.action_view(action, acked, {"s1", "s2"}, now=111.0)
    assert [s.state for s in late.sites] == ["Halted", "Expired"] and late.state == "Halting"


def test_the_lane_cache_sends_in_order_in_scope_unexpired_and_never_past_a_gap() -> None:
    from controlplane.services.safety_lane import LaneCache

    def rec(seq: int, scope: str, expires: float = 1e12) -> sd.SafetyDirectiveRecord:
        return sd.SafetyDirectiveRecord(seq, f"d{seq}", "Halt", scope, {}, 0.0, expires, "a", "k", "")

    lane = LaneCache()
    for r in (rec(1, "global"), rec(2, "country:DE"), rec(4, "site:fr-par-1")):
        lane.add(r)
    assert lane.top == 2  # 3 has not arrived: 4 waits for it
    ids = [e.record.id for e in lane.after(0, site_id="fr-par-1", country="FR", now=1.0)]
    assert ids == ["d1"]
    lane.add(rec(3, "global", expires=0.5))
    assert lane.top == 4 and lane.add(rec(3, "global")) == []  # a repeat is ignored
    ids = [e.record.id for e in lane.after(0, site_id="fr-par-1", country="FR", now=1.0)]
    assert ids == ["d1", "d4"]  # d2: another country; d3: expired
    assert [e.record.id for e in lane.after(1, site_id="de-0", country="DE", now=0.1)] == ["d2", "d3"]
    assert lane.add(rec(9, "region:eu")) == []  # a malformed scope is never sent
    # ... but it is no gap: a bad record must not hold back every directive after it.
    assert [e.record.id for e in lane.add(rec(5, "global"))] == ["d5"]
    assert [e.record.id for e in lane.add(rec(8, "global"))] == []  # 6 and 7 have not arrived
    assert lane.skip(6) == [] and [e.record.id for e in lane.skip(7)] == ["d8"]  # 7 unreadable
    assert lane.top == 9 and lane.get(9) is None
    assert [e.record.id for e in lane.after(4, site_id="x", country="FR", now=1.0)] == ["d5", "d8"]


async def test_the_lane_watch_skips_records_it_cannot_read() -> None:
    import asyncio

    from controlplane.services.audit import AuditLog
    from controlplane.services.registry import Registry
    from controlplane.services.safety import Safety
    from controlplane.store.memory import MemoryStore

    store = MemoryStore()
    audit = AuditLog(store)
    safety = Safety(store, audit, Registry(store, audit), SafetyKey.generate())
    # A per-site copy in the old layout, and garbage: neither may stop the lane.
    await store.put(sd.LANE + "fr-par-1/00000000000000000001", b'{"site_id": "fr-par-1", "kind": "Halt"}')
    await store.put(sd.LANE + "00000000000000000007", b"not json")
    watch = asyncio.create_task(safety.run_lane_watch())
    try:
        await asyncio.wait_for(safety.lane.loaded.wait(), 2)
        action = await safety.halt("spiffe://t/user/alice", "atlas-r1", "global", "bad")
        for _ in range(100):
            if safety.lane.get(1) is not None:
                break
            await asyncio.sleep(0.01)
        entry = safety.lane.get(1)
        assert entry is not None and entry.record.id == action.id and not watch.done()
    finally:
        watch.cancel()
        await store.close()


async def test_the_replica_that_commits_a_halt_sends_it_without_waiting_for_its_watch() -> None:
    from controlplane.services.audit import AuditLog
    from controlplane.services.registry import Registry
    from controlplane.services.safety import Safety
    from controlplane.store.memory import MemoryStore

    store = MemoryStore()
    audit = AuditLog(store)
    safety = Safety(store, audit, Registry(store, audit), SafetyKey.generate())
    safety.lane.loaded.set()  # as after the first read; no watch runs in this test
    woken: list[str] = []
    safety.subscribe("fr-par-1", "FR", lambda: woken.append("fr"))
    safety.subscribe("de-fra-1", "DE", lambda: woken.append("de"))
    halt = await safety.halt("spiffe://t/user/alice", "atlas-r1", "country:FR", "now")
    assert woken == ["fr"] and safety.lane.top == 1
    sent = await safety.lane_after(0, site_id="fr-par-1", country="FR")
    assert [e.record.id for e in sent] == [halt.id]
    await store.close()


@pytest.mark.parametrize("arrives", ["in-the-first-read", "through-the-watch"])
async def test_an_unreadable_lane_record_does_not_hold_back_the_directives_after_it(arrives: str) -> None:
    import asyncio

    from controlplane.services.audit import AuditLog
    from controlplane.services.registry import Registry
    from controlplane.services.safety import Safety
    from controlplane.store.memory import MemoryStore

    store = MemoryStore()
    audit = AuditLog(store)
    safety = Safety(store, audit, Registry(store, audit), SafetyKey.generate())

    async def unreadable_first() -> None:  # sequence 1, taken by a record this version cannot read
        await store.put(sd.LANE_SEQ, b"1")
        await store.put(sd.lane_key(1), b"not json")

    if arrives == "in-the-first-read":
        await unreadable_first()
    watch = asyncio.create_task(safety.run_lane_watch())
    try:
        await asyncio.wait_for(safety.lane.loaded.wait(), 2)
        if arrives == "through-the-watch":
            await unreadable_first()
        halt = await safety.halt("spiffe://t/user/alice", "atlas-r1", "global", "after it")
        for _ in range(100):
            if safety.lane.top == 2:
                break
            await asyncio.sleep(0.01)
        sent = await safety.lane_after(0, site_id="fr-par-1", country="FR")
        assert safety.lane.top == 2 and [e.record.id for e in sent] == [halt.id]
    finally:
        watch.cancel()
        await store.close()


async def test_the_replay_check_keeps_a_bounded_number_of_ids(monkeypatch: pytest.MonkeyPatch) -> None:
    import operators.agent.safety as agent_safety

    monkeypatch.setattr(agent_safety, "MAX_ACCEPTED_IDS", 2)
    key = SafetyKey.generate()
    site = await _site(key)
    for seq in (1, 2, 3):
        assert (await site.handle(safety_directive_to_pb(_copy(key, seq=seq)))).outcome == "applied"
    assert site.state.accepted_ids == ["d-Halt-2", "d-Halt-3"]
    # An id that fell out of the list is still refused: by the sequence.
    entry = await site.handle(safety_directive_to_pb(_copy(key, seq=1)))
    assert entry.outcome == "rejected" and entry.reason.startswith("sequence:")
