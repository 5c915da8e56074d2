"""The site registry: sites, their status and what they report."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from controlplane.domain.records import SITES, SiteRecord, SiteStatus, site_key
from controlplane.domain.validation import validate_dns_label
from controlplane.errors import FailedPrecondition, NotFound
from controlplane.services import cas
from controlplane.services.audit import AuditLog, Entry
from controlplane.store import Compare, KeyValue, Put, Store

log = logging.getLogger(__name__)

#: Label of the stand-in for a stored site record that cannot be read (see ``_parse``).
UNREADABLE_LABEL = "stargate/record"


class Registry:
    def __init__(self, store: Store, audit: AuditLog) -> None:
        self._store = store
        self._audit = audit
        #: key -> (mod revision, parsed record): ``list`` parses only what changed since the last
        #: call (1,000 sites: 0.25 ms instead of 11 ms of JSON on every halt, sweep and rollout step).
        self._parsed: dict[str, tuple[int, SiteRecord]] = {}

    async def get_kv(self, site_id: str) -> tuple[KeyValue, SiteRecord]:
        validate_dns_label("site_id", site_id)
        kv = await self._store.get(site_key(site_id))
        if kv is None:
            raise NotFound(f"site {site_id!r} not found")
        try:
            return kv, SiteRecord.from_json(kv.value)
        except (ValueError, TypeError, AttributeError) as e:
            raise FailedPrecondition(
                f"site {site_id!r}: its stored record is unreadable ({type(e).__name__})"
            ) from e

    async def get(self, site_id: str) -> SiteRecord:
        return (await self.get_kv(site_id))[1]

    async def list(self, country: str = "") -> list[SiteRecord]:
        """Every site (of ``country``). The records are shared with other callers: they MUST NOT be
        mutated in place (use ``replace``)."""
        res = await self._store.range(SITES)
        parsed: dict[str, tuple[int, SiteRecord]] = {}
        for kv in res.items:
            known = self._parsed.get(kv.key)
            parsed[kv.key] = (
                known if known is not None and known[0] == kv.mod_revision else (kv.mod_revision, _parse(kv))
            )
        self._parsed = parsed  # deleted sites drop out
        sites = [rec for _, rec in parsed.values()]
        return [s for s in sites if not country or s.country == country]

    async def update(
        self,
        site_id: str,
        change: dict[str, Any],
        entry: Entry | None = None,
        *,
        only_if: Any = None,
        fence: Sequence[Compare] = (),
    ) -> SiteRecord | None:
        """Apply ``change`` to a site with compare-and-set, with an optional audit entry.

        ``only_if(record) -> bool`` guards the change (evaluated on each attempt); returns None
        when the guard declines or nothing would change, else the new record.
        """

        async def attempt() -> SiteRecord | cas.Retry | None:
            kv, site = await self.get_kv(site_id)
            if only_if is not None and not only_if(site):
                return None
            new = site.replace(**change)
            if new == site:
                return None
            result = await self._audit.commit(
                [*fence, Compare.unchanged(kv)], [Put(kv.key, new.to_json())], [entry] if entry else []
            )
            return new if result.succeeded else cas.RETRY

        return await cas.retry(self._store, attempt, fence=fence)

    async def cordon(self, site_id: str, actor: str, reason: str, cordoned: bool) -> SiteRecord:
        action = "site.cordon" if cordoned else "site.uncordon"
        entry = Entry(actor, action, f"site/{site_id}", reason=reason)
        updated = await self.update(site_id, {"cordoned": cordoned}, entry)
        return updated or await self.get(site_id)

    async def mark_ready(self, site_id: str, actor: str, now: float) -> None:
        await self.update(
            site_id,
            {"status": SiteStatus.READY, "last_heartbeat": now},
            Entry(actor, "site.ready", f"site/{site_id}"),
            only_if=lambda s: s.status != SiteStatus.READY,
        )

    async def mark_unreachable(
        self, site_id: str, actor: str, last_seen: float, fence: Sequence[Compare] = ()
    ) -> bool:
        entry = Entry(
            actor, "site.unreachable", f"site/{site_id}", details={"last_heartbeat": f"{last_seen:.3f}"}
        )
        updated = await self.update(
            site_id,
            {"status": SiteStatus.UNREACHABLE, "last_heartbeat": last_seen},
            entry,
            only_if=lambda s: s.status == SiteStatus.READY and s.last_heartbeat <= last_seen,
            fence=fence,
        )
        return updated is not None


def _parse(kv: KeyValue) -> SiteRecord:
    """The stored record, or, when it cannot be read (an edit in the store, a bug of an older
    version), a stand-in that keeps every listing working and fails closed: shown Unreachable (no
    placement puts work there), labelled ``stargate/record: unreadable`` so ``sites list`` says why,
    never written back (``update`` reads the stored bytes again and fails on them)."""
    try:
        return SiteRecord.from_json(kv.value)
    except (ValueError, TypeError, AttributeError) as e:
        site_id = kv.key[len(SITES) :]
        log.warning("site record %s at revision %d is unreadable: %s", site_id, kv.mod_revision, e)
        return SiteRecord(
            site_id=site_id,
            country="",
            status=SiteStatus.UNREACHABLE,
            labels={UNREADABLE_LABEL: "unreadable"},
        )
