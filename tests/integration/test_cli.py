"""stargatectl and stargate-controlplane as real processes against a real server over mTLS."""

from __future__ import annotations

import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from tests.support.procs import SERVER, assert_one_line_error, run, served_federation


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, int]]:
    pki = tmp_path_factory.mktemp("cli") / "pki"
    with served_federation(pki, "cli.test", "--heartbeat-interval", "0.5") as fed:
        yield fed


def test_init_writes_pki_with_private_modes(server: tuple[Path, int]) -> None:
    d, port = server
    for key in ("ca.key", "server.key", "admin.key", "stargatectl.yaml"):
        assert stat.S_IMODE((d / key).stat().st_mode) == 0o600, key
    cfg = yaml.safe_load((d / "stargatectl.yaml").read_text())
    assert cfg["current-context"] == "admin@cli.test"
    assert cfg["federations"][0]["federation"]["servers"] == [f"127.0.0.1:{port}"]
    import subprocess

    dup = subprocess.run(
        [*SERVER, "init", "--dir", str(d), "--trust-domain", "cli.test"], capture_output=True, text=True
    )
    assert (
        dup.returncode == 1
        and "already holds a federation CA" in dup.stderr
        and "Traceback" not in dup.stderr
    )


def test_token_join_list_flow(server: tuple[Path, int], tmp_path: Path) -> None:
    d, port = server
    cfg = d / "stargatectl.yaml"
    r = run(
        "sites",
        "token",
        "create",
        "--site-id",
        "fr-par-1",
        "--country",
        "FR",
        "--ttl",
        "15m",
        "-o",
        "json",
        config=cfg,
    )
    assert r.code == 0, r.err
    tok = r.json()
    assert set(tok) == {"token", "site_id", "country", "expires_at"} and tok["site_id"] == "fr-par-1"
    out = tmp_path / "site"
    r = run(
        "join",
        "--server",
        f"127.0.0.1:{port + 1}",
        "--ca-file",
        str(d / "ca.crt"),
        "--token",
        tok["token"],
        "--out",
        str(out),
        "--accelerator",
        "h100=8",
        "--region",
        "paris",
    )
    assert r.code == 0, r.err
    assert stat.S_IMODE((out / "site.key").stat().st_mode) == 0o600
    assert (out / "site.crt").exists() and (out / "ca.crt").read_bytes() == (d / "ca.crt").read_bytes()
    # The same token again: refused, one line, nothing written.
    again = tmp_path / "again"
    r = run(
        "join",
        "--server",
        f"127.0.0.1:{port + 1}",
        "--ca-file",
        str(d / "ca.crt"),
        "--token",
        tok["token"],
        "--out",
        str(again),
    )
    assert_one_line_error(r, "already used")
    assert not again.exists()
    r = run("sites", "list", "-o", "json", config=cfg)
    assert r.code == 0, r.err
    items = r.json()["items"]
    site = next(s for s in items if s["id"] == "fr-par-1")
    assert {"id", "country", "region", "status", "last_heartbeat", "capacity"} <= set(site)
    assert site["status"] == "Pending" and site["capacity"] == {"h100": {"total": 8, "free": 8}}
    for fmt in ("yaml", "table"):
        assert run("sites", "list", "-o", fmt, config=cfg).code == 0
    r = run("audit", "list", "-o", "json", config=cfg)
    actions = [e["action"] for e in r.json()["items"]]
    assert (
        r.json()["chain_verified"] and "site.enroll" in actions and actions.count("site.enroll") == 2
    )  # ok + denied


def test_people_roles(server: tuple[Path, int], tmp_path: Path) -> None:
    d, _ = server
    cfg = d / "stargatectl.yaml"
    r = run(
        "users",
        "issue",
        "--name",
        "claire",
        "--role",
        "steward",
        "--country",
        "FR",
        "--out",
        str(tmp_path / "claire"),
        "--lab-generate-key",  # claire is no roster person: a steward who approves nothing here
        "-o",
        "json",
        config=cfg,
    )
    assert r.code == 0, r.err
    claire = tmp_path / "claire" / "stargatectl.yaml"
    assert stat.S_IMODE((tmp_path / "claire" / "claire.key").stat().st_mode) == 0o600
    r = run("whoami", "-o", "json", config=claire)
    assert r.json() == {"identity": "spiffe://cli.test/user/claire", "role": "steward", "country": "FR"}
    assert_one_line_error(
        run("sites", "token", "create", "--site-id", "fr-x-1", "--country", "FR", config=claire),
        "may not call",
    )
    assert run("sites", "list", config=claire).code == 0
    assert_one_line_error(
        run(
            "users",
            "issue",
            "--name",
            "bob",
            "--role",
            "steward",
            "--out",
            str(tmp_path / "bob"),
            "--lab-generate-key",
            config=cfg,
        ),
        "country",
    )
    assert not (tmp_path / "bob" / "bob.crt").exists()


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["sites", "token", "create", "--site-id", "Bad_Id", "--country", "FR"], "site_id"),
        (["sites", "token", "create", "--site-id", "ok-1", "--country", "ZZ"], "country"),
        (["sites", "get", "nope-1"], "not found"),
        (
            [
                "deploy",
                "--site",
                "nope-1",
                "--name",
                "a",
                "--release",
                "a-1",
            ],
            "not found",
        ),
        (
            [
                "deploy",
                "--site",
                "nope-1",
                "--name",
                "a",
                "--release",
                "Not_A_Release",
            ],
            "release",
        ),
    ],
)
def test_bad_input_is_one_line(server: tuple[Path, int], args: list[str], needle: str) -> None:
    assert_one_line_error(run(*args, config=server[0] / "stargatectl.yaml"), needle)


def test_config_and_server_errors(server: tuple[Path, int], tmp_path: Path) -> None:
    d, _ = server
    assert_one_line_error(run("sites", "list", config=tmp_path / "missing.yaml"), "does not exist")
    bad = tmp_path / "bad.yaml"
    bad.write_text("kind: Nope\n")
    assert_one_line_error(run("sites", "list", config=bad), "not a stargatectl config")
    assert_one_line_error(
        run("--server", "127.0.0.1:1", "--timeout", "1", "sites", "list", config=d / "stargatectl.yaml"),
        "cannot reach",
    )
    r = run("sites", "list", env={"STARGATE_CONFIG": str(d / "stargatectl.yaml")})
    assert r.code == 0, r.err


def test_help_everywhere(capsys: pytest.CaptureFixture[str]) -> None:
    from controlplane.cli.main import build_parser

    parser = build_parser()
    paths: list[list[str]] = []

    def walk(p: object, prefix: list[str]) -> None:
        import argparse

        paths.append(prefix)
        for action in getattr(p, "_actions", []):
            if isinstance(action, argparse._SubParsersAction):
                for name, sub in action.choices.items():
                    walk(sub, [*prefix, name])

    walk(parser, [])
    assert len(paths) > 15
    # Every command in-process (fast), and the top level as a real process.
    for path in paths:
        with pytest.raises(SystemExit) as exit_info:
            build_parser().parse_args([*path, "--help"])
        assert exit_info.value.code == 0 and "usage:" in capsys.readouterr().out, path
    r = run("--help")
    assert r.code == 0 and "usage: stargatectl" in r.out
