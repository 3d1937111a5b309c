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
import socket
import struct
from typing import Any

import msgspec

MAX_FRAME = 16 * 1024 * 1024
_LENGTH = struct.Struct("!I")


class ChannelClosedError(Exception):
    """The other end of the channel is gone."""


class Channel:
    """Reads and writes whole messages on one stream."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._reader = reader
        self._writer = writer
        self._encoder = msgspec.msgpack.Encoder()
        self._decoder = msgspec.msgpack.Decoder()

    @classmethod
    async def from_socket(cls, sock: socket.socket) -> "Channel":
        reader, writer = await asyncio.open_connection(sock=sock, limit=MAX_FRAME)
        return cls(reader, writer)

    def send(self, message: dict[str, Any]) -> None:
        if self._writer.is_closing():
            raise ChannelClosedError("channel closed")
        body = self._encoder.encode(message)
        self._writer.write(_LENGTH.pack(len(body)) + body)

    async def receive(self) -> dict[str, Any]:
        """Next message; ChannelClosedError at end of stream or on a bad frame."""
        try:
            head = await self._reader.readexactly(4)
            (size,) = _LENGTH.unpack(head)
            if size > MAX_FRAME:
                raise ChannelClosedError(f"frame of {size} bytes exceeds the limit")
            body = await self._reader.readexactly(size)
        except (asyncio.IncompleteReadError, ConnectionError) as exc:
            raise ChannelClosedError("channel closed") from exc
        try:
            message = self._decoder.decode(body)
        except msgspec.DecodeError as exc:
            raise ChannelClosedError(f"undecodable frame: {exc}") from exc
        if not isinstance(message, dict):
            raise ChannelClosedError("frame is not a map")
        return message

    async def drain(self) -> None:
        await self._writer.drain()

    def close(self) -> None:
        self._writer.close()
