"""socket.io signaling: connection checks, reconnects, request dispatch."""

from __future__ import annotations

import asyncio
import hmac
import logging
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Callable
from urllib.parse import parse_qsl

import socketio
from aiohttp import web
from multidict import MultiDict

from kolabmeet.media.errors import MediaError
from kolabmeet.signaling import eager
from kolabmeet.signaling.context import Context
from kolabmeet.signaling.errors import RequestError
from kolabmeet.signaling.notifier import Notifier
from kolabmeet.signaling.packets import SignalingPacket, ack_packet
from kolabmeet.signaling.requests import HANDLERS
from kolabmeet.signaling.session import Session
from kolabmeet.signaling.turn import ice_servers

if TYPE_CHECKING:
    from kolabmeet.api.webhooks import Webhooks
    from kolabmeet.config import Config
    from kolabmeet.signaling.peer import Peer
    from kolabmeet.signaling.rooms import Rooms

log = logging.getLogger("kolabmeet.signaling")

SIGNALING_PATH = "meetmedia/signaling"
MAX_MESSAGE = 1024 * 1024
CLOSE_TIMEOUT = 2.0
"""Seconds stopping waits for queued messages, then for sockets to take their close packet."""


class Signaling:
    """The socket.io server of the meeting: one socket per connected peer.

    A client that opens its socket on a WebSocket (as the Kolab web client does) gets a `Session`
    of the signaling's own; one that starts on long-polling is served by python-socketio. Both
    reach the same connect, request and disconnect handlers below.
    """

    def __init__(self, config: "Config", webhooks: "Webhooks") -> None:
        self.config = config
        self.webhooks = webhooks
        self.sio = socketio.AsyncServer(
            async_mode="aiohttp", cors_allowed_origins="*", always_connect=True,
            max_http_buffer_size=MAX_MESSAGE, logger=False, engineio_logger=False, serializer=SignalingPacket,
        )
        self.sessions: dict[str, Session] = {}
        """The signaling's own sessions whose namespace is connected, by socket.io id."""
        self._open_sessions: set[Session] = set()
        self.notifier = Notifier(self.sio, self.sessions)
        self.rooms: "Rooms | None" = None
        self._peers_by_sid: dict[str, "Peer"] = {}
        self._requests: set[asyncio.Task[None]] = set()
        self.on_request_done: Callable[[str, float, bool], None] | None = None
        """Told (method, seconds, succeeded) after every request: the metrics time them."""
        self.sio.on("connect", self._on_connect)
        self.sio.on("disconnect", self._on_disconnect)
        self.sio.on("request", self._on_request)

    async def close(self) -> None:
        """Drop every engine.io connection, so that stopping never waits on a client for long."""
        await self.notifier.drain(CLOSE_TIMEOUT)
        for session in list(self._open_sessions):
            session.close()
        eio = self.sio.eio
        # Each socket closed here rather than by eio.disconnect(), which fails on an empty set when the
        # last client leaves between a check and its call.
        closing = [asyncio.create_task(socket.close(reason=eio.reason.SERVER_DISCONNECT))
                   for socket in list(eio.sockets.values())]
        if closing:
            _, pending = await asyncio.wait(closing, timeout=CLOSE_TIMEOUT)
            if pending:
                log.warning("closing: %d socket(s) did not take their close packet; aborted", len(pending))
                for task in pending:
                    task.cancel()
                for socket in list(eio.sockets.values()):
                    await socket.close(wait=False, abort=True)
        eio.sockets = {}
        await eio.shutdown()

    def attach(self, app: web.Application, rooms: "Rooms") -> None:
        """Serve on /meetmedia/signaling, with and without the trailing slash."""
        self.rooms = rooms
        for path in (f"/{SIGNALING_PATH}/", f"/{SIGNALING_PATH}"):
            app.router.add_get(path, self._handle)
            app.router.add_post(path, self.sio.handle_request)
            app.router.add_route("OPTIONS", path, self.sio.handle_request)

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        """A new Engine.IO 4 socket opened on a WebSocket is a session of ours; the rest (long-polling,
        the upgrade of a polling socket, bad requests) is python-engineio's."""
        query = request.query
        if (query.get("transport") != "websocket" or "sid" in query or query.get("EIO") != "4"
                or request.headers.get("Upgrade", "").lower() != "websocket"):
            return await self.sio.handle_request(request)
        eio = self.sio.eio
        session = Session(request, self.sessions, self._connect, self._take_request, self._on_disconnect,
                          eio.ping_interval, eio.ping_timeout, MAX_MESSAGE)
        self._open_sessions.add(session)
        try:
            return await session.serve()
        finally:
            self._open_sessions.discard(session)

    def _find_peer(self, query: Mapping[str, str]) -> "Peer | None":
        peer_id, room_id, token = (query.get(key, "") for key in ("peerId", "roomId", "authToken"))
        room = self.rooms.get(room_id) if self.rooms and room_id else None
        peer = room.peers.get(peer_id) if room else None
        if peer is None or peer.closed or not hmac.compare_digest(peer.token.encode(), token.encode()):
            return None
        return peer

    async def _on_connect(self, sid: str, environ: dict[str, Any], auth: Any = None) -> bool:
        """python-socketio's connect handler (clients that start on long-polling). A refused socket
        is accepted, then disconnected: python-socketio's own refusal, `41{"message":...}`, is a
        packet socket.io-client 4 rejects and answers by reconnecting (see session.REFUSED)."""
        if not await self._connect(sid, MultiDict(parse_qsl(environ.get("QUERY_STRING", "")))):
            self.notifier.disconnect(sid)
        return True

    async def _connect(self, sid: str, query: Mapping[str, str]) -> bool:
        """A socket of the default namespace, its URL's query naming the peer: True when accepted."""
        peer = self._find_peer(query)
        if peer is None:
            log.info("socket %s refused: unknown room or peer, or wrong token", sid)
            return False
        room = self.rooms.get(peer.room_id)
        room.socket_connected()
        old_sid = peer.sid
        if old_sid is not None:
            self._peers_by_sid.pop(old_sid, None)
            self.notifier.disconnect(old_sid)
        peer.cancel_grace()
        peer.sid = sid
        self._peers_by_sid[sid] = peer
        if peer.ready:
            log.info("room %s: peer %s is back", room.id, peer.id)
            self.notifier.notify(peer, "roomBack", {}, at_once=True)
            return True
        try:
            await room.router_for(peer)
        except MediaError as exc:
            log.error("room %s: no router for peer %s: %s", room.id, peer.id, exc)
            self._peers_by_sid.pop(sid, None)
            if peer.sid == sid:
                await room.close_peer(peer)
            return False
        if peer.sid != sid:
            return True  # replaced by a newer socket meanwhile, which announces the peer
        peer.ready = True
        log.info("room %s: peer %s connected", room.id, peer.id)
        servers = ice_servers(self.config.turn_server, self.config.turn_static_secret, peer.id)
        self.notifier.notify(peer, "roomReady", {"iceServers": servers, "roomId": room.id}, at_once=True)
        return True

    async def _on_disconnect(self, sid: str, reason: str = "") -> None:
        peer = self._peers_by_sid.pop(sid, None)
        if peer is None or peer.sid != sid:
            return
        peer.sid = None
        room = self.rooms.get(peer.room_id)
        if room is None:
            return
        if reason == self.sio.reason.CLIENT_DISCONNECT:
            log.info("room %s: peer %s left", room.id, peer.id)
            await room.close_peer(peer)
            return
        log.info("room %s: peer %s dropped (%s); waiting %.0f s", room.id, peer.id, reason,
                 self.config.reconnect_grace)
        loop = asyncio.get_running_loop()
        peer.grace_timer = loop.call_later(self.config.reconnect_grace, lambda: room.spawn(room.close_peer(peer)))

    def _take_request(self, session: Session, sid: str, ack_id: int | None, payload: Any) -> None:
        """A `request` event of a session, answered as python-socketio answers one (its ack written
        to the socket). The handler starts at once and gets a task of its own only if it has to
        wait (`eager`): most requests never do."""
        try:
            task = eager.start(self._answer(session, sid, ack_id, payload))
        except Exception:  # a fault answering one request must not end the socket's session
            log.exception("socket %s: answering a request failed", sid)
            return
        if task is not None:
            self._requests.add(task)
            task.add_done_callback(self._requests.discard)

    async def _answer(self, session: Session, sid: str, ack_id: int | None, payload: Any) -> None:
        try:
            answer = await self._on_request(sid, payload)
        except asyncio.CancelledError:
            answer = None  # as python-socketio answers a cancelled handler
        if ack_id is not None:
            session.write("4" + ack_packet(ack_id, answer))

    async def _on_request(self, sid: str, payload: Any = None) -> Any:
        method = payload.get("method") if isinstance(payload, dict) else None
        if not isinstance(method, str):
            return 500, "request failed: a request needs {method, data}"
        handler = HANDLERS.get(method)
        if handler is None:
            return 500, f'unknown request.method "{method}"'
        peer = self._peers_by_sid.get(sid)
        room = self.rooms.get(peer.room_id) if peer is not None else None
        if peer is None or room is None or not peer.ready or peer.closed:
            return 500, f"request {method} failed: this socket has no peer in a ready room"
        data = payload.get("data")
        if data is None:
            data = {}
        if not isinstance(data, dict):
            return 500, f"request {method} failed: data must be an object"
        ctx = Context(peer, room, self.config, self.notifier, self.webhooks)
        started = time.monotonic()
        try:
            result = await handler(ctx, data)
        except (RequestError, MediaError) as exc:
            log.info("room %s: peer %s: %s failed: %s", room.id, peer.id, method, exc)
            self._done(method, started, False)
            return 500, f"request {method} failed: {exc}"
        except Exception:
            log.exception("room %s: peer %s: %s failed", room.id, peer.id, method)
            self._done(method, started, False)
            return 500, f"request {method} failed"
        self._done(method, started, True)
        return None if result is None else (None, result)

    def _done(self, method: str, started: float, succeeded: bool) -> None:
        if self.on_request_done is not None:
            self.on_request_done(method, time.monotonic() - started, succeeded)
