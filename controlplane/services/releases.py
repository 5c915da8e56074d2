"""Publishers and releases. A release is registered only when its publisher is known and the
signature over the canonical release verifies; releases are immutable once registered."""

from __future__ import annotations

import base64
import json
from collections.abc import Sequence
from typing import Any

from google.protobuf import json_format

from controlplane.api.v1 import release_pb2 as rpb
from controlplane.domain import releases as rel
from controlplane.domain import variants
from controlplane.domain.records import PUBLISHERS, RELEASES
from controlplane.domain.validation import validate_dns_label, validate_dns_subdomain
from controlplane.errors import AlreadyExists, Conflict, FailedPrecondition, NotFound, PermissionDenied
from controlplane.services import cas, clock
from controlplane.services.audit import AuditLog, Entry
from controlplane.store import Compare, Delete, KeyValue, Put, Store


def signed_to_dict(s: rpb.SignedRelease) -> dict[str, Any]:
    return json_format.MessageToDict(s, preserving_proto_field_name=True)


def signed_from_dict(d: dict[str, Any]) -> rpb.SignedRelease:
    return json_format.ParseDict(d, rpb.SignedRelease(), ignore_unknown_fields=True)


class Releases:
    def __init__(self, store: Store, audit: AuditLog) -> None:
        self._store = store
        self._audit = audit

    async def add_publisher(
        self,
        actor: str,
        name: str,
        public_key: bytes,
        countries: Sequence[str] = (),
        fence: Sequence[Compare] = (),
    ) -> dict[str, Any]:
        """Register a publisher; ``countries`` limits it to the sites of those countries (a site's
        own publisher key, registered for its variants: services/job_engine.py)."""
        validate_dns_label("name", name)
        rel.validate_public_key(public_key)
        record: dict[str, Any] = {
            "name": name,
            "public_key": base64.b64encode(public_key).decode(),
            "key_id": rel.key_id(public_key),
            "added_at": clock.now(),
            "added_by": actor,
        }
        if countries:
            record["countries"] = sorted(countries)
        key = PUBLISHERS + name
        result = await self._audit.commit(
            [*fence, Compare.absent(key)],
            [Put(key, json.dumps(record).encode())],
            [Entry(actor, "publisher.add", f"publisher/{name}", details={"key_id": rel.key_id(public_key)})],
        )
        if not result.succeeded:
            await cas.check_fence(self._store, fence)  # a deposed leader: NotLeader, not "exists"
            raise AlreadyExists(f"publisher {name!r} exists (keys are not replaced: add a new publisher)")
        return record

    async def publishers(self) -> list[dict[str, Any]]:
        return [json.loads(kv.value) for kv in (await self._store.range(PUBLISHERS)).items]

    async def publisher_key(self, name: str) -> bytes:
        kv = await self._store.get(PUBLISHERS + name)
        if kv is None:
            raise NotFound(f"publisher {name!r} is not registered")
        return base64.b64decode(json.loads(kv.value)["public_key"])

    async def create(
        self, actor: str, signed: rpb.SignedRelease, *, variant: bool = False, fence: Sequence[Compare] = ()
    ) -> rpb.SignedRelease:
        """Register a signed release. Only the federation registers a variant (``variant``); a
        person's release of a variant's artifact must keep the variant's export rule, or one its
        data country's steward consented to (domain/variants.py)."""
        r = signed.release
        rel.validate_release(r)
        validate_dns_label("publisher", signed.publisher)
        why = variants.refusal(r, await self.bodies(), registering_variant=variant)
        if why is not None:
            await self._audit.record(Entry(actor, "release.create", f"release/{r.name}", "denied", why))
            raise FailedPrecondition(why)
        try:
            key = await self.publisher_key(signed.publisher)
        except NotFound:
            await self._audit.record(
                Entry(actor, "release.create", f"release/{r.name}", "denied", "unknown publisher")
            )
            raise
        scoped = await self.publisher_countries(signed.publisher)
        outside = variants.outside(r, scoped)
        if outside:
            await self._audit.record(Entry(actor, "release.create", f"release/{r.name}", "denied", outside))
            raise FailedPrecondition(outside)
        if not rel.verify(key, signed.signature, r):
            await self._audit.record(
                Entry(actor, "release.create", f"release/{r.name}", "denied", "signature does not verify")
            )
            raise PermissionDenied(f"signature: does not verify with publisher {signed.publisher!r}'s key")
        stored = rpb.SignedRelease()
        stored.CopyFrom(signed)
        stored.publisher_key = key
        body = {"signed": signed_to_dict(stored), "created_at": clock.now(), "created_by": actor}
        k = RELEASES + r.name
        result = await self._audit.commit(
            [*fence, Compare.absent(k)],
            [Put(k, json.dumps(body).encode())],
            [
                Entry(
                    actor,
                    "release.create",
                    f"release/{r.name}",
                    details={"publisher": signed.publisher, "digest": r.digest},
                )
            ],
        )
        if not result.succeeded:
            await cas.check_fence(self._store, fence)
            raise AlreadyExists(f"release {r.name!r} exists; releases are immutable (use a new name)")
        return stored

    async def get_kv(self, name: str) -> tuple[KeyValue, rpb.SignedRelease, float]:
        validate_dns_subdomain("name", name)
        kv = await self._store.get(RELEASES + name)
        if kv is None:
            raise NotFound(f"release {name!r} not found")
        body = json.loads(kv.value)
        return kv, signed_from_dict(body["signed"]), float(body["created_at"])

    async def get(self, name: str) -> tuple[rpb.SignedRelease, float]:
        _, signed, created = await self.get_kv(name)
        return signed, created

    async def delete(self, actor: str, name: str, why_not: str | None) -> rpb.SignedRelease:
        """Delete a release; ``why_not`` (from the caller's checks of rollouts and sites) refuses it,
        audited. The delete compares the release's revision, so it removes what was checked."""
        kv, signed, _ = await self.get_kv(name)
        if why_not:
            await self._audit.record(Entry(actor, "release.delete", f"release/{name}", "denied", why_not))
            raise FailedPrecondition(why_not)
        result = await self._audit.commit(
            [Compare.unchanged(kv)], [Delete(kv.key)], [Entry(actor, "release.delete", f"release/{name}")]
        )
        if not result.succeeded:
            raise Conflict()
        return signed

    async def publisher_countries(self, name: str) -> list[str]:
        """The countries a publisher is limited to (empty: every country)."""
        kv = await self._store.get(PUBLISHERS + name)
        return list(json.loads(kv.value).get("countries") or []) if kv is not None else []

    async def bodies(self) -> list[dict[str, Any]]:
        """Every stored release body: {signed, created_at, created_by[, export_grants]}."""
        return [json.loads(kv.value) for kv in (await self._store.range(RELEASES)).items]

    async def grant_export(self, actor: str, name: str, allow: Sequence[str], reason: str) -> list[str]:
        """Add an export rule the variant ``name``'s data country consented to (audited)."""
        rule = ",".join(sorted(set(allow)))

        def decide(kv: KeyValue | None) -> cas.Write[list[str]] | list[str]:
            if kv is None:
                raise NotFound(f"release {name!r} not found")
            body = json.loads(kv.value)
            grants = sorted(set(body.get("export_grants") or []) | {rule})
            if grants == sorted(body.get("export_grants") or []):
                return grants
            body["export_grants"] = grants
            entry = Entry(
                actor, "release.export-approve", f"release/{name}", reason=reason, details={"allow": rule}
            )
            return cas.Write(json.dumps(body).encode(), grants, [entry])

        return await cas.mutate(self._store, self._audit.commit, RELEASES + name, decide)

    async def list(self) -> list[rpb.SignedRelease]:
        return [
            signed_from_dict(json.loads(kv.value)["signed"])
            for kv in (await self._store.range(RELEASES)).items
        ]


__all__ = ["Releases", "signed_from_dict", "signed_to_dict"]
