"""Waiting for a condition in a test, with a deadline that names what did not happen."""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Callable
from typing import Any


async def until(cond: Callable[[], Any], timeout: float = 10.0, what: str = "condition") -> Any:
    """Poll ``cond`` (sync or async) every 20 ms until it is truthy; return its value. Fails with
    ``what`` after ``timeout`` seconds."""
    start = time.monotonic()
    while True:
        got = cond()
        if inspect.isawaitable(got):
            got = await got
        if got:
            return got
        if time.monotonic() - start > timeout:
            raise AssertionError(f"{what} not met in {timeout}s")
        await asyncio.sleep(0.02)
