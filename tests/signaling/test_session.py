"""The signaling's own socket.io sessions on WebSockets: the packets python-socketio wrote in each
case (recorded from python-socketio 5.18.1 / python-engineio 4.15.1 serving the same server),
pings, the ends of a session, the server's requests with acks; a client that starts on
long-polling is still served by python-socketio, with the same answers."""

from __future__ import annotations

import asyncio
import json
import socket
from urllib.parse import parse_qs, urlsplit

import aiohttp
import pytest
import socketio

from kolabmeet.app import Server
from kolabmeet.signaling import session as session_module
from kolabmeet.signaling import websocket
from kolabmeet.signaling.session import REFUSED, Session
from tests.helpers import Browser, KolabApp
from tests.signaling.common import ack_arguments, new_browser, ready_socket, until, with_query


async def open_socket(http: aiohttp.ClientSession, token: str) -> tuple[aiohttp.ClientWebSocketResponse, dict]:
    """A WebSocket opened as socket.io-client opens it; engine.io's open packet, decoded."""
    parts = urlsplit(token)
    ws = await http.ws_connect(f"ws://{parts.netloc}/meetmedia/signaling/?EIO=4&transport=websocket&{parts.query}")
    opened = await ws.receive_str(timeout=2)
    assert opened.startswith("0")
    return ws, json.loads(opened[1:])


async def nothing_more(ws: aiohttp.ClientWebSocketResponse, within: float = 0.3) -> None:
    with pytest.raises(asyncio.TimeoutError):
        await ws.receive(timeout=within)


async def closed(ws: aiohttp.ClientWebSocketResponse) -> None:
    assert (await ws.receive(timeout=3)).type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED)


def session_of(server: Server, room: str, peer_id: str) -> Session | None:
    return server.signaling.sessions.get(server.rooms.get(room).peers[peer_id].sid)


async def test_the_open_packet_and_connect_are_written_as_socketio_wrote_them(
        server: Server, app: KolabApp, http: aiohttp.ClientSession) -> None:
    room = await app.create_room()
    ws, opened = await open_socket(http, (await app.connection(room))["token"])
    try:
        assert set(opened) == {"sid", "upgrades", "pingTimeout", "pingInterval", "maxPayload"}
        assert (opened["upgrades"], opened["pingTimeout"], opened["pingInterval"]) == ([], 20000, 25000)
        assert len(opened["sid"]) == 20
        await ws.send_str('420["request",{"method":"ping"}]')  # before the namespace's connect: ignored
        await nothing_more(ws)
        await ws.send_str("40")
        connected = await ws.receive_str(timeout=2)
        assert connected.startswith("40") and set(json.loads(connected[2:])) == {"sid"}
        assert json.loads(connected[2:])["sid"] != opened["sid"]
        assert await ws.receive_str(timeout=2) == (f'42["notification",{{"method":"roomReady","data":'
                                                   f'{{"iceServers":null,"roomId":"{room}"}}}}]')
        await ws.send_str('40/admin,')
        assert await ws.receive_str(timeout=2) == '44/admin,"Unable to connect"'
    finally:
        await ws.close()


async def test_a_refused_socket_is_told_as_socketio_told_it(app: KolabApp, http: aiohttp.ClientSession) -> None:
    token = (await app.connection(await app.create_room()))["token"]
    ws, _opened = await open_socket(http, token.replace("authToken=", "authToken=x"))
    try:
        await ws.send_str("40")
        assert (await ws.receive_str(timeout=2)).startswith('40{"sid":')
        assert await ws.receive_str(timeout=2) == REFUSED == "41"  # python-socketio's had a payload (see REFUSED)
        await ws.send_str('420["request",{"method":"ping"}]')
        await nothing_more(ws)
    finally:
        await ws.close()


async def test_a_replaced_socket_gets_socketio_disconnect_and_the_new_one_roomback(
        server: Server, app: KolabApp, http: aiohttp.ClientSession) -> None:
    room = await app.create_room()
    token = (await app.connection(room))["token"]
    old, _opened = await open_socket(http, token)
    await old.send_str("40")
    while "roomReady" not in await old.receive_str(timeout=2):
        pass
    new, _opened = await open_socket(http, token)
    try:
        await new.send_str("40")
        assert (await new.receive_str(timeout=2)).startswith("40")
        assert await new.receive_str(timeout=2) == '42["notification",{"method":"roomBack","data":{}}]'
        assert await old.receive_str(timeout=2) == "41"
        await old.send_str('420["request",{"method":"ping"}]')
        await nothing_more(old)
        peer_id = parse_qs(urlsplit(token).query)["peerId"][0]
        assert len([s for s in server.signaling.sessions.values() if s.query.get("peerId") == peer_id]) == 1
    finally:
        await old.close()
        await new.close()


async def test_a_socket_upgraded_from_long_polling_is_served_by_python_socketio(
        server: Server, app: KolabApp, browsers: list[Browser]) -> None:
    room = await app.create_room()
    polling = await new_browser(app, room, browsers, connect=False)
    await polling.connect(transports=("polling", "websocket"))
    await until(lambda: polling.sio.transport() == "websocket")
    direct = await new_browser(app, room, browsers)
    assert session_of(server, room, polling.peer_id) is None
    assert session_of(server, room, direct.peer_id) is not None
    for browser in (polling, direct):
        await browser.ok("join", {"nickname": browser.peer_id[:4], "rtpCapabilities": None})
    await polling.ok("changeNickname", {"nickname": "Ada"})
    assert (await direct.wait_for("changeNickname", lambda data: data["nickname"] == "Ada"))["peerId"] == polling.peer_id
    await direct.ok("chatMessage", {"message": "hello"})
    assert (await polling.wait_for("chatMessage"))["message"] == "hello"
    for payload in ({"method": "ping"}, {"method": "nope"}, {"method": "raisedHand", "data": {"raisedHand": 1}},
                    {"method": "getRouterRtpCapabilities"}, [1]):
        assert await ack_arguments(polling, payload) == await ack_arguments(direct, payload)  # python-socketio's, ours


async def test_an_undecodable_packet_closes_the_socket(server: Server, app: KolabApp,
                                                      http: aiohttp.ClientSession) -> None:
    room = await app.create_room()
    ws, peer_id = await ready_socket(http, app, room)
    await ws.send_str("x")
    await closed(ws)
    await until(lambda: server.rooms.get(room) is None or server.rooms.get(room).peers[peer_id].sid is None)


async def test_packets_of_unknown_types_are_ignored(app: KolabApp, http: aiohttp.ClientSession) -> None:
    ws, _peer_id = await ready_socket(http, app, await app.create_room())
    try:
        for packet in ("9", "4x", "45-", "42", "3", "6"):
            await ws.send_str(packet)
        await ws.send_bytes(b"\x04binary")
        await ws.send_str('421["request",{"method":"changeNickname","data":{"nickname":"Ada"}}]')
        assert await ws.receive_str() == "431[]"
    finally:
        await ws.close()


@pytest.mark.parametrize("event", ["request", "other"])
async def test_json_nested_too_deep_keeps_the_socket(app: KolabApp, http: aiohttp.ClientSession, event: str) -> None:
    ws, _peer_id = await ready_socket(http, app, await app.create_room())
    try:
        await ws.send_str(f'42["{event}",' + "[" * 5000 + "]" * 5000 + "]")
        await ws.send_str('4290["request",{"method":"ping"}]')
        assert await ws.receive_str(timeout=3) == "4390[]"
    finally:
        await ws.close()


async def test_a_client_answering_pings_stays_and_one_that_stops_is_closed(
        server: Server, app: KolabApp, http: aiohttp.ClientSession) -> None:
    eio = server.signaling.sio.eio
    defaults, (eio.ping_interval, eio.ping_timeout) = (eio.ping_interval, eio.ping_timeout), (0.2, 0.3)
    try:
        room = await app.create_room()
        ws, peer_id = await ready_socket(http, app, room)
    finally:
        eio.ping_interval, eio.ping_timeout = defaults
    for _ in range(3):
        assert await ws.receive_str(timeout=2) == "2"
        await ws.send_str("3")
    assert await ws.receive_str(timeout=2) == "2"  # left unanswered
    assert await ws.receive_str(timeout=2) == "1"  # engine.io's CLOSE, as python-engineio ends it
    await closed(ws)
    await until(lambda: server.rooms.get(room) is None or server.rooms.get(room).peers[peer_id].sid is None)


async def test_a_session_the_server_closes_ends_with_a_close_frame_unanswered(
        server: Server, app: KolabApp, http: aiohttp.ClientSession) -> None:
    room = await app.create_room()
    ws, peer_id = await ready_socket(http, app, room)
    session_of(server, room, peer_id).close()
    assert await ws.receive_str(timeout=2) == "1"  # engine.io's CLOSE
    closing = await ws.receive(timeout=2)
    assert (closing.type, closing.data) == (aiohttp.WSMsgType.CLOSE, 1000)


@pytest.mark.parametrize("goodbye", ["41", "1"])
async def test_a_client_that_says_goodbye_leaves_at_once(
        server: Server, app: KolabApp, http: aiohttp.ClientSession, goodbye: str) -> None:
    room = await app.create_room()
    ws, peer_id = await ready_socket(http, app, room)
    await ws.send_str(goodbye)  # socket.io's DISCONNECT, or engine.io's CLOSE
    await until(lambda: server.rooms.get(room) is None or peer_id not in server.rooms.get(room).peers)
    await ws.close()


async def answering(ws: aiohttp.ClientWebSocketResponse, answer: str) -> str:
    """The server's next request, acked with `answer` (the ack's arguments as JSON)."""
    asked = await ws.receive_str(timeout=2)
    ack_id = asked[2:asked.index("[")]
    await ws.send_str(f"43{ack_id}{answer}")
    return asked


@pytest.mark.parametrize(("answer", "result"), [("[]", None), ("[null]", None), ('["no"]', "no"),
                                                ('[500,"no"]', (500, "no"))])
async def test_a_request_to_the_client_gets_its_ack_as_socketio_gives_it(
        server: Server, app: KolabApp, http: aiohttp.ClientSession, answer: str, result: object) -> None:
    room = await app.create_room()
    ws, peer_id = await ready_socket(http, app, room)
    try:
        peer = server.rooms.get(room).peers[peer_id]
        call = asyncio.ensure_future(server.signaling.notifier.request(peer, "test", {"n": 1}, 2))
        asked = await answering(ws, answer)
        assert asked.startswith("42") and json.loads(asked[asked.index("["):]) == [
            "request", {"method": "test", "data": {"n": 1}}]
        assert await call == result
    finally:
        await ws.close()


async def test_a_request_the_client_does_not_ack_times_out(
        server: Server, app: KolabApp, http: aiohttp.ClientSession) -> None:
    room = await app.create_room()
    ws, peer_id = await ready_socket(http, app, room)
    try:
        peer = server.rooms.get(room).peers[peer_id]
        call = asyncio.ensure_future(server.signaling.notifier.request(peer, "test", None, 0.2))
        asked = await ws.receive_str(timeout=2)
        with pytest.raises(socketio.exceptions.TimeoutError):
            await call
        await ws.send_str(f"43{asked[2:asked.index('[')]}[]")  # too late: nothing waits for it
        await ws.send_str('4290["request",{"method":"ping"}]')
        assert await ws.receive_str(timeout=3) == "4390[]"
    finally:
        await ws.close()


async def test_a_session_that_ended_is_forgotten(server: Server, app: KolabApp, http: aiohttp.ClientSession) -> None:
    room = await app.create_room()
    ws, peer_id = await ready_socket(http, app, room)
    sid = server.rooms.get(room).peers[peer_id].sid
    assert sid in server.signaling.sessions
    await ws.send_str("41")
    await until(lambda: sid not in server.signaling.sessions)
    await ws.close()
    await until(lambda: not server.signaling._open_sessions or all(
        s.query.get("peerId") != peer_id for s in server.signaling._open_sessions))


async def test_an_engineio_3_client_or_a_plain_get_goes_to_python_engineio(app: KolabApp,
                                                                           http: aiohttp.ClientSession) -> None:
    token = (await app.connection(await app.create_room()))["token"]
    parts = urlsplit(with_query(token, EIO="3", transport="websocket"))
    async with http.get(f"http://{parts.netloc}/meetmedia/signaling/?{parts.query}") as response:
        assert response.status == 400
    parts = urlsplit(with_query(token, EIO="4", transport="websocket"))
    async with http.get(f"http://{parts.netloc}/meetmedia/signaling/?{parts.query}") as response:
        assert response.status == 400  # no Upgrade header: engine.io's answer


async def test_a_second_connect_of_the_namespace_is_refused_as_socketio_refused_it(
        app: KolabApp, http: aiohttp.ClientSession) -> None:
    ws, _peer_id = await ready_socket(http, app, await app.create_room())
    try:
        await ws.send_str("40")
        assert await ws.receive_str(timeout=2) == '44"Unable to connect"'
        await ws.send_str("43" + "1" * 5000 + "[]")  # an ack id past CPython's digit limit
        await ws.send_str('4290["request",{"method":"ping"}]')
        assert await ws.receive_str(timeout=3) == "4390[]"
    finally:
        await ws.close()


async def test_a_connect_handler_that_fails_refuses_and_leaves_the_peer_its_grace(
        server: Server, app: KolabApp, http: aiohttp.ClientSession, monkeypatch: pytest.MonkeyPatch) -> None:
    room_id = await app.create_room()
    token = (await app.connection(room_id))["token"]
    room = server.rooms.get(room_id)

    async def failing(_peer: object) -> None:
        raise RuntimeError("a fault")

    monkeypatch.setattr(room, "router_for", failing)
    ws, _opened = await open_socket(http, token)
    try:
        await ws.send_str("40")
        assert (await ws.receive_str(timeout=2)).startswith("40")
        assert await ws.receive_str(timeout=2) == REFUSED
        peer = room.peers[parse_qs(urlsplit(token).query)["peerId"][0]]
        assert peer.sid is None and peer.grace_timer is not None
        assert not server.signaling._peers_by_sid.get(peer.sid or "")
    finally:
        await ws.close()


async def test_a_disconnect_handler_that_fails_keeps_the_socket(
        server: Server, app: KolabApp, http: aiohttp.ClientSession, monkeypatch: pytest.MonkeyPatch) -> None:
    async def failing(_sid: str, _reason: str) -> None:
        raise RuntimeError("a fault")

    monkeypatch.setattr(server.signaling, "_on_disconnect", failing)
    ws, _peer_id = await ready_socket(http, app, await app.create_room())
    try:
        await ws.send_str("41")
        await ws.send_str("40")
        assert (await ws.receive_str(timeout=2)).startswith("40")
    finally:
        await ws.close()


async def test_a_socket_that_connects_no_namespace_is_closed(
        app: KolabApp, http: aiohttp.ClientSession, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(session_module, "CONNECT_TIMEOUT", 0.3)
    ws, _opened = await open_socket(http, (await app.connection(await app.create_room()))["token"])
    assert await ws.receive_str(timeout=2) == "1"
    await closed(ws)


def client_frame(text: str) -> bytes:
    """A client's text frame (RFC 6455 section 5.2), masked with a key of zeros."""
    payload = text.encode()
    length = bytes([0x80 | len(payload)]) if len(payload) < 126 else bytes([0xFE]) + len(payload).to_bytes(2, "big")
    return b"\x81" + length + b"\0\0\0\0" + payload


async def test_a_client_that_stops_reading_is_closed_before_its_answers_pile_up(
        server: Server, app: KolabApp, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(websocket, "MAX_UNSENT", 64 * 1024)
    parts = urlsplit((await app.connection(await app.create_room()))["token"])
    raw = socket.socket()
    raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    raw.setblocking(False)
    loop = asyncio.get_running_loop()
    await loop.sock_connect(raw, (parts.hostname, parts.port))
    await loop.sock_sendall(raw, (f"GET /meetmedia/signaling/?EIO=4&transport=websocket&{parts.query} HTTP/1.1\r\n"
                                  f"Host: {parts.netloc}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                                  "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
                                  ).encode() + client_frame("40"))
    await asyncio.sleep(0.2)
    try:
        for n in range(2000):  # each answer is the router's capabilities, several KiB, never read
            await loop.sock_sendall(raw, client_frame(f'42{n}["request",{{"method":"getRouterRtpCapabilities"}}]'))
            if not server.signaling._open_sessions:
                break
        await until(lambda: not server.signaling._open_sessions)
    except (BrokenPipeError, ConnectionResetError):
        pass
    finally:
        raw.close()
    await until(lambda: not server.signaling._open_sessions)
