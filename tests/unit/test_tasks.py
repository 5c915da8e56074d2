"""controlplane/tasks.py: a task that swallows a cancellation still ends."""

from __future__ import annotations

import asyncio
import contextlib

from controlplane.tasks import cancel_and_wait


async def test_a_task_that_swallows_a_cancellation_is_cancelled_again() -> None:
    async def stubborn() -> None:
        # Swallowed, as 3.11's wait_for can when its call completes at the same moment.
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.sleep(30)
        await asyncio.sleep(30)

    task = asyncio.create_task(stubborn())
    await asyncio.sleep(0)
    await asyncio.wait_for(cancel_and_wait(task), 5)  # one cancel and a plain await: 30 s
    assert task.cancelled()


async def test_an_ended_or_absent_task_is_fine() -> None:
    async def fails() -> None:
        raise ValueError("collected, not raised")

    task = asyncio.create_task(fails())
    await asyncio.sleep(0)
    await cancel_and_wait(task)
    await cancel_and_wait(None)
