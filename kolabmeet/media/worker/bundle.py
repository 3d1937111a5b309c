"""Pipe bundles: the RTP packets of one event-loop turn in one UDP datagram between two workers.

What a worker spends on a datagram over loopback is mostly the kernel's work per datagram (the send,
the delivery to the other socket, the receive), whatever its size; loopback carries datagrams of up
to 64 KiB, so a pipe between two workers of one machine gathers its packets into one datagram per turn.

Format: the marker byte 0x00 (RTP and RTCP start with version 2: 0x80-0xBF), then per packet its
length (2 bytes, network order) and its bytes.
"""

from __future__ import annotations

from collections.abc import Iterator

MARKER = 0x00
BUNDLE_BYTES = 60000
"""The largest bundle: under the 65 507-byte UDP payload of loopback."""


class BundleWriter:
    """One bundle being filled: :meth:`add` packets while they :meth:`fit`, then :meth:`take` it."""

    __slots__ = ("data", "view", "length")

    def __init__(self, size: int = BUNDLE_BYTES) -> None:
        self.data = bytearray(size)
        self.data[0] = MARKER
        self.view = memoryview(self.data)
        self.length = 1

    @property
    def empty(self) -> bool:
        return self.length == 1

    def fits(self, size: int) -> bool:
        return self.length + 2 + size <= len(self.data)

    def add(self, packet: memoryview) -> None:
        """Append ``packet`` (the caller checked that it fits)."""
        size = len(packet)
        at = self.length
        data = self.data
        data[at] = size >> 8
        data[at + 1] = size & 0xFF
        data[at + 2:at + 2 + size] = packet
        self.length = at + 2 + size

    def take(self) -> memoryview:
        """The bundle's bytes, valid until the next :meth:`add`; the writer starts a new bundle."""
        view = self.view[:self.length]
        self.length = 1
        return view


def is_bundle(buf: bytearray, length: int) -> bool:
    """Whether the datagram in ``buf[:length]`` is a bundle (not a lone RTP or RTCP packet)."""
    return length > 0 and buf[0] == MARKER


def split(buf: bytearray, length: int) -> Iterator[tuple[int, int]]:
    """(offset, size) of each packet of the bundle in ``buf[:length]``; a truncated last one is left out."""
    at = 1
    while at + 2 <= length:
        size = (buf[at] << 8) | buf[at + 1]
        start = at + 2
        at = start + size
        if at > length:
            return
        yield start, size
