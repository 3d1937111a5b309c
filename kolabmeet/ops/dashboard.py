"""A live dashboard at /meetmedia/dashboard/: rooms, peers and every stream, with plots of the last minutes.

A browser cannot send X-Auth-Token when it opens a page, so the operator gives the
token once to a login form; the answer is a cookie (HttpOnly, SameSite=Strict,
Secure behind TLS) holding an HMAC of the token, not the token. The page and its
data (`data`, polled every second) need that cookie or the token header; nothing
is cached by the browser.
"""

from __future__ import annotations

import hashlib
import hmac
import html
import time
from importlib import resources
from typing import TYPE_CHECKING, Any

from aiohttp import web

from kolabmeet.ops import snapshot

if TYPE_CHECKING:
    from kolabmeet.config import Config
    from kolabmeet.signaling.rooms import Rooms

DASHBOARD_PREFIX = "/meetmedia/dashboard/"
COOKIE = "kolabmeet_dashboard"
NO_STORE = {"Cache-Control": "no-store"}
LOGIN_FORM = """<!doctype html><meta charset="utf-8"><title>kolabmeet dashboard</title>
<form method="post" action="login" style="font: 16px sans-serif; margin: 4em auto; width: 24em">
<p>kolabmeet dashboard: the server's AUTH_TOKEN, please.</p>
<p style="color: #b00">{message}</p>
<input type="password" name="token" autofocus style="width: 100%"> <button>open</button></form>"""


class Dashboard:
    """The dashboard's routes (open in the token middleware: they check the cookie or token themselves)."""

    def __init__(self, config: "Config", rooms: "Rooms") -> None:
        self.config = config
        self.rooms = rooms
        self._token = config.auth_token.encode()
        self._cookie = hmac.new(self._token, b"kolabmeet dashboard", hashlib.sha256).hexdigest()

    def routes(self) -> list[web.RouteDef]:
        return [
            web.get(DASHBOARD_PREFIX, self.page),
            web.get(DASHBOARD_PREFIX + "login", self.login_form),
            web.post(DASHBOARD_PREFIX + "login", self.login),
            web.get(DASHBOARD_PREFIX + "data", self.data),
        ]

    def _allowed(self, request: web.Request) -> bool:
        cookie = request.cookies.get(COOKIE, "").encode()
        header = request.headers.get("X-Auth-Token", "").encode()
        return hmac.compare_digest(cookie, self._cookie.encode()) or hmac.compare_digest(header, self._token)

    async def login_form(self, request: web.Request) -> web.Response:
        return _form("")

    async def login(self, request: web.Request) -> web.Response:
        form = await request.post()
        given = str(form.get("token", "")).encode()
        if not hmac.compare_digest(given, self._token):
            return _form("That is not the token.", status=403)
        response = web.HTTPSeeOther(location=DASHBOARD_PREFIX, headers=NO_STORE)
        response.set_cookie(COOKIE, self._cookie, httponly=True, samesite="Strict", secure=self.config.tls,
                            path=DASHBOARD_PREFIX)
        raise response

    async def page(self, request: web.Request) -> web.StreamResponse:
        if not self._allowed(request):
            raise web.HTTPSeeOther(location=DASHBOARD_PREFIX + "login", headers=NO_STORE)
        page = resources.files("kolabmeet.ops").joinpath("dashboard.html").read_text(encoding="utf-8")
        return web.Response(text=page, content_type="text/html", headers=NO_STORE)

    async def data(self, request: web.Request) -> web.Response:
        if not self._allowed(request):
            return web.Response(status=403, headers=NO_STORE)
        return web.json_response(await dashboard_data(self.rooms), headers=NO_STORE)


def _form(message: str, status: int = 200) -> web.Response:
    return web.Response(text=LOGIN_FORM.format(message=html.escape(message)), content_type="text/html",
                        status=status, headers=NO_STORE)


async def dashboard_data(rooms: "Rooms") -> dict[str, Any]:
    """What the page shows: each room's peers with their transports, producers and consumers (getStats)."""
    owners = {producer_id: peer for peer in snapshot.all_peers(rooms) for producer_id in peer.producers}
    result = []
    for room in list(rooms.rooms.values()):
        peers = []
        for peer in list(room.peers.values()):
            peers.append({
                "id": peer.id, "nickname": peer.nickname,
                "transports": [_transport(obj, stats[0])
                               for obj, stats in await snapshot.stats_by_object(peer.transports.values())],
                "producers": [_producer(obj, stats)
                              for obj, stats in await snapshot.stats_by_object(peer.producers.values())],
                "consumers": [_consumer(obj, stats, owners)
                              for obj, stats in await snapshot.stats_by_object(peer.consumers.values())],
            })
        result.append({"id": room.id, "peers": peers})
    return {"time": time.time(), "rooms": result}


def _transport(transport: Any, stats: dict[str, Any]) -> dict[str, Any]:
    """A WebRTC transport's ICE tuple, or a plain one's (its remote as the sender or receiver is)."""
    return {"id": transport.id, "tuple": stats.get("iceSelectedTuple") or stats.get("tuple"),
            **{key: stats.get(key) for key in ("type", "bytesReceived", "bytesSent", "iceState", "dtlsState",
                                               "availableOutgoingBitrate", "availableIncomingBitrate",
                                               "outgoingLoss")}}


def _producer(producer: Any, streams: list[dict[str, Any]]) -> dict[str, Any]:
    source = producer.app_data.get("source") if isinstance(producer.app_data, dict) else None
    return {"id": producer.id, "kind": producer.kind, "source": source,
            "bytes": sum(s.get("byteCount", 0) for s in streams),
            "packetsLost": sum(s.get("packetsLost", 0) for s in streams),
            "score": min((s.get("score", 10) for s in streams), default=None)}


def _consumer(consumer: Any, stats: list[dict[str, Any]], owners: dict[str, Any]) -> dict[str, Any]:
    own = stats[0] if stats else {}
    owner = owners.get(consumer.producer_id)
    return {"id": consumer.id, "kind": consumer.kind, "producerId": consumer.producer_id,
            "from": owner.nickname if owner is not None else None, "bytes": own.get("byteCount", 0),
            "score": own.get("score"), "spatialLayer": own.get("spatialLayer"),
            "temporalLayer": own.get("temporalLayer"), "nackCount": own.get("nackCount"),
            "packetsRetransmitted": own.get("packetsRetransmitted")}
