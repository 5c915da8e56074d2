"""Directive kinds, registered once: the name the federation stores, the wire number, the payload
field of ``Directive`` that carries it, and how the federation treats it.

Both sides read this table: the federation to queue, sign and send a directive
(controlplane/services/directive_wire.py, directives.py), the site to tell what it received
(operators/agent/link.py), which then runs the kind's handler from its own registry
(operators/agent/handlers.py). A new kind is one registration here and one handler there::

    RUN_JOB = register(DirectiveKind("RunJob", tpb.DIRECTIVE_KIND_RUN_JOB, "run_job"))

    @handler("RunJob")  # operators/agent/jobs.py
    async def _run_job(site: SiteAgent, d: tpb.Directive, payload: dict[str, Any]) -> None:
        await run_job(site.backend, site.policy, site.facts.country, d.run_job, site.variants)

What a kind's directive is signed over needs no registration: the directive key signs the whole
deterministic serialization of the Directive (controlplane/pki/directive_key.py), payload included.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from google.protobuf import json_format

from controlplane.api.v1 import types_pb2 as tpb
from controlplane.errors import InvalidArgument


class Lane(StrEnum):
    #: Per-site sequence, applied in order after everything before it.
    ORDERED = "ordered"
    #: The federation-wide safety lane, sent before ordinary directives (Halt, Resume).
    SAFETY = "safety"


@dataclass(frozen=True)
class DirectiveKind:
    name: str
    #: The wire number (a DirectiveKind enum value; a test's own kind may use one outside it).
    number: tpb.DirectiveKind.ValueType
    #: The member of ``Directive.payload`` carrying it; None for a kind without a payload.
    payload: str | None = None
    lane: Lane = Lane.ORDERED
    #: Carries an artifact (``model`` + ``digest``): artifact halts refuse it at the federation,
    #: its audit event names the digest, and it goes out with the log's inclusion proof.
    artifact: bool = False
    #: Checks a payload before it is queued (raises InvalidArgument naming the field).
    validate: Callable[[Mapping[str, Any]], None] | None = None

    def fill(self, d: tpb.Directive, payload: Mapping[str, Any]) -> None:
        """Put ``payload`` (a dict of the payload message's fields) into ``d``."""
        if self.payload is not None:
            json_format.ParseDict(dict(payload), getattr(d, self.payload), ignore_unknown_fields=True)

    def payload_of(self, d: tpb.Directive) -> dict[str, Any]:
        """The payload of a received ``d`` as a dict (field names as in the proto)."""
        if self.payload is None:
            return {}
        return json_format.MessageToDict(getattr(d, self.payload), preserving_proto_field_name=True)


_BY_NAME: dict[str, DirectiveKind] = {}
_BY_NUMBER: dict[tpb.DirectiveKind.ValueType, DirectiveKind] = {}


def register(kind: DirectiveKind) -> DirectiveKind:
    """Add ``kind``; a name or number registered twice is a bug, refused."""
    if kind.name in _BY_NAME or kind.number in _BY_NUMBER or kind.number == 0:
        raise ValueError(f"directive kind {kind.name!r} ({kind.number}) is already registered or invalid")
    if kind.payload is not None and kind.payload not in tpb.Directive.DESCRIPTOR.fields_by_name:
        raise ValueError(f"directive kind {kind.name!r}: Directive has no field {kind.payload!r}")
    _BY_NAME[kind.name] = _BY_NUMBER[kind.number] = kind
    return kind


def unregister(name: str) -> None:
    """Remove a kind (tests register their own)."""
    kind = _BY_NAME.pop(name, None)
    if kind is not None:
        _BY_NUMBER.pop(kind.number, None)


def get(name: str) -> DirectiveKind:
    """The kind called ``name``; InvalidArgument (field ``kind``) for one nobody registered."""
    kind = _BY_NAME.get(name)
    if kind is None:
        raise InvalidArgument("kind", f"{name[:40]!r} is not a directive kind ({', '.join(_BY_NAME)})")
    return kind


def find(name: str) -> DirectiveKind | None:
    """The kind called ``name``, or None."""
    return _BY_NAME.get(name)


def of(number: tpb.DirectiveKind.ValueType | int) -> DirectiveKind | None:
    """The kind with wire number ``number``, or None (a site refuses what it does not know)."""
    return _BY_NUMBER.get(number)  # type: ignore[call-overload]


def name_of(number: tpb.DirectiveKind.ValueType | int) -> str:
    """A display name for a wire number, known or not."""
    kind = of(number)
    return kind.name if kind is not None else f"Kind({number})"


DEPLOY = register(DirectiveKind("Deploy", tpb.DIRECTIVE_KIND_DEPLOY, "deploy", artifact=True))
UNDEPLOY = register(DirectiveKind("Undeploy", tpb.DIRECTIVE_KIND_UNDEPLOY, "undeploy"))
HALT = register(DirectiveKind("Halt", tpb.DIRECTIVE_KIND_HALT, "halt", lane=Lane.SAFETY))
RESUME = register(DirectiveKind("Resume", tpb.DIRECTIVE_KIND_RESUME, "resume", lane=Lane.SAFETY))
PUBLISHERS = register(DirectiveKind("Publishers", tpb.DIRECTIVE_KIND_PUBLISHERS, "publishers"))

#: Localisation jobs (docs/localisation.md): run a job next to a dataset the site holds (the site
#: may veto it), and stop one. Neither carries a release artifact.
RUN_JOB = register(DirectiveKind("RunJob", tpb.DIRECTIVE_KIND_RUN_JOB, "run_job"))
CANCEL_JOB = register(DirectiveKind("CancelJob", tpb.DIRECTIVE_KIND_CANCEL_JOB, "cancel_job"))
