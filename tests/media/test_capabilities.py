"""The router's RTP capabilities, checked against mediasoup v3's for the same media codecs."""

import json

from kolabmeet.media.capabilities import router_rtp_capabilities
from kolabmeet.media.ortc import validate_rtp_capabilities

VIDEO_FEEDBACK = [
    {"type": "nack", "parameter": ""},
    {"type": "nack", "parameter": "pli"},
    {"type": "ccm", "parameter": "fir"},
    {"type": "goog-remb", "parameter": ""},
    {"type": "transport-cc", "parameter": ""},
]

TWCC = "http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01"

# (kind, uri, preferredId, direction) in mediasoup's order.
EXPECTED_EXTENSIONS = [
    ("audio", "urn:ietf:params:rtp-hdrext:sdes:mid", 1, "sendrecv"),
    ("video", "urn:ietf:params:rtp-hdrext:sdes:mid", 1, "sendrecv"),
    ("video", "urn:ietf:params:rtp-hdrext:sdes:rtp-stream-id", 2, "recvonly"),
    ("video", "urn:ietf:params:rtp-hdrext:sdes:repaired-rtp-stream-id", 3, "recvonly"),
    ("audio", "http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time", 4, "sendrecv"),
    ("video", "http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time", 4, "sendrecv"),
    ("audio", TWCC, 5, "recvonly"),
    ("video", TWCC, 5, "sendrecv"),
    ("video", "http://tools.ietf.org/html/draft-ietf-avtext-framemarking-07", 6, "sendrecv"),
    ("video", "urn:ietf:params:rtp-hdrext:framemarking", 7, "sendrecv"),
    ("audio", "urn:ietf:params:rtp-hdrext:ssrc-audio-level", 10, "sendrecv"),
    ("video", "urn:3gpp:video-orientation", 11, "sendrecv"),
    ("video", "urn:ietf:params:rtp-hdrext:toffset", 12, "sendrecv"),
    ("audio", "http://www.webrtc.org/experiments/rtp-hdrext/abs-capture-time", 13, "sendrecv"),
    ("video", "http://www.webrtc.org/experiments/rtp-hdrext/abs-capture-time", 13, "sendrecv"),
    ("audio", "http://www.webrtc.org/experiments/rtp-hdrext/playout-delay", 14, "sendrecv"),
    ("video", "http://www.webrtc.org/experiments/rtp-hdrext/playout-delay", 14, "sendrecv"),
]


def test_codecs_in_order_with_their_payload_types():
    codecs = router_rtp_capabilities()["codecs"]
    summary = [(c["mimeType"], c["preferredPayloadType"], c["parameters"].get("apt")) for c in codecs]
    assert summary == [
        ("audio/opus", 100, None),
        ("video/VP8", 101, None),
        ("video/rtx", 102, 101),
        ("video/VP9", 103, None),
        ("video/rtx", 104, 103),
        ("video/H264", 105, None),
        ("video/rtx", 106, 105),
        ("video/H264", 107, None),
        ("video/rtx", 108, 107),
    ]


def test_opus():
    assert router_rtp_capabilities()["codecs"][0] == {
        "kind": "audio",
        "mimeType": "audio/opus",
        "clockRate": 48000,
        "channels": 2,
        "parameters": {},
        "rtcpFeedback": [{"type": "nack", "parameter": ""}, {"type": "transport-cc", "parameter": ""}],
        "preferredPayloadType": 100,
    }


def test_video_codecs():
    codecs = router_rtp_capabilities()["codecs"]
    assert codecs[1] == {
        "kind": "video",
        "mimeType": "video/VP8",
        "clockRate": 90000,
        "parameters": {"x-google-start-bitrate": 1000},
        "rtcpFeedback": VIDEO_FEEDBACK,
        "preferredPayloadType": 101,
    }
    assert codecs[3]["parameters"] == {"profile-id": 2, "x-google-start-bitrate": 1000}
    for codec, profile_level_id in ((codecs[5], "4d0032"), (codecs[7], "42e01f")):
        assert codec["parameters"] == {
            "level-asymmetry-allowed": 1,
            "packetization-mode": 1,
            "profile-level-id": profile_level_id,
            "x-google-start-bitrate": 1000,
        }
        assert codec["rtcpFeedback"] == VIDEO_FEEDBACK
        assert "channels" not in codec


def test_rtx_codecs():
    assert router_rtp_capabilities()["codecs"][2] == {
        "kind": "video",
        "mimeType": "video/rtx",
        "preferredPayloadType": 102,
        "clockRate": 90000,
        "parameters": {"apt": 101},
        "rtcpFeedback": [],
    }


def test_seventeen_header_extensions_in_mediasoup_order():
    extensions = router_rtp_capabilities()["headerExtensions"]
    assert len(extensions) == 17
    assert [(e["kind"], e["uri"], e["preferredId"], e["direction"]) for e in extensions] == (
        EXPECTED_EXTENSIONS
    )
    assert all(e["preferredEncrypt"] is False for e in extensions)
    assert all(set(e) == {"kind", "uri", "preferredId", "preferredEncrypt", "direction"} for e in extensions)


def test_each_call_returns_a_fresh_copy():
    caps = router_rtp_capabilities()
    caps["codecs"][1]["rtcpFeedback"].clear()
    caps["headerExtensions"].pop()
    assert router_rtp_capabilities()["codecs"][1]["rtcpFeedback"] == VIDEO_FEEDBACK
    assert len(router_rtp_capabilities()["headerExtensions"]) == 17


def test_json_round_trip_and_already_normalized():
    caps = router_rtp_capabilities()
    assert json.loads(json.dumps(caps)) == caps
    assert validate_rtp_capabilities(caps) == caps
