"""A transport tuple: where a WebRTC peer is, and how to send to it (UDP or TCP)."""

from __future__ import annotations

import asyncio
import socket
import struct
from typing import Any

from kolabmeet.media.worker.send import Sender, UdpSender

_FRAME = struct.Struct("!H")
TCP_HIGH_WATER = 256 * 1024


class _Tuple:
    """Local and remote address of a tuple, as mediasoup describes them."""

    protocol = ""
    sender: Sender | None = None
    """Sends RTP the fast way (UDP tuples only)."""

    def __init__(self, address: tuple[str, int], local: tuple[str, int]) -> None:
        self.address = address
        self.local = local

    def as_dict(self) -> dict[str, Any]:
        return {"localIp": self.local[0], "localPort": self.local[1], "remoteIp": self.address[0],
                "remotePort": self.address[1], "protocol": self.protocol}


class UdpTuple(_Tuple):
    """A remote address reached through the worker's shared UDP socket, or through a socket of
    its own once :meth:`use_socket` gave it one."""

    protocol = "udp"

    def __init__(self, sock: socket.socket, address: tuple[str, int], local: tuple[str, int],
                 key: Any = None) -> None:
        super().__init__(address, local)
        self.sender = UdpSender(sock, address)
        self.key: Any = key or address
        """The remote's address as the socket reports it (IPv6: with flow info and scope)."""
        self.own_socket: socket.socket | None = None
        """A socket bound to the shared one's port and connected to the remote (see WebRtcServer)."""

    def use_socket(self, sock: socket.socket) -> bool:
        """Send through `sock`, connected to the remote; False (and `sock` left to the caller)
        when it cannot be connected."""
        sender = UdpSender(sock, self.address, connect=True)
        if not sender.connected:
            return False
        self.sender, self.own_socket = sender, sock
        return True

    def send(self, data: Any, droppable: bool = False) -> bool:
        """Send one datagram; one that would block is dropped, as a router does."""
        return self.sender.send(data)

    def close(self) -> None:
        """Close the socket of its own, if it has one (the shared one is the server's)."""
        if self.own_socket is not None:
            self.own_socket.close()


class TcpTuple(_Tuple):
    """One accepted TCP connection, RFC 4571 framing (2-byte length before each packet)."""

    protocol = "tcp"

    def __init__(self, transport: asyncio.Transport, address: tuple[str, int], local: tuple[str, int]) -> None:
        super().__init__(address, local)
        self.transport = transport
        self.key: Any = transport

    def send(self, data: Any, droppable: bool = False) -> bool:
        """Frame and queue one packet; a droppable one is dropped while the connection is backed up."""
        if self.transport.is_closing():
            return False
        if droppable and self.transport.get_write_buffer_size() > TCP_HIGH_WATER:
            return False
        self.transport.write(_FRAME.pack(len(data)) + bytes(data))
        return True

    def close(self) -> None:
        self.transport.close()


Tuple = UdpTuple | TcpTuple
