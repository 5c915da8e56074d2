"""Datasets and localisation jobs as people read them: the plain dicts of ``-o json`` and the
tables. Pure functions of the wire messages, shared by stargatectl and any other people's tool."""

from __future__ import annotations

from typing import Any

from controlplane.api.v1 import types_pb2 as tpb
from controlplane.client.render import iso, safe_text, table

#: Final phases and the exit code of ``jobs status --watch`` on each (0 only on success).
EXIT_CODES = {"Succeeded": 0, "Failed": 1, "Cancelled": 1, "Refused": 1}
#: ``--timeout`` elapsed before a final phase.
EXIT_TIMEOUT = 3
_STATUS = {v: k.removeprefix("SITE_STATUS_").title() for k, v in tpb.SiteStatus.items()}


def dataset_view(d: Any) -> dict[str, Any]:
    s = d.dataset
    return {
        "site": d.site_id,
        "country": d.country,
        "site_status": _STATUS.get(d.site_status, "Unspecified"),
        "name": s.name,
        "jurisdiction": s.jurisdiction,
        "classification": s.classification,
        "languages": list(s.languages),
        "purposes": list(s.purposes),
        "size": s.size,
    }


def datasets_table(data: dict[str, Any]) -> str:
    rows = [
        (
            d["name"],
            d["site"],
            d["jurisdiction"],
            d["classification"],
            ",".join(d["languages"]),
            ",".join(d["purposes"]),
            d["size"],
            d["site_status"],
        )
        for d in data["items"]
    ]
    return table(
        rows, ["NAME", "SITE", "COUNTRY", "CLASSIFICATION", "LANGUAGES", "PURPOSES", "SIZE", "SITE STATUS"]
    )


def _measured(v: float) -> float | None:
    return round(v, 4) if v >= 0 else None


def job_view(j: Any) -> dict[str, Any]:
    s = j.spec
    return {
        "name": s.name,
        "base": s.base,
        "purpose": s.purpose,
        "dataset": {"name": s.dataset.name, "language": s.dataset.language, "country": s.dataset.country},
        "phase": j.phase,
        "message": j.message,
        "sites": list(j.sites),
        "job_id": j.job_id,
        "dataset_at_site": j.dataset,
        "dataset_country": j.dataset_country,
        "approved_countries": list(j.approved_countries),
        "pending_countries": list(j.pending_countries),
        "progress": {
            "step": j.progress.step,
            "loss": _measured(j.progress.loss),
            "eval_score": _measured(j.progress.eval_score),
            "output_digest": j.progress.output_digest,
        },
        "variant": j.variant,
        "excluded": [{"site": e.site, "country": e.country, "reasons": list(e.reasons)} for e in j.excluded],
        "created_by": j.created_by,
        "created_at": iso(j.created_at),
        "updated_at": iso(j.updated_at),
    }


def jobs_table(data: dict[str, Any]) -> str:
    rows = [
        (
            j["name"],
            j["base"],
            j["purpose"],
            j["dataset_country"] or "-",
            ",".join(j["sites"]) or "-",
            j["phase"],
            j["message"],
        )
        for j in data["items"]
    ]
    return table(rows, ["NAME", "BASE", "PURPOSE", "DATA", "SITE", "PHASE", "MESSAGE"])


def render_job(v: dict[str, Any]) -> str:
    """The status of one job: phase, site, consent, progress, and every excluded site's reasons."""
    p = v["progress"]
    lines = [
        f"Job:       {v['name']} ({v['purpose']} of {v['base']})",
        f"Phase:     {v['phase']}  {v['message']}",
        f"Site:      {', '.join(v['sites']) or '-'}  "
        f"dataset {v['dataset_at_site'] or '-'} in {v['dataset_country'] or '-'}",
        f"Consent:   approved {', '.join(v['approved_countries']) or '-'}; "
        f"waiting for {', '.join(v['pending_countries']) or '-'}",
        f"Progress:  step {p['step']}  loss {p['loss'] if p['loss'] is not None else '-'}  "
        f"eval {p['eval_score'] if p['eval_score'] is not None else '-'}",
    ]
    if p["output_digest"]:
        lines.append(f"Output:    {p['output_digest']} (stays at the site)")
    if v["variant"]:
        lines.append(f"Variant:   {v['variant']}")
    out = "\n".join(lines)
    if v["excluded"]:
        rows = [(e["site"], e["country"], "; ".join(e["reasons"])) for e in v["excluded"]]
        out += "\n\nExcluded sites:\n" + table(rows, ["SITE", "COUNTRY", "REASONS"])
    return "\n".join(safe_text(line) for line in out.split("\n"))


def change_key(v: dict[str, Any]) -> tuple[Any, ...]:
    """What makes a watched job worth printing again."""
    p = v["progress"]
    return (v["phase"], v["message"], tuple(v["sites"]), p["step"], p["loss"], p["eval_score"], v["variant"])
