"""The signaling's WebSocket: what one loop turn queues leaves in one write, in order, uncompressed;
a socket opened on it is served by it, one upgraded from long-polling by engine.io."""

from __future__ import annotations

import asyncio
import socket
import struct
import time

import aiohttp
import pytest

from kolabmeet.app import Server
from kolabmeet.signaling import websocket
from kolabmeet.signaling.websocket import BINARY, TEXT, Outbox, frame_header
from tests.helpers import Browser, KolabApp, RecordingTransport
from tests.signaling.common import ack_arguments, new_browser, ready_socket, until

TCPI_DATA_SEGS_IN = 152
"""Offset of tcpi_data_segs_in in Linux's struct tcp_info: segments with data received."""


def data_segments_in(ws: aiohttp.ClientWebSocketResponse) -> int:
    info = ws.get_extra_info("socket").getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 160)
    return struct.unpack_from("I", info, TCPI_DATA_SEGS_IN)[0]


def test_frame_headers_of_each_length_class() -> None:
    assert frame_header(TEXT, 5) == b"\x81\x05"
    assert frame_header(BINARY, 126) == b"\x82\x7e\x00\x7e"
    assert frame_header(TEXT, 70000) == b"\x81\x7f" + (70000).to_bytes(8, "big")


async def test_notifications_of_one_turn_arrive_in_one_segment_in_order(
        server: Server, app: KolabApp, http: aiohttp.ClientSession) -> None:
    room = await app.create_room()
    ws, peer_id = await ready_socket(http, app, room)
    try:
        assert ws.compress == 0, "permessage-deflate was negotiated"
        peer = server.rooms.get(room).peers[peer_id]
        before = data_segments_in(ws)
        for n in range(3):
            server.signaling.notifier.notify(peer, "test", {"n": n, "text": "é" * 200 * n})
        received = [await ws.receive_str() for _ in range(3)]
        assert received == [f'42["notification",{{"method":"test","data":{{"n":{n},"text":"{"é" * 200 * n}"}}}}]'
                            for n in range(3)]
        await until(lambda: data_segments_in(ws) > before)
        assert data_segments_in(ws) - before == 1
    finally:
        await ws.close()


async def test_notifications_soon_after_a_notification_wait_to_share_one_and_an_ack_does_not_wait(
        server: Server, app: KolabApp, http: aiohttp.ClientSession, monkeypatch: pytest.MonkeyPatch) -> None:
    hold = 0.5
    monkeypatch.setattr(websocket, "NOTIFICATION_HOLD", hold)
    room = await app.create_room()
    ws, peer_id = await ready_socket(http, app, room)
    try:
        peer = server.rooms.get(room).peers[peer_id]
        notify = server.signaling.notifier.notify
        await asyncio.sleep(hold)
        await ws.send_str('420["request",{"method":"getRouterRtpCapabilities"}]')
        assert (await ws.receive_str(timeout=2)).startswith("430")
        notify(peer, "quiet")  # the socket was just written, but no notification for a while
        assert "quiet" in await ws.receive_str(timeout=hold * 0.8), "a notification after a quiet spell waited"
        written, segments = time.monotonic(), data_segments_in(ws)
        notify(peer, "one")
        await asyncio.sleep(0.05)
        notify(peer, "two")
        assert ["one" in await ws.receive_str(timeout=2), "two" in await ws.receive_str(timeout=2)] == [True, True]
        assert time.monotonic() - written > hold * 0.8
        assert data_segments_in(ws) - segments == 1
        notify(peer, "three")
        asked, segments = time.monotonic(), data_segments_in(ws)
        await ws.send_str('421["request",{"method":"changeNickname","data":{"nickname":"Ada"}}]')
        received = [await ws.receive_str(timeout=hold * 0.8) for _ in range(2)]
        assert "three" in received[0] and received[1] == "431[]"
        assert time.monotonic() - asked < hold * 0.8
        assert data_segments_in(ws) - segments == 1
    finally:
        await ws.close()


def engineio_queue(server: Server, peer_id: str, room: str) -> object:
    sio = server.signaling.sio
    sid = server.rooms.get(room).peers[peer_id].sid
    return sio.eio.sockets[sio.manager.eio_sid_from_sid(sid, "/")].queue


async def test_a_socket_upgraded_from_long_polling_is_served_by_engineio(
        server: Server, app: KolabApp, browsers: list[Browser]) -> None:
    room = await app.create_room()
    polling = await new_browser(app, room, browsers, connect=False)
    await polling.connect(transports=("polling", "websocket"))
    await until(lambda: polling.sio.transport() == "websocket")
    direct = await new_browser(app, room, browsers)
    assert not isinstance(engineio_queue(server, polling.peer_id, room), Outbox)
    assert isinstance(engineio_queue(server, direct.peer_id, room), Outbox)
    for browser in (polling, direct):
        await browser.ok("join", {"nickname": browser.peer_id[:4], "rtpCapabilities": None})
    await polling.ok("changeNickname", {"nickname": "Ada"})
    assert (await direct.wait_for("changeNickname", lambda data: data["nickname"] == "Ada"))["peerId"] == polling.peer_id
    await direct.ok("chatMessage", {"message": "hello"})
    assert (await polling.wait_for("chatMessage"))["message"] == "hello"
    for payload in ({"method": "ping"}, {"method": "nope"}, {"method": "raisedHand", "data": {"raisedHand": 1}},
                    {"method": "getRouterRtpCapabilities"}, [1]):
        assert await ack_arguments(polling, payload) == await ack_arguments(direct, payload)  # socket.io's, ours


async def test_an_undecodable_packet_closes_the_socket(server: Server, app: KolabApp,
                                                      http: aiohttp.ClientSession) -> None:
    room = await app.create_room()
    ws, peer_id = await ready_socket(http, app, room)
    await ws.send_str("x")
    assert (await ws.receive(timeout=3)).type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED)
    await until(lambda: server.rooms.get(room) is None or server.rooms.get(room).peers[peer_id].sid is None)


async def test_an_engineio_packet_of_unknown_type_is_ignored(app: KolabApp, http: aiohttp.ClientSession) -> None:
    ws, _peer_id = await ready_socket(http, app, await app.create_room())
    try:
        await ws.send_str("9")
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


async def test_a_client_that_stops_answering_pings_is_closed(server: Server, app: KolabApp,
                                                            http: aiohttp.ClientSession) -> None:
    eio = server.signaling.sio.eio
    defaults, (eio.ping_interval, eio.ping_timeout) = (eio.ping_interval, eio.ping_timeout), (0.2, 0.3)
    try:
        room = await app.create_room()
        ws, peer_id = await ready_socket(http, app, room)
        assert await ws.receive_str(timeout=2) == "2"  # a ping, left unanswered
    finally:
        eio.ping_interval, eio.ping_timeout = defaults
    assert (await ws.receive(timeout=3)).type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED)
    await until(lambda: server.rooms.get(room) is None or server.rooms.get(room).peers[peer_id].sid is None)


async def test_a_socket_the_server_closes_ends_with_a_close_frame_unanswered(
        server: Server, app: KolabApp, http: aiohttp.ClientSession) -> None:
    room = await app.create_room()
    ws, peer_id = await ready_socket(http, app, room)
    sio = server.signaling.sio
    await sio.eio.disconnect(sio.manager.eio_sid_from_sid(server.rooms.get(room).peers[peer_id].sid, "/"))
    assert await ws.receive_str(timeout=2) == "1"  # engine.io's CLOSE
    closing = await ws.receive(timeout=2)
    assert (closing.type, closing.data) == (aiohttp.WSMsgType.CLOSE, 1000)



async def test_nothing_is_written_after_the_close_frame() -> None:
    socket = websocket.WebSocket(handler=None, server=None)
    socket._transport = RecordingTransport()
    socket.write("4hello")
    socket.end()
    socket.write('430[]')  # an ack whose handler finished after the socket was closed
    await asyncio.sleep(0)
    assert socket._transport.written == frame_header(TEXT, 6) + b"4hello" + websocket.CLOSE_NORMAL
