"""Stopping an asyncio task for sure.

``task.cancel()`` once is not enough on Python 3.11: ``asyncio.wait_for`` can swallow a
cancellation that arrives just as the call it waits for completes (CPython gh-86296, fixed by
3.12's rewrite), and a loop around it then runs on. The lease refresher is such a loop; a
replica's shutdown waiting on it is the likely cause of a test teardown seen stuck past 120 s once
(after the election had stopped, where the lease is revoked). So cancel again until the task ended.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

#: Between cancellations: long enough for a task's own clean-up to run (a revoke, a flush).
RETRY_S = 1.0


async def cancel_and_wait(task: asyncio.Task[Any] | None) -> None:
    """Cancel ``task`` and wait until it ended, cancelling again each second it has not. Whatever
    it ended with (result, exception, cancellation) is collected, not raised."""
    if task is None:
        return
    while not task.done():
        task.cancel()
        await asyncio.wait({task}, timeout=RETRY_S)
    with contextlib.suppress(asyncio.CancelledError, Exception):
        task.result()
