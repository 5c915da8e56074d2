"""stargatectl's kubeconfig-like file: round trip, relative paths, errors that name the field."""

from __future__ import annotations

import shutil
import stat
from pathlib import Path

import pytest
import yaml

from controlplane.client.config import ConfigFile, default_path, write_config
from controlplane.errors import InvalidArgument


def write(path: Path, **overrides: object) -> None:
    kwargs: dict[str, object] = {
        "trust_domain": "stargate.local",
        "user": "admin",
        "servers": ["127.0.0.1:7443", "127.0.0.1:8443"],
        "enroll_server": "127.0.0.1:7444",
        "cert_file": "admin.crt",
        "key_file": "admin.key",
    }
    kwargs.update(overrides)
    write_config(path, **kwargs)  # type: ignore[arg-type]


def field_of(excinfo: pytest.ExceptionInfo[InvalidArgument]) -> str:
    return excinfo.value.field


def test_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "cfg" / "config.yaml"
    write(path)
    ctx = ConfigFile.load(path).context()
    assert ctx.name == "admin@stargate.local"
    assert ctx.servers == ("127.0.0.1:7443", "127.0.0.1:8443")
    assert ctx.enroll_server == "127.0.0.1:7444"
    assert ctx.trust_domain == "stargate.local"
    base = (tmp_path / "cfg").resolve()
    assert ctx.ca_file == base / "ca.crt"
    assert ctx.cert_file == base / "admin.crt"
    assert ctx.key_file == base / "admin.key"


def test_context_by_name(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    write(path, user="alice", trust_domain="fed.example")
    assert ConfigFile.load(path).context("alice@fed.example").name == "alice@fed.example"


def test_relative_paths_follow_the_file_when_the_directory_moves(tmp_path: Path) -> None:
    write(tmp_path / "a" / "config.yaml", ca_file="pki/ca.crt")
    shutil.move(tmp_path / "a", tmp_path / "b")
    ctx = ConfigFile.load(tmp_path / "b" / "config.yaml").context()
    assert ctx.ca_file == (tmp_path / "b" / "pki" / "ca.crt").resolve()
    assert ctx.key_file == (tmp_path / "b" / "admin.key").resolve()


def test_absolute_paths_are_kept(tmp_path: Path) -> None:
    key = tmp_path / "elsewhere" / "admin.key"
    write(tmp_path / "config.yaml", key_file=str(key))
    assert ConfigFile.load(tmp_path / "config.yaml").context().key_file == key.resolve()


def test_read_tls_returns_ca_key_cert_and_names_a_missing_file(tmp_path: Path) -> None:
    write(tmp_path / "config.yaml")
    ctx = ConfigFile.load(tmp_path / "config.yaml").context()
    (tmp_path / "ca.crt").write_bytes(b"CA")
    (tmp_path / "admin.crt").write_bytes(b"CERT")
    with pytest.raises(InvalidArgument) as e:
        ctx.read_tls()
    assert field_of(e) == "client-key"
    (tmp_path / "admin.key").write_bytes(b"KEY")
    assert ctx.read_tls() == (b"CA", b"KEY", b"CERT")


def test_file_mode_is_0600(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    write(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    path.chmod(0o644)
    write(path)  # rewriting tightens it again
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(InvalidArgument) as e:
        ConfigFile.load(tmp_path / "nope.yaml")
    assert field_of(e) == "--config"
    assert "does not exist" in e.value.reason


@pytest.mark.parametrize(
    "content",
    [
        "apiVersion: stargate.io/v1\nkind: Pod\n",
        "kind: config\n",
        "- kind: Config\n",
        "",
        "just a string\n",
        "kind: [Config\n",  # not YAML
    ],
)
def test_wrong_kind_or_not_yaml(tmp_path: Path, content: str) -> None:
    path = tmp_path / "config.yaml"
    path.write_text(content)
    with pytest.raises(InvalidArgument) as e:
        ConfigFile.load(path)
    assert field_of(e) == "--config"


def test_unknown_context(tmp_path: Path) -> None:
    write(tmp_path / "config.yaml")
    with pytest.raises(InvalidArgument) as e:
        ConfigFile.load(tmp_path / "config.yaml").context("bob@elsewhere")
    assert field_of(e) == "contexts"
    assert "bob@elsewhere" in e.value.reason


def edit(path: Path, change) -> ConfigFile:  # type: ignore[no-untyped-def]
    data = yaml.safe_load(path.read_text())
    change(data)
    path.write_text(yaml.safe_dump(data))
    return ConfigFile.load(path)


@pytest.mark.parametrize(
    ("change", "field"),
    [
        (lambda d: d.pop("current-context"), "current-context"),
        (lambda d: d.__setitem__("federations", []), "federations"),
        (lambda d: d.__setitem__("users", [{"name": "someone-else", "user": {}}]), "users"),
        (lambda d: d["federations"][0]["federation"].__setitem__("servers", []), "federations.servers"),
        (lambda d: d["federations"][0]["federation"].__setitem__("servers", [7443]), "federations.servers"),
        (lambda d: d["federations"][0]["federation"].pop("certificate-authority"), "certificate-authority"),
        (lambda d: d["users"][0]["user"].pop("client-certificate"), "client-certificate"),
        (lambda d: d["users"][0]["user"].pop("client-key"), "client-key"),
        (lambda d: d["contexts"][0].__setitem__("context", "not a mapping"), "contexts"),
    ],
    ids=[
        "no-current-context",
        "no-federation",
        "no-user",
        "no-servers",
        "non-string-server",
        "no-ca",
        "no-cert",
        "no-key",
        "context-not-mapping",
    ],
)
def test_incomplete_config_names_the_field(tmp_path: Path, change, field: str) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "config.yaml"
    write(path)
    cfg = edit(path, change)
    with pytest.raises(InvalidArgument) as e:
        cfg.context()
    assert field_of(e) == field


def test_default_path_honours_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("STARGATE_CONFIG", str(tmp_path / "x.yaml"))
    assert default_path() == tmp_path / "x.yaml"
    monkeypatch.delenv("STARGATE_CONFIG")
    assert default_path() == Path("~/.stargate/config.yaml").expanduser()
