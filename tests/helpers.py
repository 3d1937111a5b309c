"""Real clients for tests: the Kolab app's HTTP calls and a browser's socket.io signaling."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from typing import Any, Callable
from urllib.parse import parse_qs, urlsplit

import aiohttp
import socketio

from kolabmeet.app import Server
from kolabmeet.config import Config

TOKEN = "test-auth-token-0123456789abcdef"
API = "/meetmedia/api"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def make_config(**overrides: Any) -> Config:
    """A config for a test server on 127.0.0.1 with short timers."""
    port = overrides.pop("listening_port", None) or free_port()
    values: dict[str, Any] = dict(
        auth_token=TOKEN, listening_host="127.0.0.1", listening_port=port,
        public_domain=f"127.0.0.1:{port}", ssl_cert=None, ssl_key=None, num_workers=1,
        webrtc_listen_ip="127.0.0.1", reconnect_grace=1.0, room_empty_timeout=1.0,
        request_timeout=2.0, webrtc_port_base=0,
    )
    values.update(overrides)
    return Config(**values)


class KolabApp:
    """What the Kolab 4 app server does over HTTP."""

    def __init__(self, server: Server, session: aiohttp.ClientSession) -> None:
        self.server = server
        self.base = f"http://127.0.0.1:{server.port}"
        self.session = session

    async def call(self, method: str, path: str, token: str | None = TOKEN, **kwargs: Any) -> aiohttp.ClientResponse:
        headers = kwargs.pop("headers", {})
        if token is not None:
            headers["X-Auth-Token"] = token
        async with self.session.request(method, self.base + API + path, headers=headers, **kwargs) as resp:
            await resp.read()
            return resp

    async def create_room(self) -> str:
        resp = await self.call("POST", "/sessions", json=[])
        assert resp.status == 200
        return (await resp.json())["id"]

    async def connection(self, room_id: str, role: int | None = None) -> dict[str, Any]:
        body = {} if role is None else {"role": role}
        resp = await self.call("POST", f"/sessions/{room_id}/connection", json=body)
        assert resp.status == 200, resp.status
        return await resp.json()


class Browser:
    """A socket.io client as Kolab's web client drives it; records every notification."""

    def __init__(self, token_url: str) -> None:
        parts = urlsplit(token_url)
        query = parse_qs(parts.query)
        self.peer_id = query["peerId"][0]
        self.room_id = query["roomId"][0]
        self.url = f"http://{parts.netloc}?{parts.query}"
        self.sio = socketio.AsyncClient(reconnection=False)
        self.notifications: list[dict[str, Any]] = []
        self.server_requests: list[dict[str, Any]] = []
        self.answer_request: Callable[[dict[str, Any]], Any] = lambda request: None
        self._changed = asyncio.Event()
        self.disconnected = asyncio.Event()
        self.sio.on("notification", self._on_notification)
        self.sio.on("request", self._on_request)
        self.sio.on("disconnect", self._on_disconnect)

    async def _on_notification(self, message: dict[str, Any]) -> None:
        self.notifications.append(message)
        self._changed.set()

    async def _on_request(self, message: dict[str, Any]) -> Any:
        answer = self.answer_request(message)
        if asyncio.iscoroutine(answer):
            answer = await answer
        self.server_requests.append(message)
        self._changed.set()
        return answer

    async def _on_disconnect(self, *args: Any) -> None:
        self.disconnected.set()
        self._changed.set()

    async def connect(self, path: str = "/meetmedia/signaling", wait_ready: bool = True,
                      transports: tuple[str, ...] = ("websocket",), **kwargs: Any) -> None:
        await self.sio.connect(self.url, socketio_path=path, transports=list(transports), wait_timeout=5, **kwargs)
        if wait_ready:
            await self.wait_for("roomReady")

    async def request(self, method: str, data: Any = None, timeout: float = 5.0) -> Any:
        """The ack of a request: None, one value, or a tuple (error, ...)."""
        payload: dict[str, Any] = {"method": method}
        if data is not None:
            payload["data"] = data
        return await self.sio.call("request", payload, timeout=timeout)

    async def ok(self, method: str, data: Any = None) -> Any:
        """A request that must succeed; its response (None for a null one)."""
        ack = await self.request(method, data)
        if isinstance(ack, tuple):
            assert ack[0] is None, ack
            return ack[1]
        assert ack is None, ack
        return None

    async def fails(self, method: str, data: Any = None) -> str:
        """A request that must fail; its error message."""
        ack = await self.request(method, data)
        assert isinstance(ack, tuple) and ack[0] == 500, ack
        return ack[1]

    def seen(self, method: str, predicate: Callable[[Any], bool] = lambda data: True) -> list[Any]:
        return [n["data"] for n in self.notifications if n["method"] == method and predicate(n["data"])]

    async def wait_for(self, method: str, predicate: Callable[[Any], bool] = lambda data: True,
                       timeout: float = 5.0) -> Any:
        """The first notification `method` whose data satisfies `predicate`."""
        async def until() -> Any:
            while True:
                found = self.seen(method, predicate)
                if found:
                    return found[0]
                self._changed.clear()
                await self._changed.wait()
        return await asyncio.wait_for(until(), timeout)

    async def wait_request(self, method: str, count: int = 1, timeout: float = 5.0) -> list[dict[str, Any]]:
        async def until() -> list[dict[str, Any]]:
            while True:
                found = [r for r in self.server_requests if r["method"] == method]
                if len(found) >= count:
                    return found
                self._changed.clear()
                await self._changed.wait()
        return await asyncio.wait_for(until(), timeout)

    async def close(self) -> None:
        """Leave as the web client's socket.close() does: the server gets the socket.io DISCONNECT.

        python-socketio's disconnect() alone may close the websocket before that packet is written,
        which the server sees as a network drop. A client whose socket just failed (a message past
        its 4 MiB limit) has no writer left to take the packet: it is given a second.
        """
        if self.sio.connected:
            await self.sio._send_packet(self.sio.packet_class(socketio.packet.DISCONNECT, namespace="/"))
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self.sio.eio.queue.join(), 1)
            await self.sio.disconnect()


async def joined(app: KolabApp, room_id: str, role: int = 3, nickname: str = "test",
                 rtp_capabilities: dict[str, Any] | None = None) -> Browser:
    """A browser connected to the room and joined."""
    from kolabmeet.media.capabilities import router_rtp_capabilities

    browser = Browser((await app.connection(room_id, role))["token"])
    await browser.connect()
    caps = rtp_capabilities if rtp_capabilities is not None else router_rtp_capabilities()
    await browser.ok("join", {"nickname": nickname, "rtpCapabilities": caps})
    return browser


class RecordingTransport(asyncio.Transport):
    """A transport that keeps what is written to it, for the byte-level tests of a protocol's writer."""

    def __init__(self) -> None:
        super().__init__()
        self.written = b""

    def write(self, data: bytes) -> None:  # type: ignore[override]
        self.written += data

    def is_closing(self) -> bool:
        return False

    def close(self) -> None:
        pass
