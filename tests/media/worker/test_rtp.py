import random

import pytest
from aiortc.rtcrtpparameters import RTCRtpHeaderExtensionParameters, RTCRtpParameters
from aiortc.rtp import HeaderExtensionsMap, RtpPacket

from kolabmeet.media.worker.rtp import (
    MID_SLOT,
    RTP_HEADER,
    add_extension_slots,
    extension_block,
    extension_size,
    find_extension,
    is_rtp,
    is_two_byte_form,
    map_extensions,
    mid_elements,
    payload_bounds,
    rewrite_extension_ids,
    set_abs_send_time,
    set_transport_wide_seq,
)

ABS_SEND_TIME = "http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time"
TWCC = "http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01"
MID = "urn:ietf:params:rtp-hdrext:sdes:mid"
AUDIO_LEVEL = "urn:ietf:params:rtp-hdrext:ssrc-audio-level"

# VP8 packet as sent by Chrome, one-byte header extensions (RFC 8285):
ONE_BYTE = bytes.fromhex(
    "90e01a2b00003039deadbeef"  # V=2 X=1, M=1 PT=96, seq 0x1a2b, ts 12345, ssrc
    "bede0003"  # profile 0xBEDE, 3 words of extension data
    "22123456"  # id 2 (abs-send-time) L=2 -> 3 bytes 0x123456
    "310102"  # id 3 (transport-cc) 2 bytes, seq 0x0102
    "4030"  # id 4 (mid) 1 byte "0"
    "000000"  # padding to the 32-bit boundary
    "9080"  # VP8 payload descriptor...
    "0102"
)
# Two-byte header form (0x1000): id 20 len 2, padding byte, id 7 zero-length.
TWO_BYTE = bytes.fromhex(
    "9060000100000001000000aa"
    "10000002"
    "1402abcd"
    "00"
    "0700"
    "00"
    "c0ffee"
)
# P=1 and two CSRCs: payload "abcd", 3 padding bytes (last one is the count).
CSRC_PADDED = bytes.fromhex("a26f0002000000030000000b" "00000001" "00000002" "61626364" "000003")


def ext_map(**ids):
    uris = {"abs": ABS_SEND_TIME, "twcc": TWCC, "mid": MID, "level": AUDIO_LEVEL}
    m = HeaderExtensionsMap()
    m.configure(
        RTCRtpParameters(
            headerExtensions=[RTCRtpHeaderExtensionParameters(id=i, uri=uris[k]) for k, i in ids.items()]
        )
    )
    return m


def in_buffer(packet, extra=64):
    """Copy into an oversized receive buffer, as the worker does."""
    buf = bytearray(len(packet) + extra)
    buf[: len(packet)] = packet
    return buf, len(packet)


def test_is_rtp():
    assert is_rtp(ONE_BYTE, len(ONE_BYTE))
    assert is_rtp(TWO_BYTE, len(TWO_BYTE))
    assert not is_rtp(ONE_BYTE, 11)
    assert not is_rtp(bytes.fromhex("80c80006000000010000000000000002"), 16)  # RTCP SR
    assert not is_rtp(bytes.fromhex("81cd0003" + "00" * 12), 16)  # RTCP NACK
    assert not is_rtp(bytes.fromhex("40600001" + "00" * 8), 12)  # version 1
    assert is_rtp(bytes.fromhex("80e0" + "00" * 10), 12)  # M=1 PT=96


def test_one_byte_fixture():
    buf, n = in_buffer(ONE_BYTE)
    assert extension_block(buf, n) == (0xBEDE, 16, 28)
    assert payload_bounds(buf, n) == (28, 32)
    assert find_extension(buf, n, 2) == (17, 3)
    assert find_extension(buf, n, 3) == (21, 2)
    assert find_extension(buf, n, 4) == (24, 1)
    assert find_extension(buf, n, 5) == (-1, 0)
    assert find_extension(buf, n, 0) == (-1, 0)
    assert RTP_HEADER.unpack_from(buf) == (0x90, 0xE0, 0x1A2B, 12345, 0xDEADBEEF)


def test_two_byte_fixture():
    n = len(TWO_BYTE)
    assert extension_block(TWO_BYTE, n) == (0x1000, 16, 24)
    assert find_extension(TWO_BYTE, n, 20) == (18, 2)
    assert find_extension(TWO_BYTE, n, 7) == (23, 0)
    assert find_extension(TWO_BYTE, n, 4) == (-1, 0)
    assert payload_bounds(TWO_BYTE, n) == (24, 27)
    # appbits in the low nibble still mean two-byte elements
    patched = bytearray(TWO_BYTE)
    patched[13] = 0x05
    assert find_extension(patched, n, 20) == (18, 2)


def test_csrc_and_padding():
    n = len(CSRC_PADDED)
    assert extension_block(CSRC_PADDED, n) == (0, -1, -1)
    assert payload_bounds(CSRC_PADDED, n) == (20, 24)
    assert bytes(CSRC_PADDED[20:24]) == b"abcd"
    assert find_extension(CSRC_PADDED, n, 1) == (-1, 0)


def test_aiortc_packet_extensions():
    m = ext_map(mid=1, abs=3, twcc=5, level=10)
    pkt = RtpPacket(payload_type=111, sequence_number=65535, timestamp=7, ssrc=99, payload=b"\x01\x02\x03")
    pkt.csrc = [1234]
    pkt.padding_size = 4
    pkt.extensions.mid = "audio"
    pkt.extensions.abs_send_time = 0xABCDEF
    pkt.extensions.transport_sequence_number = 4321
    pkt.extensions.audio_level = (True, 42)
    buf, n = in_buffer(pkt.serialize(m))
    assert is_rtp(buf, n)
    start, end = payload_bounds(buf, n)
    assert bytes(buf[start:end]) == b"\x01\x02\x03"
    off, size = find_extension(buf, n, 1)
    assert bytes(buf[off : off + size]) == b"audio"
    off, size = find_extension(buf, n, 3)
    assert size == 3 and int.from_bytes(buf[off : off + 3], "big") == 0xABCDEF
    off, size = find_extension(buf, n, 5)
    assert size == 2 and int.from_bytes(buf[off : off + 2], "big") == 4321
    off, size = find_extension(buf, n, 10)
    assert (size, buf[off]) == (1, 0x80 | 42)


def test_aiortc_two_byte_packet():
    m = ext_map(mid=200, twcc=5)
    pkt = RtpPacket(payload_type=96, payload=b"xyz")
    pkt.extensions.mid = "video-mid"
    pkt.extensions.transport_sequence_number = 7
    data = pkt.serialize(m)
    assert extension_block(data, len(data))[0] == 0x1000
    off, size = find_extension(data, len(data), 200)
    assert bytes(data[off : off + size]) == b"video-mid"
    assert find_extension(data, len(data), 5)[1] == 2


def test_set_abs_send_time_and_twcc_seq():
    m = ext_map(abs=2, twcc=3, mid=4)
    buf, n = in_buffer(ONE_BYTE)
    set_abs_send_time(buf, find_extension(buf, n, 2)[0], 1.5)
    set_transport_wide_seq(buf, find_extension(buf, n, 3)[0], 70000)
    pkt = RtpPacket.parse(bytes(buf[:n]), m)
    assert pkt.extensions.abs_send_time == int(1.5 * (1 << 18))
    assert pkt.extensions.transport_sequence_number == 70000 & 0xFFFF
    assert pkt.extensions.mid == "0"
    set_abs_send_time(buf, 17, 64.25)  # 6 integer bits: wraps every 64 s
    assert bytes(buf[17:20]) == bytes.fromhex("010000")


def test_rewrite_extension_ids_one_byte_in_place():
    buf, n = in_buffer(ONE_BYTE)
    before = bytes(buf)
    id_map = bytearray(256)
    id_map[2] = 9  # abs-send-time 2 -> 9
    id_map[3] = 1  # transport-cc 3 -> 1
    id_map[4] = 0  # mid dropped
    rewrite_extension_ids(buf, n, bytes(id_map))
    assert len(buf) == len(before) and payload_bounds(buf, n) == (28, 32)
    assert bytes(buf[:16]) == before[:16] and bytes(buf[28:]) == before[28:]
    assert bytes(buf[16:28]) == bytes.fromhex("92123456" "110102" "0000" "000000")
    pkt = RtpPacket.parse(bytes(buf[:n]), ext_map(abs=9, twcc=1, mid=4))
    assert pkt.extensions.abs_send_time == 0x123456
    assert pkt.extensions.transport_sequence_number == 0x0102
    assert pkt.extensions.mid is None


def test_rewrite_extension_ids_one_byte_rejects_large_ids():
    buf, n = in_buffer(ONE_BYTE)
    id_map = bytearray(range(256))
    id_map[2] = 15  # cannot be expressed in one-byte form: dropped
    id_map[3] = 200
    rewrite_extension_ids(buf, n, bytes(id_map))
    assert find_extension(buf, n, 4) == (24, 1)
    assert bytes(buf[16:23]) == bytes(7)


def test_rewrite_extension_ids_two_byte():
    m_old = ext_map(mid=200, twcc=5)
    pkt = RtpPacket(payload_type=96, payload=b"xyz")
    pkt.extensions.mid = "m1"
    pkt.extensions.transport_sequence_number = 7
    buf, n = in_buffer(pkt.serialize(m_old))
    id_map = bytearray(256)
    id_map[200] = 3
    rewrite_extension_ids(buf, n, bytes(id_map))
    parsed = RtpPacket.parse(bytes(buf[:n]), ext_map(mid=3, twcc=5))
    assert parsed.extensions.mid == "m1"
    assert parsed.extensions.transport_sequence_number is None
    assert bytes(parsed.payload) == b"xyz"


def test_rewrite_extension_ids_memoryview():
    buf, n = in_buffer(ONE_BYTE)
    id_map = bytes(range(256))
    rewrite_extension_ids(memoryview(buf), n, id_map)
    assert bytes(buf[:n]) == ONE_BYTE


@pytest.mark.parametrize(
    "hexdata",
    [
        "",
        "90",
        "9060000100000001000000",  # 11 bytes
        "8f60000100000001000000aa",  # CC=15 but no CSRCs
        "9060000100000001000000aa" "bede",  # truncated extension header
        "9060000100000001000000aa" "bede0004" "22123456",  # ext length past the end
        "a060000100000001000000aa" "000000",  # P=1, pad count 0
        "a060000100000001000000aa" "0009",  # P=1, pad count past the header
    ],
)
def test_malformed_sentinels(hexdata):
    data = bytes.fromhex(hexdata)
    n = len(data)
    assert payload_bounds(data, n) == (-1, -1)
    assert extension_block(data, n) == (0, -1, -1)
    assert find_extension(data, n, 2) == (-1, 0)
    rewrite_extension_ids(bytearray(data), n, bytes(256))


def test_truncated_elements_are_not_reported():
    # one-byte element claims 4 bytes but only 3 remain in the block
    data = bytes.fromhex("9060000100000001000000aa" "bede0001" "23aabbcc")
    assert find_extension(data, len(data), 2) == (-1, 0)
    # id 15 stops processing
    data = bytes.fromhex("9060000100000001000000aa" "bede0001" "f0" "10aa00")
    assert find_extension(data, len(data), 1) == (-1, 0)
    # two-byte element length past the end of the block
    data = bytes.fromhex("9060000100000001000000aa" "10000001" "0109aabb")
    assert find_extension(data, len(data), 1) == (-1, 0)


def test_prefixes_and_garbage_never_raise():
    rng = random.Random(1234)
    samples = [ONE_BYTE, TWO_BYTE, CSRC_PADDED]
    samples += [bytes(rng.getrandbits(8) for _ in range(rng.randrange(40))) for _ in range(2000)]
    samples += [b"\x90" + bytes(rng.getrandbits(8) for _ in range(rng.randrange(40))) for _ in range(2000)]
    id_map = bytes(rng.getrandbits(8) for _ in range(256))
    for sample in samples:
        for n in range(len(sample) + 1):
            buf = bytearray(sample)
            start, end = payload_bounds(buf, n)
            assert (start, end) == (-1, -1) or 12 <= start <= end <= n
            profile, s, e = extension_block(buf, n)
            assert (s, e) == (-1, -1) or 16 <= s <= e <= n
            off, size = find_extension(buf, n, 1)
            assert off == -1 or off + size <= n
            rewrite_extension_ids(buf, n, id_map)
            assert len(buf) == len(sample) and buf[n:] == sample[n:]


# MID "0" (id 1), abs-send-time (id 4), transport-cc (id 5), one-byte form, 3 bytes of padding.
BROWSER_EXTENSIONS = bytes.fromhex("90650001" "00000002" "00000003" "bede0003" "1030" "42aabbcc" "51dddd" "000000")


def test_map_extensions_finds_offsets_in_one_pass():
    buf, n = in_buffer(BROWSER_EXTENSIONS + b"payload")
    assert map_extensions(buf, n, None, (1, 4, 5)) == (17, 19, 23)
    assert bytes(buf[17:18]) == b"0" and bytes(buf[19:22]) == bytes.fromhex("aabbcc")
    assert bytes(buf[23:25]) == bytes.fromhex("dddd")


def test_map_extensions_maps_and_drops():
    buf, n = in_buffer(BROWSER_EXTENSIONS + b"payload")
    id_map = bytearray(256)
    id_map[1], id_map[4], id_map[5] = 7, 0, 5
    assert map_extensions(buf, n, bytes(id_map), (7, 4, 5)) == (17, -1, 23)
    assert buf[16] == 0x70, "MID now has id 7"
    assert bytes(buf[18:22]) == bytes(4), "abs-send-time became padding, the length kept"
    assert payload_bounds(buf, n) == (28, n)


def test_map_extensions_two_byte_form_and_garbage():
    two_byte = bytes.fromhex("90650001" "00000002" "00000003" "10000002" "010130" "0403aabbcc" "00")
    buf, n = in_buffer(two_byte)
    assert map_extensions(buf, n, None, (1, 4, 5)) == (18, 21, -1)
    assert map_extensions(bytearray(b"\x90" + bytes(20)), 21, None, (1, 4, 5)) == (-1, -1, -1)


SLOTS = ((4, MID_SLOT), (2, 3), (3, 2))
"""MID (id 4 in ONE_BYTE), abs-send-time (2), transport-cc (3)."""


def grow(packet: bytes, slots=SLOTS, capacity: int = 200) -> tuple[bytearray, int]:
    buf = bytearray(packet) + bytearray(200)
    found = map_extensions(buf, len(packet), None, (tuple(xid for xid, _size in slots) + (0, 0))[:3])[:len(slots)]
    return buf, add_extension_slots(buf, len(packet), slots, found, capacity)


def test_slots_give_a_mid_of_full_size_and_keep_the_rest() -> None:
    buf, n = grow(ONE_BYTE)
    assert n == len(ONE_BYTE) + 12, "9 bytes of MID slot, padded to a word"
    assert bytes(buf[12:16]) == bytes.fromhex("bede0006")
    mid_at, abs_at, twcc_at = map_extensions(buf, n, None, (4, 2, 3))
    assert mid_at == 17 and extension_size(buf, mid_at) == MID_SLOT
    assert bytes(buf[mid_at:mid_at + MID_SLOT]) == bytes(MID_SLOT)
    assert bytes(buf[abs_at:abs_at + 3]) == bytes.fromhex("123456"), "elements of the right size stay"
    assert bytes(buf[twcc_at:twcc_at + 2]) == bytes.fromhex("0102")
    assert bytes(buf[payload_bounds(buf, n)[0]:n]) == bytes.fromhex("90800102")
    assert len(_elements_of(buf, n)) == 3, "the short MID became padding"


def test_a_slot_of_none_is_left_as_the_sender_sent_it() -> None:
    buf = bytearray(ONE_BYTE) + bytearray(200)
    found = map_extensions(buf, len(ONE_BYTE), None, (4, 2, 3))
    assert add_extension_slots(buf, len(ONE_BYTE), (None, None, None), found, len(buf)) == len(ONE_BYTE)
    assert bytes(buf[:len(ONE_BYTE)]) == ONE_BYTE, "no slot wanted: the packet is as it came"
    n = add_extension_slots(buf, len(ONE_BYTE), (None, (2, 3), (5, 2)), found[:2] + (-1,), len(buf))
    assert n == len(ONE_BYTE) + 4, "only the missing element (id 5) was added"
    assert find_extension(buf, n, 4)[1] == 1, "the 1-byte MID stays: no consumer writes one"


def _elements_of(buf: bytearray, n: int) -> list[int]:
    return [xid for xid in range(1, 15) if find_extension(buf, n, xid)[0] >= 0]


def test_slots_make_a_block_in_a_packet_without_one() -> None:
    plain = bytes.fromhex("80e01a2b00003039deadbeef" "9080" "0102")
    buf, n = grow(plain)
    assert buf[0] & 0x10
    assert map_extensions(buf, n, None, (4, 2, 3)) == (17, 26, 30)
    assert bytes(buf[payload_bounds(buf, n)[0]:n]) == bytes.fromhex("90800102")


def test_slots_keep_the_two_byte_form() -> None:
    buf, n = grow(TWO_BYTE, ((1, MID_SLOT),))
    assert bytes(buf[12:14]) == bytes.fromhex("1000")
    assert find_extension(buf, n, 1) == (18, MID_SLOT)
    assert find_extension(buf, n, 20)[1] == 2 and find_extension(buf, n, 7)[1] == 0
    assert bytes(buf[payload_bounds(buf, n)[0]:n]) == bytes.fromhex("c0ffee")


def test_nothing_to_add_leaves_the_packet() -> None:
    buf, n = grow(ONE_BYTE)
    again = bytes(buf[:n])
    found = map_extensions(buf, n, None, (4, 2, 3))
    assert add_extension_slots(buf, n, SLOTS, found, len(buf)) == n
    assert bytes(buf[:n]) == again


def test_slots_refused_when_they_do_not_fit_or_parse() -> None:
    buf = bytearray(ONE_BYTE)
    found = map_extensions(buf, len(buf), None, (4, 2, 3))
    assert add_extension_slots(buf, len(ONE_BYTE), SLOTS, found, len(buf)) == -1
    assert bytes(buf) == ONE_BYTE
    overlong = bytearray.fromhex("90" + "00" * 11 + "bede00ff" + "00" * 8)
    assert add_extension_slots(overlong, len(overlong), SLOTS, (-1, -1, -1), 100) == -1


def test_mid_elements_in_the_two_byte_form() -> None:
    buf, n = grow(TWO_BYTE, ((1, MID_SLOT),))
    mid_at = map_extensions(buf, n, None, (1, 0, 0))[0]
    assert is_two_byte_form(buf) == 1
    buf[mid_at - 1:mid_at + MID_SLOT] = mid_elements(b"12", 1)[1]
    assert find_extension(buf, n, 1) == (mid_at, 2)
    assert bytes(buf[mid_at:mid_at + MID_SLOT]) == b"12" + bytes(MID_SLOT - 2)


@pytest.mark.parametrize("mid", [b"0", b"12", b"abcdefgh"])
def test_mid_elements_shrink_the_element_and_pad(mid: bytes) -> None:
    buf, n = grow(ONE_BYTE)
    mid_at = map_extensions(buf, n, None, (4, 0, 0))[0]
    for value in (b"abcdefgh", mid):
        assert is_two_byte_form(buf) == 0
        buf[mid_at - 1:mid_at + MID_SLOT] = mid_elements(value, 4)[0]
    assert find_extension(buf, n, 4) == (mid_at, len(mid))
    assert bytes(buf[mid_at:mid_at + len(mid)]) == mid
    packet = RtpPacket.parse(bytes(buf[:n]), ext_map(mid=4, abs=2, twcc=3))
    assert packet.extensions.mid == mid.decode()
    assert packet.extensions.abs_send_time == 0x123456
    assert packet.extensions.transport_sequence_number == 0x0102
