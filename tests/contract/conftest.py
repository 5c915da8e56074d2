"""The store backends that the one contract suite runs against."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from controlplane.store import Store
from controlplane.store.memory import MemoryStore


@pytest.fixture(params=["memory"])
async def store(request: pytest.FixtureRequest) -> AsyncIterator[Store]:
    s: Store = MemoryStore()
    try:
        yield s
    finally:
        await s.close()
