"""`dev up` sites files: datasets (jurisdiction defaults to the site's country) and jobs models."""

from __future__ import annotations

from pathlib import Path

import pytest

from controlplane.devenv.topology import Topology, default_topology, load_topology
from controlplane.domain.jobs import JobPhase
from controlplane.errors import InvalidArgument
from operators.agent import jobs as site_jobs
from operators.agent.backend import MemoryBackend

EXAMPLE = Path(__file__).resolve().parents[2] / "docs" / "examples" / "sites-localisation.yaml"
ENTRY = """\
- id: fr-par-1
  country: FR
  datasets:
    - {name: fr-news, languages: [fr], classification: personal, purposes: [fine-tune, evaluate], size: large}
    - {name: de-copy, jurisdiction: DE, languages: [de], classification: public, purposes: [evaluate],
       size: small}
  jobs: {duration: 3s, outcome: Failed}
"""


def _load(tmp_path: Path, text: str) -> Topology:
    f = tmp_path / "sites.yaml"
    f.write_text(text)
    return load_topology(f)


async def test_datasets_and_jobs_of_a_site_entry(tmp_path: Path) -> None:
    topo = _load(tmp_path, ENTRY)
    held = topo.datasets["fr-par-1"]
    assert [(d.summary.name, d.summary.jurisdiction) for d in held] == [("fr-news", "FR"), ("de-copy", "DE")]
    assert topo.jobs["fr-par-1"].duration == 3.0 and topo.jobs["fr-par-1"].outcome is JobPhase.FAILED
    # The wrong jurisdiction is accepted in the file and refused by the site itself.
    offered = await site_jobs.offered(MemoryBackend(datasets=held), "FR")
    assert [d.summary.name for d in offered] == ["fr-news"]


@pytest.mark.parametrize(
    ("change", "field"),
    [
        (("size: large", "size: 12GB"), "sites[0].datasets[0].size"),
        (("languages: [fr]", "languages: [French]"), "sites[0].datasets[0].languages[0]"),
        (("jurisdiction: DE", "jurisdiction: Germany"), "sites[0].datasets[1].jurisdiction"),
        (("size: small}", "size: small, path: /data}"), "sites[0].datasets[1].path"),  # never a path
        (("outcome: Failed", "outcome: Maybe"), "sites[0].jobs.outcome"),
        (("duration: 3s", "duration: soon"), "sites[0].jobs.duration"),
        (("name: de-copy", "name: fr-news"), "sites[0].datasets"),
    ],
)
def test_bad_entries_name_the_field(tmp_path: Path, change: tuple[str, str], field: str) -> None:
    with pytest.raises(InvalidArgument) as e:
        _load(tmp_path, ENTRY.replace(*change))
    assert e.value.field == field


def test_the_example_sites_file_and_the_defaults_hold_datasets() -> None:
    topo = load_topology(EXAMPLE)
    assert {s: [d.summary.name for d in ds] for s, ds in topo.datasets.items()} == {
        "fr-par-1": ["fr-news"],
        "de-fra-1": ["de-web", "fr-mirror"],
        "jp-tyo-1": ["ja-eval"],
    }
    default = default_topology(3)
    assert sorted(default.datasets) == ["de-fra-1", "fr-par-1", "jp-tyo-1"]
    assert set(default.jobs) == {"de-fra-1", "fr-par-1", "jp-tyo-1"}
