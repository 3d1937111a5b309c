"""Transport-wide congestion control feedback to a sender (draft-holmer-rmcat-transport-wide-cc-extensions-01).

A browser numbers every packet it sends on a transport (the transport-wide-cc
header extension) and estimates its own available bandwidth from when we say
each one arrived: without this feedback Chromium's estimate starves. We record
each number's arrival and, every FEEDBACK_INTERVAL, report all numbers since
the last report, the missing ones as lost.
"""

from __future__ import annotations

from kolabmeet.media.worker import rtcp

FEEDBACK_INTERVAL = 0.1
"""Seconds between feedback packets while packets arrive."""
FEEDBACK_ON_LOSS = 0.02
"""Seconds to the next feedback once a sequence number was skipped: the sender hears of loss soon."""
MAX_STATUSES = 600
"""Sequence numbers per feedback packet (a few hundred bytes); more go in further packets."""
MAX_RANGE = 5000
"""A jump over more numbers than this starts over instead of reporting them all lost."""
_TICK_US = rtcp.TCC_DELTA_US
_REFERENCE_US = 64000


class TccFeedback:
    """Arrival times of one transport's incoming packets by transport-wide sequence number."""

    __slots__ = ("media_ssrc", "gap", "_arrivals", "_highest", "_base", "_fb_count")

    def __init__(self) -> None:
        self.media_ssrc = 0
        self.gap = False
        """A sequence number was skipped since the last report."""
        self._arrivals: dict[int, int] = {}  # unwrapped sequence number -> arrival (µs)
        self._highest = -1  # highest unwrapped sequence number seen
        self._base = -1  # first sequence number of the next report
        self._fb_count = 0

    def received(self, seq: int, now: float, ssrc: int) -> None:
        """Hot path: packet number `seq` (16 bits) arrived at `now` (monotonic seconds)."""
        highest = self._highest
        if highest < 0:
            unwrapped = seq
            self._base = seq
        else:
            delta = (seq - highest) & 0xFFFF
            unwrapped = highest + (delta - 0x10000 if delta >= 0x8000 else delta)
            if unwrapped < self._base:
                return  # already reported (as lost)
        if unwrapped > highest:
            self.gap = self.gap or (highest >= 0 and unwrapped > highest + 1)
            self._highest = unwrapped
        self._arrivals[unwrapped] = int(now * 1e6)
        self.media_ssrc = ssrc

    @property
    def pending(self) -> bool:
        return bool(self._arrivals)

    def packets(self, sender_ssrc: int) -> list[bytes]:
        """Feedback for every sequence number since the last call (none if nothing arrived)."""
        if not self._arrivals:
            return []
        if self._highest - self._base >= MAX_RANGE:
            self._base = min(seq for seq in self._arrivals if seq > self._highest - MAX_RANGE)
        out = []
        self.gap = False
        while self._base <= self._highest:
            out.append(self._one_packet(sender_ssrc))
        self._arrivals = {}
        return out

    def _one_packet(self, sender_ssrc: int) -> bytes:
        """One feedback from `_base` on: until MAX_STATUSES, the highest number, or a delta too long to fit."""
        base, arrivals = self._base, self._arrivals
        first = next(arrivals[s] for s in range(base, self._highest + 1) if s in arrivals)
        reference = first // _REFERENCE_US
        clock = reference * _REFERENCE_US
        deltas: list[int | None] = []
        seq = base
        while seq <= self._highest and len(deltas) < MAX_STATUSES:
            arrival = arrivals.get(seq)
            if arrival is None:
                deltas.append(None)
            else:
                ticks = round((arrival - clock) / _TICK_US)
                if not -0x8000 <= ticks <= 0x7FFF:
                    break
                deltas.append(ticks)
                clock += ticks * _TICK_US
            seq += 1
        self._base = seq
        packet = rtcp.transport_cc(sender_ssrc, self.media_ssrc, base, reference, self._fb_count, deltas)
        self._fb_count = (self._fb_count + 1) & 0xFF
        return packet
