"""The signaling's WebSocket frame writer: what one loop turn queues leaves in one write, in order,
uncompressed; notifications soon after a notification wait to share a write."""

from __future__ import annotations

import asyncio
import socket
import struct
import time

import aiohttp
import pytest

from kolabmeet.app import Server
from kolabmeet.signaling import websocket
from kolabmeet.signaling.websocket import BINARY, TEXT, FrameWriter, frame_header
from tests.helpers import KolabApp, RecordingTransport
from tests.signaling.common import ready_socket, until

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


async def test_nothing_is_written_after_the_close_frame() -> None:
    transport = RecordingTransport()
    writer = FrameWriter(transport)  # type: ignore[arg-type]
    writer.write("4hello")
    writer.end()
    writer.write('430[]')  # an ack whose handler finished after the socket was closed
    await asyncio.sleep(0)
    assert transport.written == frame_header(TEXT, 6) + b"4hello" + websocket.CLOSE_NORMAL
