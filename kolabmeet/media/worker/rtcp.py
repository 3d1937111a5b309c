"""RTCP builders and parsers: RFC 3550 (SR/RR/SDES/BYE), RFC 4585 (NACK, PLI),
RFC 5104 (FIR), draft-alvestrand-rmcat-remb and draft-holmer-rmcat-transport-wide-cc.

Parsers take ``(data, offset, length)`` as yielded by :func:`iter_packets`
(offset of the RTCP header, packet size in bytes) and return sentinels
(``None`` or an empty list) on malformed input instead of raising.
"""

from __future__ import annotations

import struct
import time
from itertools import repeat
from typing import Iterable, Iterator, NamedTuple, Optional, Sequence, Union

Buffer = Union[bytes, bytearray, memoryview]

PT_SR = 200
PT_RR = 201
PT_SDES = 202
PT_BYE = 203
PT_RTPFB = 205
PT_PSFB = 206
FMT_NACK = 1
FMT_TCC = 15
FMT_PLI = 1
FMT_FIR = 4
FMT_REMB = 15

SDES_CNAME = 1
NTP_EPOCH_OFFSET = 2208988800  # seconds from 1900-01-01 to 1970-01-01
TCC_DELTA_US = 250  # transport-cc receive delta tick

_HDR = struct.Struct("!BBH")
_HDR_SSRC = struct.Struct("!BBHI")
_FB_HDR = struct.Struct("!BBHII")  # header, sender SSRC, media SSRC
_SENDER_INFO = struct.Struct("!IQIII")  # SSRC, NTP, RTP ts, packets, octets
_BLOCK = struct.Struct("!IIIIII")
_NACK_ITEM = struct.Struct("!HH")
_FIR_ITEM = struct.Struct("!IB3x")
_REMB = struct.Struct("!IBBH")  # "REMB", num SSRC, exp|mantissa high, mantissa low
_TCC_HEAD = struct.Struct("!HHI")  # base seq, status count, ref time(24)|fb count(8)
_U32 = struct.Struct("!I")
_U16 = struct.Struct("!H")
_S16 = struct.Struct("!h")
_REMB_ID = 0x52454D42  # b"REMB"
_MAX_COUNT = 31


class ReportBlock(NamedTuple):
    """RFC 3550 report block; ``packets_lost`` is signed 24-bit."""

    ssrc: int
    fraction_lost: int
    packets_lost: int
    highest_seq: int
    jitter: int
    lsr: int
    dlsr: int


class SenderReport(NamedTuple):
    ssrc: int
    ntp: int
    rtp_ts: int
    packets: int
    octets: int
    reports: list[ReportBlock]


class TransportCc(NamedTuple):
    """Transport-wide CC feedback; packets are (seq, received, delta_us or None)."""

    base_seq: int
    status_count: int
    reference_time: int  # signed, units of 64 ms
    fb_count: int
    packets: list[tuple[int, bool, Optional[int]]]


def ntp_now() -> int:
    """Current wall clock as a 64-bit NTP timestamp (32.32 fixed point)."""
    return int((time.time() + NTP_EPOCH_OFFSET) * 4294967296.0) & 0xFFFFFFFFFFFFFFFF


def ntp_middle32(ntp: int) -> int:
    """Middle 32 bits of a 64-bit NTP timestamp (as used in LSR)."""
    return (ntp >> 16) & 0xFFFFFFFF


# ---------------------------------------------------------------- builders


def _check_count(count: int) -> None:
    if count > _MAX_COUNT:
        raise ValueError(f"at most {_MAX_COUNT} items fit in one RTCP packet")


def _pack_block(out: bytearray, pos: int, rb: ReportBlock) -> None:
    lost = max(-0x800000, min(rb.packets_lost, 0x7FFFFF)) & 0xFFFFFF
    word = ((rb.fraction_lost & 0xFF) << 24) | lost
    _BLOCK.pack_into(out, pos, rb.ssrc, word, rb.highest_seq, rb.jitter, rb.lsr, rb.dlsr)


def _with_blocks(pt: int, ssrc: int, head: int, reports: Sequence[ReportBlock]) -> bytearray:
    """Zeroed ``pt`` packet with header and SSRC set; report blocks start at ``head``."""
    _check_count(len(reports))
    out = bytearray(head + 24 * len(reports))
    _HDR_SSRC.pack_into(out, 0, 0x80 | len(reports), pt, len(out) // 4 - 1, ssrc)
    for i, rb in enumerate(reports):
        _pack_block(out, head + 24 * i, rb)
    return out


def sender_report(
    ssrc: int, ntp_ts: int, rtp_ts: int, packet_count: int, octet_count: int,
    reports: Sequence[ReportBlock] = (),
) -> bytes:
    """SR (PT 200) with optional report blocks."""
    out = _with_blocks(PT_SR, ssrc, 28, reports)
    _SENDER_INFO.pack_into(out, 4, ssrc, ntp_ts, rtp_ts, packet_count, octet_count)
    return bytes(out)


def receiver_report(ssrc: int, reports: Sequence[ReportBlock]) -> bytes:
    """RR (PT 201)."""
    return bytes(_with_blocks(PT_RR, ssrc, 8, reports))


def sdes_cname(ssrc: int, cname: str) -> bytes:
    """SDES (PT 202) with one chunk holding a CNAME item, null-terminated and padded."""
    raw = cname.encode("utf-8")
    if len(raw) > 255:
        raise ValueError("CNAME longer than 255 bytes")
    out = bytearray((10 + len(raw)) // 4 * 4 + 4)  # 1..4 null octets terminate the chunk
    _HDR_SSRC.pack_into(out, 0, 0x81, PT_SDES, len(out) // 4 - 1, ssrc)
    out[8] = SDES_CNAME
    out[9] = len(raw)
    out[10 : 10 + len(raw)] = raw
    return bytes(out)


def bye(ssrcs: Sequence[int]) -> bytes:
    """BYE (PT 203) for up to 31 SSRCs, no reason."""
    _check_count(len(ssrcs))
    out = bytearray(4 + 4 * len(ssrcs))
    _HDR.pack_into(out, 0, 0x80 | len(ssrcs), PT_BYE, len(ssrcs))
    for i, ssrc in enumerate(ssrcs):
        _U32.pack_into(out, 4 + 4 * i, ssrc)
    return bytes(out)


def _feedback(pt: int, fmt: int, sender_ssrc: int, media_ssrc: int, fci_len: int) -> bytearray:
    out = bytearray(12 + fci_len)
    _FB_HDR.pack_into(out, 0, 0x80 | fmt, pt, len(out) // 4 - 1, sender_ssrc, media_ssrc)
    return out


def pli(sender_ssrc: int, media_ssrc: int) -> bytes:
    """Picture Loss Indication (PSFB fmt 1)."""
    return bytes(_feedback(PT_PSFB, FMT_PLI, sender_ssrc, media_ssrc, 0))


def fir(sender_ssrc: int, media_ssrc: int, seq_nr: int) -> bytes:
    """Full Intra Request (PSFB fmt 4); per RFC 5104 the header media SSRC is 0."""
    out = _feedback(PT_PSFB, FMT_FIR, sender_ssrc, 0, 8)
    _FIR_ITEM.pack_into(out, 12, media_ssrc, seq_nr & 0xFF)
    return bytes(out)


def nack(sender_ssrc: int, media_ssrc: int, lost_seqs: Iterable[int]) -> bytes:
    """Generic NACK (RTPFB fmt 1); seqs in (wrap-aware) ascending order pack densest."""
    pairs: list[list[int]] = []
    for seq in lost_seqs:
        seq &= 0xFFFF
        if pairs:
            d = (seq - pairs[-1][0] - 1) & 0xFFFF
            if d < 16:
                pairs[-1][1] |= 1 << d
                continue
            if d == 0xFFFF:  # repeat of the PID
                continue
        pairs.append([seq, 0])
    if not pairs:
        raise ValueError("NACK needs at least one lost sequence number")
    out = _feedback(PT_RTPFB, FMT_NACK, sender_ssrc, media_ssrc, 4 * len(pairs))
    for i, (pid, blp) in enumerate(pairs):
        _NACK_ITEM.pack_into(out, 12 + 4 * i, pid, blp)
    return bytes(out)


def remb(sender_ssrc: int, bitrate: int, ssrcs: Sequence[int]) -> bytes:
    """REMB (PSFB fmt 15): bitrate as 6-bit exponent and 18-bit mantissa."""
    if len(ssrcs) > 255:
        raise ValueError("REMB holds at most 255 SSRCs")
    exp = max(0, int(bitrate).bit_length() - 18)
    mantissa = int(bitrate) >> exp
    out = _feedback(PT_PSFB, FMT_REMB, sender_ssrc, 0, 8 + 4 * len(ssrcs))
    _REMB.pack_into(out, 12, _REMB_ID, len(ssrcs), (exp << 2) | (mantissa >> 16), mantissa & 0xFFFF)
    for i, ssrc in enumerate(ssrcs):
        _U32.pack_into(out, 20 + 4 * i, ssrc)
    return bytes(out)


# ----------------------------------------------------------------- parsers


def _status_chunks(symbols: Sequence[int]) -> bytearray:
    """Packet status chunks for ``symbols``: run lengths for runs, else status vectors (padded with 0)."""
    out = bytearray()
    i, count = 0, len(symbols)
    while i < count:
        run = 1
        while i + run < count and symbols[i + run] == symbols[i] and run < 0x1FFF:
            run += 1
        if run >= 14:
            out += _U16.pack((symbols[i] << 13) | run)
            i += run
            continue
        group = symbols[i:i + 14]
        if len(group) == 14 and max(group) <= 1:
            out += _U16.pack(0x8000 | sum(bit << (13 - n) for n, bit in enumerate(group)))
            i += 14
            continue
        group = symbols[i:i + 7]
        out += _U16.pack(0xC000 | sum(sym << (12 - 2 * n) for n, sym in enumerate(group)))
        i += 7
    return out


def transport_cc(sender_ssrc: int, media_ssrc: int, base_seq: int, reference_time: int, fb_count: int,
                 deltas: Sequence[Optional[int]]) -> bytes:
    """A transport-wide CC feedback: one entry per sequence number from ``base_seq``, its receive delta
    in 250 µs ticks (from the previous packet, the first from ``reference_time`` x 64 ms) or None if lost."""
    symbols = [0 if d is None else 1 if 0 <= d <= 255 else 2 for d in deltas]
    body = bytearray(_TCC_HEAD.pack(base_seq & 0xFFFF, len(deltas),
                                    ((reference_time & 0xFFFFFF) << 8) | (fb_count & 0xFF)))
    body += _status_chunks(symbols)
    for delta, symbol in zip(deltas, symbols):
        if symbol == 1:
            body.append(delta)
        elif symbol == 2:
            body += _S16.pack(delta)
    body += bytes(-len(body) % 4)
    packet = _feedback(PT_RTPFB, FMT_TCC, sender_ssrc, media_ssrc, len(body))
    packet[12:] = body
    return bytes(packet)


def iter_packets(data: Buffer, length: Optional[int] = None) -> Iterator[tuple[int, int, int, int]]:
    """Yield (packet_type, count_or_fmt, offset, size_bytes) for each packet of a compound."""
    end = len(data) if length is None else min(length, len(data))
    pos = 0
    while pos + 4 <= end:
        b0, pt, words = _HDR.unpack_from(data, pos)
        size = 4 * (words + 1)
        if b0 >> 6 != 2 or pos + size > end:
            return
        yield pt, b0 & 0x1F, pos, size
        pos += size


def _body_end(data: Buffer, offset: int, length: int, pt: int) -> int:
    """End of a ``pt`` packet's content with padding removed, or -1 if invalid."""
    if offset < 0 or length < 4 or offset + length > len(data):
        return -1
    if data[offset] >> 6 != 2 or data[offset + 1] != pt:
        return -1
    end = offset + length
    if data[offset] & 0x20:
        pad = data[end - 1]
        if pad == 0 or pad > length - 4:
            return -1
        end -= pad
    return end


def _unpack_blocks(data: Buffer, pos: int, count: int) -> list[ReportBlock]:
    blocks = []
    for _ in range(count):
        ssrc, word, highest, jitter, lsr, dlsr = _BLOCK.unpack_from(data, pos)
        lost = word & 0xFFFFFF
        if lost & 0x800000:
            lost -= 0x1000000
        blocks.append(ReportBlock(ssrc, word >> 24, lost, highest, jitter, lsr, dlsr))
        pos += 24
    return blocks


def parse_sender_report(data: Buffer, offset: int, length: int) -> Optional[SenderReport]:
    """SR fields and report blocks, or None."""
    end = _body_end(data, offset, length, PT_SR)
    count = data[offset] & 0x1F if end >= 0 else 0
    if end < 0 or offset + 28 + 24 * count > end:
        return None
    ssrc, ntp, rtp_ts, packets, octets = _SENDER_INFO.unpack_from(data, offset + 4)
    return SenderReport(ssrc, ntp, rtp_ts, packets, octets, _unpack_blocks(data, offset + 28, count))


def parse_receiver_report(data: Buffer, offset: int, length: int) -> Optional[tuple[int, list[ReportBlock]]]:
    """(reporter SSRC, report blocks) of an RR, or None."""
    end = _body_end(data, offset, length, PT_RR)
    count = data[offset] & 0x1F if end >= 0 else 0
    if end < 0 or offset + 8 + 24 * count > end:
        return None
    return _U32.unpack_from(data, offset + 4)[0], _unpack_blocks(data, offset + 8, count)


def parse_feedback_ssrcs(data: Buffer, offset: int, length: Optional[int] = None) -> tuple[int, int]:
    """(sender SSRC, media SSRC) of an RTPFB/PSFB packet, or (-1, -1)."""
    if offset < 0 or offset + 12 > len(data) or (length is not None and length < 12):
        return -1, -1
    if data[offset + 1] not in (PT_RTPFB, PT_PSFB):
        return -1, -1
    return _FB_HDR.unpack_from(data, offset)[3:]


def _fci(data: Buffer, offset: int, length: int, pt: int, fmt: int) -> int:
    """End of a feedback packet's FCI if it is ``pt``/``fmt`` and well formed, else -1."""
    end = _body_end(data, offset, length, pt)
    if end < offset + 12 or data[offset] & 0x1F != fmt:
        return -1
    return end


def parse_nack(data: Buffer, offset: int, length: int) -> list[int]:
    """Lost sequence numbers listed by a generic NACK ([] if malformed)."""
    end = _fci(data, offset, length, PT_RTPFB, FMT_NACK)
    lost: list[int] = []
    for pos in range(offset + 12, end - 3, 4):
        pid, blp = _NACK_ITEM.unpack_from(data, pos)
        lost.append(pid)
        while blp:
            low = blp & -blp
            lost.append((pid + low.bit_length()) & 0xFFFF)
            blp ^= low
    return lost


def parse_fir(data: Buffer, offset: int, length: int) -> list[tuple[int, int]]:
    """(media SSRC, command seq nr) per FIR entry ([] if malformed)."""
    end = _fci(data, offset, length, PT_PSFB, FMT_FIR)
    return [_FIR_ITEM.unpack_from(data, pos) for pos in range(offset + 12, end - 7, 8)]


def parse_remb(data: Buffer, offset: int, length: int) -> Optional[tuple[int, list[int]]]:
    """(bitrate bps, SSRCs) of a REMB, or None."""
    end = _fci(data, offset, length, PT_PSFB, FMT_REMB)
    if end < offset + 20:
        return None
    ident, num, exp_hi, low = _REMB.unpack_from(data, offset + 12)
    if ident != _REMB_ID or offset + 20 + 4 * num > end:
        return None
    bitrate = (((exp_hi & 0x03) << 16) | low) << (exp_hi >> 2)
    return bitrate, [_U32.unpack_from(data, offset + 20 + 4 * i)[0] for i in range(num)]


def _tcc_statuses(data: Buffer, pos: int, end: int, count: int) -> tuple[int, bytearray]:
    """Decode packet status chunks into one symbol per packet; (-1, ...) if truncated."""
    statuses = bytearray()
    while len(statuses) < count:
        if pos + 2 > end:
            return -1, statuses
        chunk = _U16.unpack_from(data, pos)[0]
        pos += 2
        if not chunk & 0x8000:  # run length: T=0, S(2), length(13)
            statuses.extend(repeat((chunk >> 13) & 0x03, min(chunk & 0x1FFF, count - len(statuses))))
        elif chunk & 0x4000:  # status vector, seven 2-bit symbols
            statuses.extend((chunk >> shift) & 0x03 for shift in range(12, -1, -2))
        else:  # status vector, fourteen 1-bit symbols
            statuses.extend((chunk >> shift) & 0x01 for shift in range(13, -1, -1))
    del statuses[count:]
    return pos, statuses


def parse_transport_cc(data: Buffer, offset: int, length: int) -> Optional[TransportCc]:
    """Decode a transport-wide congestion control feedback, or None."""
    end = _fci(data, offset, length, PT_RTPFB, FMT_TCC)
    if end < offset + 20:
        return None
    base, count, ref = _TCC_HEAD.unpack_from(data, offset + 12)
    pos, statuses = _tcc_statuses(data, offset + 20, end, count)
    if pos < 0:
        return None
    packets: list[tuple[int, bool, Optional[int]]] = []
    for i, symbol in enumerate(statuses):
        seq = (base + i) & 0xFFFF
        if symbol == 0:
            packets.append((seq, False, None))
            continue
        size = symbol  # 1: small delta (1 byte), 2: large/negative delta (2 bytes)
        if size == 3 or pos + size > end:
            return None
        delta = data[pos] if size == 1 else _S16.unpack_from(data, pos)[0]
        packets.append((seq, True, delta * TCC_DELTA_US))
        pos += size
    ref_time = ref >> 8
    if ref_time & 0x800000:
        ref_time -= 0x1000000
    return TransportCc(base, count, ref_time, ref & 0xFF, packets)


def parse_bye(data: Buffer, offset: int, length: int) -> list[int]:
    """SSRCs leaving ([] if malformed)."""
    end = _body_end(data, offset, length, PT_BYE)
    count = data[offset] & 0x1F if end >= 0 else 0
    if offset + 4 + 4 * count > end:
        return []
    return [_U32.unpack_from(data, offset + 4 + 4 * i)[0] for i in range(count)]


def parse_sdes_cnames(data: Buffer, offset: int, length: int) -> list[tuple[int, str]]:
    """(SSRC, CNAME) pairs of an SDES packet; stops at the first malformed chunk."""
    end = _body_end(data, offset, length, PT_SDES)
    cnames: list[tuple[int, str]] = []
    pos = offset + 4
    for _ in range(data[offset] & 0x1F if end >= 0 else 0):
        if pos + 4 > end:
            break
        ssrc = _U32.unpack_from(data, pos)[0]
        pos += 4
        while pos < end and data[pos]:
            if pos + 2 > end or pos + 2 + data[pos + 1] > end:
                return cnames
            if data[pos] == SDES_CNAME:
                cnames.append((ssrc, str(data[pos + 2 : pos + 2 + data[pos + 1]], "utf-8", "replace")))
            pos += 2 + data[pos + 1]
        pos = offset + ((pos - offset) // 4 + 1) * 4  # skip null terminator and padding
    return cnames
