"""A site's messages at the federation's edge: size, numbers, and the federation's own rules for
what they say (``controlplane/domain/site_input.py``), before anything is stored.

The transport already refuses any message over ``SERVER_OPTIONS``' 1 MiB (gRPC then ends the
stream with RESOURCE_EXHAUSTED before our code sees it, so that bounds the memory a message can
take); this checks the tighter 256 KiB a site's link message may be, so that an oversized one is
refused *and audited* (aggregated per site and window: ``services/refusals.py``) while the link,
and the directives on it, go on.
"""

from __future__ import annotations

import re
from typing import Any

from controlplane.api import bounds
from controlplane.domain import limits, site_input
from controlplane.errors import InvalidArgument, ResourceExhausted

#: Releases a site may name in one local-halt report.
MAX_RELEASES = 256
#: Witness names a site may say it trusts (a country picks a few; the federation lists at most 1,000).
MAX_WITNESS_NAMES = 32
#: One reported deployment on the wire (~300 bytes with every field at its longest today; fields
#: added later are bounded by this too).
MAX_DEPLOYMENT_BYTES = 2048


def check_size(msg: Any, what: str) -> None:
    size = msg.ByteSize()
    if size > site_input.MAX_LINK_MESSAGE_BYTES:
        raise ResourceExhausted(
            f"{what}: a message of {size} bytes is larger than {site_input.MAX_LINK_MESSAGE_BYTES} bytes"
        )


def _capacity(capacity: Any) -> dict[str, tuple[int, int]]:
    return {str(k): (int(v.total), int(v.free)) for k, v in capacity.items()}


def check_facts(facts: Any, prefix: str = "facts.") -> None:
    """A SiteFacts message (at enrollment and in each Hello)."""
    bounds.check(facts, prefix)
    site_input.validate_facts(
        region=facts.region,
        labels=dict(facts.labels),
        capacity=_capacity(facts.capacity),
        operator_version=facts.operator_version,
        accepted_risk_tiers=list(facts.policy.accepted_risk_tiers),
        prefix=prefix,
    )


def check_hello(hello: Any) -> None:
    """The sequences a Hello resumes from (its facts are checked apart: facts that fail keep the
    link, without being stored)."""
    limits.check("Hello.last_applied_sequence", "hello.last_applied_sequence", hello.last_applied_sequence)
    limits.check("Hello.last_safety_sequence", "hello.last_safety_sequence", hello.last_safety_sequence)
    limits.check("Hello.min_witnesses", "hello.min_witnesses", hello.min_witnesses)
    limits.check("Hello.checkpoint_size", "hello.checkpoint_size", hello.checkpoint_size)
    if len(hello.witnesses) > MAX_WITNESS_NAMES or any(len(w) > 256 for w in hello.witnesses):
        raise InvalidArgument(
            "hello.witnesses", f"at most {MAX_WITNESS_NAMES} names of at most 256 characters"
        )


#: A directive id as the federation writes it (``str(uuid.UUID)``); a regex is ~5x cheaper than
#: parsing a UUID, and runs once per ack (1,000 per halt at 1,000 sites).
_DIRECTIVE_ID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


def _directive_id(field: str, value: str) -> None:
    if not _DIRECTIVE_ID.fullmatch(value):
        raise InvalidArgument(field, "must be the id (a UUID) of a directive")


def datasets_of(heartbeat: Any) -> list[dict[str, Any]]:
    """A heartbeat's dataset summaries as dicts (validated one by one: site_input.accepted_datasets)."""
    return [
        {
            "name": d.name,
            "jurisdiction": d.jurisdiction,
            "classification": d.classification,
            "languages": list(d.languages),
            "purposes": list(d.purposes),
            "size": d.size,
        }
        for d in heartbeat.datasets
    ]


def check_message(which: str, body: Any) -> None:
    """A message after the Hello, by kind (``which``); InvalidArgument or ResourceExhausted names
    the field."""
    check_size(body, which)
    bounds.check(body, which + ".")
    if which == "heartbeat":
        site_input.validate_capacity("heartbeat.capacity", _capacity(body.capacity))
        if len(body.deployments) > site_input.MAX_DEPLOYMENTS:
            n = len(body.deployments)
            raise InvalidArgument("heartbeat.deployments", f"at most {site_input.MAX_DEPLOYMENTS}, got {n}")
        for i, d in enumerate(body.deployments):
            if d.ByteSize() > MAX_DEPLOYMENT_BYTES:
                raise InvalidArgument(
                    f"heartbeat.deployments[{i}]", f"larger than {MAX_DEPLOYMENT_BYTES} bytes"
                )
        site_input.validate_deployments(
            "heartbeat.deployments",
            [
                {
                    "name": d.name,
                    "model": d.model,
                    "version": d.version,
                    "phase": d.phase,
                    "release": d.release,
                    "digest": d.digest,
                }
                for d in body.deployments
            ],
        )
        if len(body.datasets) > site_input.MAX_DATASETS:
            n = len(body.datasets)
            raise InvalidArgument("heartbeat.datasets", f"at most {site_input.MAX_DATASETS}, got {n}")
        site_input.validate_job_statuses(
            "heartbeat.jobs",
            [
                {
                    "job_id": j.job_id,
                    "phase": j.phase,
                    "output_digest": j.output_digest,
                    "variant_signature": j.variant_signature,
                    "publisher_key": j.publisher_key,
                }
                for j in body.jobs
            ],
        )
    elif which in ("ack", "reject", "log_proof_request"):
        _directive_id(f"{which}.directive_id", body.directive_id)
    elif which == "local_halt" and len(body.releases) > MAX_RELEASES:
        raise InvalidArgument("local_halt.releases", f"at most {MAX_RELEASES} releases")
