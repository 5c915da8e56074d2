"""Halts bind the artifact: which halts in effect stop a model and digest, wherever it runs.

A halt names a release, but what it stops is that release's artifact (model and digest): every
workload running it, whatever its deployment or release name, and every new Deploy of it. The
federation keeps one index record per halted artifact under ``/stargate/safety/artifacts/``,
written in the transaction that makes a halt effective and the one that resumes it; the directive
queue reads it (and compares it, so a halt racing a Deploy cannot be missed) for every Deploy,
low-level or from a rollout. Pure: the store and the queue live in services.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from controlplane.domain.records import ROOT, Record
from controlplane.domain.safety import parse_scope

ARTIFACT_HALTS = ROOT + "safety/artifacts/"


def artifact_key(model: str, digest: str) -> str:
    return f"{ARTIFACT_HALTS}{model}@{digest}"


@dataclass(frozen=True)
class ArtifactHalts(Record):
    """The halts in effect for one artifact: halt id -> its scope (``global``, ``country:CC``...)."""

    model: str
    digest: str
    halts: dict[str, str] = field(default_factory=dict)
    #: halt id -> name of the release the halt named (for the reason people read)
    releases: dict[str, str] = field(default_factory=dict)


def with_halt(
    index: ArtifactHalts | None, *, halt_id: str, scope: str, release: str, model: str, digest: str
) -> ArtifactHalts:
    base = index or ArtifactHalts(model, digest)
    return base.replace(halts=base.halts | {halt_id: scope}, releases=base.releases | {halt_id: release})


def without_halt(index: ArtifactHalts | None, halt_id: str) -> ArtifactHalts | None:
    """The index once ``halt_id`` is resumed; None when no halt is left (the record is deleted)."""
    if index is None:
        return None
    halts = {k: v for k, v in index.halts.items() if k != halt_id}
    releases = {k: v for k, v in index.releases.items() if k != halt_id}
    return index.replace(halts=halts, releases=releases) if halts else None


def refusal(index: ArtifactHalts | None, *, site_id: str, country: str) -> str | None:
    """Why a Deploy of the indexed artifact to ``site_id`` (in ``country``) must be refused: the
    first halt in effect whose scope covers the site; None when none does. A scope that cannot be
    read covers every site (fail closed)."""
    if index is None:
        return None
    for halt_id, scope in sorted(index.halts.items()):
        try:
            covers = parse_scope(scope).covers(site_id=site_id, country=country)
        except Exception:  # a damaged record must not let a halted artifact through
            covers = True
        if covers:
            name = index.releases.get(halt_id, "")
            named = f" (halted as release {name})" if name else ""
            return (
                f"safety: artifact {index.model} {index.digest[:19]}...{named} is halted by {halt_id} "
                f"({scope}); resume that halt first"
            )
    return None
