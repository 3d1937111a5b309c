import random
import struct
import time

import pytest
from aiortc.rtp import (
    RtcpByePacket,
    RtcpPacket,
    RtcpPsfbPacket,
    RtcpReceiverInfo,
    RtcpRrPacket,
    RtcpRtpfbPacket,
    RtcpSdesPacket,
    RtcpSenderInfo,
    RtcpSourceInfo,
    RtcpSrPacket,
    pack_remb_fci,
)

from kolabmeet.media.worker import rtcp
from kolabmeet.media.worker.rtcp import (
    FMT_FIR,
    FMT_NACK,
    FMT_PLI,
    FMT_REMB,
    FMT_TCC,
    PT_BYE,
    PT_PSFB,
    PT_RR,
    PT_RTPFB,
    PT_SDES,
    PT_SR,
    ReportBlock,
    bye,
    fir,
    iter_packets,
    nack,
    ntp_middle32,
    ntp_now,
    parse_bye,
    parse_feedback_ssrcs,
    parse_fir,
    parse_nack,
    parse_receiver_report,
    parse_remb,
    parse_sdes_cnames,
    parse_sender_report,
    parse_transport_cc,
    pli,
    receiver_report,
    remb,
    sdes_cname,
    sender_report,
)

BLOCKS = [
    ReportBlock(0x11223344, 25, 1234, 0x0001FFFF, 77, 0xAABBCCDD, 65536),
    ReportBlock(0x55667788, 0, -3, 65535, 0, 0, 0),  # negative cumulative loss (duplicates)
]


def aiortc_block(rb):
    return RtcpReceiverInfo(*rb)


def only_packet(data):
    packets = list(iter_packets(data))
    assert len(packets) == 1 and packets[0][2:] == (0, len(data))
    return packets[0]


# A transport-cc feedback as libwebrtc sends it, built by hand per
# draft-holmer-rmcat-transport-wide-cc-extensions-01 section 3.1:
TCC_FEEDBACK = bytes.fromhex(
    "afcd0008"  # V=2 P=1 FMT=15, PT=205 (RTPFB), length 8 -> 36 bytes
    "00000001"  # SSRC of packet sender (libwebrtc uses 1 when it sends no media)
    "7a3b9c01"  # SSRC of media source
    "0190"  # base sequence number 400
    "000c"  # packet status count 12 (seqs 400..411)
    "0a1b2c"  # reference time 0x0a1b2c (x 64 ms)
    "05"  # feedback packet count 5
    "2004"  # run-length chunk: T=0, S=01 (small delta), run 4 -> 400..403
    "c940"  # status vector, 2-bit: 00 10 01 01 00 00 00 -> 404..410
    "a000"  # status vector, 1-bit: 1 then 13 unused zeros -> 411 (rest beyond count)
    "04"  # 400: +1000 us
    "00"  # 401: +0 us
    "08"  # 402: +2000 us
    "ff"  # 403: +63750 us
    "fff0"  # 405: large/negative delta, -16 x 250 us
    "10"  # 406: +4000 us
    "01"  # 407: +250 us
    "02"  # 411: +500 us
    "01"  # padding: 1 byte (P bit set, last byte = count)
)
TCC_EXPECTED = [
    (400, True, 1000), (401, True, 0), (402, True, 2000), (403, True, 63750),
    (404, False, None), (405, True, -4000), (406, True, 4000), (407, True, 250),
    (408, False, None), (409, False, None), (410, False, None), (411, True, 500),
]
# Base sequence wraps, reference time is -1, padding without the P bit.
TCC_WRAP = bytes.fromhex("8fcd0006" "00000001" "00000002" "fffe0003" "ffffff00" "2003" "010203" "000000")

# REMB as sent by Chrome: 1 SSRC, exponent 3, mantissa 0x13b4a -> 645712 bps.
REMB_FIXTURE = bytes.fromhex("8fce0005" "00000001" "00000000" "52454d42" "010d3b4a" "12345678")
# Generic NACK: PID 100, BLP 0x0005 -> 100, 101, 103.
NACK_FIXTURE = bytes.fromhex("81cd0003" "00000001" "deadbeef" "00640005")
# FIR: header media SSRC 0, FCI SSRC 0xdeadbeef, command seq 7.
FIR_FIXTURE = bytes.fromhex("84ce0004" "00000001" "00000000" "deadbeef" "07000000")


def test_sender_report_matches_aiortc():
    ntp = 0xE8F1D2C3_80000000
    ours = sender_report(0x01020304, ntp, 90000, 100, 12000, BLOCKS)
    theirs = bytes(
        RtcpSrPacket(
            ssrc=0x01020304,
            sender_info=RtcpSenderInfo(
                ntp_timestamp=ntp, rtp_timestamp=90000, packet_count=100, octet_count=12000
            ),
            reports=[aiortc_block(rb) for rb in BLOCKS],
        )
    )
    assert ours == theirs
    pt, count, off, size = only_packet(ours)
    assert (pt, count) == (PT_SR, 2)
    sr = parse_sender_report(ours, off, size)
    assert sr == (0x01020304, ntp, 90000, 100, 12000, BLOCKS)
    assert sender_report(1, 2, 3, 4, 5) == bytes.fromhex(
        "80c80006" "00000001" "0000000000000002" "00000003" "00000004" "00000005")


def test_receiver_report_matches_aiortc():
    ours = receiver_report(0xCAFEBABE, BLOCKS)
    assert ours == bytes(RtcpRrPacket(ssrc=0xCAFEBABE, reports=[aiortc_block(rb) for rb in BLOCKS]))
    pt, count, off, size = only_packet(ours)
    assert (pt, count) == (PT_RR, 2)
    assert parse_receiver_report(ours, off, size) == (0xCAFEBABE, BLOCKS)
    assert receiver_report(5, []) == bytes.fromhex("80c9000100000005")


def test_report_block_loss_is_clamped():
    data = receiver_report(1, [ReportBlock(2, 300, -(1 << 30), 0, 0, 0, 0)])
    assert parse_receiver_report(data, 0, len(data))[1][0].packets_lost == -0x800000
    data = receiver_report(1, [ReportBlock(2, 0, 1 << 30, 0, 0, 0, 0)])
    assert parse_receiver_report(data, 0, len(data))[1][0].packets_lost == 0x7FFFFF


def test_parse_aiortc_sender_report():
    data = bytes(
        RtcpSrPacket(
            ssrc=9,
            sender_info=RtcpSenderInfo(ntp_timestamp=1 << 63, rtp_timestamp=1, packet_count=2, octet_count=3),
            reports=[RtcpReceiverInfo(7, 255, -8388608, 1, 2, 3, 4)],
        )
    )
    sr = parse_sender_report(data, 0, len(data))
    assert sr.ssrc == 9 and sr.ntp == 1 << 63
    assert sr.reports == [ReportBlock(7, 255, -8388608, 1, 2, 3, 4)]


@pytest.mark.parametrize("cname", ["{f3a7c2d1-1111-2222-3333-444455556666}", "ab", "abc", "abcd"])
def test_sdes_matches_aiortc(cname):
    ours = sdes_cname(0x1234, cname)
    assert ours == bytes(RtcpSdesPacket(chunks=[RtcpSourceInfo(ssrc=0x1234, items=[(1, cname.encode())])]))
    assert parse_sdes_cnames(ours, 0, len(ours)) == [(0x1234, cname)]


@pytest.mark.parametrize("cname", ["a", "abcde", "x" * 255])
def test_sdes_minimal_null_padding(cname):
    ours = sdes_cname(7, cname)
    assert len(ours) % 4 == 0 and ours[10 + len(cname)] == 0 and len(ours) - 10 - len(cname) <= 4
    assert parse_sdes_cnames(ours, 0, len(ours)) == [(7, cname)]
    [parsed] = RtcpPacket.parse(ours)
    assert parsed.chunks[0].items == [(1, cname.encode())]


def test_parse_aiortc_sdes_multiple_chunks():
    # aiortc pads only the end of the packet, so item sizes are chosen to keep
    # every chunk 32-bit aligned as RFC 3550 requires.
    data = bytes(
        RtcpSdesPacket(
            chunks=[
                RtcpSourceInfo(ssrc=1, items=[(1, b"alice"), (2, b"A")]),
                RtcpSourceInfo(ssrc=2, items=[(6, b"tool!!"), (1, "b\u00f6b".encode())]),
                RtcpSourceInfo(ssrc=3, items=[]),
            ]
        )
    )
    assert parse_sdes_cnames(data, 0, len(data)) == [(1, "alice"), (2, "b\u00f6b")]


def test_sdes_literal_chunks():
    data = bytes.fromhex(
        "82ca0006"  # SC=2, 28 bytes
        "00000001" "0103616263" "00" "0000"  # CNAME "abc", null + 2 padding
        "00000002" "0104ff616263" "00" "00"  # CNAME with invalid UTF-8, terminator + padding
    )
    assert parse_sdes_cnames(data, 0, len(data)) == [(1, "abc"), (2, "\ufffdabc")]
    assert parse_sdes_cnames(data, 0, 16) == [(1, "abc")]  # second chunk cut off


def test_bye_matches_aiortc():
    ours = bye([1, 0xFFFFFFFF, 3])
    assert ours == bytes(RtcpByePacket(sources=[1, 0xFFFFFFFF, 3]))
    assert parse_bye(ours, 0, len(ours)) == [1, 0xFFFFFFFF, 3]
    # BYE with a reason string after the SSRC list
    with_reason = bytes.fromhex("81cb0003" "0000002a" "07" "676f6f64627965")  # 7, "goodbye"
    assert parse_bye(with_reason, 0, len(with_reason)) == [42]
    with pytest.raises(ValueError):
        bye(list(range(32)))


def test_pli_and_fir_match_aiortc():
    ours = pli(1, 0xDEADBEEF)
    assert ours == bytes(RtcpPsfbPacket(fmt=FMT_PLI, ssrc=1, media_ssrc=0xDEADBEEF))
    assert ours == bytes.fromhex("81ce0002" "00000001" "deadbeef")
    assert only_packet(ours)[:2] == (PT_PSFB, FMT_PLI)
    assert parse_feedback_ssrcs(ours, 0) == (1, 0xDEADBEEF)
    ours = fir(1, 0xDEADBEEF, 263)
    assert ours == FIR_FIXTURE
    fci = struct.pack("!IB3x", 0xDEADBEEF, 7)
    assert ours == bytes(RtcpPsfbPacket(fmt=FMT_FIR, ssrc=1, media_ssrc=0, fci=fci))
    assert parse_fir(ours, 0, len(ours)) == [(0xDEADBEEF, 7)]
    two = bytes.fromhex("84ce0006" "00000001" "00000000" "00000011" "01000000" "00000022" "02000000")
    assert parse_fir(two, 0, len(two)) == [(0x11, 1), (0x22, 2)]


def test_nack_matches_aiortc():
    lost = [100, 101, 103, 116, 117, 200]
    ours = nack(1, 2, lost)
    assert ours == bytes(RtcpRtpfbPacket(fmt=FMT_NACK, ssrc=1, media_ssrc=2, lost=lost))
    assert parse_nack(ours, 0, len(ours)) == lost
    assert parse_nack(NACK_FIXTURE, 0, len(NACK_FIXTURE)) == [100, 101, 103]
    assert nack(1, 0xDEADBEEF, [100, 101, 103]) == NACK_FIXTURE
    [parsed] = RtcpPacket.parse(ours)
    assert parsed.lost == lost


def test_nack_sequence_wrap():
    ours = nack(1, 2, [65534, 65535, 0, 1, 15, 16])
    # PID 65534 with BLP bits 0-2 (65535, 0, 1 across the wrap); 15 is 17 past
    # 65534, so it opens a new pair: PID 15 with BLP bit 0 (16).
    assert ours == bytes.fromhex("81cd0004" "00000001" "00000002" "fffe0007" "000f0001")
    assert parse_nack(ours, 0, len(ours)) == [65534, 65535, 0, 1, 15, 16]
    assert nack(1, 2, [5, 5, 6]) == nack(1, 2, [5, 6])
    with pytest.raises(ValueError):
        nack(1, 2, [])


@pytest.mark.parametrize("bitrate", [0, 1, 0x3FFFF, 0x40000, 645712, 2_500_000, 10**9, (1 << 63) - 1])
def test_remb_matches_aiortc(bitrate):
    ssrcs = [0x12345678, 0x9ABCDEF0]
    ours = remb(1, bitrate, ssrcs)
    fci = pack_remb_fci(bitrate, ssrcs)
    assert ours == bytes(RtcpPsfbPacket(fmt=FMT_REMB, ssrc=1, media_ssrc=0, fci=fci))
    parsed_bitrate, parsed_ssrcs = parse_remb(ours, 0, len(ours))
    assert parsed_ssrcs == ssrcs
    assert parsed_bitrate <= bitrate and bitrate - parsed_bitrate < max(1, bitrate >> 17)


def test_remb_fixture():
    assert only_packet(REMB_FIXTURE)[:2] == (PT_PSFB, FMT_REMB)
    assert parse_remb(REMB_FIXTURE, 0, len(REMB_FIXTURE)) == (645712, [0x12345678])
    assert parse_remb(remb(1, 645712, [0x12345678]), 0, 24) == (645712, [0x12345678])
    not_remb = REMB_FIXTURE[:12] + b"ABCD" + REMB_FIXTURE[16:]
    assert parse_remb(not_remb, 0, len(not_remb)) is None
    too_many = REMB_FIXTURE[:16] + b"\x02" + REMB_FIXTURE[17:]
    assert parse_remb(too_many, 0, len(too_many)) is None


def test_transport_cc_fixture():
    pt, fmt, off, size = only_packet(TCC_FEEDBACK)
    assert (pt, fmt, size) == (PT_RTPFB, FMT_TCC, 36)
    assert parse_feedback_ssrcs(TCC_FEEDBACK, off, size) == (1, 0x7A3B9C01)
    tcc = parse_transport_cc(TCC_FEEDBACK, off, size)
    assert (tcc.base_seq, tcc.status_count, tcc.reference_time, tcc.fb_count) == (400, 12, 0x0A1B2C, 5)
    assert tcc.packets == TCC_EXPECTED
    assert parse_nack(TCC_FEEDBACK, off, size) == []  # FMT 15 is not a NACK


def test_transport_cc_wrap_and_negative_reference():
    tcc = parse_transport_cc(TCC_WRAP, 0, len(TCC_WRAP))
    assert tcc.reference_time == -1 and tcc.fb_count == 0
    assert tcc.packets == [(65534, True, 250), (65535, True, 500), (0, True, 750)]


def test_transport_cc_malformed():
    short_deltas = bytearray(TCC_FEEDBACK)
    short_deltas[-1] = 3  # padding now eats the last two deltas
    assert parse_transport_cc(short_deltas, 0, 36) is None
    reserved = bytearray(TCC_FEEDBACK)
    reserved[22:24] = bytes.fromhex("f000")  # 2-bit vector starting with symbol 11
    assert parse_transport_cc(reserved, 0, 36) is None
    many = bytearray(TCC_FEEDBACK)
    many[14:16] = b"\x00\x40"  # status count 64: chunks run out
    assert parse_transport_cc(many, 0, 36) is None
    assert parse_transport_cc(TCC_FEEDBACK[:16] + b"\x00" * 4, 0, 20) is None


def test_compound_from_aiortc_in_receive_buffer():
    compound = (
        bytes(RtcpRrPacket(ssrc=5, reports=[aiortc_block(BLOCKS[0])]))
        + bytes(RtcpSdesPacket(chunks=[RtcpSourceInfo(ssrc=5, items=[(1, b"peer")])]))
        + bytes(RtcpPsfbPacket(fmt=FMT_REMB, ssrc=5, media_ssrc=0, fci=pack_remb_fci(300000, [9])))
        + bytes(RtcpRtpfbPacket(fmt=FMT_NACK, ssrc=5, media_ssrc=9, lost=[10, 12]))
        + bytes(RtcpByePacket(sources=[5]))
        + TCC_FEEDBACK
    )
    buf = bytearray(1500)
    buf[: len(compound)] = compound
    buf[len(compound) : len(compound) + 4] = b"\x80\xc9\x00\x00"  # stale bytes past the datagram
    seen = {}
    for pt, fmt, off, size in iter_packets(buf, len(compound)):
        seen[pt, fmt] = (off, size)
    off, size = seen[PT_RR, 1]
    assert parse_receiver_report(buf, off, size) == (5, [BLOCKS[0]])
    assert parse_sdes_cnames(buf, *seen[PT_SDES, 1]) == [(5, "peer")]
    assert parse_remb(buf, *seen[PT_PSFB, FMT_REMB]) == (300000, [9])
    assert parse_nack(buf, *seen[PT_RTPFB, FMT_NACK]) == [10, 12]
    assert parse_bye(buf, *seen[PT_BYE, 1]) == [5]
    assert parse_transport_cc(memoryview(buf), *seen[PT_RTPFB, FMT_TCC]).packets == TCC_EXPECTED
    assert len(seen) == 6


def test_iter_packets_stops_at_garbage():
    good = pli(1, 2)
    assert [p[0] for p in iter_packets(good + b"\x40\xce\x00\x02" + good)] == [PT_PSFB]  # version 1
    assert [p[0] for p in iter_packets(good + b"\x81\xce\x00\x09" + good)] == [PT_PSFB]  # too long
    assert [p[0] for p in iter_packets(good + b"\x81\xce")] == [PT_PSFB]  # short header
    assert list(iter_packets(good, 11)) == []


def test_wrong_type_and_bad_padding_give_sentinels():
    rr = receiver_report(1, BLOCKS)
    assert parse_sender_report(rr, 0, len(rr)) is None
    assert parse_remb(rr, 0, len(rr)) is None
    assert parse_transport_cc(rr, 0, len(rr)) is None
    assert parse_nack(rr, 0, len(rr)) == []
    assert parse_fir(rr, 0, len(rr)) == []
    assert parse_bye(rr, 0, len(rr)) == []
    assert parse_sdes_cnames(rr, 0, len(rr)) == []
    assert parse_feedback_ssrcs(rr, 0) == (-1, -1)
    assert parse_feedback_ssrcs(pli(1, 2), 0, 8) == (-1, -1)
    assert parse_feedback_ssrcs(pli(1, 2)[:10], 0) == (-1, -1)
    bad_pad = bytearray(rr)
    bad_pad[0] |= 0x20
    bad_pad[-1] = 0
    assert parse_receiver_report(bad_pad, 0, len(rr)) is None
    short = bytearray(rr)
    short[0] = 0x83  # claims 3 report blocks
    assert parse_receiver_report(short, 0, len(rr)) is None
    assert parse_receiver_report(rr, 0, len(rr) + 4) is None  # past the buffer


ALL_PARSERS = [
    parse_sender_report, parse_receiver_report, parse_nack, parse_fir, parse_remb,
    parse_transport_cc, parse_bye, parse_sdes_cnames, parse_feedback_ssrcs,
]
FIXTURES = [
    TCC_FEEDBACK, TCC_WRAP, REMB_FIXTURE, NACK_FIXTURE, FIR_FIXTURE,
    sender_report(1, 2, 3, 4, 5, BLOCKS), receiver_report(1, BLOCKS), sdes_cname(1, "cname"), bye([1, 2]),
]


def test_truncated_and_garbage_never_raise():
    rng = random.Random(7)
    samples = list(FIXTURES)
    for fixture in FIXTURES:  # bit flips in real packets
        for _ in range(300):
            mutated = bytearray(fixture)
            mutated[rng.randrange(len(mutated))] ^= 1 << rng.randrange(8)
            samples.append(bytes(mutated))
    samples += [bytes(rng.getrandbits(8) for _ in range(rng.randrange(48))) for _ in range(2000)]
    for sample in samples:
        for n in range(len(sample) + 1):
            for pt, fmt, off, size in iter_packets(sample, n):
                assert off + size <= n
            for parse in ALL_PARSERS:
                parse(sample, 0, n)


def test_ntp_helpers():
    ntp = ntp_now()
    assert abs((ntp >> 32) - (int(time.time()) + rtcp.NTP_EPOCH_OFFSET)) <= 1
    assert ntp_middle32(0x0123456789ABCDEF) == 0x456789AB
    assert ntp_middle32(ntp) == (ntp >> 16) & 0xFFFFFFFF


def test_sender_reports_go_in_compound_packets_that_fit() -> None:
    """Many consumers on one transport: their SRs and CNAMEs in as few packets as fit RTCP_COMPOUND_MAX."""
    from types import SimpleNamespace

    from kolabmeet.media.worker.rtcp import parse_sender_report
    from kolabmeet.media.worker.transport import RTCP_COMPOUND_MAX, Transport

    def consumer(ssrc: int) -> SimpleNamespace:
        return SimpleNamespace(ssrc=ssrc, rtp_parameters={"rtcp": {"cname": f"peer-{ssrc:08x}-cname"}},
                               sender_report=lambda ntp: sender_report(ssrc, ntp, 1, 2, 3))

    sent: list[bytes] = []
    transport = SimpleNamespace(consumers={i: consumer(0x1000 + i) for i in range(40)}, send_rtcp=sent.append)
    Transport._send_sender_reports(transport)
    assert 1 < len(sent) <= 4
    seen = []
    for data in sent:
        assert len(data) <= RTCP_COMPOUND_MAX
        srs = [parse_sender_report(data, offset, size).ssrc for pt, _fmt, offset, size in iter_packets(data)
               if pt == PT_SR]
        cnames = [ssrc for pt, _fmt, offset, size in iter_packets(data) if pt == PT_SDES
                  for ssrc, _cname in parse_sdes_cnames(data, offset, size)]
        assert srs == cnames
        seen += srs
    assert seen == [0x1000 + i for i in range(40)]
    parsed = RtcpPacket.parse(sent[0])  # an independent parser reads the compound the same way
    half = len(parsed) // 2
    assert [type(p) for p in parsed] == [RtcpSrPacket] * half + [RtcpSdesPacket] * half
    assert [p.chunks[0].ssrc for p in parsed[half:]] == [p.ssrc for p in parsed[:half]]
