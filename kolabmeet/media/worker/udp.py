"""UDP sockets of the worker: binding in a port range, draining a readable socket."""

from __future__ import annotations

import errno
import logging
import random
import socket

from kolabmeet.media.errors import MediaError

log = logging.getLogger("kolabmeet.media.worker")

SOCKET_BUFFER = 4 << 20
"""Bytes asked for as each media socket's send and receive buffer: room for about 150 ms of a busy
worker's traffic, so that a pause (a full garbage collection while a newcomer's key frames arrive)
drops nothing; with 1 MiB a 26-peer WebRTC room lost up to 0.24 % that way. The kernel caps it at
net.core.rmem_max / wmem_max."""
_capped_told = False


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
        tune(sock)
        return sock
    raise PortsExhaustedError(f"no free UDP port in {low}-{high} on {ip}")


def tune(sock: socket.socket) -> None:
    """Non-blocking, with SOCKET_BUFFER bytes of buffers (operators are told once if the kernel caps them)."""
    sock.setblocking(False)
    for option in (socket.SO_RCVBUF, socket.SO_SNDBUF):
        try:
            sock.setsockopt(socket.SOL_SOCKET, option, SOCKET_BUFFER)
        except OSError:
            pass
    granted = sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF) // 2  # Linux reports twice what it grants
    global _capped_told
    if granted < SOCKET_BUFFER and not _capped_told:
        _capped_told = True
        log.warning("media socket buffers are capped at %d KiB by net.core.rmem_max: bursts may be dropped;"
                    " raise it with sysctl -w net.core.rmem_max=%d net.core.wmem_max=%d",
                    granted // 1024, SOCKET_BUFFER, SOCKET_BUFFER)
