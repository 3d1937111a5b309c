"""The writing side of the signaling's WebSockets: the frames of one loop turn in one system call.

A join sends a notification to everyone in the room, so a burst of joins queues many small
frames on each socket; aiohttp writes each frame on its own (a `send` on the TCP socket each).
Here the frames a socket is given in one turn of the event loop are joined and written once, at
the end of the turn, and notifications that come within a few milliseconds of the last one written
to the socket wait for the rest of that time to leave together (an ack or a request does not wait,
nor does a notification after a quiet spell, such as roomReady after the connect).
permessage-deflate is not offered, as the original server's socket.io does not: notifications
are small and compressing each one cost more CPU than it saved.
"""

from __future__ import annotations

import asyncio
import logging
import struct

log = logging.getLogger("kolabmeet.signaling")

TEXT, BINARY = 0x81, 0x82
"""First byte of an unfragmented frame (FIN set) of each kind; servers do not mask."""
NOTIFICATION_HOLD = 0.005
"""Seconds within which a socket's notifications share one write: a burst of joins notifies
everyone in the room many times over, and each write is a system call and a wake-up of the reader;
the first notification after a quiet spell goes at once."""
CLOSE_NORMAL = b"\x88\x02\x03\xe8"
"""A server's close frame with status 1000 (RFC 6455 sections 5.5.1 and 7.4.1)."""
MAX_UNSENT = 4 * 1024 * 1024
"""Bytes a socket may leave unread in its connection's send buffer before it is closed: a client
that stops reading while its room goes on would otherwise grow the server without bound."""


def frame_header(opcode: int, length: int) -> bytes:
    """RFC 6455 section 5.2 header of a server's unmasked frame."""
    if length < 126:
        return struct.pack("!BB", opcode, length)
    if length < 65536:
        return struct.pack("!BBH", opcode, 126, length)
    return struct.pack("!BBQ", opcode, 127, length)


class FrameWriter:
    """Writes a WebSocket's frames to its TCP transport, those of one loop turn together."""

    def __init__(self, transport: asyncio.BaseTransport | None, loop: asyncio.AbstractEventLoop | None = None) -> None:
        self._transport = transport
        self._pending: list[bytes] = []
        self._flushing: asyncio.Handle | None = None
        self._held = False
        self._pending_notification = False
        self._notified_at = -NOTIFICATION_HOLD
        self._ending = False
        self._loop = loop or asyncio.get_running_loop()

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
        self._flushing = self._loop.call_later(wait, self.flush) if self._held else self._loop.call_soon(self.flush)

    def flush(self) -> None:
        """What is pending, written now."""
        if self._flushing is not None:
            self._flushing.cancel()
            self._flushing = None
        data, self._pending = b"".join(self._pending), []
        notified, self._pending_notification = self._pending_notification, False
        transport = self._transport
        if data and transport is not None and not transport.is_closing():
            transport.write(data)  # type: ignore[attr-defined]
            if notified:
                self._notified_at = self._loop.time()
            if self._ending:
                transport.close()
            elif transport.get_write_buffer_size() > MAX_UNSENT:  # type: ignore[attr-defined]
                log.info("socket at %s: over %d KiB unread; closing it", transport.get_extra_info("peername"),
                         MAX_UNSENT // 1024)
                self._ending = True
                transport.abort()  # type: ignore[attr-defined]

    def end(self) -> None:
        """A WebSocket close frame (1000, normal) after what is pending, then the connection closed:
        a client that does not answer it is not waited for."""
        self.write_frame(CLOSE_NORMAL)
        self._ending = True

    def stop(self) -> None:
        """Nothing more is written, what is pending included (the connection's close frame went)."""
        self._ending = True
        self._pending = []
        if self._flushing is not None:
            self._flushing.cancel()
            self._flushing = None
