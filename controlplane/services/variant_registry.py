"""A succeeded fine-tune becomes a release: the localised variant, signed at its site.

The site signed the variant the RunJob described (``JobRecord.variant_template``) with the digest of
what it trained, using its own publisher key (generated there; only the public half came with the
job's status, over the site's own mTLS link). The federation registers that key as the publisher
``s-<site>`` for the site's country only (sites of other countries are never sent it:
services/publisher_trust.py), then the variant (``Releases.create(variant=True)``: the signature
must verify, the export rule must allow exactly the data's country), every write under the leader's
fence. A site whose key changed is
refused: replacing a publisher's key is an admin's decision, not a site's.
"""

from __future__ import annotations

import base64
import logging
from collections.abc import Sequence

from google.protobuf import json_format

from controlplane.api.v1 import release_pb2 as rpb
from controlplane.domain.job_records import JobRecord
from controlplane.errors import AlreadyExists, FailedPrecondition, NotFound
from controlplane.services.directives import Directives
from controlplane.services.publisher_trust import send_publishers
from controlplane.services.registry import Registry
from controlplane.services.releases import Releases
from controlplane.store import Compare

log = logging.getLogger(__name__)


def publisher_name(site_id: str) -> str:
    """The publisher name of a site's own key (a DNS label: 63 characters at most)."""
    return ("s-" + site_id)[:63].rstrip("-")


async def register(
    rec: JobRecord,
    releases: Releases,
    directives: Directives,
    registry: Registry,
    actor: str,
    fence: Sequence[Compare] = (),
) -> str:
    """Register ``rec``'s variant; returns its name. FailedPrecondition says why it cannot be."""
    p, site = rec.progress, rec.sites[0]
    key = base64.b64decode(str(p.get("publisher_key") or ""))
    signature = base64.b64decode(str(p.get("variant_signature") or ""))
    if not rec.variant_template or not p.get("output_digest"):
        raise FailedPrecondition("variant: the job produced no variant to register")
    if not key or not signature:
        raise FailedPrecondition(f"variant: {site} reported no signature by its publisher key")
    name = publisher_name(site)
    country = rec.dataset_country
    try:
        held = await releases.publisher_key(name)
    except NotFound:
        await releases.add_publisher(actor, name, key, countries=[country], fence=fence)
        await send_publishers(directives, registry, releases, actor, fence)  # each site: its country's set
        held = key
    if held != key or await releases.publisher_countries(name) != [country]:
        raise FailedPrecondition(
            f"variant: publisher {name} is registered with another key or other countries; "
            "an admin must resolve it (a site's key is never replaced by the site)"
        )
    release = json_format.ParseDict(rec.variant_template, rpb.ModelRelease(), ignore_unknown_fields=True)
    release.digest = str(p["output_digest"])
    signed = rpb.SignedRelease(release=release, publisher=name, signature=signature)
    try:
        await releases.create(actor, signed, variant=True, fence=fence)
    except AlreadyExists:
        existing, _ = await releases.get(release.name)
        if existing.release != release or existing.publisher != name:
            raise FailedPrecondition(f"variant: a release named {release.name} exists already") from None
    log.info(
        "variant %s of %s registered from job %s at %s", release.name, release.variant_of, rec.name, site
    )
    return release.name
