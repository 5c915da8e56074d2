"""The audit-log modes the halt benchmark's rounds alternate over (issue 13): signed checkpoints
as served (at most one per second), the Merkle tree without checkpoints, a checkpoint after every
commit batch, and the hash chain alone (the log before its Merkle tree; its events are added to
the tree when the next mode starts, untimed). Benchmark code: it reaches into the audit log."""

from __future__ import annotations

from typing import Any

from controlplane.services.audit import Entry


class AuditModes:
    """Switch the server's audit log between the modes the halt rounds alternate over."""

    MODES = ("checkpoints (1/s, as served)", "no checkpoints", "checkpoint per commit", "hash chain only")
    BASELINE = "hash chain only"

    def __init__(self, fed: Any) -> None:
        rt = fed.cp.runtime  # type: ignore[union-attr]
        self.audit, self.checkpoints = rt.audit, rt.checkpoints
        self.chain_only = False

    async def set(self, mode: str) -> None:
        if self.chain_only:  # back to the tree: add the chain-only events to it, untimed
            del self.audit._tree_ops  # the instance attribute set below; the class method again
            self.audit._cached = None
            await self.audit.record(Entry("bench", "bench.tree", "bench"))
            self.chain_only = False
        self.audit._listeners = (
            [] if mode in ("no checkpoints", "hash chain only") else [self.checkpoints.notify]
        )
        self.checkpoints.interval = 0.0 if mode == "checkpoint per commit" else 1.0
        if mode == "hash chain only":
            self.audit._tree_ops = lambda edge, raws: (edge, [])  # type: ignore[method-assign]
            self.chain_only = True
