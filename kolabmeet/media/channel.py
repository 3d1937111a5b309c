"""The channel between the control process and a media worker.

Length-prefixed msgpack frames over an asyncio stream (a socket pair). Three
kinds of message, all maps:

- request:      {"id": int, "method": str, "handlerId": str, "data": map}
- response:     {"id": int, "accepted": bool, "data": any} or
                {"id": int, "accepted": False, "error": str, "reason": str}
- notification: {"targetId": str, "event": str, "data": any}
"""

from __future__ import annotations

import asyncio
import collections
import socket
import struct
from collections.abc import Callable
from typing import Any

import msgspec

MAX_FRAME = 16 * 1024 * 1024
MAX_WAITING = 1024
"""Messages kept for `receive` before the channel stops reading the socket until it is read."""
_LENGTH = struct.Struct("!I")


class ChannelClosedError(Exception):
    """The other end of the channel is gone."""


class ChannelFrameError(ChannelClosedError):
    """A frame that is too long, undecodable or not a map ended the channel."""


MessageHandler = Callable[[dict[str, Any]], None]


class Channel(asyncio.Protocol):
    """Reads and writes whole messages on one stream.

    Frames are cut and decoded as the bytes arrive (`data_received`); each message then goes to the
    handler given to `listen`, at once, or waits for `receive`. A handler costs no task wake-up per
    message, which a reader task awaiting a stream did twice per message (head, then body).
    """

    def __init__(self) -> None:
        self._transport: asyncio.Transport | None = None
        self._buffer = bytearray()
        self._messages: collections.deque[dict[str, Any]] = collections.deque()
        self._waiter: asyncio.Future[None] | None = None
        self._handler: MessageHandler | None = None
        self._on_closed: Callable[[ChannelClosedError], None] | None = None
        self._closed: ChannelClosedError | None = None
        self._decoder = msgspec.msgpack.Decoder()
        self._encoder = msgspec.msgpack.Encoder()

    @classmethod
    async def from_socket(cls, sock: socket.socket) -> "Channel":
        _transport, channel = await asyncio.get_running_loop().connect_accepted_socket(cls, sock)
        return channel

    def listen(self, handler: MessageHandler, on_closed: Callable[[ChannelClosedError], None]) -> None:
        """Every message from now on to `handler` as it arrives (those waiting first); `on_closed`
        once, when the channel closes or a bad frame ends it."""
        self._handler, self._on_closed = handler, on_closed
        while self._messages and self._handler is not None:
            handler(self._messages.popleft())
        if self._closed is not None:
            self._end(self._closed)

    def send(self, message: dict[str, Any]) -> None:
        if self._closed is not None or self._transport is None or self._transport.is_closing():
            raise ChannelClosedError("channel closed")
        body = self._encoder.encode(message)
        self._transport.write(_LENGTH.pack(len(body)) + body)

    async def receive(self) -> dict[str, Any]:
        """Next message; ChannelClosedError at end of stream or on a bad frame."""
        while not self._messages:
            if self._closed is not None:
                raise self._closed
            self._waiter = asyncio.get_running_loop().create_future()
            await self._waiter
        if len(self._messages) == MAX_WAITING and self._closed is None:
            self._transport.resume_reading()  # type: ignore[union-attr]
        return self._messages.popleft()

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport  # type: ignore[assignment]

    def connection_lost(self, exc: Exception | None) -> None:
        self._end(ChannelClosedError("channel closed"))

    def data_received(self, data: bytes) -> None:
        buffer = self._buffer
        buffer += data
        offset = 0
        while len(buffer) - offset >= _LENGTH.size and self._closed is None:
            (size,) = _LENGTH.unpack_from(buffer, offset)
            if size > MAX_FRAME:
                self._fail(f"frame of {size} bytes exceeds the limit")
                return
            end = offset + _LENGTH.size + size
            if len(buffer) < end:
                break
            try:
                message = self._decoder.decode(memoryview(buffer)[offset + _LENGTH.size:end])
            except msgspec.DecodeError as exc:
                self._fail(f"undecodable frame: {exc}")
                return
            offset = end
            if not isinstance(message, dict):
                self._fail("frame is not a map")
                return
            if self._handler is not None:
                self._handler(message)
            else:
                self._messages.append(message)
                self._wake()
                if len(self._messages) == MAX_WAITING:
                    self._transport.pause_reading()  # type: ignore[union-attr]
        del buffer[:offset]

    def _fail(self, reason: str) -> None:
        self._end(ChannelFrameError(reason))
        self.close()

    def _end(self, error: ChannelClosedError) -> None:
        if self._closed is None:
            self._closed = error
        self._wake()
        self._handler = None
        on_closed, self._on_closed = self._on_closed, None
        if on_closed is not None:
            on_closed(self._closed)

    def _wake(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)
