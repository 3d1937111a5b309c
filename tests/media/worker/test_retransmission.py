import random

import pytest
from aiortc.rtcrtpparameters import RTCRtpHeaderExtensionParameters, RTCRtpParameters
from aiortc.rtp import HeaderExtensionsMap, RtpPacket, unwrap_rtx, wrap_rtx

from kolabmeet.media.worker import retransmission
from kolabmeet.media.worker.retransmission import build_rtx, parse_rtx, restore_rtx
from tests.media.worker.twins import compiled_twin, twin_fixture

# VP8-ish packet: V=2 P=1 X=1 CC=1, M=1 PT=96, seq 0x1234, ts 12345, SSRC 0x11223344,
# one CSRC, one-byte header extensions (RFC 8285), 5-byte payload, 3 bytes of padding.
ORIGINAL = bytes.fromhex(
    "b1e01234"  # V/P/X/CC, M/PT, seq
    "00003039"  # timestamp
    "11223344"  # SSRC
    "cafebabe"  # CSRC
    "bede0003"  # one-byte profile, 3 words
    "1030"  # id 1 (mid) "0"
    "22123456"  # id 2 (abs-send-time)
    "310102"  # id 3 (transport-cc) 0x0102
    "000000"  # extension padding
    "deadbeef01"  # payload
    "000003"  # RTP padding, count 3
)
# Its RTX (PT 97, seq 7, SSRC 0x55667788): P cleared, OSN 0x1234 before the payload, no padding.
RTX = bytes.fromhex(
    "91e10007"
    "00003039"
    "55667788"
    "cafebabe"
    "bede0003"
    "1030"
    "22123456"
    "310102"
    "000000"
    "1234"  # original sequence number
    "deadbeef01"
)
# The original as restored from RTX: same packet without its padding.
UNPADDED = bytes.fromhex(
    "91e01234" "00003039" "11223344" "cafebabe" "bede0003" "1030" "22123456" "310102" "000000" "deadbeef01"
)

EXTENSIONS = {
    1: "urn:ietf:params:rtp-hdrext:sdes:mid",
    2: "http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time",
    3: "http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01",
}

_retransmission = compiled_twin("_retransmission")
RetransmissionBuffer = twin_fixture(retransmission.PyRetransmissionBuffer, "_retransmission", "RetransmissionBuffer")



@pytest.fixture(scope="module")
def ext_map() -> HeaderExtensionsMap:
    ext_map = HeaderExtensionsMap()
    params = [RTCRtpHeaderExtensionParameters(id=i, uri=uri) for i, uri in EXTENSIONS.items()]
    ext_map.configure(RTCRtpParameters(headerExtensions=params))
    return ext_map


# ----------------------------------------------------------------- buffer


def test_store_and_get_keep_a_copy(RetransmissionBuffer):
    rb = RetransmissionBuffer(size=16)
    packet = bytearray(ORIGINAL + b"trailing junk")
    rb.store(0x1234, memoryview(packet)[:len(ORIGINAL)], 0.0)
    packet[0:4] = b"\0\0\0\0"
    buf, length = rb.get(0x1234, 10.0)
    assert length == len(ORIGINAL) and bytes(buf[:length]) == ORIGINAL
    assert rb.get(0x1235, 10.0) is None


def test_store_accepts_bytes_and_memoryview(RetransmissionBuffer):
    rb = RetransmissionBuffer(size=16)
    rb.store(1, ORIGINAL, 0.0)
    rb.store(2, memoryview(ORIGINAL)[:20], 0.0)
    buf, length = rb.get(1, 0.0)
    assert bytes(buf[:length]) == ORIGINAL
    buf, length = rb.get(2, 0.0)
    assert bytes(buf[:length]) == ORIGINAL[:20]


def test_overwritten_slot_returns_none(RetransmissionBuffer):
    rb = RetransmissionBuffer(size=16)
    rb.store(1, b"a" * 20, 0.0)
    rb.store(17, b"b" * 20, 0.0)
    assert rb.get(1, 0.0) is None
    buf, length = rb.get(17, 0.0)
    assert bytes(buf[:length]) == b"b" * 20


def test_sequence_numbers_wrap(RetransmissionBuffer):
    rb = RetransmissionBuffer(size=16)
    for seq in (65534, 65535, 65536, 65537):
        rb.store(seq, bytes([seq & 0xFF]) * 12, 0.0)
    assert [rb.get(seq, 0.0)[0][0] for seq in (65534, 65535, 0, 1)] == [0xFE, 0xFF, 0x00, 0x01]


def test_too_old_packets_are_not_returned(RetransmissionBuffer):
    rb = RetransmissionBuffer(size=16, max_age_ms=2000)
    rb.store(5, b"x" * 12, 1000.0)
    assert rb.get(5, 3000.0) is not None
    assert rb.get(5, 3000.5) is None


def test_slot_memory_is_reused_and_grown(RetransmissionBuffer):
    rb = RetransmissionBuffer(size=4)
    rb.store(0, b"a" * 100, 0.0)
    first = rb.get(0, 0.0)[0]
    rb.store(4, b"b" * 50, 0.0)
    again, length = rb.get(4, 0.0)
    assert again is first and length == 50 and bytes(again[:50]) == b"b" * 50
    rb.store(8, b"c" * 1200, 0.0)
    grown, length = rb.get(8, 0.0)
    assert length == 1200 and len(grown) >= 1200 and bytes(grown[:1200]) == b"c" * 1200


def test_clear(RetransmissionBuffer):
    rb = RetransmissionBuffer(size=16)
    rb.store(3, b"x" * 12, 0.0)
    rb.clear()
    assert rb.get(3, 0.0) is None
    rb.store(3, b"y" * 12, 0.0)
    assert rb.get(3, 0.0) is not None


def test_a_stream_keeps_slots_for_its_packets_of_max_age_not_for_size(RetransmissionBuffer):
    rb = RetransmissionBuffer(size=1024, max_age_ms=500)
    assert rb.capacity == retransmission.FIRST_SLOTS
    for seq in range(600):  # 200 packets a second: 100 within max_age at any time
        rb.store(seq, seq.to_bytes(2, "big") * 10, seq * 5.0)
    assert rb.capacity == 128
    now = 599 * 5.0
    for seq in range(500, 600):
        buf, length = rb.get(seq, now)
        assert bytes(buf[:length]) == seq.to_bytes(2, "big") * 10


def test_growing_keeps_every_stored_packet_in_its_place(RetransmissionBuffer):
    rb = RetransmissionBuffer(size=1024)
    rb.store(50, b"fifty" * 3, 0.0)
    rb.store(59934, b"far" * 5, 0.0)  # a stream restarted elsewhere
    for seq in range(200, 200 + retransmission.FIRST_SLOTS + 1):  # in 128 slots, clear of the two
        rb.store(seq, seq.to_bytes(2, "big") * 6, 1.0)
    assert rb.capacity == 2 * retransmission.FIRST_SLOTS
    assert [bytes(rb.get(seq, 2.0)[0][:rb.get(seq, 2.0)[1]]) for seq in (50, 59934)] == [b"fifty" * 3, b"far" * 5]
    for seq in range(200, 200 + retransmission.FIRST_SLOTS + 1):
        buf, length = rb.get(seq, 2.0)
        assert bytes(buf[:length]) == seq.to_bytes(2, "big") * 6


def test_the_ring_grows_no_further_than_size(RetransmissionBuffer):
    rb = RetransmissionBuffer(size=128)
    for seq in range(300):
        rb.store(seq, b"x" * 12, 0.0)
    assert rb.capacity == 128
    assert rb.get(171, 0.0) is None and rb.get(172, 0.0) is not None


@pytest.mark.parametrize("size", [0, 3, 1000])
def test_size_must_be_a_power_of_two(RetransmissionBuffer, size):
    with pytest.raises(ValueError):
        RetransmissionBuffer(size=size)


# ----------------------------------------------------------------- RTX


def test_build_rtx_fixture():
    out = bytearray(1500)
    n = build_rtx(bytearray(ORIGINAL), len(ORIGINAL), out, 97, 0x55667788, 7)
    assert bytes(out[:n]) == RTX
    assert len(out) == 1500


def test_build_rtx_grows_a_short_output_buffer():
    out = bytearray()
    n = build_rtx(bytearray(ORIGINAL), len(ORIGINAL), out, 97, 0x55667788, 7)
    assert bytes(out) == RTX and n == len(RTX)


def test_build_rtx_ignores_bytes_past_length():
    packet = bytearray(UNPADDED + b"\xff" * 30)
    out = bytearray(1500)
    n = build_rtx(packet, len(UNPADDED), out, 97, 0x55667788, 7)
    assert bytes(out[:n]) == RTX


def test_restore_rtx_fixture():
    buf = bytearray(RTX + b"\xff" * 10)
    n = restore_rtx(buf, len(RTX), 96, 0x11223344)
    assert bytes(buf[:n]) == UNPADDED


def test_parse_rtx_leaves_pt_and_ssrc():
    buf = bytearray(RTX)
    n = parse_rtx(buf, len(buf))
    assert bytes(buf[:n]) == bytes.fromhex("91e11234" "00003039" "55667788") + UNPADDED[12:]


def test_restore_rtx_drops_rtx_padding():
    padded = bytearray(RTX + bytes.fromhex("00000004"))
    padded[0] |= 0x20
    n = restore_rtx(padded, len(padded), 96, 0x11223344)
    assert bytes(padded[:n]) == UNPADDED


def test_round_trip_of_unpadded_packet():
    out = bytearray(1500)
    n = build_rtx(bytearray(UNPADDED), len(UNPADDED), out, 97, 0x55667788, 7)
    assert restore_rtx(out, n, 96, 0x11223344) == len(UNPADDED)
    assert bytes(out[: len(UNPADDED)]) == UNPADDED


@pytest.mark.parametrize(
    "data",
    [
        RTX[:11],  # shorter than the header
        RTX[:16] + bytes.fromhex("bede0003"),  # extension runs past the end
        bytes.fromhex("80610001" "00000000" "00000001" "12"),  # 1-byte payload: no OSN
        bytes.fromhex("a0610001" "00000000" "00000001" "00000004"),  # padding only
        bytes.fromhex("40610001" "00000000" "00000001" "1234"),  # version 1
    ],
)
def test_parse_rtx_rejects_malformed(data):
    buf = bytearray(data)
    assert parse_rtx(buf, len(buf)) == -1
    assert restore_rtx(buf, len(buf), 96, 1) == -1
    assert bytes(buf) == data


def test_build_rtx_rejects_malformed():
    assert build_rtx(bytearray(RTX[:11]), 11, bytearray(100), 97, 1, 1) == -1


# ----------------------------------------------------------------- aiortc as oracle


def test_fixture_agrees_with_aiortc(ext_map):
    original = RtpPacket.parse(ORIGINAL, ext_map)
    assert original.padding_size == 3 and original.csrc == [0xCAFEBABE]
    assert original.extensions.mid == "0" and original.extensions.transport_sequence_number == 0x0102
    assert wrap_rtx(original, 97, 7, 0x55667788).serialize(ext_map) == RTX
    assert unwrap_rtx(RtpPacket.parse(RTX, ext_map), 96, 0x11223344).serialize(ext_map) == UNPADDED


def random_packet(rng: random.Random) -> RtpPacket:
    packet = RtpPacket(
        payload_type=rng.randrange(96, 128),
        marker=rng.randrange(2),
        sequence_number=rng.randrange(65536),
        timestamp=rng.randrange(1 << 32),
        ssrc=rng.randrange(1 << 32),
        payload=rng.randbytes(rng.randrange(0, 1200)),
    )
    packet.padding_size = rng.choice([0, 0, 1, 7, 255])
    packet.csrc = [rng.randrange(1 << 32) for _ in range(rng.randrange(4))]
    if rng.random() < 0.7:
        packet.extensions.mid = rng.choice(["0", "1", "video"])
        packet.extensions.abs_send_time = rng.randrange(1 << 24)
    if rng.random() < 0.7:
        packet.extensions.transport_sequence_number = rng.randrange(65536)
    return packet


def test_random_packets_match_aiortc(ext_map):
    rng = random.Random(4588)
    out = bytearray(1500)
    for _ in range(300):
        packet = random_packet(rng)
        data = bytearray(packet.serialize(ext_map))
        rtx_pt, rtx_seq, rtx_ssrc = rng.randrange(96, 128), rng.randrange(65536), rng.randrange(1 << 32)
        n = build_rtx(data, len(data), out, rtx_pt, rtx_ssrc, rtx_seq)
        expected_rtx = wrap_rtx(packet, rtx_pt, rtx_seq, rtx_ssrc).serialize(ext_map)
        assert bytes(out[:n]) == expected_rtx
        m = restore_rtx(out, n, packet.payload_type, packet.ssrc)
        expected = unwrap_rtx(RtpPacket.parse(expected_rtx, ext_map), packet.payload_type, packet.ssrc)
        assert bytes(out[:m]) == expected.serialize(ext_map)
        packet.padding_size = 0
        assert bytes(out[:m]) == packet.serialize(ext_map)


def test_a_packet_is_resent_at_most_once_per_hold(RetransmissionBuffer) -> None:
    buffer = RetransmissionBuffer()
    buffer.store(7, b"\x80\x60\x00\x07" + bytes(8), now_ms=0)
    assert buffer.resend(7, 10, hold_ms=100) is not None
    assert buffer.resend(7, 60, hold_ms=100) is None, "asked again within the round trip"
    assert buffer.resend(7, 120, hold_ms=100) is not None
    buffer.store(7, b"\x80\x60\x00\x07" + bytes(8), now_ms=130)
    assert buffer.resend(7, 140, hold_ms=100) is not None, "a new packet in the slot starts afresh"


@pytest.mark.skipif(_retransmission is None, reason="the C twin was not built")
def test_both_twins_answer_alike_to_the_same_calls() -> None:
    import random

    rng = random.Random(5)
    twins = [retransmission.PyRetransmissionBuffer(size=512, max_age_ms=500),
             _retransmission.RetransmissionBuffer(size=512, max_age_ms=500)]
    now, seq = 0.0, 0
    for _ in range(5000):
        now += rng.random() * 3
        seq = seq + 1 if rng.random() < 0.9 else rng.randrange(0, 70000)  # a stream, with jumps
        action = rng.random()
        if action < 0.5:
            packet = bytes(rng.randrange(256) for _ in range(rng.randrange(12, 1300)))
            answers = [twin.store(seq, packet, now) for twin in twins]
        elif action < 0.75:
            answers = [twin.get(seq, now) for twin in twins]
        elif action < 0.99:
            answers = [twin.resend(seq, now, 20.0) for twin in twins]
        else:
            answers = [twin.clear() for twin in twins]
        plain = [answer if answer is None else bytes(answer[0][:answer[1]]) for answer in answers]
        assert plain[0] == plain[1] and twins[0].capacity == twins[1].capacity
    assert twins[0].capacity > retransmission.FIRST_SLOTS


@pytest.mark.skipif(_retransmission is None, reason="the C twin was not built")
def test_the_c_twin_refuses_use_before_init() -> None:
    buffer = _retransmission.RetransmissionBuffer.__new__(_retransmission.RetransmissionBuffer)
    with pytest.raises(TypeError):
        buffer.store(1, b"x" * 12, 0.0)
    with pytest.raises(TypeError):
        buffer.get(1, 0.0)
