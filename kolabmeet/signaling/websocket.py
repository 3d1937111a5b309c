"""engine.io's WebSocket over aiohttp, writing the frames of one loop turn in one system call.

A join sends a notification to everyone in the room, so a burst of joins queues many small
frames on each socket; aiohttp writes each frame on its own (a `send` on the TCP socket each).
Here the frames a socket is given in one turn of the event loop are joined and written once, at
the end of the turn. permessage-deflate is not offered, as the original server's socket.io does
not: notifications are small and compressing each one cost more CPU than it saved.
"""

from __future__ import annotations

import asyncio
import struct
from typing import Any

from aiohttp import web
from engineio.async_drivers import aiohttp as engineio_aiohttp

TEXT, BINARY = 0x81, 0x82
"""First byte of an unfragmented frame (FIN set) of each kind; servers do not mask."""


def frame_header(opcode: int, length: int) -> bytes:
    """RFC 6455 section 5.2 header of a server's unmasked frame."""
    if length < 126:
        return struct.pack("!BB", opcode, length)
    if length < 65536:
        return struct.pack("!BBH", opcode, 126, length)
    return struct.pack("!BBQ", opcode, 127, length)


class WebSocket(engineio_aiohttp.WebSocket):
    """What engine.io's socket writes to and reads from, for one connection."""

    def __init__(self, handler: Any, server: Any) -> None:
        super().__init__(handler, server)
        self._pending: list[bytes] = []
        self._transport: asyncio.Transport | None = None
        self._loop = asyncio.get_running_loop()

    async def __call__(self, environ: dict[str, Any]) -> web.WebSocketResponse:
        request: web.Request = environ["aiohttp.request"]
        self._sock = web.WebSocketResponse(max_msg_size=self.server.max_http_buffer_size, compress=False)
        await self._sock.prepare(request)
        self._transport = request.transport
        self.environ = environ
        await self.handler(self)
        return self._sock

    async def send(self, message: str | bytes) -> None:
        payload, opcode = (message.encode(), TEXT) if isinstance(message, str) else (message, BINARY)
        if not self._pending:
            self._loop.call_soon(self._flush)
        self._pending += (frame_header(opcode, len(payload)), payload)

    def _flush(self) -> None:
        data, self._pending = b"".join(self._pending), []
        if data and self._transport is not None and not self._transport.is_closing():
            self._transport.write(data)

    async def close(self) -> None:
        self._flush()
        await self._sock.close()
