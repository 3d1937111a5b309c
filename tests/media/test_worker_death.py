"""A media worker killed under a live room: noticed at once, replaced, nobody hangs."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
from typing import Any

import aiohttp
import pytest

from kolabmeet.media.errors import ChannelTimeoutError
from tests.helpers import KolabApp, joined


async def test_killed_worker_is_replaced(server_with: Any, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="kolabmeet")
    async with server_with(num_workers=1) as server, aiohttp.ClientSession() as http:
        app = KolabApp(server, http)
        room = await app.create_room()
        alice = await joined(app, room, nickname="alice")
        await alice.ok("createPlainTransport", {"producing": True, "consuming": False})
        dead = server.pool.workers[0]
        os.kill(dead.pid, signal.SIGKILL)
        await asyncio.wait_for(alice.disconnected.wait(), 5)
        assert any("media worker 0" in r.getMessage() and "died" in r.getMessage() for r in caplog.records)
        assert not server.rooms.get(room).peers
        for _ in range(100):
            if server.pool.workers[0] is not dead:
                break
            await asyncio.sleep(0.05)
        fresh = server.pool.workers[0]
        assert fresh is not dead and fresh.pid != dead.pid and not fresh.closed
        bob = await joined(app, room, nickname="bob")
        transport = await bob.ok("createPlainTransport", {"producing": True, "consuming": False})
        assert transport["port"] > 0
        assert (await app.call("GET", "/ping")).status == 200
        await bob.close()


async def test_request_in_flight_fails_fast_when_worker_dies(server_with: Any) -> None:
    async with server_with(num_workers=1) as server:
        worker = server.pool.workers[0]
        os.kill(worker.pid, signal.SIGSTOP)
        pending = asyncio.ensure_future(worker.dump())
        await asyncio.sleep(0.1)
        os.kill(worker.pid, signal.SIGKILL)
        started = asyncio.get_running_loop().time()
        with pytest.raises(Exception) as failure:
            await asyncio.wait_for(pending, 3)
        assert "gone" in str(failure.value)
        assert asyncio.get_running_loop().time() - started < 1.0


async def test_a_request_the_worker_does_not_answer_times_out_and_the_worker_goes_on(server_with: Any) -> None:
    async with server_with(num_workers=1) as server:
        worker = server.pool.workers[0]
        os.kill(worker.pid, signal.SIGSTOP)
        try:
            with pytest.raises(ChannelTimeoutError, match="did not answer worker.dump in 0.2 s"):
                await worker.request("worker.dump", timeout=0.2)
        finally:
            os.kill(worker.pid, signal.SIGCONT)
        assert not worker._pending
        assert "routerIds" in await worker.dump()
