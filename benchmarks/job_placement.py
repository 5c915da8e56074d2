"""Placing one localisation job over 10,000 sites holding 1,000 datasets, beside the placement of a
release over the same sites in the same run (the admission chain without the dataset filters).

    python -m benchmarks.job_placement
"""

from __future__ import annotations

import random

from benchmarks.placement import COUNTRIES, sites, timed
from controlplane.api.v1 import release_pb2 as rpb
from controlplane.api.v1 import rollouts_pb2 as opb
from controlplane.domain import placement
from controlplane.domain.job_records import data_countries, place, workload
from controlplane.domain.records import SiteRecord

#: The language of each country's datasets (benchmarks/placement.py's ten countries).
LANGUAGES = {
    "FR": "fr", "DE": "de", "JP": "ja", "BR": "pt", "IN": "hi",
    "CA": "fr", "IT": "it", "ES": "es", "US": "en", "KR": "ko",
}  # fmt: skip


def with_datasets(fleet: list[SiteRecord], n: int, seed: int = 11) -> list[SiteRecord]:
    """``n`` datasets on random sites, each in its site's country and language."""
    rnd = random.Random(seed)
    held: dict[int, list[dict[str, object]]] = {}
    for k in range(n):
        i = rnd.randrange(len(fleet))
        cc = fleet[i].country
        held.setdefault(i, []).append(
            {
                "name": f"{LANGUAGES[cc]}-data-{k}",
                "jurisdiction": cc,
                "classification": rnd.choice(["public", "personal", "sensitive"]),
                "languages": [LANGUAGES[cc]],
                "purposes": rnd.choice([["fine-tune", "evaluate"], ["evaluate"]]),
                "size": rnd.choice(["small", "medium", "large"]),
            }
        )
    return [s.replace(datasets=held.get(i, []), status="Ready") for i, s in enumerate(fleet)]


def main() -> None:
    base = rpb.SignedRelease(
        release=rpb.ModelRelease(
            name="atlas",
            model="atlas",
            version="1",
            digest="sha256:" + "0" * 64,
            risk_tier=2,
            export=rpb.ExportRule(deny_countries=["US"]),
            resources=rpb.ReleaseResources(accelerator="h100", accelerators_per_replica=8),
        ),
        publisher="acme",
    )
    spec = {
        "purpose": "fine-tune",
        "dataset": {"language": "fr", "country": "FR"},
        "trainer": {"image": "r/t@sha256:" + "1" * 64},
        "resources": {"accelerator": "h100", "accelerators": 8, "max_hours": 12},
    }
    by_name = spec | {"dataset": {"name": "fr-data-0"}}
    print(
        "| sites | datasets | job placement p50 (ms) | baseline: release placement (ms) | ratio | eligible |"
    )
    print("|---:|---:|---:|---:|---:|---:|")
    for n, d in ((1_000, 100), (10_000, 1_000)):
        fleet = with_datasets(sites(n), d)
        w = workload(spec, base, "FR")
        eligible = len(place(fleet, w).candidates)
        repeat = 15
        t_job = timed(lambda f=fleet, w=w: place(f, w), repeat)
        t_rel = timed(
            lambda f=fleet: placement.plan(f, base.release, opb.Placement(replicas_per_site=1)), repeat
        )

        def named(f: list[SiteRecord] = fleet) -> None:
            countries = data_countries(f, workload(by_name, base, "").dataset)  # type: ignore[arg-type]
            place(f, workload(by_name, base, countries[0] if countries else ""))

        t_named = timed(named, repeat)
        print(f"| {n:,} | {d:,} | {t_job:.2f} | {t_rel:.2f} | {t_job / t_rel:.2f}x | {eligible} |")
        print(f"| {n:,} | {d:,} | by name: {t_named:.2f} | {t_rel:.2f} | {t_named / t_rel:.2f}x | - |")
    assert len(COUNTRIES) == len(LANGUAGES)


if __name__ == "__main__":
    main()
