"""The envtest tier: a real kube-apiserver (+ etcd) per session, no kubelet.

``make test`` builds the binary first (``make envtest-bin``) when it is not cached; run alone,
the session fixture builds it (once per machine: minutes). The server's version is printed in the
session header, so every run's output says what it ran against.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.envtest import BUILD_TIMEOUT_S, ApiServer, binary, cached_binary

_SERVER: list[ApiServer] = []


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    cold = cached_binary() is None
    for item in items:
        if here in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.envtest)
            if cold:  # the first test pays the build
                item.add_marker(pytest.mark.timeout(BUILD_TIMEOUT_S))


def pytest_report_header(config: pytest.Config) -> str:
    found = cached_binary()
    return (
        f"envtest: kube-apiserver {found if found else '(not built yet: scripts/envtest-bin.sh runs first)'}"
    )


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    for api in _SERVER:
        terminalreporter.write_line(
            f"envtest: ran against a real kube-apiserver {api.version} ({api.binary})"
        )


@pytest.fixture(scope="session")
def apiserver(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApiServer]:
    api = ApiServer(tmp_path_factory.mktemp("envtest"), binary()).start()
    _SERVER.append(api)
    print(f"\nenvtest: kube-apiserver {api.version} at {api.url}")
    try:
        yield api
    finally:
        api.stop()
