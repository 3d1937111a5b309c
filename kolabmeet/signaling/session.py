"""A client's socket.io session on a WebSocket of its own: Engine.IO 4 and socket.io 5 on the
websocket transport, in the default namespace, with JSON packets.

The Kolab web client connects this way only (PROTOCOL.md). python-engineio and python-socketio
served these sessions before; per connect they drew two ids with a system call each, started a
ping task, kept the namespace's members in bidicts and decoded every packet into objects
dispatched through tasks, which made the connect the dearest step of a join. Here a connect is
its few packets, written as python-socketio wrote them (`tests/signaling/test_session.py` holds
its packets) but for the refusal, whose form socket.io-client did not accept (REFUSED). A client
that starts on long-polling is still served by python-socketio (`Signaling._handle`).
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import msgspec
import socketio
from aiohttp import WSMsgType, web

from kolabmeet import ids
from kolabmeet.signaling.packets import parse_ack, parse_request
from kolabmeet.signaling.websocket import FrameWriter

log = logging.getLogger("kolabmeet.signaling")

REASON = socketio.AsyncServer.reason
"""The disconnect reasons python-socketio gives its handlers, given alike here."""
REFUSED = "41"
"""A refused socket's answer after the connect's ack: socket.io's DISCONNECT, which socket.io-client
reports as `io server disconnect` and does not retry (PROTOCOL.md), as the original server's
`socket.disconnect(true)` gives it. (python-socketio writes `41{"message":...}`, a payload
socket.io-client 4's parser rejects: it then reconnects at once, again and again.)"""
UNABLE = '"Unable to connect"'
"""python-socketio's CONNECT_ERROR payload for a namespace it does not serve."""
MAX_NAMESPACE = 200
CONNECT_TIMEOUT = 45.0
"""Seconds a WebSocket may stay open without a connected namespace (socket.io's `connectTimeout`)."""

_encode = msgspec.json.Encoder().encode


class Session:
    """One socket.io client on one WebSocket, from its HTTP upgrade until the connection ends.

    `sid` is the socket.io id while the default namespace is connected (None before and after);
    the session is in `registry` under it meanwhile. The signaling is told through three hooks:
    `on_connect(sid, query)` decides whether the namespace connect is accepted, `on_request(session,
    sid, ack_id, payload)` gets each `request` event, `on_disconnect(sid, reason)` the namespace's end.
    """

    def __init__(self, request: web.Request, registry: dict[str, "Session"],
                 on_connect: Callable[[str, Mapping[str, str]], Awaitable[bool]],
                 on_request: Callable[["Session", str, int | None, Any], None],
                 on_disconnect: Callable[[str, str], Awaitable[None]],
                 ping_interval: float, ping_timeout: float, max_message: int) -> None:
        self.eio_sid = ids.session_id()
        self.sid: str | None = None
        self.query = request.query
        """The query of the WebSocket's URL (the peer, room and token)."""
        self._request = request
        self._registry = registry
        self._on_connect, self._on_request, self._on_disconnect = on_connect, on_request, on_disconnect
        self._ping_interval, self._ping_timeout, self._max_message = ping_interval, ping_timeout, max_message
        self._loop = asyncio.get_running_loop()
        self._writer: FrameWriter | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._connect_timer: asyncio.TimerHandle | None = None
        self._pinged = False
        self._reason = REASON.TRANSPORT_CLOSE
        self._calls: dict[int, asyncio.Future[list[Any]]] = {}
        self._ack_ids = itertools.count(1)

    async def serve(self) -> web.WebSocketResponse:
        """The WebSocket handshake, engine.io's open packet, then every packet until the end."""
        ws = web.WebSocketResponse(max_msg_size=self._max_message, compress=False)
        await ws.prepare(self._request)
        self._writer = FrameWriter(self._request.transport, self._loop)
        self.write("0" + _encode({"sid": self.eio_sid, "upgrades": [], "pingTimeout": int(self._ping_timeout * 1000),
                                  "pingInterval": int(self._ping_interval * 1000),
                                  "maxPayload": self._max_message}).decode())
        self._timer = self._loop.call_later(self._ping_interval, self._ping)
        self._connect_timer = self._loop.call_later(CONNECT_TIMEOUT, self._connect_overdue)
        try:
            while True:
                message = await ws.receive()
                if message.type is WSMsgType.BINARY:
                    log.debug("socket %s: binary message ignored (the protocol has none)", self.eio_sid)
                elif message.type is not WSMsgType.TEXT or not await self._receive(message.data):
                    break
        finally:
            for timer in (self._timer, self._connect_timer):
                if timer is not None:
                    timer.cancel()
            await self._leave(self._reason)
            if ws.closed:  # aiohttp answered the client's close frame: nothing may follow it
                self._writer.stop()
            else:
                self._writer.flush()
            await ws.close()
        return ws

    def write(self, packet: str) -> None:
        """An engine.io packet, written at the end of this loop turn."""
        if self._writer is not None:
            self._writer.write(packet)

    def write_frame(self, frame: bytes, hold: bool = False) -> None:
        """A whole WebSocket frame (a notification framed once for many sockets), see FrameWriter."""
        if self._writer is not None:
            self._writer.write_frame(frame, hold)

    async def call(self, data: Any, timeout: float) -> Any:
        """Event `request` with `data` and an ack; the ack's arguments as python-socketio's `call`
        gives them (none: None, one: it, more: a tuple). Raises socketio's TimeoutError."""
        if self.sid is None:
            raise socketio.exceptions.TimeoutError()
        ack_id = next(self._ack_ids)
        future: asyncio.Future[list[Any]] = self._loop.create_future()
        self._calls[ack_id] = future
        timer = self._loop.call_later(timeout, _expire, future)
        self.write(f"42{ack_id}" + _encode(["request", data]).decode())
        try:
            arguments = await future
        finally:
            timer.cancel()
            del self._calls[ack_id]
        return None if not arguments else arguments[0] if len(arguments) == 1 else tuple(arguments)

    async def disconnect(self, sid: str) -> None:
        """The server ends the namespace connected as `sid` (socket.io's DISCONNECT), unless it
        ended already; the client closes the connection."""
        if self.sid == sid:
            self.write("41")
            await self._leave(REASON.SERVER_DISCONNECT)

    def close(self, reason: str = REASON.SERVER_DISCONNECT) -> None:
        """engine.io's CLOSE, then the WebSocket's close frame and the connection closed."""
        if self._writer is not None:
            self._reason = reason
            self.write("1")
            self._writer.end()

    async def _receive(self, text: str) -> bool:
        """One engine.io packet; False when the session is over."""
        kind = text[:1]
        if kind == "4":
            return await self._message(text[1:])
        if kind == "3":
            self._pong()
        elif kind == "1":
            self._reason = REASON.CLIENT_DISCONNECT
            return False
        elif len(kind) == 1 and "0" <= kind <= "9":
            if kind not in "256":  # ping (Engine.IO 3's), upgrade, noop
                log.debug("socket %s: engine.io packet of type %s ignored", self.eio_sid, kind)
        else:
            log.info("socket %s: undecodable engine.io packet; closing it", self.eio_sid)
            return False
        return True

    async def _message(self, text: str) -> bool:
        """One socket.io packet of the default namespace (connect, disconnect, event, ack); those of
        other namespaces are refused or ignored, as python-socketio does with no handler for them."""
        kind = text[:1]
        if kind == "2":
            request = parse_request(text) if self.sid is not None else None
            if request is not None:
                self._on_request(self, self.sid, *request)
        elif kind == "3":
            if self.sid is not None:  # acks of a namespace that ended are dropped, as python-socketio does
                self._acked(text)
        elif kind == "0":
            namespace = _namespace(text[1:])
            if namespace != "/":
                self.write("44" + namespace[:MAX_NAMESPACE] + "," + UNABLE)
            elif self.sid is not None:
                self.write("44" + UNABLE)
            else:
                await self._connect()
        elif kind == "1":
            if _namespace(text[1:]) == "/":
                await self._leave(REASON.CLIENT_DISCONNECT)
        else:
            log.debug("socket %s: socket.io packet of type %r ignored", self.eio_sid, kind)
        return True

    async def _connect(self) -> None:
        """As python-socketio with `always_connect`: the connect's ack first, then the handler's
        decision; a refused socket is told so and left to close its connection. A handler that
        fails is a refusal too, after the namespace's end is handled as any other."""
        sid = self.sid = ids.session_id()
        self._registry[sid] = self
        self.write("40" + _encode({"sid": sid}).decode())
        try:
            accepted = await self._on_connect(sid, self.query)
        except Exception:
            log.exception("socket %s: connect failed", self.eio_sid)
            self.write(REFUSED)
            await self._leave(REASON.SERVER_DISCONNECT)
            return
        if not accepted and self.sid == sid:
            self.write(REFUSED)
            self._end_namespace()

    async def _leave(self, reason: str) -> None:
        """The default namespace ends; calls waiting for an ack wait for their timeouts, as they do
        with python-socketio (a peer that comes back on a new socket is asked again)."""
        sid = self._end_namespace()
        if sid is None:
            return
        try:
            await self._on_disconnect(sid, reason)
        except Exception:
            log.exception("socket %s: handling its disconnect (%s) failed", sid, reason)

    def _end_namespace(self) -> str | None:
        """The socket.io id the namespace had, now out of the registry; None if not connected."""
        sid, self.sid = self.sid, None
        if sid is not None:
            self._registry.pop(sid, None)
        return sid

    def _acked(self, text: str) -> None:
        ack = parse_ack(text)
        future = self._calls.get(ack[0]) if ack is not None else None
        if future is None:
            log.debug("socket %s: an ack nothing waits for, or undecodable, ignored", self.eio_sid)
        elif not future.done():
            future.set_result(ack[1])

    def _ping(self) -> None:
        """Every ping interval: a ping, answered within the ping timeout or the connection closes."""
        self.write("2")
        self._pinged = True
        self._timer = self._loop.call_later(self._ping_timeout, self._no_pong)

    def _pong(self) -> None:
        if self._pinged:
            self._pinged = False
            self._timer.cancel()
            self._timer = self._loop.call_later(self._ping_interval, self._ping)

    def _no_pong(self) -> None:
        log.info("socket %s: no answer to a ping in %.0f s; closing it", self.eio_sid, self._ping_timeout)
        self.close(REASON.PING_TIMEOUT)

    def _connect_overdue(self) -> None:
        if self.sid is None:
            log.info("socket %s: no namespace connected in %.0f s; closing it", self.eio_sid, CONNECT_TIMEOUT)
            self.close(REASON.TRANSPORT_CLOSE)


def _namespace(text: str) -> str:
    """The namespace a socket.io packet's text (after its type) names: `/name,...`, else `/`."""
    if not text.startswith("/"):
        return "/"
    comma = text.find(",")
    return text if comma < 0 else text[:comma]


def _expire(future: asyncio.Future[list[Any]]) -> None:
    if not future.done():
        future.set_exception(socketio.exceptions.TimeoutError())
