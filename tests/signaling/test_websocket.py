"""The signaling's WebSocket: what one loop turn queues leaves in one write, in order, uncompressed."""

from __future__ import annotations

import socket
import struct

import aiohttp

from kolabmeet.app import Server
from kolabmeet.signaling.websocket import BINARY, TEXT, frame_header
from tests.helpers import KolabApp
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
