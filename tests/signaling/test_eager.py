"""eager.start: a coroutine runs at once and gets a task only when it suspends."""

from __future__ import annotations

import asyncio
import contextvars

import pytest

from kolabmeet.signaling import eager


async def test_a_coroutine_that_does_not_suspend_runs_at_once_without_a_task() -> None:
    ran: list[str] = []

    async def handler() -> None:
        lock = asyncio.Lock()
        async with lock:  # a free lock does not suspend
            ran.append("done")

    assert eager.start(handler()) is None
    assert ran == ["done"]


async def test_a_coroutine_that_suspends_goes_on_in_a_task_with_what_it_awaited() -> None:
    steps: list[object] = []
    future: asyncio.Future[int] = asyncio.get_running_loop().create_future()

    async def handler() -> None:
        steps.append("before")
        steps.append(await future)
        await asyncio.sleep(0)
        steps.append(await asyncio.sleep(0.01, "slept"))

    task = eager.start(handler())
    assert task is not None and steps == ["before"]
    future.set_result(7)
    await asyncio.wait_for(task, 1)
    assert steps == ["before", 7, "slept"]


async def test_an_exception_after_the_first_suspension_is_the_task_s() -> None:
    async def handler() -> None:
        await asyncio.sleep(0)
        raise ValueError("late")

    task = eager.start(handler())
    assert task is not None
    with pytest.raises(ValueError, match="late"):
        await task


async def test_an_exception_before_it_suspends_is_the_caller_s() -> None:
    async def handler() -> None:
        raise ValueError("early")

    with pytest.raises(ValueError, match="early"):
        eager.start(handler())


async def test_cancelling_the_task_cancels_what_the_coroutine_awaits() -> None:
    seen: list[str] = []
    never: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    async def handler() -> None:
        try:
            await never
        except asyncio.CancelledError:
            seen.append("cancelled")
            raise

    task = eager.start(handler())
    assert task is not None
    await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert seen == ["cancelled"] and never.cancelled()


async def test_a_task_cancelled_before_its_first_step_still_unwinds_the_coroutine() -> None:
    lock = asyncio.Lock()
    await lock.acquire()
    unwound: list[str] = []

    async def handler() -> None:
        try:
            async with lock:
                unwound.append("got the lock")
        finally:
            unwound.append("finally")

    task = eager.start(handler())
    assert task is not None
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert unwound == ["finally"]
    lock.release()
    async with lock:  # the cancelled waiter left the lock's queue
        pass


async def test_context_variables_set_by_the_coroutine_stay_its_own() -> None:
    variable: contextvars.ContextVar[str] = contextvars.ContextVar("variable", default="caller's")
    seen: list[str] = []

    async def handler() -> None:
        variable.set("handler's")
        await asyncio.sleep(0)
        seen.append(variable.get())

    task = eager.start(handler())
    assert variable.get() == "caller's"
    assert task is not None
    await task
    assert seen == ["handler's"]
