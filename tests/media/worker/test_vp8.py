import random

import pytest
from aiortc.codecs.vpx import VpxPayloadDescriptor

from kolabmeet.media.worker import vp8
from kolabmeet.media.worker.vp8 import (
    MALFORMED, Vp8Descriptor, parse_descriptor, read_picture, restore_picture,
)
from tests.media.worker.twins import compiled_twin, twin_fixture

HEADER = bytes(12)  # a bare RTP header in front of every payload: offsets are absolute
PAYLOAD = bytes.fromhex("310b00")  # a VP8 delta frame tag

# RFC 7741 section 4.2 descriptors, offsets relative to the payload:
# (hex, S, PID, PictureID at, bits, TL0PICIDX at, TID, Y, KEYIDX at, payload at)
PARSE_CASES = [
    ("10", True, 0, -1, 0, -1, -1, False, -1, 1),  # X=0: one octet
    ("03", False, 3, -1, 0, -1, -1, False, -1, 1),  # S=0, PID=3
    ("9000", True, 0, -1, 0, -1, -1, False, -1, 2),  # X=1, no I/L/T/K
    ("908015", True, 0, 2, 7, -1, -1, False, -1, 3),  # I, 7-bit PictureID 0x15
    ("90808123", True, 0, 2, 15, -1, -1, False, -1, 4),  # I, M=1: 15-bit 0x0123
    ("90c0811205", True, 0, 2, 15, 4, -1, False, -1, 5),  # I L
    ("90e0811205a0", True, 0, 2, 15, 4, 2, True, -1, 6),  # I L T: TID 2, Y=1
    ("90f081120545", True, 0, 2, 15, 4, 1, False, 5, 6),  # I L T K: TID 1, KEYIDX 5
    ("9010" "1f", True, 0, -1, 0, -1, -1, False, 2, 3),  # K only: TID/Y/KEYIDX octet, TID not present
    ("9020" "c0", True, 0, -1, 0, -1, 3, False, -1, 3),  # T only: TID 3
    ("b1a07f40", True, 1, 2, 7, -1, 1, False, -1, 4),  # N=1, I T: 7-bit 0x7f, TID 1
]

_vp8 = compiled_twin("_vp8")
Vp8Rewriter = twin_fixture(vp8.PyVp8Rewriter, "_vp8", "Vp8Rewriter")



def payload(hex_descriptor: str) -> tuple[bytearray, int, int]:
    buf = bytearray(HEADER + bytes.fromhex(hex_descriptor) + PAYLOAD)
    return buf, len(HEADER), len(buf)


@pytest.mark.parametrize("case", PARSE_CASES, ids=[c[0] for c in PARSE_CASES])
def test_parse_fixtures(case):
    hex_descriptor, s, pid, pic_at, bits, tl0_at, tid, y, key_at, payload_at = case
    buf, start, end = payload(hex_descriptor)

    def shift(at: int) -> int:
        return at + start if at >= 0 else -1

    assert parse_descriptor(buf, start, end) == Vp8Descriptor(
        s, pid, shift(pic_at), bits, shift(tl0_at), tid, y, shift(key_at), shift(payload_at))


@pytest.mark.parametrize("case", PARSE_CASES, ids=[c[0] for c in PARSE_CASES])
def test_parse_truncated(case):
    buf = bytearray(HEADER + bytes.fromhex(case[0]))
    for end in range(len(HEADER), len(buf) + 1):  # every prefix, down to no descriptor at all
        assert parse_descriptor(buf, len(HEADER), end) is MALFORMED
    assert parse_descriptor(buf + b"\x00", len(HEADER), len(buf) + 1).payload_at == len(buf)


def test_parse_bad_bounds():
    buf, start, end = payload("90e0811205a0")
    assert parse_descriptor(buf, -1, end) is MALFORMED
    assert parse_descriptor(buf, start, len(buf) + 1) is MALFORMED
    assert parse_descriptor(buf, end, start) is MALFORMED
    assert parse_descriptor(b"", 0, 0) is MALFORMED


def aiortc_fields(data: bytes) -> tuple:
    d, rest = VpxPayloadDescriptor.parse(data)
    return (d.partition_start, d.partition_id, d.picture_id, d.tl0picidx, d.tid, d.keyidx, len(data) - len(rest))


def our_fields(buf: bytearray, start: int, end: int) -> tuple:
    d = parse_descriptor(buf, start, end)
    pic = None
    if d.picture_id_bits == 15:
        pic = int.from_bytes(buf[d.picture_id_at:d.picture_id_at + 2], "big") & 0x7FFF
    elif d.picture_id_bits == 7:
        pic = buf[d.picture_id_at]
    tl0 = buf[d.tl0picidx_at] if d.tl0picidx_at >= 0 else None
    tid = (d.tid, int(d.layer_sync)) if d.tid >= 0 else None
    keyidx = buf[d.keyidx_at] & 0x1F if d.keyidx_at >= 0 else None
    return (int(d.start_of_partition), d.partition_index, pic, tl0, tid, keyidx, d.payload_at - start)


def test_parse_matches_aiortc_generated():
    rng = random.Random(7741)
    for _ in range(500):
        descriptor = VpxPayloadDescriptor(
            partition_start=rng.randint(0, 1), partition_id=rng.randint(0, 7),
            picture_id=rng.choice([None, rng.randint(0, 0x7FFF)]),
            tl0picidx=rng.choice([None, rng.randint(0, 0xFF)]),
            tid=rng.choice([None, (rng.randint(0, 3), rng.randint(0, 1))]),
            keyidx=rng.choice([None, rng.randint(0, 0x1F)]))
        data = bytes(descriptor) + PAYLOAD
        buf = bytearray(HEADER + data)
        assert our_fields(buf, len(HEADER), len(buf)) == aiortc_fields(data)


@pytest.mark.parametrize("case", PARSE_CASES, ids=[c[0] for c in PARSE_CASES])
def test_parse_matches_aiortc_fixtures(case):
    buf, start, end = payload(case[0])
    assert our_fields(buf, start, end) == aiortc_fields(bytes(buf[start:end]))


# --- rewriting -------------------------------------------------------------------------------


def vp8_packet(pic: int | None, tl0: int | None = None, tid: int | None = None, wide: bool = True,
               first: bool = True, layer_sync: bool = False) -> bytearray:
    """An RTP packet (bare header) carrying a descriptor built with aiortc, 7-bit PictureIDs by hand."""
    descriptor = bytes(VpxPayloadDescriptor(int(first), 0, pic, tl0,
                                            None if tid is None else (tid, int(layer_sync))))
    if pic is not None and not wide:
        descriptor = descriptor[:2] + bytes([pic]) + descriptor[4:]
    return bytearray(HEADER + descriptor + PAYLOAD)


def forward(rw: vp8.PyVp8Rewriter, packet: bytearray) -> tuple | None:
    """Rewrite one packet; (PictureID, TL0PICIDX) sent, None if dropped. Checks restore and the length."""
    original = bytes(packet)
    picture = read_picture(packet, len(HEADER), len(packet))
    if not rw.rewrite(packet, picture):
        assert packet == original
        return None
    assert len(packet) == len(original)
    sent = our_fields(packet, len(HEADER), len(packet))
    restore_picture(packet, picture)
    assert packet == original
    return sent[2], sent[3]


def send_pictures(rw: vp8.PyVp8Rewriter, pictures: list[tuple[int, int, int]], per_picture: int = 3) -> list:
    """Send (PictureID, TL0PICIDX, TID) pictures of ``per_picture`` packets; the output per sent picture."""
    out = []
    for pic, tl0, tid in pictures:
        sent = {forward(rw, vp8_packet(pic, tl0, tid, first=i == 0)) for i in range(per_picture)}
        assert len(sent) == 1, "all packets of a picture get the same values"
        if None not in sent:
            out.append(sent.pop())
    return out


def source(pic: int, tl0: int, count: int, tids: tuple[int, ...] = (0,), wide: bool = True) -> list:
    """``count`` pictures from ``pic``/``tl0`` with the temporal pattern ``tids`` (TL0PICIDX + 1 on TID 0)."""
    pictures = []
    tl0 -= 1
    for i in range(count):
        tid = tids[i % len(tids)]
        tl0 += tid == 0
        pictures.append(((pic + i) & (0x7FFF if wide else 0x7F), tl0 & 0xFF, tid))
    return pictures


def assert_continuous(out: list, step_tl0: bool = True):
    for (pic_a, tl0_a), (pic_b, tl0_b) in zip(out, out[1:]):
        assert pic_b == (pic_a + 1) & 0x7FFF
        if step_tl0:
            assert tl0_b == (tl0_a + 1) & 0xFF


def test_first_stream_keeps_source_values(Vp8Rewriter):
    rw = Vp8Rewriter()
    pictures = source(100, 7, 5)
    assert send_pictures(rw, pictures) == [(pic, tl0) for pic, tl0, _ in pictures]


def test_switch_between_simulcast_layers_is_continuous_with_wraparound(Vp8Rewriter):
    rw = Vp8Rewriter()
    out = send_pictures(rw, source(0x7FF0, 0xF0, 30))  # layer 0: wraps both values
    assert out[15] == (0x7FFF, 0xFF) and out[16] == (0, 0)
    rw.sync()
    out += send_pictures(rw, source(1234, 77, 30))  # switch to layer 2
    rw.sync()
    out += send_pictures(rw, source(0x7FFE, 0xFE, 5))  # and back, source values wrapping
    assert len(out) == 65
    assert_continuous(out)
    assert out[-1] == ((0x7FF0 + 64) & 0x7FFF, (0xF0 + 64) & 0xFF)


def test_switch_output_wraps_at_0x7fff_and_0xff(Vp8Rewriter):
    rw = Vp8Rewriter()
    out = send_pictures(rw, source(0x7FFD, 0xFD, 2))
    rw.sync()
    out += send_pictures(rw, source(500, 3, 4))
    assert out == [(0x7FFD, 0xFD), (0x7FFE, 0xFE), (0x7FFF, 0xFF), (0, 0), (1, 1), (2, 2)]


def test_sync_forgets_the_previous_source(Vp8Rewriter):
    rw = Vp8Rewriter()
    out = send_pictures(rw, source(10, 20, 3))
    rw.sync()
    out += send_pictures(rw, source(10, 20, 3))  # another layer with the same values
    assert out == [(10 + i, 20 + i) for i in range(6)]


def test_restart_on_the_same_stream_follows_last_sent(Vp8Rewriter):
    rw = Vp8Rewriter()
    out = send_pictures(rw, source(10, 20, 3))
    rw.sync()  # paused, then resumed 100 pictures later on a key frame
    out += send_pictures(rw, source(113, 120, 3))
    assert out == [(10 + i, 20 + i) for i in range(6)]


L1T3 = (0, 2, 1, 2)


@pytest.mark.parametrize("max_tid, kept", [(0, 1), (1, 2), (2, 4), (3, 4)])
def test_temporal_filtering_keeps_picture_ids_contiguous(Vp8Rewriter, max_tid, kept):
    rw = Vp8Rewriter()
    rw.max_temporal_layer = max_tid
    pictures = source(0x7FE0, 0xFE, 64, L1T3)  # source wraps PictureID and TL0PICIDX
    out = send_pictures(rw, pictures)
    assert len(out) == 64 * kept // 4
    assert_continuous(out, step_tl0=False)
    assert out[0][0] == 0x7FE0
    # TL0PICIDX keeps its meaning: the source's value, +1 on every TID 0 picture
    assert [tl0 for _, tl0 in out] == [tl0 for _, tl0, tid in pictures if tid <= max_tid]


def test_temporal_filtering_across_a_switch(Vp8Rewriter):
    rw = Vp8Rewriter()
    rw.max_temporal_layer = 0
    out = send_pictures(rw, source(300, 40, 16, L1T3))
    rw.sync()
    out += send_pictures(rw, source(9000, 200, 16, L1T3))
    assert len(out) == 8
    assert_continuous(out)  # only TID 0 pictures are left: both values step by one


def test_raising_max_temporal_layer_waits_for_a_layer_sync_picture(Vp8Rewriter):
    """Dropped pictures cannot be referenced: a higher layer starts at a picture marked as layer sync."""
    rw = Vp8Rewriter()
    rw.max_temporal_layer = 0
    pictures = source(50, 0, 16, L1T3)
    out = send_pictures(rw, pictures[:8])
    rw.max_temporal_layer = 2
    out += send_pictures(rw, pictures[8:10])  # TID 0, then a TID 2 that is no layer sync: dropped
    assert len(out) == 2 + 1
    sync_pic, sync_tl0, _tid = pictures[10]  # TID 1, marked layer sync: layer 1 starts
    out.append(forward(rw, vp8_packet(sync_pic, sync_tl0, 1, layer_sync=True)))
    out += send_pictures(rw, pictures[11:])  # TID 2 (not sync) still waits; TID 0 and 1 go
    assert len(out) == 3 + 1 + 2
    rw.sync()
    out += send_pictures(rw, source(500, 9, 4, L1T3))  # after a sync (key frame) all layers go
    assert len(out) == 6 + 4
    assert_continuous(out, step_tl0=False)


def test_retransmissions_map_as_first_sent(Vp8Rewriter):
    rw = Vp8Rewriter()
    rw.max_temporal_layer = 1
    pictures = source(1000, 9, 12, L1T3)
    first = {}
    for pic, tl0, tid in pictures:
        first[pic] = forward(rw, vp8_packet(pic, tl0, tid))
    for pic, tl0, tid in pictures:  # later retransmissions (RTX) of all of them, dropped ones included
        assert forward(rw, vp8_packet(pic, tl0, tid, first=False)) == first[pic]
    assert forward(rw, vp8_packet(1012, 12, 0)) == (1006, 12)  # no gap from the replays


def test_late_first_packet_of_a_dropped_picture_moves_nothing(Vp8Rewriter):
    rw = Vp8Rewriter()
    rw.max_temporal_layer = 0
    assert forward(rw, vp8_packet(1, 1, 0)) == (1, 1)
    assert forward(rw, vp8_packet(2, 1, 2)) is None
    assert forward(rw, vp8_packet(4, 2, 0)) == (3, 2)  # picture 3 (TID 1) lost so far: a gap at 2
    assert forward(rw, vp8_packet(3, 1, 1)) is None  # arrives late: dropped, the offset stays
    assert forward(rw, vp8_packet(5, 2, 2)) is None
    assert forward(rw, vp8_packet(6, 3, 0)) == (4, 3)


def test_seven_bit_picture_id_rewritten_in_place(Vp8Rewriter):
    rw = Vp8Rewriter()
    send_pictures(rw, source(1000, 5, 2))
    rw.sync()
    sent = []
    for pic, tl0, tid in source(0x7E, 90, 4, wide=False):
        packet = vp8_packet(pic, tl0, tid, wide=False)
        sent.append(forward(rw, packet))
        assert parse_descriptor(packet, len(HEADER), len(packet)).picture_id_bits == 7
    assert sent == [((1002 + i) & 0x7F, 7 + i) for i in range(4)]  # 7-bit source wrapped 0x7f -> 0
    rw.sync()
    out = send_pictures(rw, source(20000, 1, 2))  # back to a 15-bit source: the low 7 bits continue
    assert [(pic & 0x7F, tl0) for pic, tl0 in out] == [((1002 + i) & 0x7F, 7 + i) for i in range(4, 6)]


def test_seven_bit_filtering_wraps(Vp8Rewriter):
    rw = Vp8Rewriter()
    rw.max_temporal_layer = 0
    out = [forward(rw, vp8_packet(pic, tl0, tid, wide=False)) for pic, tl0, tid in source(0x70, 0, 64, L1T3, wide=False)]
    out = [o for o in out if o is not None]
    assert [pic for pic, _ in out] == [(0x70 + i) & 0x7F for i in range(16)]


def test_packets_without_picture_id_or_extension(Vp8Rewriter):
    rw = Vp8Rewriter()
    rw.max_temporal_layer = 0
    for descriptor in ("10", "9000", "9010" "1f"):  # no X; no fields; KEYIDX only: no TID to filter on
        buf, start, end = payload(descriptor)
        original = bytes(buf)
        assert rw.rewrite(buf, read_picture(buf, start, end))
        assert buf == original
    buf, start, end = payload("9020" "80")  # TID 2 without PictureID: dropped
    assert not rw.rewrite(buf, read_picture(buf, start, end))
    buf, start, end = payload("9020" "00")
    assert rw.rewrite(buf, read_picture(buf, start, end))


def test_tl0picidx_without_picture_id_is_rewritten(Vp8Rewriter):
    rw = Vp8Rewriter()
    assert forward(rw, vp8_packet(10, 10, 0)) == (10, 10)
    rw.sync()
    assert forward(rw, vp8_packet(None, 100, 0)) == (None, 11)
    assert forward(rw, vp8_packet(None, 101, 0)) == (None, 12)


def test_truncated_and_out_of_range_payloads_are_left_alone(Vp8Rewriter):
    rw = Vp8Rewriter()
    rw.max_temporal_layer = 0
    full = bytes(vp8_packet(0x1234, 5, 2))
    for end in range(len(HEADER), len(full) - len(PAYLOAD) + 1):  # up to the descriptor without payload
        packet = bytearray(full[:end])
        assert read_picture(packet, len(HEADER), end) is None
        assert rw.rewrite(packet, None) and packet == full[:end]
    packet = bytearray(full)
    assert read_picture(packet, -1, len(packet)) is None
    assert read_picture(packet, len(HEADER), len(packet) + 1) is None


def test_shared_buffer_serves_two_consumers(Vp8Rewriter):
    """The picture is read once; each rewriter writes its own values over the last one's."""
    a, b = Vp8Rewriter(), Vp8Rewriter()
    send_pictures(b, source(7000, 70, 3))
    b.sync()
    for pic, tl0, tid in source(100, 1, 6):
        packet = vp8_packet(pic, tl0, tid)
        original = bytes(packet)
        picture = read_picture(packet, len(HEADER), len(packet))
        for rw, expected in ((b, (pic - 100 + 7003, tl0 - 1 + 73)), (a, (pic, tl0)), (b, (pic - 100 + 7003, tl0 - 1 + 73))):
            assert rw.rewrite(packet, picture)
            assert our_fields(packet, len(HEADER), len(packet))[2:4] == expected
        restore_picture(packet, picture)
        assert packet == original


def test_read_picture_finds_the_fields_parse_descriptor_finds():
    for case in PARSE_CASES:
        buf, start, end = payload(case[0])
        descriptor, picture = parse_descriptor(buf, start, end), read_picture(buf, start, end)
        if picture is None:
            assert not buf[start] & 0x80 or descriptor.picture_id_at < 0 and descriptor.tl0picidx_at < 0
            continue
        assert (picture.picture_id_at, picture.tl0picidx_at, picture.tid) == (
            descriptor.picture_id_at, descriptor.tl0picidx_at, descriptor.tid)
        assert bool(picture.layer_sync) == (descriptor.layer_sync and descriptor.tid > 0)


@pytest.mark.skipif(_vp8 is None, reason="the C twin was not built")
def test_both_twins_write_and_drop_alike() -> None:
    """Random pictures (both widths, temporal layers, retransmissions, syncs, layer limits) through both."""
    rng = random.Random(3)
    twins = [vp8.PyVp8Rewriter(), _vp8.Vp8Rewriter()]
    pic, tl0, wide = 1000, 7, True
    for step in range(20000):
        roll = rng.random()
        if roll < 0.01:
            for twin in twins:
                twin.sync()
            wide = rng.random() < 0.7
            pic, tl0 = rng.randrange(0x8000), rng.randrange(256)
        elif roll < 0.02:
            layer = rng.randrange(0, 4)
            for twin in twins:
                twin.max_temporal_layer = layer
            assert twins[0].max_temporal_layer == twins[1].max_temporal_layer == layer
        tid = rng.choice((0, 2, 1, 2)) if rng.random() < 0.9 else None
        back = rng.randrange(0, 3) if rng.random() < 0.1 else 0  # an earlier picture again
        source_pic = (pic - back) & (0x7FFF if wide else 0x7F)
        packet = vp8_packet(source_pic, tl0, tid, first=True, layer_sync=rng.random() < 0.3, wide=wide)
        picture = read_picture(packet, len(HEADER), len(packet))
        copies = [bytearray(packet), bytearray(packet)]
        answers = [twin.rewrite(copy, picture) for twin, copy in zip(twins, copies)]
        assert answers[0] == answers[1] and copies[0] == copies[1], step
        pic = (pic + 1) & (0x7FFF if wide else 0x7F)
        tl0 = (tl0 + (tid == 0)) & 0xFF


@pytest.mark.skipif(_vp8 is None, reason="the C twin was not built")
def test_both_twins_read_pictures_alike() -> None:
    """Random descriptors (every flag, both widths), truncated and with bad bounds, through both readers."""
    rng = random.Random(4)
    for _ in range(20000):
        data = bytes(rng.randrange(256) for _ in range(rng.randrange(0, 10)))
        if data and rng.random() < 0.7:
            data = bytes([data[0] | 0x80]) + data[1:]
        start, end = rng.randrange(-1, 3), rng.randrange(0, len(data) + 2)
        python, compiled = vp8.py_read_picture(data, start, end), _vp8.read_picture(data, start, end)
        assert python == compiled
        assert type(python) is type(compiled)
