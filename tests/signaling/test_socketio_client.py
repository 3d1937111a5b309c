"""The Kolab web client's socket.io-client (4.7.5, from the demo page's npm packages) against the
signaling, in Node.js: accepted sockets get roomReady, refused ones `io server disconnect` and no
retry, on a WebSocket (our sessions) and on long-polling (python-socketio)."""

from __future__ import annotations

import asyncio
import json
import shutil
from pathlib import Path

import pytest

from kolabmeet import demo
from kolabmeet.app import Server
from tests.helpers import KolabApp
from tests.signaling.common import until

CLIENT = Path(__file__).with_name("socketio_client.js")
pytestmark = pytest.mark.skipif(shutil.which("node") is None, reason="needs Node.js")


async def client_events(url: str, transports: str, millis: int = 1200) -> list[str]:
    node = await asyncio.create_subprocess_exec(
        "node", str(CLIENT), url, transports, str(millis), stdout=asyncio.subprocess.PIPE,
        env={"NODE_PATH": str(demo.PAGE_DIR / "node_modules"), "PATH": "/usr/bin:/bin"})
    output, _ = await asyncio.wait_for(node.communicate(), 20)
    return json.loads(output.decode().strip().splitlines()[-1])


@pytest.mark.parametrize("transports", ["websocket", "polling,websocket"])
async def test_an_accepted_socket_gets_roomready(app: KolabApp, transports: str) -> None:
    token = (await app.connection(await app.create_room()))["token"]
    assert await client_events(token, transports) == ["connect", "notification:roomReady"]


@pytest.mark.parametrize("transports", ["websocket", "polling,websocket"])
async def test_a_refused_socket_is_told_io_server_disconnect_and_does_not_retry(
        server: Server, app: KolabApp, transports: str) -> None:
    token = (await app.connection(await app.create_room()))["token"]
    assert await client_events(token.replace("authToken=", "authToken=x"), transports) == [
        "connect", "disconnect:io server disconnect"]
    await until(lambda: not server.signaling._open_sessions and not server.signaling.sio.eio.sockets)
