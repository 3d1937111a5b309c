"""Receive-side NACK generation (RFC 4585 generic NACK) for one producer stream.

Sequence numbers are unwrapped into ever-growing "extended" integers so that
ordering and age survive the 65535 -> 0 wrap.  Missing packets live in two
dicts keyed by extended sequence number (insertion order is ascending), so the
loss-free path of :meth:`NackGenerator.receive` touches no container at all.
"""

from __future__ import annotations

DEFAULT_RTT_MS = 100.0
_NEVER = float("-inf")


class NackGenerator:
    """Tracks missing sequence numbers of one RTP stream and paces their NACKs.

    Call :meth:`receive` for every media packet, then :meth:`pending` from a
    timer (every 20-40 ms) and also right after ``missing_count`` grew, so the
    first NACK for a new gap goes out at once.
    """

    def __init__(
        self,
        max_packet_age: int = 10000,
        max_nack_packets: int = 1000,
        max_retries: int = 10,
        rtt_ms: float = 100.0,
    ) -> None:
        self._max_packet_age = max_packet_age
        self._max_nack_packets = max_nack_packets
        self._max_retries = max_retries
        self._rtt_ms = rtt_ms
        self._started = False
        self._highest = 0  # extended sequence number of the newest packet
        self._sent_at: dict[int, float] = {}  # missing ext seq -> last NACK time
        self._retries: dict[int, int] = {}  # missing ext seq -> NACKs sent
        self._recovered: set[int] = set()  # ext seqs ahead of _highest that came via RTX

    @property
    def missing_count(self) -> int:
        """How many sequence numbers are currently missing."""
        return len(self._sent_at)

    def set_rtt(self, rtt_ms: float) -> None:
        """Set the round-trip time that spaces NACKs of one packet (<= 0: the default)."""
        self._rtt_ms = rtt_ms if rtt_ms > 0 else DEFAULT_RTT_MS

    def reset(self) -> None:
        """Forget all state; the next packet starts the stream afresh."""
        self._started = False
        self._highest = 0
        self._sent_at.clear()
        self._retries.clear()
        self._recovered.clear()

    def is_missing(self, seq: int) -> bool:
        """Whether `seq` has not arrived yet: older and missing, or newer than the newest."""
        if not self._started:
            return True
        delta = (seq - self._highest) & 0xFFFF
        if delta == 0:
            return False
        if delta < 0x8000:
            return self._highest + delta not in self._recovered
        return self._highest + delta - 0x10000 in self._sent_at

    def receive(self, seq: int, is_recovered: bool = False) -> bool:
        """Account for a received packet; True if a key frame should be requested instead.

        ``is_recovered`` marks a packet that arrived through RTX: it fills its
        gap but never advances the newest sequence number (as in libwebrtc).
        """
        if not self._started:
            self._started = True
            self._highest = seq & 0xFFFF
            return False
        highest = self._highest
        delta = (seq - highest) & 0xFFFF
        if delta == 0:
            return False
        if delta >= 0x8000:  # older than the newest: reordered or retransmitted
            ext = highest + delta - 0x10000
            if ext in self._sent_at:
                del self._sent_at[ext]
                del self._retries[ext]
            return False
        if delta == 1 and not is_recovered and not self._recovered:  # the common case
            self._highest = highest + 1
            return False
        if is_recovered:
            if delta <= self._max_nack_packets:
                self._recovered.add(highest + delta)
            return False
        return self._advance(highest + delta)

    def _advance(self, ext: int) -> bool:
        """Move the newest sequence number to ``ext``, marking the skipped ones missing."""
        first = self._highest + 1
        self._highest = ext
        recovered = self._recovered
        if recovered:
            recovered.discard(ext)
        if first == ext:
            return False
        oldest = ext - self._max_packet_age
        self._drop_older_than(oldest)
        if first < oldest:  # a jump beyond max_packet_age: only the recent part is worth a NACK
            first = oldest
            recovered.clear()
        if len(self._sent_at) + (ext - first) > self._max_nack_packets:
            self._sent_at.clear()
            self._retries.clear()
            recovered.clear()
            return True
        for missing in range(first, ext):
            if recovered and missing in recovered:
                recovered.discard(missing)
                continue
            self._sent_at[missing] = _NEVER
            self._retries[missing] = 0
        return False

    def _drop_older_than(self, oldest: int) -> None:
        """Remove missing entries whose extended sequence number is below ``oldest``."""
        sent_at = self._sent_at
        while sent_at:
            first = next(iter(sent_at))
            if first >= oldest:
                return
            del sent_at[first]
            del self._retries[first]

    def pending(self, now_ms: float) -> list[int]:
        """Sequence numbers to NACK now, in ascending (wrap-aware) order.

        Each missing packet is NACKed at most ``max_retries`` times, never twice
        within one RTT; it is forgotten once out of retries or older than
        ``max_packet_age`` sequence numbers.
        """
        self._drop_older_than(self._highest - self._max_packet_age)
        sent_at, retries = self._sent_at, self._retries
        due: list[int] = []
        spent: list[int] = []
        for ext, last in sent_at.items():
            if now_ms - last < self._rtt_ms:
                continue
            due.append(ext & 0xFFFF)
            sent_at[ext] = now_ms
            retries[ext] += 1
            if retries[ext] >= self._max_retries:
                spent.append(ext)
        for ext in spent:
            del sent_at[ext]
            del retries[ext]
        return due
