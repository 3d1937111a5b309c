"""The dev-mode demo under /meetmedia/demo/: the test page, and tokens for one demo room.

Only `kolabmeet serve --dev` adds these routes (no X-Auth-Token: the demo is for a
local try on 127.0.0.1). Each visitor gets a publisher token of the same room,
made again when the last one closed.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web

from kolabmeet.api.routes import connection_token
from kolabmeet.demo import page_file
from kolabmeet.signaling.roles import Role

if TYPE_CHECKING:
    from kolabmeet.config import Config
    from kolabmeet.signaling.room import Room
    from kolabmeet.signaling.rooms import Rooms

DEMO_PREFIX = "/meetmedia/demo/"
_TYPES = {".html": "text/html", ".js": "text/javascript"}


class Demo:
    """Route handlers of the demo page."""

    def __init__(self, config: "Config", rooms: "Rooms") -> None:
        self.config = config
        self.rooms = rooms
        self.room: "Room | None" = None

    def routes(self) -> list[web.RouteDef]:
        return [
            web.get(DEMO_PREFIX, self.page),
            web.get(DEMO_PREFIX + "{name}", self.page),
            web.post(DEMO_PREFIX + "token", self.token),
        ]

    async def page(self, request: web.Request) -> web.StreamResponse:
        path = page_file(request.match_info.get("name", "index.html"))
        if path is None or not path.exists():
            raise web.HTTPNotFound(text="not part of the demo page (bundles missing? run: python -m kolabmeet.demo)")
        return web.FileResponse(path, headers={"Content-Type": _TYPES[path.suffix], "Cache-Control": "no-store"})

    async def token(self, request: web.Request) -> web.Response:
        if self.room is None or self.room.closed:
            self.room = self.rooms.create()
        peer = self.room.add_peer(int(Role.SUBSCRIBER | Role.PUBLISHER))
        return web.json_response({"token": connection_token(self.config, self.room.id, peer)})
