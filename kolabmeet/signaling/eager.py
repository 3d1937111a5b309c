"""Coroutines started at once, in the caller's turn, and given a task only if they suspend.

Most signaling requests (ping, getRouterRtpCapabilities, join, the notifications' handlers) finish
without waiting for anything; a task per request, as python-socketio runs its handlers, cost more
than such a handler (a task object, a turn of the event loop before it starts). Python 3.12's
eager tasks do this; on 3.11 it is done here. The part a coroutine runs before it first suspends
runs in the caller's task (in a copy of its context, which the rest's task keeps), so code there
must not depend on `asyncio.current_task()` (as `asyncio.timeout` does); the signaling's handlers
do not.
"""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import Coroutine, Generator
from typing import Any


def start(coro: Coroutine[Any, Any, None]) -> asyncio.Task[None] | None:
    """Run `coro` until it first suspends; None when it finished, else the task that runs the rest."""
    context = contextvars.copy_context()
    try:
        blocking = context.run(coro.send, None)
    except StopIteration:
        return None
    task = asyncio.get_running_loop().create_task(_rest(coro, blocking), context=context)
    task.add_done_callback(lambda _task: _unwind(coro, blocking))
    return task


async def _rest(coro: Coroutine[Any, Any, None], blocking: Any) -> None:
    await _Resumed(coro, blocking)


def _unwind(coro: Coroutine[Any, Any, None], blocking: Any) -> None:
    """A task cancelled before its first step never resumed the coroutine: cancel what it waits
    on and throw the cancellation in, so that its handlers and `finally` run (a lock's waiter
    leaves the lock's queue)."""
    if coro.cr_frame is None:
        return
    if isinstance(blocking, asyncio.Future):
        blocking.cancel()
    try:
        coro.throw(asyncio.CancelledError())
    except BaseException:  # the cancellation, or whatever the coroutine raised instead
        return
    coro.close()


class _Resumed:
    """Awaitable of a coroutine already stepped once: hands its task what the coroutine waits on
    (a future, already marked as the one to wait for), then forwards what the task sends or throws."""

    def __init__(self, coro: Coroutine[Any, Any, None], blocking: Any) -> None:
        self._coro = coro
        self._blocking = blocking

    def __await__(self) -> Generator[Any, Any, None]:
        coro, blocking = self._coro, self._blocking
        while True:
            try:
                sent = yield blocking
            except BaseException as exc:  # thrown in by the task: its cancellation
                try:
                    blocking = coro.throw(exc)
                except StopIteration:
                    return
            else:
                try:
                    blocking = coro.send(sent)
                except StopIteration:
                    return
