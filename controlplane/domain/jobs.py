"""Localisation jobs: the shared vocabulary of the federation (which places, consents and
registers) and the site (which runs the job next to its data and reports aggregates only).

Phases, federation side: Pending -> WaitingForApproval -> Admitted -> Running -> Succeeded |
Failed; Cancelled and Refused from any phase before the end. A site reports only ``JobProgress``:
phase, step, loss, eval score, a reason, and on success the digest of the trained artifact (which
stays in the site's artifact store). Never a sample, a gradient, a path or a record count.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum


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
