"""Transport tuples over real loopback sockets: RFC 4571 framing, and audio first under TCP congestion."""

from __future__ import annotations

import asyncio
import socket
import struct

from kolabmeet.media.worker.tuple import TCP_HIGH_WATER, TcpTuple, UdpTuple


async def test_udp_tuple_sends_datagrams() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as receiver, \
            socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sender:
        receiver.bind(("127.0.0.1", 0))
        tuple_ = UdpTuple(sender, receiver.getsockname(), ("127.0.0.1", 1))
        assert tuple_.send(b"hello")
        assert receiver.recv(100) == b"hello"
        assert tuple_.as_dict()["protocol"] == "udp"


async def test_tcp_tuple_frames_and_drops_video_first_when_backed_up() -> None:
    accepted: asyncio.Future[asyncio.Transport] = asyncio.get_running_loop().create_future()

    class Server(asyncio.Protocol):
        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            accepted.set_result(transport)  # type: ignore[arg-type]

    server = await asyncio.get_running_loop().create_server(Server, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    transport = await accepted
    tuple_ = TcpTuple(transport, ("127.0.0.1", 1), ("127.0.0.1", port))
    assert tuple_.send(b"\x80" * 10)
    assert await reader.readexactly(12) == struct.pack("!H", 10) + b"\x80" * 10
    transport.pause_reading()
    packet = b"\x90" * 1200
    while transport.get_write_buffer_size() <= TCP_HIGH_WATER:
        assert tuple_.send(packet, droppable=True)
    assert not tuple_.send(packet, droppable=True), "video is dropped while the connection is backed up"
    assert tuple_.send(packet, droppable=False), "audio still goes"
    writer.close()
    transport.close()
    server.close()
