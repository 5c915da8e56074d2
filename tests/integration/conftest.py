from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from controlplane.store.memory import MemoryStore
from tests.support.federation import Federation


@pytest.fixture
async def fed(tmp_path: Path) -> AsyncIterator[Federation]:
    store = MemoryStore()
    f = await Federation(tmp_path / "fed", store).start()
    try:
        yield f
    finally:
        await f.stop()
        await store.close()
