"""The order of what a socket is sent, and closing never waiting long on a client: queued messages
get a bounded time to go out."""

from __future__ import annotations

import asyncio
import time

import aiohttp
import socketio

from kolabmeet.signaling.notifier import Notifier
from tests.helpers import KolabApp
from tests.signaling.common import ready_socket


async def test_a_requests_ack_goes_out_before_what_its_handler_notified(
        app: KolabApp, http: aiohttp.ClientSession) -> None:
    ws, _peer_id = await ready_socket(http, app, await app.create_room())
    try:
        await ws.send_str('427["request",{"method":"changeNickname","data":{"nickname":"Ada"}}]')
        first, second = await ws.receive_str(), await ws.receive_str()
        assert first == "437[]", first  # a null answer
        assert second.startswith('42["notification",{"method":"changeNickname"'), second
        assert '"nickname":"Ada"' in second
    finally:
        await ws.close()


async def test_drain_gives_up_on_what_does_not_go_out() -> None:
    notifier = Notifier(socketio.AsyncServer(async_mode="aiohttp"), {})
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
