"""UDP sockets of the worker: binding in a port range, draining a readable socket."""

from __future__ import annotations

import errno
import random
import socket

from kolabmeet.media.errors import MediaError

SOCKET_BUFFER = 1 << 20


class PortsExhaustedError(MediaError):
    """No free port is left in the configured range."""


def bind_udp(ip: str, low: int, high: int, tries: int = 64) -> socket.socket:
    """A non-blocking UDP socket bound to a random free port of [low, high]."""
    family = socket.AF_INET6 if ":" in ip else socket.AF_INET
    ports = list(range(low, high + 1))
    random.shuffle(ports)
    for port in ports[:tries] or ports:
        sock = socket.socket(family, socket.SOCK_DGRAM)
        try:
            sock.bind((ip, port))
        except OSError as exc:
            sock.close()
            if exc.errno in (errno.EADDRINUSE, errno.EACCES):
                continue
            raise MediaError(f"cannot bind UDP {ip}:{port}: {exc.strerror}") from exc
        _tune(sock)
        return sock
    raise PortsExhaustedError(f"no free UDP port in {low}-{high} on {ip}")


def _tune(sock: socket.socket) -> None:
    sock.setblocking(False)
    for option in (socket.SO_RCVBUF, socket.SO_SNDBUF):
        try:
            sock.setsockopt(socket.SOL_SOCKET, option, SOCKET_BUFFER)
        except OSError:
            pass
