"""A rollout as people read it: the plain dict of ``-o json`` and the status frame of the table.

Pure functions of the wire message (and of ``now`` for the elapsed time and the bake countdown),
so that what ``rollouts status --watch`` draws is testable without a server.
"""

from __future__ import annotations

import collections
import datetime as dt
from typing import Any

from controlplane.client.render import iso, table

#: Final phases and the exit code of ``rollouts status --watch`` on each (kubectl rollout status:
#: 0 when the rollout succeeded, non-zero when it cannot succeed any more).
EXIT_CODES = {"Completed": 0, "Failed": 1, "RolledBack": 1, "Aborted": 1}
#: ``--timeout`` elapsed before a final phase.
EXIT_TIMEOUT = 3
#: Beyond this many sites a wave shows counts by state instead of one line per site (-o wide: all).
MAX_SITE_LINES = 10
_GATE_OPS = {"minReadyRatio": ">=", "minSafetyScore": ">=", "maxErrorRate": "<=", "maxLatencyP95Ms": "<="}
_PROBLEMS = ("Refused", "Lost", "RollbackFailed")


def rollout_view(r: Any) -> dict[str, Any]:
    return {
        "name": r.spec.name,
        "release": r.spec.release,
        "phase": r.phase,
        "message": r.message,
        "waves": [
            {
                "name": w.name,
                "phase": w.phase,
                "gate": w.gate,
                "started_at": iso(w.started_at),
                "bake_until": iso(w.bake_until),
                "measurements": w.measurements,
                "failures": w.failures,
                "promoted": w.promoted,
                "gates": [
                    {
                        "name": g.name,
                        "value": g.value if g.measured else None,
                        "threshold": g.threshold,
                        "outcome": g.outcome,
                        "detail": g.detail,
                    }
                    for g in w.gates
                ],
                "sites": [
                    {
                        "site": s.site,
                        "country": s.country,
                        "state": s.state,
                        "reason": s.reason,
                        "verified": s.verified,
                    }
                    for s in w.sites
                ],
            }
            for w in r.waves
        ],
        "approved_countries": list(r.approved_countries),
        "pending_countries": list(r.pending_countries),
        "excluded": [{"site": e.site, "country": e.country, "reasons": list(e.reasons)} for e in r.excluded],
        "created_by": r.created_by,
        "created_at": iso(r.created_at),
        "updated_at": iso(r.updated_at),
    }


def _seconds(d: float) -> str:
    s = max(0, int(d))
    return (
        f"{s}s"
        if s < 60
        else f"{s // 60}m{s % 60:02d}s"
        if s < 3600
        else f"{s // 3600}h{s % 3600 // 60:02d}m"
    )


def _parse(when: str) -> dt.datetime | None:
    return dt.datetime.fromisoformat(when.replace("Z", "+00:00")) if when else None


def _bar(done: int, total: int, width: int = 20) -> str:
    filled = round(width * done / total) if total else width
    return "[" + "#" * filled + "." * (width - filled) + f"] {done}/{total}"


def _number(name: str, value: float | None) -> str:
    if value is None:
        return "-"
    if name == "maxLatencyP95Ms":
        return f"{value:.0f}ms"
    return f"{value:.3f}" if name == "maxErrorRate" else f"{value:.2f}"


def _gate_lines(w: dict[str, Any]) -> list[str]:
    rows = [
        (
            "",
            g["name"],
            f"{_number(g['name'], g['value'])} {_GATE_OPS.get(g['name'], '?')} "
            f"{_number(g['name'], g['threshold'])}",
            g["outcome"],
            "" if g["outcome"] == "pass" else g["detail"],
        )
        for g in w["gates"]
    ]
    return ["    " + line for line in table(rows, ["", "GATE", "MEASURED", "OUTCOME", ""]).splitlines()]


def _site_lines(w: dict[str, Any], wide: bool) -> list[str]:
    sites = w["sites"]
    if len(sites) <= MAX_SITE_LINES or wide:
        return [
            f"      {s['site']:<16} {s['country']:<3} {s['state']:<18} {s['reason']}".rstrip() for s in sites
        ]
    counts = collections.Counter(s["state"] for s in sites)
    lines = ["      " + ", ".join(f"{n} {state}" for state, n in sorted(counts.items(), key=lambda x: -x[1]))]
    problems = [s for s in sites if s["state"] in _PROBLEMS]
    lines += [f"      {s['site']:<16} {s['state']:<18} {s['reason']}".rstrip() for s in problems[:3]]
    if len(problems) > 3:
        lines.append(f"      … {len(problems) - 3} more not shown (-o wide lists every site)")
    return lines


def render_status(d: dict[str, Any], now: dt.datetime | None = None, *, wide: bool = False) -> str:
    """The status frame: phase and message, elapsed time, then per wave its progress, its bake
    countdown, each gate's measured value against its threshold, and its sites (counts by state
    beyond ``MAX_SITE_LINES`` unless ``wide``)."""
    now = now or dt.datetime.now(dt.UTC)
    created = _parse(d.get("created_at", ""))
    elapsed = f" (elapsed {_seconds((now - created).total_seconds())})" if created else ""
    lines = [f"rollout {d['name']} ({d['release']}): {d['phase']}{elapsed} - {d['message']}"]
    for w in d["waves"]:
        ready = sum(1 for s in w["sites"] if s["state"] in ("Ready", "RolledBack"))
        extra = ""
        bake_until = _parse(w.get("bake_until", ""))
        if w["phase"] == "Baking" and bake_until is not None:
            extra = f"  bake {_seconds((bake_until - now).total_seconds())} left"
        if w.get("promoted"):
            extra += f"  promoted by {w['promoted']}"
        if w.get("failures"):
            extra += f"  {w['failures']} failed measurements"
        lines.append(f"  {w['name']:<12} {w['phase']:<12} {_bar(ready, len(w['sites']))}{extra}")
        if w["gates"] and w["phase"] not in ("Pending",):
            lines += _gate_lines(w)
        lines += _site_lines(w, wide)
    if d["pending_countries"]:
        lines.append(f"  awaiting approval: {', '.join(d['pending_countries'])}")
    return "\n".join(lines)


def change_key(d: dict[str, Any]) -> tuple[Any, ...]:
    """What a redraw depends on: everything but the time of the last write."""
    return tuple((k, repr(v)) for k, v in d.items() if k != "updated_at")
