"""The floor of a join on aiohttp: a server that answers a join's exchanges with canned answers.

`python -m bench.join --floor` runs the same peers against this server in place of kolabmeet's.
It speaks what a join needs of the HTTP API (the connection token) and of the signaling (engine.io
open, socket.io connect, roomReady, the acks of getRouterRtpCapabilities, createWebRtcTransport
and join, with answers of the real shapes and sizes), through aiohttp's web server and
WebSocketResponse as an application uses them, and does nothing else: no engine.io or socket.io
library, no rooms, no checks, no media worker, and none of the notifications (newPeer,
changeNickname) a join sends to the others in the room. What kolabmeet's control process spends
per join beyond this server's CPU is the cost of its own work; what this server spends is
aiohttp's and the kernel's.

    python -m bench.canned_server --port 8080
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import secrets
from typing import Any

import msgspec
import uvloop
from aiohttp import WSMsgType, web

from kolabmeet.media.capabilities import router_rtp_capabilities
from kolabmeet.signaling.server import MAX_MESSAGE, SIGNALING_PATH

_encode = msgspec.json.Encoder().encode
_decode = msgspec.json.Decoder().decode


def _transport() -> dict[str, Any]:
    """A createWebRtcTransport answer of the real shape: ICE-lite parameters, a UDP and a TCP
    candidate, a sha-256 fingerprint."""
    candidate = {"foundation": "udpcandidate", "priority": 1076302079, "ip": "127.0.0.1", "address": "127.0.0.1",
                 "protocol": "udp", "port": 40000, "type": "host"}
    return {"id": secrets.token_hex(16),
            "iceParameters": {"usernameFragment": secrets.token_hex(8), "password": secrets.token_hex(16),
                              "iceLite": True},
            "iceCandidates": [candidate, {**candidate, "foundation": "tcpcandidate", "priority": 1076276479,
                                          "protocol": "tcp", "tcpType": "passive"}],
            "dtlsParameters": {"role": "auto", "fingerprints": [{"algorithm": "sha-256",
                                                                 "value": secrets.token_hex(32).upper()}]},
            "iceState": "new", "iceSelectedTuple": None, "dtlsState": "new", "sctpParameters": None}


class CannedServer:
    """Every token joins one room; every request is answered at once."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.capabilities = router_rtp_capabilities()
        self.joined: dict[str, list[dict[str, Any]]] = {}
        """Per room, the peerInfo of every peer that joined and is still there: the join's answer
        lists them."""
        self._ids = itertools.count()

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/meetmedia/api/ping", self._ping)
        app.router.add_post("/meetmedia/api/sessions", self._create_room)
        app.router.add_post("/meetmedia/api/sessions/{room}/connection", self._connection)
        app.router.add_get(f"/{SIGNALING_PATH}/", self._socket)
        return app

    async def _ping(self, _request: web.Request) -> web.Response:
        return web.json_response({})

    async def _create_room(self, _request: web.Request) -> web.Response:
        return web.json_response({"id": secrets.token_hex(8)})

    async def _connection(self, request: web.Request) -> web.Response:
        await request.json()
        peer = f"peer{next(self._ids)}"
        room = request.match_info["room"]
        token = (f"http://127.0.0.1:{self.port}/?peerId={peer}&roomId={room}"
                 f"&authToken={secrets.token_urlsafe(16)}")
        return web.json_response({"id": peer, "token": token})

    async def _socket(self, request: web.Request) -> web.WebSocketResponse:
        socket = web.WebSocketResponse(max_msg_size=MAX_MESSAGE, compress=False)
        await socket.prepare(request)
        me = {"id": request.query.get("peerId", ""), "nickname": None, "role": 3, "raisedHand": False,
              "language": None}
        await socket.send_str("0" + _encode({"sid": secrets.token_urlsafe(15), "upgrades": [], "pingTimeout": 20000,
                                             "pingInterval": 25000, "maxPayload": MAX_MESSAGE}).decode())
        room = self.joined.setdefault(request.query.get("roomId", ""), [])
        try:
            async for message in socket:
                if message.type != WSMsgType.TEXT:
                    break
                if message.data == "40":
                    await socket.send_str("40" + _encode({"sid": secrets.token_urlsafe(15)}).decode())
                    await socket.send_str("42" + _encode(["notification", {"method": "roomReady", "data": {
                        "iceServers": [], "roomId": request.query.get("roomId")}}]).decode())
                elif message.data.startswith("42"):
                    await self._answer(socket, room, me, message.data)
        finally:
            if me in room:
                room.remove(me)
        return socket

    async def _answer(self, socket: web.WebSocketResponse, room: list[dict[str, Any]], me: dict[str, Any],
                      packet: str) -> None:
        bracket = packet.index("[")
        request = _decode(packet[bracket:])[1]
        method = request.get("method")
        answer: Any = None
        if method == "getRouterRtpCapabilities":
            answer = self.capabilities
        elif method == "createWebRtcTransport":
            answer = _transport()
        elif method == "join":
            me["nickname"] = request.get("data", {}).get("nickname")
            answer = {"peers": list(room), **me}
            room.append(me)
        await socket.send_str(f"43{packet[2:bracket]}" + _encode([None] if answer is None else [None, answer]).decode())


async def serve(port: int) -> None:
    runner = web.AppRunner(CannedServer(port).app(), access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    await asyncio.Event().wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--port", type=int, required=True)
    uvloop.run(serve(parser.parse_args().port))


if __name__ == "__main__":
    main()
