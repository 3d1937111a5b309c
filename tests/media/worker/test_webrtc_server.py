"""The worker's shared WebRTC port: binding it, reading it."""

import socket

import pytest

from kolabmeet.media.errors import MediaError
from kolabmeet.media.worker.transport import DRAIN_BURST
from kolabmeet.media.worker.webrtc_server import WebRtcServer


async def test_a_port_another_socket_holds_is_refused_even_with_reuseport() -> None:
    """The shared socket has SO_REUSEPORT (for the tuples' own sockets); another process's socket
    with it too must not be joined silently, sharing the traffic."""
    holder = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    holder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    holder.bind(("127.0.0.1", 0))
    server = WebRtcServer("127.0.0.1", None)
    try:
        with pytest.raises(MediaError, match="in use"):
            await server.start(holder.getsockname()[1])
    finally:
        holder.close()
        server.close()


async def test_the_shared_socket_lets_the_tuples_bind_its_port() -> None:
    server = WebRtcServer("127.0.0.1", None)
    await server.start(0)
    try:
        assert server.udp.getsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT) == 1
        own = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        own.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        own.bind(("127.0.0.1", server.udp_port))
        own.close()
    finally:
        server.close()


async def test_a_reader_takes_one_burst_per_wake_up_and_leaves_the_rest_to_the_next() -> None:
    """A worker past a full core must still serve its channel and timers: a wake-up of the shared
    socket's reader reads DRAIN_BURST datagrams, not everything that keeps coming."""
    server = WebRtcServer("127.0.0.1", None)
    await server.start(0)
    sender = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        for n in range(DRAIN_BURST * 3):  # RTP-looking datagrams from a tuple no transport has
            sender.sendto(b"\x80" + n.to_bytes(2, "big") + bytes(20), ("127.0.0.1", server.udp_port))
        server._on_udp_readable()
        left = 0
        server.udp.setblocking(False)
        while True:
            try:
                server.udp.recv(2048)
            except BlockingIOError:
                break
            left += 1
        assert left == DRAIN_BURST * 2
    finally:
        sender.close()
        server.close()
