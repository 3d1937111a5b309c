"""The last step of sending RTP to a UDP peer: copy into the send buffer, map the header
extension ids, SRTP-protect in place, ``sendto``.

Two twins with one behaviour (see compiled.py): the pure-Python functions here, and ``_send.c``;
the C one also needs libsrtp's ``srtp_protect`` to have the type it expects. :data:`COMPILED`
says which is in use; ``tests/media/worker/test_send.py`` runs both on the same packets.
"""

from __future__ import annotations

import socket
from typing import Protocol, Union

from pylibsrtp._binding import ffi, lib

from kolabmeet.media.worker import compiled
from kolabmeet.media.worker.rtp import rewrite_extension_ids
from kolabmeet.media.worker.srtp import PacketBuffer, SrtpSession

Buffer = Union[bytes, bytearray, memoryview]

__all__ = ["COMPILED", "PyUdpSender", "Sender", "UdpSender", "protect_into", "py_protect_into"]

_PROTECT_TYPE = "srtp_err_status_t(*)(struct srtp_ctx_t_ *, void *, int *)"


class Sender(Protocol):
    """What both twins' UDP senders do."""

    bytes_sent: int
    connected: bool

    def send(self, data: Buffer) -> bool: ...

    def send_rtp(self, view: Buffer, ext_map: bytes | None = None, priority: int = 1, paced: bool = True,
                 now: float = 0.0, twcc_seq: int = -1) -> bool: ...

    def send_srtp(self, session: SrtpSession, out: PacketBuffer, packet: Buffer, ext_map: bytes | None) -> int: ...


def _copy_mapped(out: PacketBuffer, packet: Buffer, ext_map: bytes | None) -> int:
    """Copy ``packet`` into ``out`` and map its extension ids (``ext_map``: 256 bytes, or None to
    keep them): its length, or -1 when it is bigger than ``out.limit``."""
    length = len(packet)
    if length > out.limit:
        return -1
    out.data[:length] = packet
    if ext_map is not None and length and packet[0] & 0x10:
        if len(ext_map) < 256:
            raise ValueError("ext_map must have 256 bytes")
        rewrite_extension_ids(out.data, length, ext_map)
    return length


def _connect(sock: socket.socket, address: tuple[str, int]) -> bool:
    try:
        sock.connect(address)
    except OSError:
        return False
    return True


def py_protect_into(session: SrtpSession, out: PacketBuffer, packet: Buffer, ext_map: bytes | None) -> int:
    """Copy ``packet`` into ``out``, map its extension ids, protect it there; the protected length,
    or -1 (too big, session closed, refused)."""
    length = _copy_mapped(out, packet, ext_map)
    return -1 if length < 0 else session.protect_rtp(out, length)


class PyUdpSender:
    """Datagrams to one UDP address (numeric, of the socket's family) through one socket; ``out``
    is where :meth:`send_rtp` maps extension ids. With ``connect`` the socket is connected to the
    address when it can be: the kernel then keeps the route instead of looking it up for every
    datagram (about 0.5 µs less per send on loopback here), and delivers to the socket only what
    comes from that address."""

    __slots__ = ("_sock", "_address", "_out", "bytes_sent", "connected")

    def __init__(self, sock: socket.socket, address: tuple[str, int], out: PacketBuffer | None = None,
                 connect: bool = False) -> None:
        host, port = address
        try:
            socket.inet_pton(sock.family, host)
        except (OSError, TypeError):
            raise ValueError(f"{host} is not a numeric address of the socket's family") from None
        if not 0 <= port <= 65535:
            raise ValueError("port must be 0-65535")
        self._sock = sock
        self._address = (host, port)
        self._out = out
        self.bytes_sent = 0
        """Bytes :meth:`send_rtp` has sent."""
        self.connected = bool(connect and port and _connect(sock, self._address))
        """Whether the socket is connected to the address."""

    def send(self, data: Buffer) -> bool:
        """Send one datagram; False when it could not go (would block, closed socket, any error)."""
        try:
            if self.connected:
                self._sock.send(data)
            else:
                self._sock.sendto(data, self._address)
        except OSError:
            return False
        return True

    def send_rtp(self, view: Buffer, ext_map: bytes | None = None, priority: int = 1, paced: bool = True,
                 now: float = 0.0, twcc_seq: int = -1) -> bool:
        """A plain transport's send step, with a transport's ``send_rtp`` arguments (the last four
        unused): the packet as it is, or copied into ``out`` with its extension ids mapped."""
        length = len(view)
        if ext_map is not None and length and view[0] & 0x10:
            out = self._out
            if out is None:
                raise ValueError("mapping extension ids needs the sender's out buffer")
            if _copy_mapped(out, view, ext_map) < 0:
                return False
            view = out.view[:length]
        if not self.send(view):
            return False
        self.bytes_sent += length
        return True

    def send_srtp(self, session: SrtpSession, out: PacketBuffer, packet: Buffer, ext_map: bytes | None) -> int:
        """:func:`protect_into`, then send: the protected length, -1 if it could not be protected,
        -2 if it was not sent."""
        length = py_protect_into(session, out, packet, ext_map)
        if length < 0:
            return -1
        return length if self.send(out.view[:length]) else -2


_protect = ffi.addressof(lib, "srtp_protect")
_c = compiled.load("_send") if ffi.getctype(ffi.typeof(_protect)) == _PROTECT_TYPE else None
COMPILED = _c is not None
"""Whether the C twin is in use."""

if _c is not None:
    _c.use_srtp(int(ffi.cast("uintptr_t", _protect)))
    UdpSender, protect_into = _c.UdpSender, _c.protect_into
else:
    UdpSender = PyUdpSender  # type: ignore[misc,assignment]
    protect_into = py_protect_into
