"""Localisation jobs: the shared vocabulary of the federation (which places, consents and
registers) and the site (which runs the job next to its data and reports aggregates only).

Phases, federation side: Pending -> WaitingForApproval -> Admitted -> Running -> Succeeded |
Failed; Cancelled and Refused from any phase before the end. A site reports only ``JobProgress``:
phase, step, loss, eval score, a reason, and on success the digest of the trained artifact (which
stays in the site's artifact store). Never a sample, a gradient, a path or a record count.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class JobPhase(StrEnum):
    PENDING = "Pending"
    WAITING_FOR_APPROVAL = "WaitingForApproval"
    ADMITTED = "Admitted"
    RUNNING = "Running"
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"
    CANCELLED = "Cancelled"
    REFUSED = "Refused"

    @property
    def final(self) -> bool:
        return self in _FINAL


_FINAL = frozenset({JobPhase.SUCCEEDED, JobPhase.FAILED, JobPhase.CANCELLED, JobPhase.REFUSED})


@dataclass(frozen=True)
class JobRun:
    """What a site is asked to run (the payload of a RunJob directive), typed.

    ``job_id`` names the run at the site (one id per job and site; a re-delivery is a no-op)."""

    job_id: str
    job: str
    dataset: str
    purpose: str
    image: str
    command: tuple[str, ...] = ()
    accelerator: str = ""
    accelerators: int = 0
    max_hours: float = 0.0
    #: The base release the job starts from (its artifact must be at the site) ...
    base_release: str = ""
    base_model: str = ""
    base_digest: str = ""
    #: ... and the variant it produces, if it succeeds.
    output_name: str = ""
    output_version: str = ""
    #: The publisher of the base release, for the site's jobs.allowPublishers.
    publisher: str = ""


@dataclass(frozen=True)
class JobProgress:
    """What a site reports of a run: aggregates only."""

    job_id: str
    phase: JobPhase
    step: int = 0
    loss: float | None = None
    eval_score: float | None = None
    reason: str = ""
    #: On success: the trained artifact's digest (sha256:<hex>), and the variant release the site's
    #: publisher key signed (a ModelRelease as a dict); the bytes stay at the site.
    output_digest: str = ""
    variant: dict[str, object] = field(default_factory=dict)


@dataclass(frozen=True)
class JobsPolicy:
    """What the site lets localisation jobs do (SitePolicy ``jobs:``). Empty sets: no restriction."""

    #: Purposes the site runs jobs for ("fine-tune", "evaluate").
    allow_purposes: frozenset[str] = frozenset()
    #: Publishers whose base releases may be trained or evaluated here.
    allow_publishers: frozenset[str] = frozenset()
    #: Trainer images: an exact reference, or a prefix ending in "/" or "@" (a registry, a repo).
    allow_images: frozenset[str] = frozenset()
    #: Most accelerators one job may hold; 0: no limit beyond capacity.
    max_accelerators: int = 0
    #: Longest a job may run, in hours; 0: no limit.
    max_hours: float = 0.0

    def check(
        self, *, purpose: str, publisher: str, image: str, accelerators: int, hours: float
    ) -> str | None:
        """Why the site vetoes a job, or None."""
        if self.allow_purposes and purpose not in self.allow_purposes:
            return f"policy: jobs.allowPurposes {sorted(self.allow_purposes)} does not include {purpose}"
        if self.allow_publishers and publisher not in self.allow_publishers:
            allowed = sorted(self.allow_publishers)
            return f"policy: jobs.allowPublishers {allowed} does not include {publisher or '-'}"
        if self.allow_images and not image_allowed(image, self.allow_images):
            return f"policy: jobs.allowImages does not allow {image[:120]}"
        if self.max_accelerators and accelerators > self.max_accelerators:
            return f"policy: jobs.maxAccelerators is {self.max_accelerators}, the job needs {accelerators}"
        if self.max_hours and (not hours or hours > self.max_hours):
            asked = f"{hours:g} hours" if hours else "no time limit"
            return f"policy: jobs.maxHours is {self.max_hours:g}, the job asks for {asked}"
        return None

    @classmethod
    def from_summary(cls, d: Mapping[str, Any] | None) -> JobsPolicy:
        """From the dict form of a JobsPolicySummary as a site reported it (stored on its record)."""
        d = d or {}
        return cls(
            allow_purposes=frozenset(str(x) for x in d.get("allow_purposes") or ()),
            allow_publishers=frozenset(str(x) for x in d.get("allow_publishers") or ()),
            allow_images=frozenset(str(x) for x in d.get("allow_images") or ()),
            max_accelerators=int(d.get("max_accelerators") or 0),
            max_hours=float(d.get("max_hours") or 0.0),
        )

    def summary(self) -> dict[str, object]:
        """The dict form of JobsPolicySummary (what placement reads of it)."""
        return {
            "allow_purposes": sorted(self.allow_purposes),
            "allow_publishers": sorted(self.allow_publishers),
            "allow_images": sorted(self.allow_images),
            "max_accelerators": self.max_accelerators,
            "max_hours": self.max_hours,
        }


def image_allowed(image: str, allowed: Iterable[str]) -> bool:
    """Whether ``image`` is one of ``allowed``, or under an allowed prefix ending in "/" or "@"."""
    return any(image == a or (a.endswith(("/", "@")) and image.startswith(a)) for a in allowed)
