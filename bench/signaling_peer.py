"""A light socket.io peer for the benchmarks: the signaling protocol over one WebSocket, nothing else.

python-socketio's client decodes every packet and runs a task per event; with 50 peers joining
one room at once, the notifications every join sends to everyone made the bench's own process
the bottleneck (more CPU per join than the server's). This peer speaks engine.io 4 / socket.io 5
over a WebSocket as browsers do, decodes only the acks of its own requests and counts the
notifications it receives by method name, without decoding them.
"""

from __future__ import annotations

import asyncio
import itertools
from typing import Any
from urllib.parse import parse_qs, urlsplit

import aiohttp
import msgspec

SIGNALING_PATH = "/meetmedia/signaling/"


class SignalingError(Exception):
    """The server refused the socket or a request."""


class SignalingPeer:
    """One peer's socket: connect until roomReady, requests with acks, close."""

    def __init__(self, http: aiohttp.ClientSession, token_url: str) -> None:
        parts = urlsplit(token_url)
        query = parse_qs(parts.query)
        self.peer_id = query["peerId"][0]
        self._url = f"ws://{parts.netloc}{SIGNALING_PATH}?EIO=4&transport=websocket&{parts.query}"
        self._http = http
        self._ws: aiohttp.ClientWebSocketResponse | None = None
        self._ids = itertools.count()
        self._acks: dict[int, asyncio.Future[list[Any]]] = {}
        self._ready = asyncio.get_running_loop().create_future()
        self._reader: asyncio.Task[None] | None = None
        self._pong: asyncio.Task[None] | None = None
        self.notifications = 0

    async def connect(self) -> None:
        """Open the socket, join the namespace and wait for roomReady."""
        self._ws = await self._http.ws_connect(self._url, compress=0)
        opening = await self._ws.receive_str()
        if not opening.startswith("0"):
            raise SignalingError(f"no engine.io open packet: {opening[:80]}")
        await self._ws.send_str("40")
        self._reader = asyncio.get_running_loop().create_task(self._read())
        await asyncio.wait_for(self._ready, 5)

    async def ok(self, method: str, data: Any = None) -> Any:
        """A request that must succeed; its response (None for a null one)."""
        ack_id = next(self._ids)
        future = self._acks[ack_id] = asyncio.get_running_loop().create_future()
        payload: dict[str, Any] = {"method": method} if data is None else {"method": method, "data": data}
        await self._ws.send_str(f"42{ack_id}" + msgspec.json.encode(["request", payload]).decode())
        ack = await asyncio.wait_for(future, 5)
        if ack and ack[0] is not None:
            raise SignalingError(f"{method}: {ack}")
        return ack[1] if len(ack) > 1 else None

    async def close(self) -> None:
        """Leave as a browser does (namespace disconnect), then close the socket."""
        if self._ws is not None and not self._ws.closed:
            await self._ws.send_str("41")
            await self._ws.close()
        if self._reader is not None:
            await self._reader

    async def _read(self) -> None:
        async for message in self._ws:
            if message.type != aiohttp.WSMsgType.TEXT:
                break
            self._on_packet(message.data)
        error = SignalingError("the socket closed")
        for future in [self._ready, *self._acks.values()]:
            if not future.done():
                future.set_exception(error)

    def _on_packet(self, packet: str) -> None:
        if packet == "2":
            self._pong = asyncio.get_running_loop().create_task(self._ws.send_str("3"))
        elif packet.startswith("42"):
            self.notifications += 1
            if not self._ready.done() and '"roomReady"' in packet:
                self._ready.set_result(None)
        elif packet.startswith("43"):
            bracket = packet.index("[")
            future = self._acks.pop(int(packet[2:bracket]), None)
            if future is not None and not future.done():
                future.set_result(msgspec.json.decode(packet[bracket:]))
        elif packet.startswith(("41", "44")) and not self._ready.done():
            self._ready.set_exception(SignalingError(f"the server refused the socket: {packet}"))
