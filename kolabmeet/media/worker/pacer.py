"""Spreading a transport's video bursts (key frames, retransmission storms) over time.

A leaky bucket: the bucket drains at PACING_FACTOR x the transport's estimate.
A packet goes out at once while the bucket holds less than BURST_S worth of
bytes and nothing waits, which is nearly always; otherwise it waits its turn
(a copy of the protected datagram) and a timer sends the queue every
DRAIN_INTERVAL as the bucket drains. Waiting packets get their departure time
noted again for the estimate (the receiver's feedback is judged against the time
a packet really left). A queue longer than MAX_QUEUE_S at the pacing rate is
sent at once and the rate doubled: more is offered than the estimate said (the
allocation moves the rate back each round). Audio and RTCP are never held. A
transport paces only once its receiver gave feedback: before that, or without
any, the estimate is a guess not worth holding packets for.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from typing import Callable

PACING_FACTOR = 2.5
BURST_S = 0.02
"""Seconds of the pacing rate that may leave back to back."""
DRAIN_INTERVAL = 0.005
MAX_QUEUE_S = 0.5

Send = Callable[[bytes, bool], bool]
"""Sends one datagram (droppable or not); False when it could not go."""
Departed = Callable[[int, float, int], None]
"""Notes that the packet with this transport-wide sequence number (-1: none) left at this time, this big."""


class Pacer:
    """The send queue of one transport; `rate` (bytes/s) follows the estimate via `set_bitrate`."""

    __slots__ = ("rate", "_level", "_at", "_queue", "_queued_bytes", "_send", "_departed", "_timer", "sent_late")

    def __init__(self, send: Send, departed: Departed, bitrate: float) -> None:
        self.rate = 0.0
        self.set_bitrate(bitrate)
        self._level = 0.0
        self._at = time.monotonic()
        self._queue: deque[tuple[bytes, int, bool]] = deque()
        self._queued_bytes = 0
        self._send = send
        self._departed = departed
        self._timer: asyncio.TimerHandle | None = None
        self.sent_late = 0
        """Packets that waited in the queue."""

    def set_bitrate(self, bitrate: float) -> None:
        self.rate = PACING_FACTOR * bitrate / 8

    def clear_to_send(self, size: int, now: float) -> bool:
        """Hot path: whether a packet of `size` bytes may leave at `now` (then it is counted as gone)."""
        level = self._level - (now - self._at) * self.rate
        self._at = now
        if level < 0.0:
            level = 0.0
        if self._queue or level > self.rate * BURST_S:
            self._level = level
            return False
        self._level = level + size
        return True

    def hold(self, datagram: memoryview, twcc_seq: int, droppable: bool) -> None:
        """Queue a packet that may not leave yet."""
        self._queue.append((bytes(datagram), twcc_seq, droppable))
        self._queued_bytes += len(datagram)
        if self._queued_bytes > self.rate * MAX_QUEUE_S:
            self.rate *= 2  # more is offered than the pacing rate: follow it until the next estimate
            self._drain(everything=True)
        elif self._timer is None:
            self._timer = asyncio.get_running_loop().call_later(DRAIN_INTERVAL, self._drain)

    def _drain(self, everything: bool = False) -> None:
        self._timer = None
        now = time.monotonic()
        level = max(0.0, self._level - (now - self._at) * self.rate)
        self._at = now
        queue, limit = self._queue, self.rate * BURST_S
        while queue and (everything or level <= limit):
            datagram, twcc_seq, droppable = queue.popleft()
            size = len(datagram)
            self._queued_bytes -= size
            level += size
            self.sent_late += 1
            if self._send(datagram, droppable) and twcc_seq >= 0:
                self._departed(twcc_seq, now, size)
        self._level = level
        if queue:
            self._timer = asyncio.get_running_loop().call_later(DRAIN_INTERVAL, self._drain)

    @property
    def queued(self) -> int:
        """Packets waiting now."""
        return len(self._queue)

    def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._queue.clear()
        self._queued_bytes = 0
