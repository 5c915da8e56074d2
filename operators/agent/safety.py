"""Safety at the site: the verifier of signed Halt/Resume directives, the halted-release state,
and the fail-closed watchdog on the federation's signed beacon.

Before acting on a Halt or Resume the site checks, in this order (the first failure is the reason
of the Reject it sends upstream, which the federation audits):

1. ``signature``: the key id is in the site's key ring (received at enrollment) and the Ed25519
   signature verifies over the canonical bytes (controlplane/domain/safety.py:directive_bytes);
2. ``scope``: the directive's signed scope covers this site (``global``, its country, or its id;
   one directive is signed once for its whole scope);
3. ``expired``: its expires_at has not passed;
4. ``replayed``: its id was never accepted before;
5. ``sequence``: its safety sequence is above the last one accepted (only goes up; the sequence
   is federation-wide, so a site sees the rising subsequence of directives that cover it);
6. ``approvals``: a Resume carries signed approvals meeting the pinned roster's resume threshold
   (operators/agent/approvals.py; the federation's count is not trusted).

Only then is the release halted (``WorkloadBackend.halt``) or resumed, and the state (last
sequence, accepted ids, halted releases) written before the ack goes upstream.

Fail-closed: ``LocalPolicy.link_loss_tolerance`` maps a risk tier to the seconds the site tolerates
without a *fresh* beacon (signature valid, for this site, time above the last one and within
``MAX_BEACON_SKEW_S`` of the local clock). Past it, every federation workload of that tier is
halted locally and new deploys of the tier are refused; when fresh beacons return, the site sends a
``LocalHaltReport`` per tier. The halted releases stay halted until the federation resumes them
(two-person rule): coming back does not fail open.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from controlplane.api import directive_kinds
from controlplane.api.directive_kinds import Lane
from controlplane.api.v1 import safety_pb2 as xpb
from controlplane.api.v1 import site_pb2 as spb
from controlplane.api.v1 import types_pb2 as tpb
from controlplane.domain import safety as sd
from controlplane.errors import InvalidArgument
from controlplane.pki.keys import write_atomic
from controlplane.pki.safety_key import read_site_ring, verify
from operators.agent.approvals import RosterGuard
from operators.agent.backend import Refused, WorkloadBackend
from operators.agent.policy import LocalPolicy
from operators.agent.records import Applied

log = logging.getLogger(__name__)

STATE_FILE = "safety-state.json"
#: Directives this process has already verified, by (raw public key, the directive as serialized,
#: signature included). An Ed25519 verification costs ~130 us on the reference machine, and the
#: canonical bytes ~12 us more; the same directive reaches a process more than once: resent after a
#: reconnect, and once per site when one process runs many sites (the simulator, the benchmark). An
#: exact match of the whole signed directive under the same key is as good as verifying it again.
_VERIFIED: OrderedDict[tuple[bytes, bytes], None] = OrderedDict()
VERIFIED_CACHE_SIZE = 1024
#: Ids of accepted directives kept for the replay check (about 40 KB of state).
MAX_ACCEPTED_IDS = 1024
#: A beacon whose time is further than this from the site's clock is not fresh.
MAX_BEACON_SKEW_S = 60.0


@dataclass
class SafetyState:
    last_safety_sequence: int = 0
    accepted_ids: list[str] = field(default_factory=list)
    #: release -> id of the halt (or "local:tier-N") that stopped it, for halts without an artifact
    halted: dict[str, str] = field(default_factory=dict)
    #: "model@digest" -> ids of the halts in effect that stopped that artifact (a resume removes
    #: its halt's id; the artifact runs again once none is left)
    halted_artifacts: dict[str, list[str]] = field(default_factory=dict)
    last_beacon_ns: int = 0
    #: Wall time of the last fresh beacon (or of the first start).
    last_fresh: float = 0.0
    #: risk tier -> wall time it was halted locally (cleared when fresh beacons return)
    tiers_halted: dict[str, float] = field(default_factory=dict)
    #: LocalHaltReport fields not yet sent upstream
    unreported: list[dict[str, Any]] = field(default_factory=list)


def directive_signing_bytes(d: tpb.Directive) -> bytes:
    """The canonical bytes of a Halt/Resume as received (mirror of the federation's signing)."""
    kind = directive_kinds.name_of(d.kind)
    p = d.halt if kind == "Halt" else d.resume
    payload = {f.name: (list(v) if f.name == "approvers" else v) for f, v in p.ListFields()}
    payload = sd.signed_payload(kind, payload)
    return sd.directive_bytes(
        directive_id=d.id,
        kind=kind,
        safety_sequence=d.safety_sequence,
        issued_at_ns=d.issued_at.ToNanoseconds(),
        expires_at_ns=d.expires_at.ToNanoseconds(),
        issuer=d.issuer,
        key_id=d.key_id,
        payload=payload,
    )


def verify_directive(key: Ed25519PublicKey, d: tpb.Directive) -> bool:
    """Whether ``d``'s signature verifies under ``key``, remembering successes (``_VERIFIED``);
    failures are never remembered."""
    # Without the directive-key signature, which differs per site (operators/agent/directive_trust.py
    # checks it): the safety signature is the same for every site in scope.
    body = tpb.Directive()
    body.CopyFrom(d)
    body.ClearField("directive_key_id")
    body.ClearField("directive_signature")
    seen = (key.public_bytes_raw(), body.SerializeToString(deterministic=True))
    if seen in _VERIFIED:
        _VERIFIED.move_to_end(seen)
        return True
    if not verify(key, d.signature, directive_signing_bytes(d)):
        return False
    _VERIFIED[seen] = None
    if len(_VERIFIED) > VERIFIED_CACHE_SIZE:
        _VERIFIED.popitem(last=False)
    return True


class SiteSafety:
    def __init__(
        self,
        site_id: str,
        backend: WorkloadBackend,
        policy: LocalPolicy,
        state_dir: Path | None = None,
        *,
        country: str = "",
        ring: dict[str, Ed25519PublicKey] | None = None,
        clock: Callable[[], float] = time.time,
        on_event: Callable[[str, dict[str, Any]], None] | None = None,
        persist: bool = True,
    ) -> None:
        self.site_id = site_id
        #: The site's country (its certificate's): country-scoped directives for it cover it.
        self.country = country
        self.backend = backend
        self.policy = policy
        self.state_dir = state_dir
        self._ring = ring
        self.clock = clock
        self.on_event = on_event or (lambda kind, data: None)
        #: Keep the state in ``state_dir`` (the key ring is read from there either way).
        self.persist = persist
        self.state = self._load()
        if not self.state.last_fresh:
            self.state.last_fresh = clock()  # a fresh start gets the full tolerance, once
        self.beacons = 0
        self.approvals = RosterGuard(state_dir)

    # --- state ----------------------------------------------------------------------------------

    def _load(self) -> SafetyState:
        if self.persist and self.state_dir is not None and (self.state_dir / STATE_FILE).exists():
            raw = json.loads((self.state_dir / STATE_FILE).read_text())
            names = set(SafetyState.__dataclass_fields__)
            return SafetyState(**{k: v for k, v in raw.items() if k in names})
        return SafetyState()

    def save(self) -> None:
        if self.persist and self.state_dir is not None and self.state_dir.exists():
            write_atomic(self.state_dir / STATE_FILE, json.dumps(asdict(self.state)).encode(), 0o600)

    @property
    def ring(self) -> dict[str, Ed25519PublicKey]:
        if self._ring is None and self.state_dir is not None:
            ring = read_site_ring(self.state_dir)
            if ring:
                self._ring = ring  # written by join; read once it exists
            return ring
        return self._ring or {}

    @property
    def last_sequence(self) -> int:
        return self.state.last_safety_sequence

    # --- directives --------------------------------------------------------------------------------

    def check(self, d: tpb.Directive) -> str | None:
        """Why ``d`` (a Halt or Resume) must be refused, or None (see the module docstring)."""
        spec, kind = directive_kinds.of(d.kind), d.WhichOneof("payload")
        if spec is None or spec.lane is not Lane.SAFETY or kind != spec.payload:
            return "malformed: a safety directive needs its matching payload"
        key = self.ring.get(d.key_id)
        if key is None:
            return f"signature: unknown safety key {d.key_id[:32]!r}"
        if not verify_directive(key, d):
            return "signature: does not verify with the federation's safety key"
        payload = d.halt if kind == "halt" else d.resume
        try:
            scope = sd.parse_scope(payload.scope)
        except InvalidArgument:
            return f"scope: malformed scope {payload.scope[:80]!r}"
        if not scope.covers(site_id=self.site_id, country=self.country):
            return f"scope: signed for {scope}, which does not cover this site"
        if d.expires_at.ToNanoseconds() < self.clock() * 1e9:
            return "expired: the directive's expires_at has passed"
        if d.id in self.state.accepted_ids:
            return "replayed: this directive id was already accepted"
        if d.safety_sequence <= self.state.last_safety_sequence:
            return (
                f"sequence: safety sequence {d.safety_sequence} is not above the last accepted "
                f"{self.state.last_safety_sequence}"
            )
        return self.approvals.check_resume(d) if kind == "resume" else None  # operators/agent/approvals.py

    async def handle(self, d: tpb.Directive) -> Applied:
        kind = directive_kinds.name_of(d.kind)
        reason = self.check(d)
        if reason is None:
            try:
                names = await (self._halt(d.halt) if kind == "Halt" else self._resume(d.resume))
            except Refused as e:
                reason = e.reason[:512]
            else:
                self.state.accepted_ids.append(d.id)
                # The rising sequence already refuses every older directive; the ids are a second
                # check, kept bounded so that the state file does not grow with every halt ever.
                del self.state.accepted_ids[:-MAX_ACCEPTED_IDS]
                self.state.last_safety_sequence = d.safety_sequence
                self.save()  # durable before the ack
                release = d.halt.release if kind == "Halt" else d.resume.release
                self.on_event(kind.lower(), {"release": release, "workloads": names, "id": d.id})
                return Applied(0, d.id, kind, "applied", safety_sequence=d.safety_sequence)
        log.warning("refused %s %s: %s", kind, d.id, reason)
        self.on_event("safety-rejected", {"id": d.id, "reason": reason})
        return Applied(0, d.id, kind, "rejected", reason, safety_sequence=d.safety_sequence)

    async def _halt(self, p: xpb.HaltPayload) -> list[str]:
        """Halt the artifact (every workload running it, whatever its name), or the release by
        name when the halt names no artifact."""
        names = await self.backend.halt(p.release, model=p.model, digest=p.digest)
        if p.model and p.digest:
            ids = self.state.halted_artifacts.setdefault(f"{p.model}@{p.digest}", [])
            if p.halt_id not in ids:
                ids.append(p.halt_id)
        else:
            self.state.halted[p.release] = p.halt_id
        return names

    async def _resume(self, p: xpb.ResumePayload) -> list[str]:
        """Clear exactly what the halt ``p.halt_id`` set: its artifact runs again once no other
        halt in effect holds it."""
        if not (p.model and p.digest):
            self.state.halted.pop(p.release, None)
            return await self.backend.resume(p.release)
        key = f"{p.model}@{p.digest}"
        left = [h for h in self.state.halted_artifacts.get(key, []) if h != p.halt_id]
        if left:
            self.state.halted_artifacts[key] = left
            return []  # another halt still stops this artifact
        self.state.halted_artifacts.pop(key, None)
        return await self.backend.resume(p.release, model=p.model, digest=p.digest)

    def check_deploy(self, payload: dict[str, Any]) -> str | None:
        """Refuse deploying a halted artifact (whatever the deployment or release name), a release
        halted by name, or a tier halted for want of beacons."""
        artifact = f"{payload.get('model', '')}@{payload.get('digest', '')}"
        if self.state.halted_artifacts.get(artifact):
            halts = ", ".join(self.state.halted_artifacts[artifact])
            return f"safety: artifact {artifact[:60]} is halted ({halts})"
        release = str(payload.get("release", ""))
        if release and release in self.state.halted:
            return f"safety: release {release} is halted ({self.state.halted[release]})"
        tier = str(int(payload.get("risk_tier", 0)))
        if tier in self.state.tiers_halted:
            return f"safety: risk tier {tier} is halted (no fresh beacon from the federation)"
        return None

    # --- beacons and fail-closed ----------------------------------------------------------------------

    def on_beacon(self, b: xpb.Beacon) -> list[spb.ConnectRequest]:
        """Accept a fresh beacon; returns the LocalHaltReports to send now (the link is back)."""
        key = self.ring.get(b.key_id)
        time_ns = b.time.ToNanoseconds()
        data = sd.beacon_bytes(site_id=b.site_id, sequence=b.sequence, time_ns=time_ns, key_id=b.key_id)
        now = self.clock()
        if (
            key is None
            or not verify(key, b.signature, data)
            or b.site_id != self.site_id
            or time_ns <= self.state.last_beacon_ns
            or abs(time_ns / 1e9 - now) > MAX_BEACON_SKEW_S
        ):
            self.on_event("beacon-refused", {"sequence": b.sequence})
            return []
        self.beacons += 1
        self.state.last_beacon_ns = time_ns
        self.state.last_fresh = now
        out = []
        if self.state.tiers_halted or self.state.unreported:
            self.state.tiers_halted.clear()  # new deploys of the tier are accepted again
            for r in self.state.unreported:
                report = xpb.LocalHaltReport(
                    site_id=self.site_id,
                    risk_tier=int(r["risk_tier"]),
                    releases=r["releases"],
                    tolerance_seconds=float(r["tolerance_seconds"]),
                )
                report.halted_at.FromNanoseconds(int(r["halted_at"] * 1e9))
                out.append(spb.ConnectRequest(local_halt=report))
            self.state.unreported = []
            self.save()
        return out

    async def fail_closed(self) -> list[int]:
        """Halt every tier whose tolerance passed without a fresh beacon; returns the tiers halted now."""
        now = self.clock()
        age = now - self.state.last_fresh
        halted = []
        for tier, tolerance in sorted(self.policy.link_loss_tolerance.items()):
            if age <= tolerance or str(tier) in self.state.tiers_halted:
                continue
            releases = sorted(
                {
                    w.release
                    for w in await self.backend.workloads()
                    if w.source != "local" and w.risk_tier == tier and w.release and not w.halted
                }
            )
            for release in releases:
                with contextlib.suppress(Refused):
                    await self.backend.halt(release)
                self.state.halted.setdefault(release, f"local:tier-{tier}")
            self.state.tiers_halted[str(tier)] = now
            self.state.unreported.append(
                {"risk_tier": tier, "releases": releases, "halted_at": now, "tolerance_seconds": tolerance}
            )
            self.save()
            halted.append(tier)
            log.warning("no fresh beacon for %.1fs: halted risk tier %d (%s)", age, tier, releases)
            self.on_event("fail-closed", {"risk_tier": tier, "releases": releases, "age": age})
        return halted

    async def watchdog(self, period: float | None = None) -> None:
        """Check the beacon's age for ever (runs whether the link is up or not)."""
        tolerances = list(self.policy.link_loss_tolerance.values())
        if not tolerances:
            return
        step = period or max(0.02, min(tolerances) / 10)
        while True:
            await asyncio.sleep(step)
            try:
                await self.fail_closed()
            except Exception:  # the watchdog must outlive one bad pass
                log.exception("fail-closed check failed")
