"""Send-side retransmission: a ring buffer of sent packets and RTX (RFC 4588) framing.

The buffer keeps one reusable ``bytearray`` per slot, so storing a packet is a
copy into memory allocated once, and as many slots as its stream's packets of the last
``max_age_ms`` need; it has a compiled twin (``_retransmission.c``, see
compiled.py).  :func:`build_rtx` and :func:`restore_rtx` work on caller buffers
without building packet objects.
"""

from __future__ import annotations

import struct
from typing import Union

from kolabmeet.media.worker import compiled
from kolabmeet.media.worker.rtp import payload_bounds

Buffer = Union[bytes, bytearray, memoryview]

_HEAD = struct.Struct("!BBH")  # V/P/X/CC, M/PT, sequence number
_U16 = struct.Struct("!H")
_U32 = struct.Struct("!I")
_SLOT_ROUND = 256  # slot bytearrays are sized in multiples of this
FIRST_SLOTS = 64
"""Slots a buffer starts with (it grows as its stream needs, see :class:`PyRetransmissionBuffer`)."""
_NO_PADDING = 0xDF  # clears the P bit
_NEVER = float("-inf")


class PyRetransmissionBuffer:
    """The last sent packets of one consumer stream (up to ``size``), indexed by sequence number.

    The ring starts with FIRST_SLOTS slots and doubles, up to ``size``, when a packet would
    overwrite one still young enough to be asked for again: a stream keeps slots for about
    ``max_age_ms`` of its own packets, not for ``size`` of them (a 1 Mbit/s video stream needs
    256 slots: a quarter of the memory, taken in its first two seconds rather than its first nine).
    """

    def __init__(self, size: int = 1024, max_age_ms: float = 2000) -> None:
        if size <= 0 or size & (size - 1):
            raise ValueError("size must be a power of two")
        self._size = size
        self._max_age_ms = max_age_ms
        self.capacity = min(size, FIRST_SLOTS)
        self._mask = self.capacity - 1
        self._slots: list[bytearray] = [bytearray() for _ in range(self.capacity)]
        self._lengths = [0] * self.capacity
        self._seqs = [-1] * self.capacity  # -1: empty slot
        self._stored_at = [0.0] * self.capacity
        self._resent_at = [_NEVER] * self.capacity

    def store(self, seq: int, packet: Buffer, now_ms: float) -> None:
        """Keep a copy of ``packet`` (all of it), sent as ``seq``."""
        seq &= 0xFFFF
        slot = seq & self._mask
        held = self._seqs[slot]
        while (held >= 0 and held != seq and now_ms - self._stored_at[slot] <= self._max_age_ms
               and self.capacity < self._size):
            self._grow()
            slot = seq & self._mask
            held = self._seqs[slot]
        buf = self._slots[slot]
        length = len(packet)
        if len(buf) < length:
            buf = self._slots[slot] = bytearray(-(-length // _SLOT_ROUND) * _SLOT_ROUND)
        buf[:length] = packet
        self._lengths[slot] = length
        self._seqs[slot] = seq
        self._stored_at[slot] = now_ms
        self._resent_at[slot] = _NEVER

    def _grow(self) -> None:
        """Twice the slots, each stored packet moved to its slot in the larger ring (an empty slot's
        memory stays at its index, which no moved packet takes)."""
        capacity = self.capacity * 2
        slots, lengths = [bytearray() for _ in range(capacity)], [0] * capacity
        seqs, stored_at, resent_at = [-1] * capacity, [0.0] * capacity, [_NEVER] * capacity
        for i, seq in enumerate(self._seqs):
            j = i if seq < 0 else seq & (capacity - 1)
            slots[j], lengths[j], seqs[j] = self._slots[i], self._lengths[i], seq
            stored_at[j], resent_at[j] = self._stored_at[i], self._resent_at[i]
        self._slots, self._lengths, self._seqs = slots, lengths, seqs
        self._stored_at, self._resent_at = stored_at, resent_at
        self.capacity, self._mask = capacity, capacity - 1

    def get(self, seq: int, now_ms: float) -> tuple[bytearray, int] | None:
        """(slot buffer, length) of packet ``seq``; None if never stored, overwritten or too old.

        The buffer is the slot's own: use it before the next :meth:`store`.
        """
        seq &= 0xFFFF
        slot = seq & self._mask
        if self._seqs[slot] != seq or now_ms - self._stored_at[slot] > self._max_age_ms:
            return None
        return self._slots[slot], self._lengths[slot]

    def resend(self, seq: int, now_ms: float, hold_ms: float) -> tuple[bytearray, int] | None:
        """Like :meth:`get`, for sending again; None also when it was resent less than ``hold_ms`` ago
        (a receiver repeating its NACK before the first resend could arrive must not double the load)."""
        stored = self.get(seq, now_ms)
        slot = seq & self._mask
        if stored is None or now_ms - self._resent_at[slot] < hold_ms:
            return None
        self._resent_at[slot] = now_ms
        return stored

    def clear(self) -> None:
        """Forget every stored packet (slot memory is kept for reuse)."""
        self._seqs = [-1] * len(self._seqs)


_c = compiled.load("_retransmission")
RetransmissionBuffer = PyRetransmissionBuffer if _c is None else _c.RetransmissionBuffer


def build_rtx(
    packet: bytearray, length: int, out: bytearray, rtx_pt: int, rtx_ssrc: int, rtx_seq: int
) -> int:
    """Write the RTX packet (RFC 4588) for ``packet`` into ``out``; its length, or -1 if malformed.

    Header, CSRCs, header extension and marker are kept; payload type, sequence
    number and SSRC become the RTX ones; the payload is the original sequence
    number followed by the original payload, without the original padding.
    ``out`` (not ``packet`` itself) is grown if too short for the RTX packet.
    """
    start, end = payload_bounds(packet, length)
    if start < 0:
        return -1
    out[:start] = packet[:start]
    _HEAD.pack_into(out, 0, packet[0] & _NO_PADDING, (packet[1] & 0x80) | (rtx_pt & 0x7F), rtx_seq & 0xFFFF)
    _U32.pack_into(out, 8, rtx_ssrc & 0xFFFFFFFF)
    out[start : start + 2] = packet[2:4]  # OSN
    out[start + 2 : end + 2] = memoryview(packet)[start:end]
    return end + 2


def parse_rtx(buf: bytearray, length: int) -> int:
    """Turn a received RTX packet back into its original in place; new length or -1.

    The original sequence number (OSN) replaces the RTX one, the payload moves
    back over the OSN and RTX padding is dropped (P bit cleared).  Payload type
    and SSRC are left to the caller (see :func:`restore_rtx`).
    """
    start, end = payload_bounds(buf, length)
    if start < 0 or end - start < 2:
        return -1
    osn = _U16.unpack_from(buf, start)[0]
    with memoryview(buf) as view:
        view[start : end - 2] = view[start + 2 : end]  # overlapping: memmove
    _U16.pack_into(buf, 2, osn)
    buf[0] &= _NO_PADDING
    return end - 2


def restore_rtx(buf: bytearray, length: int, media_pt: int, media_ssrc: int) -> int:
    """:func:`parse_rtx`, then set the original stream's payload type and SSRC; new length or -1."""
    length = parse_rtx(buf, length)
    if length >= 0:
        buf[1] = (buf[1] & 0x80) | (media_pt & 0x7F)
        _U32.pack_into(buf, 8, media_ssrc & 0xFFFFFFFF)
    return length
