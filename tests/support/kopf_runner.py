"""Run a kopf operator against a Kubernetes API URL in its own thread (test infrastructure).

Several simulated sites each run one operator. kopf keeps module-level state per event loop, and
several ``kopf.operator()`` calls in one loop cancel each other's tasks at shutdown, so each
operator gets a thread with its own loop and its own ``OperatorRegistry`` built by a factory
(module-level decorators would all land in kopf's one global registry).
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from typing import Any

import kopf


class KopfRunner:
    """Start with ``with KopfRunner(factory, url) as runner:``; leaving the block stops kopf.

    ``registry_factory`` returns a fresh registry with the operator's handlers; the runner adds the
    login handler for ``server_url`` (the factory must not add one) and a startup handler that
    applies ``configure(settings)``. ``memo`` is passed to every handler as ``memo``.
    """

    def __init__(
        self,
        registry_factory: Callable[[], kopf.OperatorRegistry],
        server_url: str,
        *,
        namespaces: tuple[str, ...] = (),
        configure: Callable[[kopf.OperatorSettings], None] | None = None,
        memo: Any = None,
        timeout: float = 10.0,
    ) -> None:
        self.registry = registry_factory()
        self.server_url, self.namespaces, self.memo, self.timeout = server_url, namespaces, memo, timeout
        self.stop_flag, self.ready_flag = threading.Event(), threading.Event()
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name=f"kopf-{server_url}", daemon=True)

        @kopf.on.login(registry=self.registry)
        def login(**_: Any) -> kopf.ConnectionInfo:
            return kopf.ConnectionInfo(server=self.server_url, insecure=True)

        @kopf.on.startup(registry=self.registry)
        def startup(settings: kopf.OperatorSettings, **_: Any) -> None:
            # Tests are short: no peering lookups, fast retries after API errors, quick shutdown.
            settings.peering.standalone = True
            settings.watching.reconnect_backoff = 0.1
            settings.networking.error_backoffs = [0.1, 0.2, 0.5]
            if configure is not None:
                configure(settings)

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(
                kopf.operator(
                    registry=self.registry,
                    standalone=True,
                    clusterwide=not self.namespaces,
                    namespaces=self.namespaces,
                    stop_flag=self.stop_flag,
                    ready_flag=self.ready_flag,
                    memo=self.memo,
                )
            )
        except BaseException as e:  # reported by start()/stop() to the test thread
            self.error = e
        finally:
            self.ready_flag.set()  # unblock start() if kopf failed before it became ready
            loop.close()

    def start(self) -> None:
        self._thread.start()
        if not self.ready_flag.wait(self.timeout) or self.error is not None:
            self.stop()
            raise RuntimeError(f"kopf did not become ready: {self.error!r}")

    def stop(self) -> None:
        self.stop_flag.set()
        self._thread.join(self.timeout)
        if self._thread.is_alive():
            raise RuntimeError(f"kopf did not stop within {self.timeout}s")

    def __enter__(self) -> KopfRunner:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
