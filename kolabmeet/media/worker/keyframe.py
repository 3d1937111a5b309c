"""Key frame detection on RTP payloads (payload slice ``buf[start:end]``)."""

from __future__ import annotations

import struct
from typing import Callable, Union

Buffer = Union[bytes, bytearray, memoryview]

_U16 = struct.Struct("!H")
_H264_KEY_NALS = (5, 7)  # IDR slice, SPS
_H264_STAP_A = 24
_H264_FU_A = 28


def is_keyframe_vp8(buf: Buffer, start: int, end: int) -> bool:
    """RFC 7741: start of partition 0 (S=1, PID=0) whose payload header has P=0."""
    if start < 0 or start >= end:
        return False
    b0 = buf[start]
    if not b0 & 0x10 or b0 & 0x07:
        return False
    pos = start + 1
    if b0 & 0x80:  # X: extension byte with I/L/T/K
        if pos >= end:
            return False
        ext = buf[pos]
        pos += 1
        if ext & 0x80:  # I: 7- or 15-bit PictureID (M bit)
            if pos >= end:
                return False
            pos += 2 if buf[pos] & 0x80 else 1
        if ext & 0x40:  # L: TL0PICIDX
            pos += 1
        if ext & 0x30:  # T or K: TID/Y/KEYIDX byte
            pos += 1
    return pos < end and not buf[pos] & 0x01


def is_keyframe_vp9(buf: Buffer, start: int, end: int) -> bool:
    """RFC 9628 descriptor: B=1, P=0 and spatial layer 0 when L is present."""
    if start < 0 or start >= end:
        return False
    b0 = buf[start]
    if not b0 & 0x08 or b0 & 0x40:
        return False
    pos = start + 1
    if b0 & 0x80:  # I: picture ID, M bit selects 15 bits
        if pos >= end:
            return False
        pos += 2 if buf[pos] & 0x80 else 1
    if b0 & 0x20:  # L: TID(3) U SID(3) D
        return pos < end and not (buf[pos] >> 1) & 0x07
    return pos <= end


def _stap_a_has_key(buf: Buffer, pos: int, end: int) -> bool:
    """True if an aggregated NAL unit of a STAP-A is an IDR slice or SPS."""
    while pos + 2 < end:
        size = _U16.unpack_from(buf, pos)[0]
        pos += 2
        if size == 0 or pos + size > end:
            return False
        if buf[pos] & 0x1F in _H264_KEY_NALS:
            return True
        pos += size
    return False


def is_keyframe_h264(buf: Buffer, start: int, end: int) -> bool:
    """RFC 6184: IDR/SPS as single NAL, inside STAP-A, or starting an FU-A."""
    if start < 0 or start >= end:
        return False
    nal_type = buf[start] & 0x1F
    if nal_type in _H264_KEY_NALS:
        return True
    if nal_type == _H264_STAP_A:
        return _stap_a_has_key(buf, start + 1, end)
    if nal_type == _H264_FU_A and start + 1 < end:
        fu_header = buf[start + 1]
        return bool(fu_header & 0x80) and fu_header & 0x1F in _H264_KEY_NALS
    return False


KEYFRAME_DETECTORS: dict[str, Callable[[Buffer, int, int], bool]] = {
    "video/vp8": is_keyframe_vp8,
    "video/vp9": is_keyframe_vp9,
    "video/h264": is_keyframe_h264,
}
