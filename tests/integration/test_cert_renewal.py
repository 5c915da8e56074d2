"""Short-lived site certificates are renewed over the link, with a key generated at the site."""

from __future__ import annotations

import asyncio
import datetime as dt
from pathlib import Path

from controlplane.api.v1 import federation_pb2 as fpb
from controlplane.api.v1 import types_pb2 as tpb
from controlplane.pki.keys import fingerprint, load_certificate
from controlplane.store.memory import MemoryStore
from tests.support.federation import Federation


async def test_site_renews_before_expiry_and_stays_ready(tmp_path: Path) -> None:
    store = MemoryStore()
    fed = await Federation(tmp_path / "fed", store, site_cert_ttl=dt.timedelta(seconds=3)).start()
    try:
        site = await fed.add_site("fr-par-1", "FR")
        crt = site.directory / "site.crt"
        first = load_certificate(crt)
        first_key = (site.directory / "site.key").read_bytes()
        # X.509 times have whole seconds: 3 s requested plus the back-dating, rounded, is 3 or 4 s.
        assert (first.not_valid_after_utc - first.not_valid_before_utc).total_seconds() <= 4
        # Renewal is due at 2/3 of the lifetime (~2 s); wait for it (bounded), then past the first
        # certificate's expiry, so the link must be running on the renewed one.
        deadline = asyncio.get_running_loop().time() + 10
        while load_certificate(crt).serial_number == first.serial_number:
            assert asyncio.get_running_loop().time() < deadline, "no renewal within 10 s"
            await asyncio.sleep(0.1)
        left = (first.not_valid_after_utc - dt.datetime.now(dt.UTC)).total_seconds()
        await asyncio.sleep(max(0.0, left) + 0.3)
        await site.wait_connected(10)
        second = load_certificate(crt)
        assert second.serial_number != first.serial_number
        assert (site.directory / "site.key").read_bytes() != first_key  # a new key, made at the site
        assert site.agent.connects >= 2  # reconnected with the new certificate
        async with fed.client() as c:
            s = (await c.call("GetSite", fpb.GetSiteRequest(site_id="fr-par-1"))).site
            events = (await c.call("ListAuditEvents", fpb.ListAuditEventsRequest())).events
        assert s.status == tpb.SITE_STATUS_READY
        assert s.certificate_fingerprint == fingerprint(load_certificate(crt))
        renewals = [
            e for e in events if e.action == "certificate.issue" and e.details.get("renewal") == "true"
        ]
        assert renewals and renewals[0].actor == "spiffe://test.stargate/site/fr-par-1"
    finally:
        await fed.stop()
        await store.close()
