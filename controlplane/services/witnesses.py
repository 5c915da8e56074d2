"""The witnesses whose cosignatures the federation accepts, behind one small interface.

For now the list is admin-managed like publisher keys: ``stargatectl witness add --vkey`` stores a
witness's cosignature/v1 verifier key, with the change in the audit log (so adding or removing a
witness is itself on the public record), and the list is served signed with the log key
(``signed_list``). The federation's signed roster (issue 12) will hold these keys later: it only
needs to implement ``WitnessList``.
"""

from __future__ import annotations

import json
from typing import Any, Protocol

from controlplane.domain.notes import COSIGNATURE_V1, NoteError, Verifier, parse_vkey, sign_note
from controlplane.domain.records import WITNESSES
from controlplane.errors import AlreadyExists, InvalidArgument, NotFound
from controlplane.pki.log_key import LogKey
from controlplane.services import clock
from controlplane.services.audit import AuditLog, Entry
from controlplane.store import Compare, Delete, Put, Store

#: A bound on the list (each cosignature is checked against it; notes carry at most 100 lines).
MAX_WITNESSES = 64


class WitnessList(Protocol):
    async def verifiers(self) -> list[Verifier]:
        """The cosignature/v1 keys of the witnesses the federation trusts."""
        ...


class AdminWitnessList:
    def __init__(self, store: Store, audit: AuditLog) -> None:
        self._store = store
        self._audit = audit

    async def records(self) -> list[dict[str, Any]]:
        return [json.loads(kv.value) for kv in (await self._store.range(WITNESSES)).items]

    async def verifiers(self) -> list[Verifier]:
        return [parse_vkey(r["vkey"]) for r in await self.records()]

    async def add(self, actor: str, vkey: str) -> dict[str, Any]:
        try:
            v = parse_vkey(vkey, "verifier_key")
        except NoteError as e:
            raise InvalidArgument("verifier_key", str(e).removeprefix("verifier_key: ")) from e
        if v.alg != COSIGNATURE_V1:
            raise InvalidArgument(
                "verifier_key", "must be a cosignature/v1 key (type 0x04), as `witness keygen` prints"
            )
        if len(await self.records()) >= MAX_WITNESSES:
            raise InvalidArgument("verifier_key", f"the list holds {MAX_WITNESSES} witnesses already")
        record = {"name": v.name, "vkey": v.vkey, "added_at": clock.now(), "added_by": actor}
        key = WITNESSES + v.name
        result = await self._audit.commit(
            [Compare.absent(key)],
            [Put(key, json.dumps(record).encode())],
            [Entry(actor, "witness.add", f"witness/{v.name}", details={"vkey": v.vkey})],
        )
        if not result.succeeded:
            raise AlreadyExists(f"witness {v.name!r} is listed (remove it first to change its key)")
        return record

    async def remove(self, actor: str, name: str) -> None:
        key = WITNESSES + name
        kv = await self._store.get(key)
        if kv is None:
            raise NotFound(f"witness {name[:128]!r} is not listed")
        result = await self._audit.commit(
            [Compare.unchanged(kv)],
            [Delete(key)],
            [
                Entry(
                    actor, "witness.remove", f"witness/{name}", details={"vkey": json.loads(kv.value)["vkey"]}
                )
            ],
        )
        if not result.succeeded:
            raise NotFound(f"witness {name[:128]!r} changed meanwhile, retry")


def signed_list(key: LogKey, verifiers: list[Verifier]) -> str:
    """The witness list as a note signed with the log key: ``<origin>/witnesses``, then one vkey per
    line, sorted. A verifier holding the log's vkey can check the list came from the federation."""
    text = f"{key.origin}/witnesses\n" + "".join(f"{v}\n" for v in sorted(w.vkey for w in verifiers))
    return sign_note(text, key.signer)
