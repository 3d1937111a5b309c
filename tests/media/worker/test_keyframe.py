import random

import pytest
from aiortc.rtp import RtpPacket

from kolabmeet.media.worker.keyframe import (
    KEYFRAME_DETECTORS,
    is_keyframe_h264,
    is_keyframe_vp8,
    is_keyframe_vp9,
)
from kolabmeet.media.worker.rtp import payload_bounds

# VP8 frame tag of a key frame: P=0, version 0, show_frame=1, then start code
# 9d 01 2a and 640x480.  A delta frame tag has P=1 (odd first byte).
VP8_KEY_TAG = "5042009d012a8002e001"
VP8_DELTA_TAG = "310b00"

VP8_CASES = [
    # descriptor: X=1 S=1 PID=0; I L T set; 15-bit PictureID 0x0001; TL0PICIDX; TID/Y/KEYIDX
    ("90e08001" "00" "20" + VP8_KEY_TAG, True),
    ("90e08001" "00" "20" + VP8_DELTA_TAG, False),
    ("9080" "15" + VP8_KEY_TAG, True),  # X, I only, 7-bit PictureID
    ("9090" "40" + VP8_KEY_TAG, True),  # X, K only: TID/Y/KEYIDX byte
    ("10" + VP8_KEY_TAG, True),  # no extensions
    ("10" + VP8_DELTA_TAG, False),
    ("80e08001" "00" "20" + VP8_KEY_TAG, False),  # S=0: not the start of a partition
    ("91" "00" + VP8_KEY_TAG, False),  # PID=1: not partition 0
    ("90", False),  # truncated
    ("90e0", False),
    ("90e080", False),
    ("90e08001" "00" "20", False),  # no VP8 payload header
    ("", False),
]

VP9_CASES = [
    # Chrome L1T1 key frame: I=1 B=1 V=1, PictureID 0x0001, scalability structure,
    # then the uncompressed header (frame marker, sync code 49 83 42).
    ("8a8001" "180280" "01e001" "0401" "8249834200", True),
    ("c88002" "86004060", False),  # P=1: inter predicted
    ("828002" "86004060", False),  # B=0: not the beginning of a frame
    ("b88005" "00" "8249834200", True),  # flexible, L: SID 0
    ("b88005" "03" "8249834200", False),  # flexible, L: SID 1
    ("a805" "00" "00" "8249834200", True),  # non-flexible, 7-bit PID, L, TL0PICIDX
    ("a805" "02" "00" "8249834200", False),  # SID 1
    ("08" "8249834200", True),  # bare descriptor
    ("88", False),  # truncated PictureID
    ("8880", False),
    ("a880", False),
    ("a805", False),  # truncated layer byte
    ("", False),
]

H264_SPS = "6742c01f8c8d40501e900f08846a"
H264_PPS = "68ce3c80"
H264_SEI = "06050b"

H264_CASES = [
    ("65888400" "21ff", True),  # single NAL: IDR slice
    (H264_SPS, True),  # single NAL: SPS
    (H264_PPS, False),
    ("419a2438", False),  # non-IDR slice
    # STAP-A (0x78: NRI 3, type 24) with SPS, PPS, IDR
    ("78" "000e" + H264_SPS + "0004" + H264_PPS + "0004" "65888400", True),
    ("78" "0003" + H264_SEI + "0004" "419a2438", False),  # SEI + non-IDR
    ("78" "0003" + H264_SEI + "0004" "65888400", True),  # key NAL after another
    ("78" "0003" + H264_SEI + "0009" "658884", False),  # size past the end
    ("78" "0000" "65888400", False),  # zero size
    ("7800", False),
    ("7c85" "88840021", True),  # FU-A start, type 5
    ("7c87" "42c01f", True),  # FU-A start, type 7
    ("7c05" "88840021", False),  # FU-A middle
    ("7c45" "88840021", False),  # FU-A end
    ("5c81" "9a2438", False),  # FU-A start of non-IDR slice
    ("7c", False),
    ("", False),
]


@pytest.mark.parametrize("hexdata, expected", VP8_CASES)
def test_vp8(hexdata, expected):
    data = bytes.fromhex(hexdata)
    assert is_keyframe_vp8(data, 0, len(data)) is expected


@pytest.mark.parametrize("hexdata, expected", VP9_CASES)
def test_vp9(hexdata, expected):
    data = bytes.fromhex(hexdata)
    assert is_keyframe_vp9(data, 0, len(data)) is expected


@pytest.mark.parametrize("hexdata, expected", H264_CASES)
def test_h264(hexdata, expected):
    data = bytes.fromhex(hexdata)
    assert is_keyframe_h264(data, 0, len(data)) is expected


@pytest.mark.parametrize(
    "mime, payload, expected",
    [
        ("video/vp8", VP8_CASES[0][0], True),
        ("video/vp8", VP8_CASES[1][0], False),
        ("video/vp9", VP9_CASES[0][0], True),
        ("video/h264", H264_CASES[4][0], True),
        ("video/h264", H264_CASES[12][0], False),
    ],
)
def test_detectors_on_rtp_packets(mime, payload, expected):
    """Payload slice comes from payload_bounds of a full packet in a larger buffer."""
    pkt = RtpPacket(payload_type=96, sequence_number=1, ssrc=5, payload=bytes.fromhex(payload))
    pkt.csrc = [7]
    pkt.padding_size = 3
    data = pkt.serialize()
    buf = bytearray(1500)
    buf[: len(data)] = data
    start, end = payload_bounds(buf, len(data))
    assert KEYFRAME_DETECTORS[mime](buf, start, end) is expected
    assert KEYFRAME_DETECTORS[mime](memoryview(buf), start, end) is expected


def test_bounds_are_respected():
    """Bytes beyond `end` (stale receive buffer contents) are never looked at."""
    vp8 = bytes.fromhex("90e08001" "00" "20" + VP8_KEY_TAG)
    assert not is_keyframe_vp8(vp8, 0, 6)
    assert not is_keyframe_vp8(vp8, 0, -1)
    h264 = bytes.fromhex("7c85")
    assert not is_keyframe_h264(h264, 0, 1)
    assert not is_keyframe_vp9(bytes.fromhex("a80500"), 0, 2)
    assert not is_keyframe_h264(bytes.fromhex("65"), -1, -1)


def test_garbage_never_raises():
    rng = random.Random(99)
    for _ in range(5000):
        data = bytes(rng.getrandbits(8) for _ in range(rng.randrange(24)))
        for detect in KEYFRAME_DETECTORS.values():
            for end in range(len(data) + 1):
                assert type(detect(data, 0, end)) is bool
