"""engine.io's WebSocket over aiohttp, writing the frames of one loop turn in one system call.

A join sends a notification to everyone in the room, so a burst of joins queues many small
frames on each socket; aiohttp writes each frame on its own (a `send` on the TCP socket each).
Here the frames a socket is given in one turn of the event loop are joined and written once, at
the end of the turn, and notifications that come within a few milliseconds of the last one written
to the socket wait for the rest of that time to leave together (an ack or a request does not wait,
nor does a notification after a quiet spell, such as roomReady after the connect).
permessage-deflate is not offered, as the original server's socket.io does not: notifications
are small and compressing each one cost more CPU than it saved.

A socket that opens on the WebSocket (as the Kolab web client's does: websocket only) is served
here rather than by engine.io's loop: the
packets its engine.io socket sends are written as they are sent, in order (engine.io's writer
task woke through `asyncio.wait_for`, a new task per wake-up, once per socket per burst of
notifications), and each received message is handed to socket.io at once (engine.io ran a task
and a timeout per message; here one watchdog timer per socket). A message the signaling takes
(`take_message`: its requests) is not decoded by engine.io nor dispatched by socket.io at all.
A socket that upgrades from long-polling keeps engine.io's own loop.
"""

from __future__ import annotations

import asyncio
import logging
import struct
from typing import Any, Callable

from aiohttp import WSMsgType, web
from engineio import packet as engineio_packet
from engineio.async_drivers import aiohttp as engineio_aiohttp

log = logging.getLogger("kolabmeet.signaling")

TEXT, BINARY = 0x81, 0x82
"""First byte of an unfragmented frame (FIN set) of each kind; servers do not mask."""
NOTIFICATION_HOLD = 0.005
"""Seconds within which a socket's notifications share one write: a burst of joins notifies
everyone in the room many times over, and each write is a system call and a wake-up of the reader;
the first notification after a quiet spell goes at once."""
CLOSE_NORMAL = b"\x88\x02\x03\xe8"
"""A server's close frame with status 1000 (RFC 6455 sections 5.5.1 and 7.4.1)."""


def frame_header(opcode: int, length: int) -> bytes:
    """RFC 6455 section 5.2 header of a server's unmasked frame."""
    if length < 126:
        return struct.pack("!BB", opcode, length)
    if length < 65536:
        return struct.pack("!BBH", opcode, 126, length)
    return struct.pack("!BBQ", opcode, 127, length)


MessageTaker = Callable[["WebSocket", str, str], bool]
"""Given (this WebSocket, engine.io sid, the text of a message packet), True when it took the
message, so that engine.io and socket.io do not see it."""


class WebSocket(engineio_aiohttp.WebSocket):
    """What engine.io's socket writes to and reads from, for one connection."""

    def __init__(self, handler: Any, server: Any, take_message: MessageTaker | None = None) -> None:
        super().__init__(handler, server)
        self._take_message = take_message
        self._pending: list[bytes] = []
        self._flushing: asyncio.Handle | None = None
        self._held = False
        self._pending_notification = False
        self._notified_at = -NOTIFICATION_HOLD
        self._ending = False
        self._heard = True
        self._watchdog: asyncio.TimerHandle | None = None
        self._transport: asyncio.Transport | None = None
        self._loop = asyncio.get_running_loop()

    async def __call__(self, environ: dict[str, Any]) -> web.WebSocketResponse:
        request: web.Request = environ["aiohttp.request"]
        self._sock = web.WebSocketResponse(max_msg_size=self.server.max_http_buffer_size, compress=False)
        await self._sock.prepare(request)
        self._transport = request.transport
        self.environ = environ
        socket = self.handler.__self__
        if socket.connected:
            await self.handler(self)
        else:
            await self._serve(socket)
        return self._sock

    def write(self, message: str | bytes) -> None:
        """One frame, written at the end of this loop turn with the others given in it."""
        payload, opcode = (message.encode(), TEXT) if isinstance(message, str) else (message, BINARY)
        self.write_frame(frame_header(opcode, len(payload)) + payload)

    def write_frame(self, frame: bytes, hold: bool = False) -> None:
        """A whole frame, header and payload (a notification to many sockets is framed once).

        Frames are written at the end of this loop turn, all in one write; but when this socket
        was last written a notification less than NOTIFICATION_HOLD ago, a frame to `hold` (a
        notification) waits for the rest of that time, gathering what follows, unless a frame not
        to hold (an ack, a request) comes first.
        """
        if self._ending:
            return  # nothing follows a close frame (RFC 6455 section 5.5.1)
        self._pending.append(frame)
        self._pending_notification |= hold
        if self._flushing is not None:
            if hold or not self._held:
                return
            self._flushing.cancel()
        wait = self._notified_at + NOTIFICATION_HOLD - self._loop.time() if hold else 0.0
        self._held = wait > 0
        self._flushing = self._loop.call_later(wait, self._flush) if self._held else self._loop.call_soon(self._flush)

    async def send(self, message: str | bytes) -> None:
        self.write(message)

    def _flush(self) -> None:
        if self._flushing is not None:
            self._flushing.cancel()
            self._flushing = None
        data, self._pending = b"".join(self._pending), []
        notified, self._pending_notification = self._pending_notification, False
        if data and self._transport is not None and not self._transport.is_closing():
            self._transport.write(data)
            if notified:
                self._notified_at = self._loop.time()
            if self._ending:
                self._transport.close()

    def end(self) -> None:
        """A WebSocket close frame (1000, normal) after what is pending, then the connection closed:
        after engine.io's CLOSE packet a client that does not answer is not waited for."""
        self.write_frame(CLOSE_NORMAL)
        self._ending = True

    async def close(self) -> None:
        self._flush()
        await self._sock.close()

    async def _serve(self, socket: Any) -> None:
        """The engine.io socket's session on this WebSocket, until either side closes it or pings stop."""
        server = socket.server
        socket.connected = socket.upgraded = True
        queued, socket.queue = socket.queue, Outbox(self)
        while not queued.empty():
            socket.queue.put_nowait(queued.get_nowait())
        self._watch(server.ping_interval + server.ping_timeout)
        try:
            while True:
                message = await self._sock.receive()
                self._heard = True
                if message.type not in (WSMsgType.TEXT, WSMsgType.BINARY) or not await self._receive(socket,
                                                                                                    message.data):
                    break
        finally:
            if self._watchdog is not None:
                self._watchdog.cancel()
            await socket.close(wait=False, abort=True, reason=server.reason.TRANSPORT_CLOSE)
            await self.close()
            socket.queue.detach()

    def _watch(self, timeout: float) -> None:
        """Every `timeout` seconds: the connection closed if the client sent nothing meanwhile (it
        answers the server's pings). One timer per socket, not one per message received."""
        if not self._heard and self._transport is not None:
            log.info("socket %s: nothing received for %.0f s; closing it", self.handler.__self__.sid, timeout)
            self._transport.close()
        self._heard = False
        self._watchdog = self._loop.call_later(timeout, self._watch, timeout)

    async def _receive(self, socket: Any, data: str | bytes) -> bool:
        """One engine.io packet from the client; False when the session is over."""
        if (self._take_message is not None and isinstance(data, str) and data.startswith("4")
                and self._take_message(self, socket.sid, data[1:])):
            return not socket.closed
        try:
            pkt = engineio_packet.Packet(encoded_packet=data)
        except ValueError as exc:
            log.info("socket %s: undecodable engine.io packet (%s); closing it", socket.sid, exc)
            return False
        if pkt.packet_type == engineio_packet.MESSAGE:
            await socket.server._trigger_event("message", socket.sid, pkt.data, run_async=False)
        elif pkt.packet_type in (engineio_packet.PONG, engineio_packet.CLOSE):
            await socket.receive(pkt)
        else:
            log.info("socket %s: engine.io packet of type %r ignored", socket.sid, pkt.packet_type)
        return not socket.closed


class Outbox:
    """Stands in for the queue of an engine.io socket served by `WebSocket._serve`: what engine.io
    puts in it is written to the WebSocket at once, so its packets and ours keep one order.

    engine.io's only reader of the queue is the writer task `_serve` does not run; it puts None there
    to end that task, which is ignored here.
    """

    def __init__(self, websocket: WebSocket) -> None:
        self._websocket: WebSocket | None = websocket

    def detach(self) -> None:
        """The session is over: what is put from now on is dropped. This also ends the reference
        cycle engine.io's socket, this outbox, the WebSocket and the socket's handler made, so that
        the connection's objects are freed when the last reference goes, not by the collector."""
        self._websocket = None

    def put_nowait(self, pkt: engineio_packet.Packet | None) -> None:
        if pkt is not None and self._websocket is not None:
            self._websocket.write(pkt.encode())
            if pkt.packet_type == engineio_packet.CLOSE:
                self._websocket.end()

    def write_frame(self, frame: bytes, hold: bool = False) -> None:
        if self._websocket is not None:
            self._websocket.write_frame(frame, hold)

    async def put(self, pkt: engineio_packet.Packet | None) -> None:
        self.put_nowait(pkt)

    async def join(self) -> None:
        """Everything put is written already (at the end of this loop turn)."""
