"""Probing the path before a layer goes up.

When the allocator would send more than the estimate allows, the transport
sends a probe cluster: RTX copies of its most recently sent video packets (the
receiver drops them as duplicates), spaced to leave at the bitrate it would like
to reach. The receiver's transport-wide feedback says when they arrived: if they
came in about as fast as they left, the path carries that bitrate and the
estimate goes up to it; if they came in slower, a queue spread them out and the
estimate stays. Either way only a few packets crossed the path, not a whole
higher layer with its key frame.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from kolabmeet.media.worker.transport import Transport

MIN_PACKETS = 5
MAX_PACKETS = 20
DURATION_S = 0.03
"""A cluster lasts this long at its bitrate, or MIN_PACKETS packets, whichever is more."""
MIN_RECEIVED = 4
"""Packets that must arrive for a verdict; fewer is a failed probe."""
ARRIVAL_RATIO = 0.85
"""The cluster passes when it arrives at least this fast relative to how fast it left."""
TYPICAL_PACKET = 1100


class ProbeCluster:
    """The packets of one probe: when each left (our clock) and arrived (the receiver's clock, µs)."""

    __slots__ = ("bitrate", "started", "sending", "_sent", "_arrived", "_reported")

    def __init__(self, bitrate: float, now: float) -> None:
        self.bitrate = bitrate
        self.started = now
        self.sending = True
        self._sent: dict[int, tuple[float, int]] = {}
        self._arrived: list[tuple[float, float, int]] = []
        self._reported: set[int] = set()

    def sent(self, seq: int, at: float, size: int) -> None:
        self._sent[seq] = (at, size)

    def __contains__(self, seq: int) -> bool:
        return seq in self._sent

    def reported(self, seq: int, arrival_us: float | None) -> None:
        """Feedback on one of our packets: its arrival time, or None when it was lost."""
        if seq in self._reported:
            return
        self._reported.add(seq)
        if arrival_us is not None:
            at, size = self._sent[seq]
            self._arrived.append((at, arrival_us / 1e6, size))

    @property
    def complete(self) -> bool:
        """Every packet sent and reported on."""
        return not self.sending and len(self._reported) == len(self._sent)

    def rates(self) -> tuple[float, float] | None:
        """(bit/s it left at, bit/s it arrived at), or None when too little of it arrived."""
        arrived = self._arrived
        if len(arrived) < MIN_RECEIVED:
            return None
        by_send = sorted(arrived)
        by_arrival = sorted(arrived, key=lambda packet: packet[1])
        send_span = max(by_send[-1][0] - by_send[0][0], 0.001)
        arrival_span = max(by_arrival[-1][1] - by_arrival[0][1], 0.001)
        send_bytes = sum(size for _s, _a, size in by_send[:-1])
        arrival_bytes = sum(size for _s, _a, size in by_arrival[:-1])
        return send_bytes * 8 / send_span, arrival_bytes * 8 / arrival_span

    def passed(self) -> bool:
        """Whether the path carried the cluster at the rate it left."""
        rates = self.rates()
        return rates is not None and rates[1] >= ARRIVAL_RATIO * rates[0]


class Prober:
    """Sends a transport's probe clusters, one packet per timer tick at the cluster's bitrate."""

    def __init__(self, transport: "Transport") -> None:
        self._transport = transport
        self._timer: asyncio.TimerHandle | None = None
        self._cluster: ProbeCluster | None = None
        self._left = 0
        self._back = 0

    def start(self, cluster: ProbeCluster) -> bool:
        """Begin sending `cluster`; False when no consumer has packets to probe with (RTX negotiated)."""
        if self._timer is not None or not any(c.can_probe() for c in self._transport.consumers.values()):
            return False
        self._cluster = cluster
        self._left = max(MIN_PACKETS, min(MAX_PACKETS, int(cluster.bitrate * DURATION_S / 8 / TYPICAL_PACKET)))
        self._back = 0
        self._send_next()
        return True

    def _send_next(self) -> None:
        self._timer = None
        cluster = self._cluster
        if cluster is None or self._transport.closed:
            return
        size = 0
        for consumer in self._transport.consumers.values():
            if consumer.can_probe():
                size = consumer.send_probe(self._back, cluster)
                if size:
                    break
        self._back += 1
        self._left -= 1
        if not size or not self._left:
            cluster.sending = False
            self._cluster = None
            return
        self._timer = asyncio.get_running_loop().call_later(size * 8 / cluster.bitrate, self._send_next)

    def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._cluster = None
