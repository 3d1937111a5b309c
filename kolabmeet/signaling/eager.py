"""Coroutines started at once, in the caller's turn, and given a task only if they suspend.

Most signaling requests (ping, getRouterRtpCapabilities, join, the notifications' handlers) finish
without waiting for anything; a task per request, as python-socketio runs its handlers, cost more
than such a handler (a task object, a turn of the event loop before it starts). Python 3.12's
eager tasks do this; on 3.11 it is done here. The part a coroutine runs before it first suspends
runs in the caller's task, so code there must not depend on `asyncio.current_task()` (as
`asyncio.timeout` does); the signaling's handlers do not.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine, Generator
from typing import Any


def start(coro: Coroutine[Any, Any, None]) -> asyncio.Task[None] | None:
    """Run `coro` until it first suspends; None when it finished, else the task that runs the rest."""
    try:
        blocking = coro.send(None)
    except StopIteration:
        return None
    except BaseException:
        coro.close()
        raise
    return asyncio.get_running_loop().create_task(_rest(coro, blocking))


async def _rest(coro: Coroutine[Any, Any, None], blocking: Any) -> None:
    await _Resumed(coro, blocking)


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
