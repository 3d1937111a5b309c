"""Per-stream counters: sequence tracking and loss for received streams, totals for sent ones."""

from __future__ import annotations

import time
from typing import Any


class RecvStats:
    """Sequence, packet and loss counters of one received RTP stream (RFC 3550 A.1)."""

    __slots__ = ("ssrc", "packets", "bytes", "base_seq", "max_seq", "cycles", "started", "last_time")

    def __init__(self, ssrc: int) -> None:
        self.ssrc = ssrc
        self.packets = 0
        self.bytes = 0
        self.base_seq = -1
        self.max_seq = 0
        self.cycles = 0
        self.started = time.time()
        self.last_time = 0.0

    def update(self, seq: int, length: int) -> None:
        self.packets += 1
        self.bytes += length
        if self.base_seq < 0:
            self.base_seq = self.max_seq = seq
            return
        delta = (seq - self.max_seq) & 0xFFFF
        if 0 < delta < 0x8000:
            if seq < self.max_seq:
                self.cycles += 0x10000
            self.max_seq = seq

    @property
    def expected(self) -> int:
        if self.base_seq < 0:
            return 0
        return self.cycles + self.max_seq - self.base_seq + 1

    @property
    def lost(self) -> int:
        return max(0, self.expected - self.packets)

    def score(self) -> int:
        """0-10, from the share of packets lost so far."""
        expected = self.expected
        if expected == 0:
            return 0
        return max(0, min(10, round(10 * (1 - 4 * self.lost / expected))))

    def as_dict(self, kind_of_stats: str, kind: str, mime_type: str) -> dict[str, Any]:
        return {
            "type": kind_of_stats,
            "timestamp": int(time.time() * 1000),
            "ssrc": self.ssrc,
            "kind": kind,
            "mimeType": mime_type,
            "packetCount": self.packets,
            "byteCount": self.bytes,
            "packetsLost": self.lost,
            "fractionLost": 0 if not self.expected else round(256 * self.lost / self.expected) & 0xFF,
            "score": self.score(),
        }
