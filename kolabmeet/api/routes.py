"""The HTTP API the Kolab app calls, under /meetmedia/api."""

from __future__ import annotations

import json
import logging
from typing import TYPE_CHECKING, Any

from aiohttp import web

from kolabmeet.ops import snapshot
from kolabmeet.signaling.roles import has, parse_role

if TYPE_CHECKING:
    from kolabmeet.config import Config
    from kolabmeet.signaling.notifier import Notifier
    from kolabmeet.signaling.rooms import Rooms

log = logging.getLogger("kolabmeet.api")

API_PREFIX = "/meetmedia/api"


class BadRequest(web.HTTPBadRequest):
    """400 with a JSON body that says what is wrong."""

    def __init__(self, message: str) -> None:
        super().__init__(text=json.dumps({"error": message}), content_type="application/json")


async def _json_body(request: web.Request) -> Any:
    """The parsed JSON body, None when empty; BadRequest when it cannot be read or parsed."""
    try:
        raw = await request.read()
    except web.RequestPayloadError as exc:
        raise BadRequest(f"body cannot be read: {exc}") from None
    if not raw.strip():
        return None
    try:
        return json.loads(raw)
    except (ValueError, RecursionError) as exc:
        raise BadRequest(f"body is not valid JSON: {exc}") from None


def connection_token(config: "Config", room_id: str, peer: Any) -> str:
    """The signaling URL a client connects to (PROTOCOL.md's `token`)."""
    return (f"{config.signaling_scheme}://{config.public_domain}"
            f"?peerId={peer.id}&roomId={room_id}&authToken={peer.token}")


class Api:
    """Route handlers; they read and change the room registry."""

    def __init__(self, config: "Config", rooms: "Rooms", notifier: "Notifier") -> None:
        self.config = config
        self.rooms = rooms
        self.notifier = notifier

    def routes(self) -> list[web.RouteDef]:
        return [
            web.get(API_PREFIX + "/ping", self.ping),
            web.get(API_PREFIX + "/health", self.health),
            web.get(API_PREFIX + "/sessions", self.list_sessions),
            web.get(API_PREFIX + "/sessions/{room_id}", self.get_session),
            web.post(API_PREFIX + "/sessions", self.create_session),
            web.post(API_PREFIX + "/sessions/{room_id}/connection", self.create_connection),
            web.post(API_PREFIX + "/signal", self.signal),
            web.get(API_PREFIX + "/stats", self.stats),
        ]

    async def ping(self, request: web.Request) -> web.Response:
        return web.Response(text="PONG")

    async def health(self, request: web.Request) -> web.Response:
        return web.json_response({"success": True, "message": "Healthy"})

    async def list_sessions(self, request: web.Request) -> web.Response:
        rooms = self.rooms.rooms.values()
        return web.json_response([{"roomId": r.id, "createdAt": r.created_at} for r in rooms])

    async def get_session(self, request: web.Request) -> web.Response:
        return web.Response(status=200 if self.rooms.get(request.match_info["room_id"]) else 404)

    async def create_session(self, request: web.Request) -> web.Response:
        await _json_body(request)
        return web.json_response({"id": self.rooms.create().id})

    async def create_connection(self, request: web.Request) -> web.Response:
        room = self.rooms.get(request.match_info["room_id"])
        body = await _json_body(request)
        if room is None or room.closed:
            return web.Response(status=404)
        role = body.get("role") if isinstance(body, dict) else None
        try:
            role = 0 if role is None else parse_role(role)
        except ValueError as exc:
            raise BadRequest(str(exc)) from None
        peer = room.add_peer(role)
        return web.json_response({"id": peer.id, "token": connection_token(self.config, room.id, peer)})

    async def signal(self, request: web.Request) -> web.Response:
        body = await _json_body(request)
        if not isinstance(body, dict):
            raise BadRequest("body must be an object {roomId, type, data, role?}")
        room_id, kind, role = body.get("roomId"), body.get("type"), body.get("role")
        if not isinstance(room_id, str) or not isinstance(kind, str) or not kind:
            raise BadRequest("roomId and type must be strings")
        try:
            role = None if role is None else parse_role(role)
        except ValueError as exc:
            raise BadRequest(str(exc)) from None
        room = self.rooms.get(room_id)
        if room is not None:
            peers = [p for p in room.connected_peers() if role is None or has(p.role, role)]
            self.notifier.broadcast(peers, f"signal:{kind}", body.get("data"))
        return web.json_response({})

    async def stats(self, request: web.Request) -> web.Response:
        return web.json_response(await snapshot.stats(self.rooms))
