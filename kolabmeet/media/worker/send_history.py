"""When each packet with a transport-wide sequence number left, and how big it was.

The bandwidth estimate (bandwidth_estimator.py) matches the receiver's transport-wide CC
feedback against it. Every video packet sent notes itself here, so it has a compiled twin
(``_send_history.c``, see compiled.py).
"""

from __future__ import annotations

from array import array

from kolabmeet.media.worker import compiled

HISTORY = 2048
"""Sent packets remembered (by the low bits of their sequence number)."""


class PySendHistory:
    """Send time and size of the last HISTORY packets, by transport-wide sequence number."""

    __slots__ = ("_times", "_sizes", "_seqs", "_last")

    def __init__(self) -> None:
        self._times = array("d", bytes(8 * HISTORY))  # typed arrays: no object per entry
        self._sizes = array("i", bytes(4 * HISTORY))
        self._seqs = array("i", [-1]) * HISTORY
        self._last = 0

    def next(self, size: int, now: float) -> int:
        """Hot path: the next transport-wide sequence number, for a packet of `size` bytes leaving `now`."""
        seq = self._last = (self._last + 1) & 0xFFFF
        self.sent(seq, now, size)
        return seq

    def sent(self, seq: int, now: float, size: int) -> None:
        """Hot path: packet `seq` (16 bits) of `size` bytes leaves at `now` (monotonic seconds)."""
        slot = seq & (HISTORY - 1)
        self._seqs[slot] = seq
        self._times[slot] = now
        self._sizes[slot] = size

    def lookup(self, seq: int) -> tuple[float, int] | None:
        """(send time, size) of packet `seq`, None if not remembered."""
        slot = seq & (HISTORY - 1)
        return (self._times[slot], self._sizes[slot]) if self._seqs[slot] == seq else None


_c = compiled.load("_send_history")
SendHistory = PySendHistory if _c is None else _c.SendHistory
