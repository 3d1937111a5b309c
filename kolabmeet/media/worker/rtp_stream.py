"""Per-stream state of a received RTP stream: sequence, loss, jitter, NACKs, receiver reports."""

from __future__ import annotations

import time
from typing import Any

from kolabmeet.media.worker import rtcp
from kolabmeet.media.worker.nack import NackGenerator


class RecvStream:
    """One encoding of a producer as it arrives (RFC 3550 A.1, A.3, A.8)."""

    __slots__ = ("ssrc", "kind", "clock_rate", "packets", "bytes", "base_seq", "max_seq", "cycles",
                 "jitter", "_transit", "nack", "nacks_sent", "nacked_packets", "retransmitted", "rtx_discarded",
                 "_expected_prior", "_received_prior", "last_sr_ntp", "last_sr_time", "score", "last_time",
                 "bitrate", "_bytes_prior", "_measured_at")

    def __init__(self, ssrc: int, kind: str, clock_rate: int, use_nack: bool) -> None:
        self.ssrc = ssrc
        self.kind = kind
        self.clock_rate = clock_rate
        self.packets = 0
        self.bytes = 0
        self.base_seq = -1
        self.max_seq = 0
        self.cycles = 0
        self.jitter = 0.0
        self._transit = -1
        self.nack = NackGenerator() if use_nack else None
        self.nacks_sent = 0
        self.nacked_packets = 0
        self.retransmitted = 0
        self.rtx_discarded = 0
        self._expected_prior = 0
        self._received_prior = 0
        self.last_sr_ntp = 0
        self.last_sr_time = 0.0
        self.score = 10
        self.last_time = 0.0
        self.bitrate = 0.0
        """Bit/s over the last measure() interval."""
        self._bytes_prior = 0
        self._measured_at = time.monotonic()

    def update(self, seq: int, ts: int, length: int, now: float) -> None:
        """Hot path: count the packet, advance the highest sequence number, update jitter."""
        self.packets += 1
        self.bytes += length
        self.last_time = now
        if self.base_seq < 0:
            self.base_seq = self.max_seq = seq
        else:
            delta = (seq - self.max_seq) & 0xFFFF
            if 0 < delta < 0x8000:
                if seq < self.max_seq:
                    self.cycles += 0x10000
                self.max_seq = seq
        transit = int(now * self.clock_rate) - ts
        if self._transit >= 0:
            d = abs(transit - self._transit) & 0xFFFFFFFF
            if d < 0x80000000:
                self.jitter += (d - self.jitter) / 16
        self._transit = transit

    def measure(self, now: float) -> float:
        """The bitrate since the last call (about every second)."""
        elapsed = now - self._measured_at
        if elapsed > 0.2:
            self.bitrate = (self.bytes - self._bytes_prior) * 8 / elapsed
            self._bytes_prior, self._measured_at = self.bytes, now
        return self.bitrate

    @property
    def expected(self) -> int:
        return 0 if self.base_seq < 0 else self.cycles + self.max_seq - self.base_seq + 1

    @property
    def lost(self) -> int:
        return max(0, self.expected - self.packets)

    def sender_report_received(self, ntp: int) -> None:
        self.last_sr_ntp = rtcp.ntp_middle32(ntp)
        self.last_sr_time = time.monotonic()

    def report_block(self) -> rtcp.ReportBlock:
        """A receiver report block for the interval since the last one; also updates the score."""
        expected = self.expected
        interval_expected = expected - self._expected_prior
        interval_received = self.packets - self._received_prior
        self._expected_prior, self._received_prior = expected, self.packets
        interval_lost = max(0, interval_expected - interval_received)
        fraction = (interval_lost << 8) // interval_expected if interval_expected > 0 else 0
        if interval_expected > 0:
            self.score = loss_score(interval_lost / interval_expected)
        dlsr = 0
        if self.last_sr_time:
            dlsr = int((time.monotonic() - self.last_sr_time) * 65536) & 0xFFFFFFFF
        return rtcp.ReportBlock(ssrc=self.ssrc, fraction_lost=min(fraction, 255),
                                packets_lost=min(self.lost, 0x7FFFFF),
                                highest_seq=(self.cycles + self.max_seq) & 0xFFFFFFFF,
                                jitter=int(self.jitter), lsr=self.last_sr_ntp, dlsr=dlsr)

    def as_dict(self, mime_type: str) -> dict[str, Any]:
        return {
            "type": "inbound-rtp",
            "timestamp": int(time.time() * 1000),
            "ssrc": self.ssrc,
            "kind": self.kind,
            "mimeType": mime_type,
            "packetCount": self.packets,
            "byteCount": self.bytes,
            "packetsLost": self.lost,
            "fractionLost": 0 if not self.expected else min(255, (self.lost << 8) // self.expected),
            "jitter": int(self.jitter),
            "nackCount": self.nacks_sent,
            "nackPacketCount": self.nacked_packets,
            "packetsRetransmitted": self.retransmitted,
            "rtxPacketsDiscarded": self.rtx_discarded,
            "score": self.score,
        }


def loss_score(loss: float) -> int:
    """0-10 from a loss share: 10 up to 1 %, 0 from 40 % on."""
    if loss <= 0.01:
        return 10
    return max(0, min(10, round(10 * (1 - loss / 0.4))))
