"""Closing never waits long on a client: queued messages get a bounded time to go out."""

from __future__ import annotations

import asyncio
import time

import socketio

from kolabmeet.signaling.notifier import Notifier


async def test_drain_gives_up_on_what_does_not_go_out() -> None:
    notifier = Notifier(socketio.AsyncServer(async_mode="aiohttp"))
    done = asyncio.Event()

    async def sent() -> None:
        done.set()

    notifier._spawn(sent())
    notifier._spawn(asyncio.sleep(60))  # a send to a client that stopped reading
    start = time.monotonic()
    await notifier.drain(0.2)
    assert time.monotonic() - start < 1.0
    assert done.is_set()
    assert not notifier._tasks, "the stuck send was cancelled"
