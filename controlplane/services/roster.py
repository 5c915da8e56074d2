"""The roster in the store: every version under ``/stargate/roster/v/<version:010d>`` (signed roster
JSON, controlplane/domain/roster.py), the highest is current. Version 1 comes from the PKI
directory's ``roster.json`` (written by init) on first start; a later version is stored only if it
chains (signed by the previous version's roster-change threshold). Sites receive the whole chain
(``EnrollResponse.roster_chain``) and check it themselves: a version written straight into the store
that does not chain is refused by every site, and by this service when it reads the chain.
"""

from __future__ import annotations

import asyncio
import logging

from controlplane.domain import roster as rd
from controlplane.domain.records import ROOT
from controlplane.errors import FailedPrecondition, InvalidArgument, NotFound, StargateError
from controlplane.services import clock
from controlplane.services.audit import AuditLog, Entry
from controlplane.store import Compare, Put, Store

log = logging.getLogger(__name__)

PREFIX = ROOT + "roster/v/"
#: Seconds a replica serves the roster chain from memory: a new version reaches every link of every
#: replica within this (plus one beacon interval, when links next look).
CACHE_S = 1.0


def version_key(version: int) -> str:
    return f"{PREFIX}{version:010d}"


class RosterStore:
    def __init__(self, store: Store, audit: AuditLog, seed: rd.SignedRoster | None = None) -> None:
        self._store = store
        self._audit = audit
        self._seed = seed
        #: (read at, current version's hash, the chain as sent to sites); links read it every pass.
        self._cached: tuple[float, str, list[bytes]] = (-CACHE_S, "", [])
        self._lock = asyncio.Lock()
        #: The chain this replica last read (status answers with it while the store is down).
        self.last: list[rd.SignedRoster] = []

    async def wire_chain(self) -> tuple[str, list[bytes]]:
        """(current version's hash, every version's JSON) at most ``CACHE_S`` old: each link checks
        it on every pass (1,000 links: one store read per second, not one per link)."""
        async with self._lock:
            at, current, chain = self._cached
            if clock.now() - at >= CACHE_S:
                try:
                    signed = await self.chain()
                except StargateError as e:
                    # The store is down: links keep serving what they have (the lane and beacons
                    # need no store) with the chain last read; a link must not end for want of it.
                    log.info("roster not re-read (%s); serving the last one read", e.public)
                    self._cached = (clock.now(), current, chain)
                    return current, chain
                current, chain = (signed[-1].roster.hash() if signed else ""), [s.to_json() for s in signed]
                self._cached = (clock.now(), current, chain)
        return current, chain

    async def chain(self) -> list[rd.SignedRoster]:
        """Every version from 1 that chains, oldest first; stops at the first that does not (logged:
        a forged version in the store is never served as current). Seeds version 1 when empty."""
        res = await self._store.range(PREFIX)
        if not res.items and self._seed is not None:
            await self._store.txn(
                [Compare.absent(version_key(1))], [Put(version_key(1), self._seed.to_json())]
            )
            res = await self._store.range(PREFIX)
        out: list[rd.SignedRoster] = []
        for kv in res.items:
            try:
                signed = rd.SignedRoster.from_json(kv.value)
            except InvalidArgument as e:
                log.error("roster record %s is unusable: %s", kv.key, e)
                break
            if not out:
                if signed.roster.version != 1 or (
                    self._seed is not None and signed.roster.hash() != self._seed.roster.hash()
                ):
                    log.error("roster v1 in the store is not this federation's roster.json")
                    break
            elif (why := rd.successor_problem(out[-1].roster, signed)) is not None:
                log.error("roster v%d does not chain: %s", signed.roster.version, why)
                break
            out.append(signed)
        self.last = out
        return out

    async def current(self) -> rd.Roster:
        chain = await self.chain()
        if not chain:
            raise NotFound("this federation has no roster (run `stargate-controlplane init`)")
        return chain[-1].roster

    async def apply(self, actor: str, signed: rd.SignedRoster) -> rd.Roster:
        """Store ``signed`` as the next version if it chains; audited either way."""
        current = await self.current()
        why = rd.successor_problem(current, signed)
        obj = f"roster/v{signed.roster.version}"
        if why is not None:
            await self._audit.record(Entry(actor, "roster.apply", obj, "denied", why[:512]))
            raise FailedPrecondition(f"roster: {why}")
        key = version_key(signed.roster.version)
        entry = Entry(
            actor,
            "roster.apply",
            obj,
            details={"hash": signed.roster.hash(), "signers": ",".join(s.person for s in signed.signatures)},
        )
        result = await self._audit.commit([Compare.absent(key)], [Put(key, signed.to_json())], [entry])
        if not result.succeeded:
            raise FailedPrecondition(f"roster v{signed.roster.version} was applied meanwhile; re-read it")
        self._cached = (-CACHE_S, "", [])  # this replica's links send it on their next pass
        return signed.roster
