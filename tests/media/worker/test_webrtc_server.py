"""The worker's shared WebRTC port: binding it."""

import socket

import pytest

from kolabmeet.media.errors import MediaError
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
