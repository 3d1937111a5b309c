"""A light socket.io peer for the benchmarks: the signaling protocol over one WebSocket, nothing else.

Fifty peers joining one room at once share the bench's one process, and every join notifies
everyone: with python-socketio's client (a task per event, every packet decoded) and then with
aiohttp's WebSocket client, the bench's own CPU per join was as high as the server's, and on this
two-core machine it was the server's join latency that paid for it. This peer is an asyncio
protocol on its TCP connection: the WebSocket handshake (RFC 6455 section 4) and frames (section
5) written by hand, engine.io 4 / socket.io 5 text packets as browsers send them; it decodes only
the acks of its own requests and counts the notifications it receives without decoding them.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import itertools
import random
from typing import Any
from urllib.parse import parse_qs, urlsplit

import msgspec
from aiohttp.http import WS_KEY

from kolabmeet.signaling.websocket import frame_header

SIGNALING_PATH = "/meetmedia/signaling/"
TEXT, CLOSE, PING, PONG = 0x1, 0x8, 0x9, 0xA
"""Frame opcodes (RFC 6455 section 5.2)."""
CLOSE_STATUS_NORMAL = (1000).to_bytes(2, "big")
TIMEOUT = 5.0


class SignalingError(Exception):
    """The server refused the socket or a request, or the connection broke."""


class SignalingPeer(asyncio.Protocol):
    """One peer's socket: connect until roomReady, requests with acks, close."""

    def __init__(self, token_url: str) -> None:
        parts = urlsplit(token_url)
        self.peer_id = parse_qs(parts.query)["peerId"][0]
        self._address = (parts.hostname or "127.0.0.1", parts.port or 80)
        self._key = base64.b64encode(random.randbytes(16))
        self._handshake = (f"GET {SIGNALING_PATH}?EIO=4&transport=websocket&{parts.query} HTTP/1.1\r\n"
                           f"Host: {parts.netloc}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                           f"Sec-WebSocket-Key: {self._key.decode()}\r\nSec-WebSocket-Version: 13\r\n\r\n").encode()
        loop = asyncio.get_running_loop()
        self._opened = loop.create_future()
        self._ready = loop.create_future()
        self._lost = loop.create_future()
        self._transport: asyncio.Transport | None = None
        self._buffer = bytearray()
        self._upgraded = False
        self._ids = itertools.count()
        self._acks: dict[int, asyncio.Future[list[Any]]] = {}
        self.notifications = 0

    async def connect(self) -> None:
        """Open the socket, join the namespace and wait for roomReady."""
        await asyncio.get_running_loop().create_connection(lambda: self, *self._address)
        self._transport.write(self._handshake)
        await asyncio.wait_for(self._opened, TIMEOUT)
        self._send("40")
        await asyncio.wait_for(self._ready, TIMEOUT)

    async def ok(self, method: str, data: Any = None) -> Any:
        """A request that must succeed; its response (None for a null one)."""
        if self._transport is None or self._transport.is_closing():
            raise SignalingError(f"{method}: the socket closed")
        ack_id = next(self._ids)
        future = self._acks[ack_id] = asyncio.get_running_loop().create_future()
        payload: dict[str, Any] = {"method": method} if data is None else {"method": method, "data": data}
        self._send(f"42{ack_id}" + msgspec.json.encode(["request", payload]).decode())
        ack = await asyncio.wait_for(future, TIMEOUT)
        if ack and ack[0] is not None:
            raise SignalingError(f"{method}: {ack}")
        return ack[1] if len(ack) > 1 else None

    async def close(self) -> None:
        """Leave as a browser does (namespace disconnect), close the WebSocket and the connection."""
        if self._transport is None:
            return
        if self._upgraded and not self._transport.is_closing():
            self._send("41")
            self._send_frame(CLOSE, CLOSE_STATUS_NORMAL)
            try:
                await asyncio.wait_for(asyncio.shield(self._lost), TIMEOUT)
            except asyncio.TimeoutError:
                pass
        self._transport.close()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport  # type: ignore[assignment]

    def connection_lost(self, exc: Exception | None) -> None:
        error = SignalingError("the socket closed")
        for future in [self._opened, self._ready, *self._acks.values()]:
            _refuse(future, error)
        if not self._lost.done():
            self._lost.set_result(None)

    def data_received(self, data: bytes) -> None:
        self._buffer += data
        if not self._upgraded:
            end = self._buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            head, self._buffer = bytes(self._buffer[:end]).decode("latin-1"), self._buffer[end + 4:]
            if not self._accepted(head):
                self._fail(SignalingError(f"the server refused the WebSocket: {head.splitlines()[0]}"))
                return
            self._upgraded = True
        self._read_frames()

    def _accepted(self, head: str) -> bool:
        """The response is 101 and proves the key (RFC 6455 section 4.1: SHA-1 of the key and the
        protocol's GUID, aiohttp's WS_KEY)."""
        lines = head.split("\r\n")
        headers = dict(line.split(":", 1) for line in lines[1:] if ":" in line)
        accept = {name.strip().lower(): value.strip() for name, value in headers.items()}.get("sec-websocket-accept")
        expected = base64.b64encode(hashlib.sha1(self._key + WS_KEY).digest()).decode()
        return lines[0].split(" ")[1:2] == ["101"] and accept == expected

    def _read_frames(self) -> None:
        buffer, offset = self._buffer, 0
        while len(buffer) - offset >= 2:
            first, length, start = buffer[offset], buffer[offset + 1] & 0x7F, offset + 2
            if length >= 126:
                size = 2 if length == 126 else 8
                if len(buffer) - start < size:
                    break
                length, start = int.from_bytes(buffer[start:start + size], "big"), start + size
            if len(buffer) - start < length:
                break
            end = start + length
            if not first & 0x80:
                self._fail(SignalingError("a fragmented WebSocket frame (the server does not send them)"))
                return
            if first & 0x0F == TEXT and buffer.startswith(b"42", start, end) and self._ready.done():
                self.notifications += 1  # the most frequent frame by far: counted without a copy
            else:
                self._on_frame(first & 0x0F, bytes(buffer[start:end]))
            offset = end
        del buffer[:offset]

    def _on_frame(self, opcode: int, payload: bytes) -> None:
        if opcode == TEXT:
            self._on_packet(payload.decode())
        elif opcode == PING:
            self._send_frame(PONG, payload)
        elif opcode == CLOSE and self._transport is not None:
            self._send_frame(CLOSE, payload[:2])
            self._transport.close()

    def _on_packet(self, packet: str) -> None:
        if packet.startswith("42"):
            self.notifications += 1
            if not self._ready.done() and '"roomReady"' in packet:
                self._ready.set_result(None)
        elif packet.startswith("43") and "[" in packet:
            bracket = packet.index("[")
            future = self._acks.pop(int(packet[2:bracket]), None)
            if future is not None and not future.done():
                future.set_result(msgspec.json.decode(packet[bracket:]))
        elif packet == "2":
            self._send("3")
        elif packet.startswith("0") and not self._opened.done():
            self._opened.set_result(None)
        elif packet.startswith(("41", "44")):
            _refuse(self._ready, SignalingError(f"the server refused the socket: {packet}"))

    def _send(self, packet: str) -> None:
        self._send_frame(TEXT, packet.encode())

    def _send_frame(self, opcode: int, payload: bytes) -> None:
        """A client's frame: FIN, the opcode, the mask bit and a masking key (RFC 6455 section 5.3)."""
        header = bytearray(frame_header(0x80 | opcode, len(payload)))
        header[1] |= 0x80
        key, length = random.randbytes(4), len(payload)
        stream = (key * (length // 4 + 1))[:length]
        masked = (int.from_bytes(payload, "little") ^ int.from_bytes(stream, "little")).to_bytes(length, "little")
        if self._transport is not None and not self._transport.is_closing():
            self._transport.write(bytes(header) + key + masked)

    def _fail(self, error: SignalingError) -> None:
        for future in (self._opened, self._ready):
            _refuse(future, error)
        if self._transport is not None:
            self._transport.close()


def _refuse(future: asyncio.Future[Any], error: SignalingError) -> None:
    """The error for whoever waits on `future`, if it is still pending; marked as seen, since
    nobody waits on some of them (roomReady after a refused handshake)."""
    if not future.done():
        future.set_exception(error)
        future.exception()
