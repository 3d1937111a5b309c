"""RTP header helpers (RFC 3550, RFC 8285) working in place on receive buffers.

Every function takes the buffer plus the datagram ``length`` (the buffer may be
larger).  Parsers return sentinels instead of raising on malformed input. The ones every
received packet passes through have compiled twins (``_rtp.c``, see compiled.py); :data:`PY_TWINS`
keeps the pure-Python ones.
"""

from __future__ import annotations

import struct
from typing import Any, Callable, Union

from kolabmeet.media.worker import compiled

Buffer = Union[bytes, bytearray, memoryview]

RTP_HEADER = struct.Struct("!BBHII")
"""V/P/X/CC, M/PT, sequence number, timestamp, SSRC."""
RTP_HEADER_SIZE = 12
ONE_BYTE_PROFILE = 0xBEDE
TWO_BYTE_PROFILE = 0x1000
"""Two-byte header profiles are 0x1000-0x100F (low 4 bits are appbits)."""

_EXT_HEADER = struct.Struct("!HH")
_U16 = struct.Struct("!H")
_ZEROS = bytes(257)
MID_SLOT = 8
"""Bytes kept for the MID value in every forwarded packet: each consumer writes its own MID there."""
_NO_BLOCK = (0, -1, -1)
_NONE_WANTED = (0, 0, 0)


def is_rtp(buf: Buffer, length: int) -> bool:
    """True for an RTP v2 packet (not RTCP muxed on the same port, RFC 5761)."""
    return length >= RTP_HEADER_SIZE and buf[0] >> 6 == 2 and not 64 <= buf[1] & 0x7F <= 95


def _csrc_end(buf: Buffer, length: int) -> int:
    """Offset just after the fixed header and CSRC list, or -1."""
    if length < RTP_HEADER_SIZE or buf[0] >> 6 != 2:
        return -1
    end = RTP_HEADER_SIZE + 4 * (buf[0] & 0x0F)
    return end if end <= length else -1


def extension_block(buf: Buffer, length: int) -> tuple[int, int, int]:
    """(profile, data start, data end) of the header extension, or (0, -1, -1)."""
    pos = _csrc_end(buf, length)
    if pos < 0 or not buf[0] & 0x10 or pos + 4 > length:
        return _NO_BLOCK
    profile, words = _EXT_HEADER.unpack_from(buf, pos)
    end = pos + 4 + 4 * words
    if end > length:
        return _NO_BLOCK
    return profile, pos + 4, end


def payload_bounds(buf: Buffer, length: int) -> tuple[int, int]:
    """(payload start, payload end) excluding CSRCs, extension and padding; (-1, -1) if malformed."""
    pos = _csrc_end(buf, length)
    if pos < 0:
        return -1, -1
    if buf[0] & 0x10:
        pos = extension_block(buf, length)[2]
        if pos < 0:
            return -1, -1
    end = length
    if buf[0] & 0x20:
        pad = buf[length - 1]
        if pad == 0 or pad > length - pos:
            return -1, -1
        end -= pad
    return pos, end


def _element_kind(profile: int) -> int:
    """1 for one-byte elements, 2 for two-byte elements, 0 for unknown profiles."""
    if profile == ONE_BYTE_PROFILE:
        return 1
    return 2 if profile & 0xFFF0 == TWO_BYTE_PROFILE else 0


def find_extension(buf: Buffer, length: int, ext_id: int) -> tuple[int, int]:
    """(value offset, value length) of extension element ``ext_id``; (-1, 0) if absent."""
    for xid, start, stop in _elements(buf, length):
        if xid == ext_id:
            return start, stop - start
    return -1, 0


def rewrite_extension_ids(buf: Buffer, length: int, id_map: bytes) -> None:
    """Map every element id through ``id_map`` (256 bytes) in place.

    A mapped id of 0 (or, in the one-byte form, anything outside 1..14) drops
    the element: its bytes become zero padding, so the packet length is kept.
    """
    map_extensions(buf, length, id_map, _NONE_WANTED)


def map_extensions(buf: Buffer, length: int, id_map: bytes | None,
                   wanted: tuple[int, int, int]) -> tuple[int, int, int]:
    """One pass over the extension block: ids mapped through ``id_map`` (None
    keeps them; see :func:`rewrite_extension_ids`), and the value offsets of the
    three ``wanted`` (mapped) ids, -1 for each one absent.

    The walk of :func:`_elements`, written out again: this runs for every packet
    and allocates nothing."""
    first = second = third = -1
    profile, pos, end = extension_block(buf, length)
    kind = _element_kind(profile)
    id_a, id_b, id_c = wanted
    while kind and pos < end:
        b = buf[pos]
        if b == 0:
            pos += 1
            continue
        if kind == 1:
            if b >> 4 == 15:
                break
            xid, value, stop = b >> 4, pos + 1, pos + 2 + (b & 0x0F)
        else:
            if pos + 2 > end:
                break
            xid, value, stop = b, pos + 2, pos + 2 + buf[pos + 1]
        if stop > end:
            break
        if id_map is not None:
            new_id = id_map[xid]
            if new_id == 0 or (kind == 1 and new_id > 14):
                buf[pos:stop] = _ZEROS[: stop - pos]
                pos = stop
                continue
            buf[pos] = (new_id << 4) | (b & 0x0F) if kind == 1 else new_id
            xid = new_id
        if xid == id_a:
            first = value
        elif xid == id_b:
            second = value
        elif xid == id_c:
            third = value
        pos = stop
    return first, second, third


def extension_size(buf: Buffer, value_at: int) -> int:
    """Size of the element whose value starts at ``value_at`` (an offset found by this module)."""
    if _U16.unpack_from(buf, RTP_HEADER_SIZE + 4 * (buf[0] & 0x0F))[0] == ONE_BYTE_PROFILE:
        return (buf[value_at - 1] & 0x0F) + 1
    return buf[value_at - 1]


def _elements(buf: Buffer, length: int) -> list[tuple[int, int, int]]:
    """[(id, value start, value end)] of the extension block's elements (RFC 8285), in order."""
    profile, pos, end = extension_block(buf, length)
    kind = _element_kind(profile)
    found = []
    while kind and pos < end:
        b = buf[pos]
        if b == 0:  # padding byte
            pos += 1
            continue
        if kind == 1:
            if b >> 4 == 15:  # id 15: stop processing (RFC 8285 4.2)
                break
            xid, value, stop = b >> 4, pos + 1, pos + 2 + (b & 0x0F)
        else:
            if pos + 2 > end:
                break
            xid, value, stop = b, pos + 2, pos + 2 + buf[pos + 1]
        if stop > end:
            break
        found.append((xid, value, stop))
        pos = stop
    return found


_SLOT_ELEMENTS: dict[tuple[int, int, int], bytes] = {}


def _slot_element(xid: int, size: int, kind: int) -> bytes:
    """An element of ``size`` zero bytes in the one-byte (kind 1) or two-byte (kind 2) form."""
    element = _SLOT_ELEMENTS.get((xid, size, kind))
    if element is None:
        header = bytes(((xid << 4) | (size - 1),)) if kind == 1 else bytes((xid, size))
        element = _SLOT_ELEMENTS[(xid, size, kind)] = header + bytes(size)
    return element


def add_extension_slots(buf: bytearray, length: int, slots: tuple[tuple[int, int] | None, ...],
                        found_at: tuple[int, ...], capacity: int) -> int:
    """Give the packet an element ``(id, size)`` for each slot it lacks, to be filled in by the forwarder.

    ``found_at`` holds each slot's value offset as :func:`map_extensions` found it (-1: absent); a slot
    of None is skipped, whatever was found for it. Missing elements are added, zeroed, at the start of
    the block (a one-byte block is made if there is none); one of another size is blanked into padding
    and added anew. The rest of the block and the payload move up. Returns the new length, or -1 when
    the packet is malformed or would outgrow ``capacity``.
    """
    head = _csrc_end(buf, length)
    if head < 0:
        return -1
    profile, kind, start, end = ONE_BYTE_PROFILE, 1, head, head
    if buf[0] & 0x10:
        profile, start, end = extension_block(buf, length)
        if start < 0:
            return -1
        kind = _element_kind(profile)
        if kind == 0:  # an unknown profile: its data cannot be kept
            profile, kind, start = ONE_BYTE_PROFILE, 1, end
    prefix = b""
    blanks = []
    for slot, at in zip(slots, found_at):
        if slot is None:
            continue
        xid, size = slot
        if at >= 0:
            have = extension_size(buf, at)
            if have == size:
                continue
            blanks.append((at - kind, at + have))
        prefix += _slot_element(xid, size, kind)
    kept = end - start
    pad = -(len(prefix) + kept) % 4
    new_end = head + 4 + len(prefix) + kept + pad
    new_length = new_end + length - end
    if new_length > capacity:
        return -1
    for blank_start, blank_end in blanks:
        buf[blank_start:blank_end] = _ZEROS[:blank_end - blank_start]
    tail = memoryview(buf[start:length])  # a copy: source and destination overlap
    buf[head:head + 4] = _EXT_HEADER.pack(profile, (new_end - head - 4) // 4)
    pos = head + 4 + len(prefix)
    buf[head + 4:pos] = prefix
    buf[pos:pos + kept] = tail[:kept]
    buf[pos + kept:new_end] = _ZEROS[:pad]
    buf[new_end:new_length] = tail[kept:]
    buf[0] |= 0x10
    return new_length


def mid_elements(mid: bytes, ext_id: int) -> tuple[bytes, bytes]:
    """The bytes that put MID ``mid`` into a MID_SLOT-byte MID element (zero padding after the value,
    the element shrunk to it), from the octet before the value on: in the one-byte form (id ``ext_id``)
    and in the two-byte form (that octet is the length). Consumers make them once and write them into
    every packet at ``buf[value_at - 1:value_at + MID_SLOT]``."""
    padded = mid + _ZEROS[:MID_SLOT - len(mid)]
    return bytes([ext_id << 4 | len(mid) - 1]) + padded, bytes([len(mid)]) + padded


def is_two_byte_form(buf: Buffer) -> int:
    """1 when the packet's header extension (present) is in the two-byte form, 0 for the one-byte form."""
    return int(buf[RTP_HEADER_SIZE + 4 * (buf[0] & 0x0F)] != 0xBE)


def set_abs_send_time(buf: Buffer, offset: int, seconds: float) -> None:
    """Write a 24-bit 6.18 fixed-point abs-send-time value at ``offset``."""
    value = int(seconds * 262144.0) & 0xFFFFFF
    buf[offset] = value >> 16
    _U16.pack_into(buf, offset + 1, value & 0xFFFF)


def set_transport_wide_seq(buf: Buffer, offset: int, seq: int) -> None:
    """Write a 16-bit big-endian transport-wide sequence number at ``offset``."""
    _U16.pack_into(buf, offset, seq & 0xFFFF)


PY_TWINS: dict[str, Callable[..., Any]] = {
    f.__name__: f for f in (map_extensions, add_extension_slots, extension_size, payload_bounds,
                            is_two_byte_form, set_abs_send_time)
}
"""The pure-Python twins of what ``_rtp.c`` compiles, by name."""

_c = compiled.load("_rtp")
if _c is not None:
    map_extensions, add_extension_slots, extension_size = _c.map_extensions, _c.add_extension_slots, _c.extension_size
    payload_bounds, is_two_byte_form, set_abs_send_time = _c.payload_bounds, _c.is_two_byte_form, _c.set_abs_send_time
