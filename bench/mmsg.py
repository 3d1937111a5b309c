"""recvmmsg(2) through ctypes: the load generator reads a burst of datagrams in one system call.

So that the generator's own CPU stays small beside the server's (2 shared cores here), its
receiver drains each socket 64 datagrams per call into buffers allocated once.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import os
import socket

_libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
MSG_DONTWAIT = 0x40


class _IoVec(ctypes.Structure):
    _fields_ = [("base", ctypes.c_void_p), ("len", ctypes.c_size_t)]


class _MsgHdr(ctypes.Structure):
    _fields_ = [("name", ctypes.c_void_p), ("namelen", ctypes.c_uint32), ("iov", ctypes.POINTER(_IoVec)),
                ("iovlen", ctypes.c_size_t), ("control", ctypes.c_void_p), ("controllen", ctypes.c_size_t),
                ("flags", ctypes.c_int)]


class _MMsgHdr(ctypes.Structure):
    _fields_ = [("hdr", _MsgHdr), ("len", ctypes.c_uint)]


_libc.recvmmsg.argtypes = [ctypes.c_int, ctypes.POINTER(_MMsgHdr), ctypes.c_uint, ctypes.c_int, ctypes.c_void_p]
_libc.recvmmsg.restype = ctypes.c_int


class Receiver:
    """Up to `batch` datagrams of at most `size` bytes per call; the i-th of the last call starts at
    `memory[i * size]` and is `headers[i].len` bytes long."""

    def __init__(self, batch: int = 64, size: int = 2048) -> None:
        self.batch, self.size = batch, size
        self.buffer = (ctypes.c_char * (batch * size))()
        self.memory = memoryview(self.buffer).cast("B")
        self.iovecs = (_IoVec * batch)()
        self.headers = (_MMsgHdr * batch)()
        base = ctypes.addressof(self.buffer)
        for i in range(batch):
            self.iovecs[i].base, self.iovecs[i].len = base + i * size, size
            self.headers[i].hdr.iov = ctypes.pointer(self.iovecs[i])
            self.headers[i].hdr.iovlen = 1

    def receive(self, sock: socket.socket) -> int:
        """How many datagrams one non-blocking call read (0 when none was waiting)."""
        count = _libc.recvmmsg(sock.fileno(), self.headers, self.batch, MSG_DONTWAIT, None)
        if count < 0:
            code = ctypes.get_errno()
            if code in (errno.EAGAIN, errno.EINTR):
                return 0
            raise OSError(code, os.strerror(code))
        return count


def udp_drops(ports: set[int]) -> int:
    """Datagrams the kernel dropped on the UDP sockets bound to these local ports (full receive buffers)."""
    drops = 0
    for table in ("/proc/net/udp", "/proc/net/udp6"):
        try:
            with open(table) as lines:
                next(lines)
                for line in lines:
                    fields = line.split()
                    if int(fields[1].rsplit(":", 1)[1], 16) in ports:
                        drops += int(fields[-1])
        except FileNotFoundError:
            continue
    return drops
