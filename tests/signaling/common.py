"""Helpers shared by the signaling tests: tokens, refused sockets, network drops, sync points."""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from typing import Any, AsyncIterator, Callable
from urllib.parse import parse_qs, parse_qsl, urlencode, urlsplit

import aiohttp
import socketio
from aiohttp import web

from kolabmeet.app import Server
from kolabmeet.signaling.peer import Peer
from tests.helpers import Browser, KolabApp, joined

SUBSCRIBER, PUBLISHER, MODERATOR, SCREEN, OWNER = 1, 2, 4, 8, 16
OWNER_ROLE = PUBLISHER | MODERATOR | OWNER
MODERATOR_ROLE = PUBLISHER | MODERATOR


def with_query(token: str, **changes: str | None) -> str:
    """The token URL as an http URL, with query values replaced (None: removed)."""
    parts = urlsplit(token)
    query = dict(parse_qsl(parts.query, keep_blank_values=True))
    for key, value in changes.items():
        if value is None:
            query.pop(key, None)
        else:
            query[key] = value
    return f"http://{parts.netloc}?{urlencode(query)}"


async def new_browser(app: KolabApp, room_id: str, browsers: list[Browser], role: int = 3,
                      connect: bool = True) -> Browser:
    """A browser with a fresh token of the room, kept for teardown; connected unless told."""
    browser = Browser((await app.connection(room_id, role))["token"])
    browsers.append(browser)
    if connect:
        await browser.connect()
    return browser


async def refused(url: str, **connect_kwargs: Any) -> None:
    """A socket.io client the server must refuse: disconnected at once, never a notification."""
    client = socketio.AsyncClient(reconnection=False)
    notifications: list[Any] = []
    gone = asyncio.Event()
    client.on("notification", notifications.append)
    client.on("disconnect", lambda *args: gone.set())
    try:
        await client.connect(url, socketio_path="/meetmedia/signaling", transports=["websocket"],
                             wait_timeout=5, **connect_kwargs)
    except socketio.exceptions.ConnectionError:
        gone.set()
    await asyncio.wait_for(gone.wait(), 2)
    await asyncio.sleep(0.05)
    assert notifications == []
    assert not client.connected
    await client.disconnect()


async def drop(browser: Browser) -> None:
    """A network drop: the websocket closes without a socket.io or engine.io goodbye."""
    await browser.sio.eio.ws.close()
    await asyncio.wait_for(browser.disconnected.wait(), 2)


def server_peer(server: Server, browser: Browser) -> Peer | None:
    room = server.rooms.get(browser.room_id)
    return room.peers.get(browser.peer_id) if room is not None else None


async def until(condition: Callable[[], bool], timeout: float = 3.0, step: float = 0.02) -> float:
    """Wait for `condition`; the seconds it took."""
    start = time.monotonic()
    while not condition():
        assert time.monotonic() - start < timeout, "condition not met in time"
        await asyncio.sleep(step)
    return time.monotonic() - start


async def room_status(app: KolabApp, room_id: str) -> int:
    return (await app.call("GET", f"/sessions/{room_id}")).status


async def room_status_until(app: KolabApp, room_id: str, status: int, timeout: float = 3.0) -> float:
    """Poll GET /sessions/{id} until it answers `status`; the seconds it took."""
    start = time.monotonic()
    while await room_status(app, room_id) != status:
        assert time.monotonic() - start < timeout, f"room {room_id} never answered {status}"
        await asyncio.sleep(0.05)
    return time.monotonic() - start


async def sync(sender: Browser, *receivers: Browser) -> None:
    """A chat marker from `sender` that every receiver (and the sender) gets.

    Notifications reach a socket in the order they were made, so whatever was
    not seen before the marker was never sent.
    """
    marker = f"sync-{uuid.uuid4()}"
    await sender.ok("chatMessage", {"message": marker})
    for browser in (sender, *receivers):
        await browser.wait_for("chatMessage", lambda data: data["message"] == marker)


def methods(browser: Browser) -> list[str]:
    return [n["method"] for n in browser.notifications]


class WebhookSink:
    """An HTTP endpoint that records the webhooks POSTed to it."""

    def __init__(self) -> None:
        self.received: list[tuple[str | None, Any]] = []
        self.url = ""
        self._changed = asyncio.Event()

    async def handle(self, request: web.Request) -> web.Response:
        self.received.append((request.headers.get("X-Auth-Token"), await request.json()))
        self._changed.set()
        return web.Response()

    async def wait_for(self, event: str, timeout: float = 3.0) -> dict[str, Any]:
        async def find() -> dict[str, Any]:
            while True:
                for _token, body in self.received:
                    if body.get("event") == event:
                        return body
                self._changed.clear()
                await self._changed.wait()
        return await asyncio.wait_for(find(), timeout)


@contextlib.asynccontextmanager
async def webhook_sink() -> AsyncIterator[WebhookSink]:
    sink = WebhookSink()
    app = web.Application()
    app.router.add_post("/hook", sink.handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    sink.url = f"http://127.0.0.1:{runner.addresses[0][1]}/hook"
    try:
        yield sink
    finally:
        await runner.cleanup()


async def pair(app: KolabApp, browsers: list[Browser]) -> tuple[Browser, Browser]:
    room = await app.create_room()
    alice = await joined(app, room, nickname="alice")
    browsers.append(alice)
    bob = await joined(app, room, nickname="bob")
    browsers.append(bob)
    await alice.wait_for("newPeer")
    return alice, bob


async def ready_socket(http: aiohttp.ClientSession, app: KolabApp,
                       room: str) -> tuple[aiohttp.ClientWebSocketResponse, str]:
    """A socket.io connection as a browser opens it (offering permessage-deflate), after roomReady."""
    parts = urlsplit((await app.connection(room))["token"])
    url = f"ws://{parts.netloc}/meetmedia/signaling/?EIO=4&transport=websocket&{parts.query}"
    ws = await http.ws_connect(url, compress=15)
    assert (await ws.receive_str()).startswith("0")
    await ws.send_str("40")
    while "roomReady" not in await ws.receive_str():
        pass
    return ws, parse_qs(parts.query)["peerId"][0]


async def ack_arguments(browser: Browser, payload: Any) -> tuple[Any, ...]:
    """The exact arguments of a request's ack, as socket.io-client hands them to its callback."""
    answered: asyncio.Future[tuple[Any, ...]] = asyncio.get_running_loop().create_future()
    await browser.sio.emit("request", payload, callback=lambda *args: answered.set_result(args))
    return await asyncio.wait_for(answered, 5)
