"""stargatectl releases / publishers / rollouts as real processes against a real server."""

from __future__ import annotations

import shutil
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.procs import assert_one_line_error, join_site, run, served_federation

EXAMPLES = Path(__file__).resolve().parents[2] / "docs" / "examples"


@pytest.fixture(scope="module")
def fed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, int]]:
    with served_federation(tmp_path_factory.mktemp("clir") / "pki", "cli.test") as fed:
        yield fed


def test_publish_plan_and_refusals(fed: tuple[Path, int], tmp_path: Path) -> None:
    d, port = fed
    cfg = d / "stargatectl.yaml"
    r = run("releases", "keygen", "--out", str(tmp_path / "acme"), "-o", "json")
    assert r.code == 0, r.err
    assert stat.S_IMODE((tmp_path / "acme.key").stat().st_mode) == 0o600
    assert r.json()["key_id"].startswith("ed25519:")
    assert (
        run(
            "publishers", "add", "--name", "acme", "--public-key", str(tmp_path / "acme.pub"), config=cfg
        ).code
        == 0
    )
    r = run(
        "releases",
        "create",
        "-f",
        str(EXAMPLES / "release.yaml"),
        "--sign-key",
        str(tmp_path / "acme.key"),
        "--publisher",
        "acme",
        "-o",
        "json",
        config=cfg,
    )
    assert r.code == 0, r.err
    assert r.json()["name"] == "atlas-1.2.0"
    assert_one_line_error(
        run(
            "releases",
            "create",
            "-f",
            str(EXAMPLES / "release.yaml"),
            "--sign-key",
            str(tmp_path / "acme.key"),
            "--publisher",
            "acme",
            config=cfg,
        ),
        "immutable",
    )
    # A release signed by a key the publisher does not hold.
    run("releases", "keygen", "--out", str(tmp_path / "evil"))
    other = tmp_path / "other.yaml"
    other.write_text((EXAMPLES / "release.yaml").read_text().replace("atlas-1.2.0", "atlas-evil"))
    assert_one_line_error(
        run(
            "releases",
            "create",
            "-f",
            str(other),
            "--sign-key",
            str(tmp_path / "evil.key"),
            "--publisher",
            "acme",
            config=cfg,
        ),
        "signature",
    )
    # Two sites join but never connect: plan shows them excluded, with the reason.
    for sid, cc in (("fr-par-1", "FR"), ("jp-tyo-1", "JP")):
        join_site(d, port, sid, cc, tmp_path / sid)
    r = run("rollouts", "plan", "-f", str(EXAMPLES / "rollout.yaml"), "-o", "json", config=cfg)
    assert r.code == 0, r.err
    plan = r.json()
    assert plan["selected"] == []
    assert {e["site"]: e["reasons"][0] for e in plan["excluded"]} == {
        "fr-par-1": "status: Pending, not Ready",
        "jp-tyo-1": "status: Pending, not Ready",
    }
    assert_one_line_error(
        run("rollouts", "create", "-f", str(EXAMPLES / "rollout.yaml"), config=cfg), "no eligible site"
    )
    listed = run("releases", "list", "-o", "json", config=cfg).json()["items"]
    assert [x["name"] for x in listed] == ["atlas-1.2.0"]


@pytest.mark.parametrize(
    ("edit", "needle"),
    [
        (("bake: 30s", "bake: soon"), "spec.waves[0].bake"),
        (("replicasPerSite", "replicas"), "spec.placement.replicas"),
        (("percent: 100, bake: 0s", "percent: 90, bake: 0s"), "spec.waves[2].percent"),
        (("release: atlas-1.2.0", "release: nope-1"), "spec.release"),
        (("countries: [FR, DE, JP]", "countries: [FR, XX]"), "spec.placement.countries[1]"),
    ],
)
def test_bad_rollout_manifests_name_the_field(
    fed: tuple[Path, int], tmp_path: Path, edit: tuple[str, str], needle: str
) -> None:
    f = tmp_path / "r.yaml"
    text = (EXAMPLES / "rollout.yaml").read_text()
    assert edit[0] in text
    f.write_text(text.replace(edit[0], edit[1]))
    assert_one_line_error(run("rollouts", "plan", "-f", str(f), config=fed[0] / "stargatectl.yaml"), needle)


def test_unknown_rollout_and_invalid_yaml(fed: tuple[Path, int], tmp_path: Path) -> None:
    cfg = fed[0] / "stargatectl.yaml"
    assert_one_line_error(run("rollouts", "status", "nope", config=cfg), "not found")
    bad = tmp_path / "bad.yaml"
    bad.write_text("apiVersion: [unclosed\n")
    assert_one_line_error(run("rollouts", "plan", "-f", str(bad), config=cfg), "not valid YAML")
    shutil.copy(EXAMPLES / "release.yaml", tmp_path / "r.yaml")
    assert_one_line_error(
        run("rollouts", "plan", "-f", str(tmp_path / "r.yaml"), config=cfg), "exactly one Rollout"
    )
