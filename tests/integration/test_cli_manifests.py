"""Hostile manifests and YAML files as real stargatectl processes: one line, exit 1, no traceback,
and fast (a billion-laughs manifest once took 20 s and 1 GB before MemoryError)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from controlplane.client import yamlfile
from controlplane.errors import InvalidArgument
from tests.support.procs import assert_one_line_error, run

ROLLOUT = """apiVersion: federation.stargate.io/v1alpha1
kind: Rollout
metadata: {name: r1}
spec:
  release: atlas-r1
  waves:
    - {name: canary, sites: %s}
    - {name: rest, percent: 100}
"""


def laughs(levels: int = 9) -> str:
    """Nested aliases, ~400 bytes, expanding to 9**levels strings: each level's first element defines
    the level below, the other eight refer to it."""
    text = '&l0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]'
    for i in range(1, levels + 1):
        text = f"&l{i} [{text}, " + ", ".join([f"*l{i - 1}"] * 8) + "]"
    return text


def billion_laughs() -> str:
    """A Rollout whose release is a billion laughs (the old reader quoted it back in its error)."""
    return ROLLOUT.replace("  release: atlas-r1", f"  release: {laughs()}").replace("%s", "1")


CASES: dict[str, tuple[bytes, tuple[str, ...]]] = {
    "billion-laughs": (billion_laughs().encode(), ("expands to more than 100000 nodes",)),
    "deep": (b"[" * 200_000 + b"]" * 200_000, ("nested deeper than 64 levels",)),
    "huge-int": (ROLLOUT.replace("%s", "9" * 5000).encode(), ("integer of 5000 digits",)),
    "out-of-range": (
        ROLLOUT.replace("%s", "99999999999").encode(),
        ("spec.waves[0].sites: must be 0..1000000",),
    ),
    "not-utf8": (b"kind: Rollout\nmetadata: {name: \xff\xfe}\n", ("not UTF-8 text (byte",)),
    "too-big": (b"# " + b"x" * (2 * 1024 * 1024) + b"\n", ("larger than 1048576 bytes",)),
    "cycle": (b"&a [*a]\n", ("a cycle",)),
}


@pytest.mark.parametrize("case", list(CASES))
def test_a_hostile_manifest_is_one_line_with_exit_1(tmp_path: Path, case: str) -> None:
    data, needles = CASES[case]
    f = tmp_path / f"{case}.yaml"
    f.write_bytes(data)
    start = time.monotonic()
    r = run("rollouts", "plan", "-f", str(f), config=tmp_path / "none.yaml")
    took = time.monotonic() - start
    assert r.code == 1, r
    assert_one_line_error(r, "-f" if case != "out-of-range" else "spec.waves", *needles)
    assert r.out == "" and len(r.err.splitlines()) == 1
    # The process (interpreter start included, ~0.5 s here) well inside the 1 s the parse may take;
    # generous against a loaded machine. The parse alone is measured below.
    assert took < 10, took


def test_the_bounded_loader_refuses_a_billion_laughs_in_milliseconds() -> None:
    data = billion_laughs().encode()
    start = time.perf_counter()
    with pytest.raises(InvalidArgument, match="expands to more than"):
        yamlfile.parse_all(data, "lol.yaml", "-f")
    assert time.perf_counter() - start < 1.0


def test_aliases_within_the_bound_still_work(tmp_path: Path) -> None:
    assert yamlfile.parse_all(b"base: &b {x: 1}\nuse: [*b, *b]\n", "f", "-f") == [
        {"base": {"x": 1}, "use": [{"x": 1}, {"x": 1}]}
    ]


SITES_LAUGHS = f"- {{id: fr-1, country: FR, labels: {{tier: {laughs()}}}}}\n".encode()


@pytest.mark.parametrize("case", ["billion-laughs", "huge-int", "not-utf8", "deep"])
def test_dev_up_sites_file_and_config_are_bounded_too(tmp_path: Path, case: str) -> None:
    data, needles = CASES[case]
    if case == "billion-laughs":
        data = SITES_LAUGHS  # a label value that expands to 9**9 strings
    f = tmp_path / "in.yaml"
    f.write_bytes(data)
    r = run("dev", "up", "--dir", str(tmp_path / "dev"), "--sites-file", str(f), timeout=30)
    assert_one_line_error(r, "--sites-file", *needles)
    assert not (tmp_path / "dev").exists()  # refused before anything started
    r = run("sites", "list", config=f)
    assert_one_line_error(r, "--config", *needles)


@pytest.mark.parametrize(
    ("sites", "needle"),
    [
        (
            "- {id: fr-1, country: FR, accelerators: {h100: 99999999999}}",
            "sites[0].accelerators.h100: must be",
        ),
        ('- {id: fr-1, country: FR, region: "par\\e[2J"}', "sites[0].region:"),
        ('- {id: fr-1, country: FR, labels: {"bad key": x}}', "sites[0].labels: key"),
    ],
)
def test_dev_up_refuses_sites_the_federation_would_refuse(tmp_path: Path, sites: str, needle: str) -> None:
    f = tmp_path / "sites.yaml"
    f.write_text(sites + "\n")
    r = run("dev", "up", "--dir", str(tmp_path / "dev"), "--sites-file", str(f), timeout=30)
    assert_one_line_error(r, needle, str(f))


def test_dev_up_sites_count_is_bounded(tmp_path: Path) -> None:
    r = run("dev", "up", "--dir", str(tmp_path / "dev"), "--sites", "99999999999", timeout=30)
    assert r.code == 2 and "argument --sites: must be 1..5000" in r.err and "Traceback" not in r.err
