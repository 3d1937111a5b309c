"""The router's RTP capabilities: media codecs and RTP header extensions.

Every router of the server offers the same codecs (PROTOCOL.md, "Configuration")
with fixed payload types, and the header extensions mediasoup v3 supports.
`router_rtp_capabilities()` gives them in the JSON shape mediasoup-client
expects from `getRouterRtpCapabilities`.
"""

import copy
from typing import Any

VIDEO_CLOCK_RATE = 90000

AUDIO_RTCP_FEEDBACK: list[dict[str, str]] = [
    {"type": "nack", "parameter": ""},
    {"type": "transport-cc", "parameter": ""},
]

VIDEO_RTCP_FEEDBACK: list[dict[str, str]] = [
    {"type": "nack", "parameter": ""},
    {"type": "nack", "parameter": "pli"},
    {"type": "ccm", "parameter": "fir"},
    {"type": "goog-remb", "parameter": ""},
    {"type": "transport-cc", "parameter": ""},
]

# Sent to browsers so that they start a video stream at 1 Mbit/s.
START_BITRATE: dict[str, int] = {"x-google-start-bitrate": 1000}


def _opus(payload_type: int) -> dict[str, Any]:
    return {
        "kind": "audio",
        "mimeType": "audio/opus",
        "clockRate": 48000,
        "channels": 2,
        "parameters": {},
        "rtcpFeedback": copy.deepcopy(AUDIO_RTCP_FEEDBACK),
        "preferredPayloadType": payload_type,
    }


def _video(mime_type: str, payload_type: int, parameters: dict[str, Any]) -> dict[str, Any]:
    return {
        "kind": "video",
        "mimeType": mime_type,
        "clockRate": VIDEO_CLOCK_RATE,
        "parameters": {**parameters, **START_BITRATE},
        "rtcpFeedback": copy.deepcopy(VIDEO_RTCP_FEEDBACK),
        "preferredPayloadType": payload_type,
    }


def _rtx(payload_type: int, apt: int) -> dict[str, Any]:
    """The retransmission companion of the video codec with payload type `apt`."""
    return {
        "kind": "video",
        "mimeType": "video/rtx",
        "preferredPayloadType": payload_type,
        "clockRate": VIDEO_CLOCK_RATE,
        "parameters": {"apt": apt},
        "rtcpFeedback": [],
    }


def _h264(profile_level_id: str) -> dict[str, Any]:
    return {
        "level-asymmetry-allowed": 1,
        "packetization-mode": 1,
        "profile-level-id": profile_level_id,
    }


def _codecs() -> list[dict[str, Any]]:
    return [
        _opus(100),
        _video("video/VP8", 101, {}),
        _rtx(102, 101),
        _video("video/VP9", 103, {"profile-id": 2}),
        _rtx(104, 103),
        _video("video/H264", 105, _h264("4d0032")),
        _rtx(106, 105),
        _video("video/H264", 107, _h264("42e01f")),
        _rtx(108, 107),
    ]


MID = "urn:ietf:params:rtp-hdrext:sdes:mid"
RTP_STREAM_ID = "urn:ietf:params:rtp-hdrext:sdes:rtp-stream-id"
REPAIRED_RTP_STREAM_ID = "urn:ietf:params:rtp-hdrext:sdes:repaired-rtp-stream-id"
ABS_SEND_TIME = "http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time"
TRANSPORT_WIDE_CC = "http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01"
FRAME_MARKING_07 = "http://tools.ietf.org/html/draft-ietf-avtext-framemarking-07"
FRAME_MARKING = "urn:ietf:params:rtp-hdrext:framemarking"
AUDIO_LEVEL = "urn:ietf:params:rtp-hdrext:ssrc-audio-level"
VIDEO_ORIENTATION = "urn:3gpp:video-orientation"
TOFFSET = "urn:ietf:params:rtp-hdrext:toffset"
ABS_CAPTURE_TIME = "http://www.webrtc.org/experiments/rtp-hdrext/abs-capture-time"
PLAYOUT_DELAY = "http://www.webrtc.org/experiments/rtp-hdrext/playout-delay"

# (kind, uri, preferredId, direction), in mediasoup's order.
_HEADER_EXTENSIONS: list[tuple[str, str, int, str]] = [
    ("audio", MID, 1, "sendrecv"),
    ("video", MID, 1, "sendrecv"),
    ("video", RTP_STREAM_ID, 2, "recvonly"),
    ("video", REPAIRED_RTP_STREAM_ID, 3, "recvonly"),
    ("audio", ABS_SEND_TIME, 4, "sendrecv"),
    ("video", ABS_SEND_TIME, 4, "sendrecv"),
    # Audio only uses transport-wide congestion control when receiving.
    ("audio", TRANSPORT_WIDE_CC, 5, "recvonly"),
    ("video", TRANSPORT_WIDE_CC, 5, "sendrecv"),
    ("video", FRAME_MARKING_07, 6, "sendrecv"),
    ("video", FRAME_MARKING, 7, "sendrecv"),
    ("audio", AUDIO_LEVEL, 10, "sendrecv"),
    ("video", VIDEO_ORIENTATION, 11, "sendrecv"),
    ("video", TOFFSET, 12, "sendrecv"),
    ("audio", ABS_CAPTURE_TIME, 13, "sendrecv"),
    ("video", ABS_CAPTURE_TIME, 13, "sendrecv"),
    ("audio", PLAYOUT_DELAY, 14, "sendrecv"),
    ("video", PLAYOUT_DELAY, 14, "sendrecv"),
]


ROUTER_IDS = {uri: preferred_id for _kind, uri, preferred_id, _direction in _HEADER_EXTENSIONS}
"""The router's id of each header extension (the same for audio and video)."""


def _header_extensions() -> list[dict[str, Any]]:
    return [
        {
            "kind": kind,
            "uri": uri,
            "preferredId": preferred_id,
            "preferredEncrypt": False,
            "direction": direction,
        }
        for kind, uri, preferred_id, direction in _HEADER_EXTENSIONS
    ]


def router_rtp_capabilities() -> dict[str, Any]:
    """The RTP capabilities of every router, as `router.rtpCapabilities` in mediasoup.

    Returns a fresh dict on each call, so the caller may change it freely.
    """
    return {"codecs": _codecs(), "headerExtensions": _header_extensions()}
