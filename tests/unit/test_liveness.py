"""The liveness sweeper's reading of published maps: a stale map of a replica that still holds its
lease means "unknown", never "missed" (seen as a flaky Unreachable in
tests/integration/test_replicas.py when one etcd member was lost)."""

from __future__ import annotations

import dataclasses
import json

import pytest

from controlplane.domain.records import LIVENESS, SiteRecord, SiteStatus
from controlplane.services import clock
from controlplane.services import liveness as lv
from controlplane.store.memory import MemoryStore

INTERVAL = 5.0
NOW = 1_000_000.0


class Registry:
    """Just what the sweeper calls: the sites, and who was marked Unreachable."""

    def __init__(self, *sites: str) -> None:
        self.sites = [
            dataclasses.replace(
                SiteRecord(site_id=s, country="FR"), status=SiteStatus.READY, last_heartbeat=NOW - 60
            )
            for s in sites
        ]
        self.marked: list[str] = []

    async def list(self) -> list[SiteRecord]:
        return self.sites

    async def mark_unreachable(self, site_id: str, actor: str, last: float, fence: object = ()) -> bool:
        self.marked.append(site_id)
        return True


@pytest.fixture(autouse=True)
def frozen(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(clock, "now", lambda: NOW)


async def put_map(store: MemoryStore, replica: str, body: object) -> None:
    await store.put(LIVENESS + replica, json.dumps(body).encode())


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (b'{"at": 5, "sites": {"a": 4}}', (5.0, {"a": 4.0})),
        (b'{"a": 4}', (None, {"a": 4.0})),  # written by an older replica
        (b'{"at": 5, "sites": {}}', (5.0, {})),
    ],
)
def test_parse_map(raw: bytes, expected: tuple[float | None, dict[str, float]]) -> None:
    assert lv.parse_map(raw) == expected


@pytest.mark.parametrize(
    "raw", [b"[]", b'{"at": "x", "sites": {}}', b'{"at": 1, "sites": []}', b"{", b'{"a": "x"}']
)
def test_parse_map_refuses_other_shapes(raw: bytes) -> None:
    with pytest.raises(ValueError):
        lv.parse_map(raw)


@pytest.mark.parametrize(
    ("stamp_age", "heartbeat_age", "missed"),
    [
        (4 * INTERVAL, 4 * INTERVAL, False),  # stale map: its replica cannot write -> unknown
        (0.0, 4 * INTERVAL, True),  # fresh map with an old heartbeat -> missed
        (13 * INTERVAL, 13 * INTERVAL, True),  # stale beyond the grace -> missed
        (None, 4 * INTERVAL, True),  # older replica's map, no stamp -> judged by the heartbeat
        (0.0, 1 * INTERVAL, False),  # fresh heartbeat
    ],
)
async def test_sweep_reads_stamps(stamp_age: float | None, heartbeat_age: float, missed: bool) -> None:
    store = MemoryStore()
    registry = Registry("fr-1")
    hb = {"fr-1": NOW - heartbeat_age}
    await put_map(store, "cp-b", hb if stamp_age is None else {"at": NOW - stamp_age, "sites": hb})
    sweeper = lv.Liveness(store, registry, "cp-a", INTERVAL)  # type: ignore[arg-type]
    await sweeper.sweep("controller/liveness@cp-a")
    assert registry.marked == (["fr-1"] if missed else [])


async def test_a_site_absent_from_every_map_is_missed() -> None:
    store = MemoryStore()
    registry = Registry("fr-1")
    await put_map(store, "cp-b", {"at": NOW - 4 * INTERVAL, "sites": {}})
    await lv.Liveness(store, registry, "cp-a", INTERVAL).sweep("x")  # type: ignore[arg-type]
    assert registry.marked == ["fr-1"]


async def test_publish_restamps_every_interval_even_when_nothing_changed() -> None:
    store = MemoryStore()
    sweeper = lv.Liveness(store, Registry(), "cp-a", INTERVAL)  # type: ignore[arg-type]
    sweeper.seen("fr-1", NOW)
    await sweeper.publish(0)
    await sweeper.publish(0)
    kv = await store.get(LIVENESS + "cp-a")
    assert kv is not None and lv.parse_map(kv.value) == (NOW, {"fr-1": NOW})
    assert sweeper.publishes == 2
