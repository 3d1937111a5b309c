"""RTP capabilities and producer parameters of real clients, for negotiation tests.

Browser capabilities (CHROME_CAPS, FIREFOX_CAPS, SAFARI_CAPS) are `device.rtpCapabilities`
as mediasoup-client 3.7.8 (the version Kolab's web client pins) computes them when it loads
the router capabilities minus `urn:3gpp:video-orientation` (as Kolab's client does): its
getExtendedRtpCapabilities() then getRecvRtpCapabilities(), run (through pymediasoup's port
of them) on the native capabilities mediasoup-client extracts from each browser's SDP offer
(Chrome 120, Firefox 121, Safari 17; see the *_NATIVE_CODECS notes below).

AIORTC_CAPS and AIORTC_*_PRODUCER are the output of pymediasoup 1.5.0 with aiortc 1.16:
`Device(handlerFactory=AiortcHandler.createFactory(...))`, `await device.load(router caps)`,
`device.rtpCapabilities`, and the `rtpParameters` of its "produce" events.

Browser producer parameters are what mediasoup-client's Chrome111 handler sends: the sending
parameters of the chosen codec (with the browser's payload types and extension ids), the
encodings given by the app with rid "rN" and scalabilityMode "L1T3" added for simulcast (Kolab's
webcam: scale-down 4 at 300 kbit/s, 2 at 800 kbit/s), or the SSRCs of the SDP offer.

Native codecs the browsers offer (not all survive the router's codecs):
- Chrome: opus, VP8, VP9 profile-id 0 and 2, H264 42001f/42e01f/4d001f/64001f with
  packetization-mode 0 and 1, AV1, red, ulpfec; H264 Main 4d001f meets the router's 4d0032.
- Firefox: opus, VP8, VP9 without profile-id (profile 0: no match for the router's profile 2),
  H264 42e01f with packetization-mode 1 and 0.
- Safari: opus, H264 640c1f (constrained high: no match) and 42e01f, VP8.
"""


CHROME_CAPS = {
    "codecs": [
        {
            "mimeType": "audio/opus",
            "clockRate": 48000,
            "channels": 2,
            "rtcpFeedback": [{"type": "transport-cc", "parameter": ""}],
            "parameters": {"minptime": 10, "useinbandfec": 1},
            "kind": "audio",
            "preferredPayloadType": 100,
        },
        {
            "mimeType": "video/VP8",
            "clockRate": 90000,
            "rtcpFeedback": [
                {"type": "goog-remb", "parameter": ""},
                {"type": "transport-cc", "parameter": ""},
                {"type": "ccm", "parameter": "fir"},
                {"type": "nack", "parameter": ""},
                {"type": "nack", "parameter": "pli"},
            ],
            "parameters": {},
            "kind": "video",
            "preferredPayloadType": 101,
        },
        {
            "mimeType": "video/rtx",
            "clockRate": 90000,
            "rtcpFeedback": [],
            "parameters": {"apt": 101},
            "kind": "video",
            "preferredPayloadType": 102,
        },
        {
            "mimeType": "video/VP9",
            "clockRate": 90000,
            "rtcpFeedback": [
                {"type": "goog-remb", "parameter": ""},
                {"type": "transport-cc", "parameter": ""},
                {"type": "ccm", "parameter": "fir"},
                {"type": "nack", "parameter": ""},
                {"type": "nack", "parameter": "pli"},
            ],
            "parameters": {"profile-id": 2},
            "kind": "video",
            "preferredPayloadType": 103,
        },
        {
            "mimeType": "video/rtx",
            "clockRate": 90000,
            "rtcpFeedback": [],
            "parameters": {"apt": 103},
            "kind": "video",
            "preferredPayloadType": 104,
        },
        {
            "mimeType": "video/H264",
            "clockRate": 90000,
            "rtcpFeedback": [
                {"type": "goog-remb", "parameter": ""},
                {"type": "transport-cc", "parameter": ""},
                {"type": "ccm", "parameter": "fir"},
                {"type": "nack", "parameter": ""},
                {"type": "nack", "parameter": "pli"},
            ],
            "parameters": {"level-asymmetry-allowed": 1, "packetization-mode": 1, "profile-level-id": "4d001f"},
            "kind": "video",
            "preferredPayloadType": 105,
        },
        {
            "mimeType": "video/rtx",
            "clockRate": 90000,
            "rtcpFeedback": [],
            "parameters": {"apt": 105},
            "kind": "video",
            "preferredPayloadType": 106,
        },
        {
            "mimeType": "video/H264",
            "clockRate": 90000,
            "rtcpFeedback": [
                {"type": "goog-remb", "parameter": ""},
                {"type": "transport-cc", "parameter": ""},
                {"type": "ccm", "parameter": "fir"},
                {"type": "nack", "parameter": ""},
                {"type": "nack", "parameter": "pli"},
            ],
            "parameters": {"level-asymmetry-allowed": 1, "packetization-mode": 1, "profile-level-id": "42e01f"},
            "kind": "video",
            "preferredPayloadType": 107,
        },
        {
            "mimeType": "video/rtx",
            "clockRate": 90000,
            "rtcpFeedback": [],
            "parameters": {"apt": 107},
            "kind": "video",
            "preferredPayloadType": 108,
        },
    ],
    "headerExtensions": [
        {
            "kind": "audio",
            "uri": "urn:ietf:params:rtp-hdrext:sdes:mid",
            "preferredId": 1,
            "preferredEncrypt": False,
            "direction": "sendrecv",
        },
        {
            "kind": "video",
            "uri": "urn:ietf:params:rtp-hdrext:sdes:mid",
            "preferredId": 1,
            "preferredEncrypt": False,
            "direction": "sendrecv",
        },
        {
            "kind": "audio",
            "uri": "http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time",
            "preferredId": 4,
            "preferredEncrypt": False,
            "direction": "sendrecv",
        },
        {
            "kind": "video",
            "uri": "http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time",
            "preferredId": 4,
            "preferredEncrypt": False,
            "direction": "sendrecv",
        },
        {
            "kind": "video",
            "uri": "http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01",
            "preferredId": 5,
            "preferredEncrypt": False,
            "direction": "sendrecv",
        },
        {
            "kind": "audio",
            "uri": "urn:ietf:params:rtp-hdrext:ssrc-audio-level",
            "preferredId": 10,
            "preferredEncrypt": False,
            "direction": "sendrecv",
        },
        {
            "kind": "video",
            "uri": "urn:ietf:params:rtp-hdrext:toffset",
            "preferredId": 12,
            "preferredEncrypt": False,
            "direction": "sendrecv",
        },
        {
            "kind": "video",
            "uri": "http://www.webrtc.org/experiments/rtp-hdrext/playout-delay",
            "preferredId": 14,
            "preferredEncrypt": False,
            "direction": "sendrecv",
        },
    ],
    "fecMechanisms": [],
}


FIREFOX_CAPS = {
    "codecs": [
        {
            "mimeType": "audio/opus",
            "clockRate": 48000,
            "channels": 2,
            "rtcpFeedback": [],
            "parameters": {"maxplaybackrate": 48000, "stereo": 1, "useinbandfec": 1},
            "kind": "audio",
            "preferredPayloadType": 100,
        },
        {
            "mimeType": "video/VP8",
            "clockRate": 90000,
            "rtcpFeedback": [
                {"type": "nack", "parameter": ""},
                {"type": "nack", "parameter": "pli"},
                {"type": "ccm", "parameter": "fir"},
                {"type": "goog-remb", "parameter": ""},
                {"type": "transport-cc", "parameter": ""},
            ],
            "parameters": {"max-fs": 12288, "max-fr": 60},
            "kind": "video",
            "preferredPayloadType": 101,
        },
        {
            "mimeType": "video/rtx",
            "clockRate": 90000,
            "rtcpFeedback": [],
            "parameters": {"apt": 101},
            "kind": "video",
            "preferredPayloadType": 102,
        },
        {
            "mimeType": "video/H264",
            "clockRate": 90000,
            "rtcpFeedback": [
                {"type": "nack", "parameter": ""},
                {"type": "nack", "parameter": "pli"},
                {"type": "ccm", "parameter": "fir"},
                {"type": "goog-remb", "parameter": ""},
                {"type": "transport-cc", "parameter": ""},
            ],
            "parameters": {"profile-level-id": "42e01f", "level-asymmetry-allowed": 1, "packetization-mode": 1},
            "kind": "video",
            "preferredPayloadType": 107,
        },
        {
            "mimeType": "video/rtx",
            "clockRate": 90000,
            "rtcpFeedback": [],
            "parameters": {"apt": 107},
            "kind": "video",
            "preferredPayloadType": 108,
        },
    ],
    "headerExtensions": [
        {
            "kind": "audio",
            "uri": "urn:ietf:params:rtp-hdrext:sdes:mid",
            "preferredId": 1,
            "preferredEncrypt": False,
            "direction": "sendrecv",
        },
        {
            "kind": "video",
            "uri": "urn:ietf:params:rtp-hdrext:sdes:mid",
            "preferredId": 1,
            "preferredEncrypt": False,
            "direction": "sendrecv",
        },
        {
            "kind": "video",
            "uri": "http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time",
            "preferredId": 4,
            "preferredEncrypt": False,
            "direction": "sendrecv",
        },
        {
            "kind": "video",
            "uri": "http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01",
            "preferredId": 5,
            "preferredEncrypt": False,
            "direction": "sendrecv",
        },
        {
            "kind": "audio",
            "uri": "urn:ietf:params:rtp-hdrext:ssrc-audio-level",
            "preferredId": 10,
            "preferredEncrypt": False,
            "direction": "sendrecv",
        },
        {
            "kind": "video",
            "uri": "urn:ietf:params:rtp-hdrext:toffset",
            "preferredId": 12,
            "preferredEncrypt": False,
            "direction": "sendrecv",
        },
        {
            "kind": "video",
            "uri": "http://www.webrtc.org/experiments/rtp-hdrext/playout-delay",
            "preferredId": 14,
            "preferredEncrypt": False,
            "direction": "sendrecv",
        },
    ],
    "fecMechanisms": [],
}


SAFARI_CAPS = {
    "codecs": [
        {
            "mimeType": "audio/opus",
            "clockRate": 48000,
            "channels": 2,
            "rtcpFeedback": [{"type": "transport-cc", "parameter": ""}],
            "parameters": {"minptime": 10, "useinbandfec": 1},
            "kind": "audio",
            "preferredPayloadType": 100,
        },
        {
            "mimeType": "video/VP8",
            "clockRate": 90000,
            "rtcpFeedback": [
                {"type": "goog-remb", "parameter": ""},
                {"type": "transport-cc", "parameter": ""},
                {"type": "ccm", "parameter": "fir"},
                {"type": "nack", "parameter": ""},
                {"type": "nack", "parameter": "pli"},
            ],
            "parameters": {},
            "kind": "video",
            "preferredPayloadType": 101,
        },
        {
            "mimeType": "video/rtx",
            "clockRate": 90000,
            "rtcpFeedback": [],
            "parameters": {"apt": 101},
            "kind": "video",
            "preferredPayloadType": 102,
        },
        {
            "mimeType": "video/H264",
            "clockRate": 90000,
            "rtcpFeedback": [
                {"type": "goog-remb", "parameter": ""},
                {"type": "transport-cc", "parameter": ""},
                {"type": "ccm", "parameter": "fir"},
                {"type": "nack", "parameter": ""},
                {"type": "nack", "parameter": "pli"},
            ],
            "parameters": {"level-asymmetry-allowed": 1, "packetization-mode": 1, "profile-level-id": "42e01f"},
            "kind": "video",
            "preferredPayloadType": 107,
        },
        {
            "mimeType": "video/rtx",
            "clockRate": 90000,
            "rtcpFeedback": [],
            "parameters": {"apt": 107},
            "kind": "video",
            "preferredPayloadType": 108,
        },
    ],
    "headerExtensions": [
        {
            "kind": "audio",
            "uri": "urn:ietf:params:rtp-hdrext:sdes:mid",
            "preferredId": 1,
            "preferredEncrypt": False,
            "direction": "sendrecv",
        },
        {
            "kind": "video",
            "uri": "urn:ietf:params:rtp-hdrext:sdes:mid",
            "preferredId": 1,
            "preferredEncrypt": False,
            "direction": "sendrecv",
        },
        {
            "kind": "audio",
            "uri": "http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time",
            "preferredId": 4,
            "preferredEncrypt": False,
            "direction": "sendrecv",
        },
        {
            "kind": "video",
            "uri": "http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time",
            "preferredId": 4,
            "preferredEncrypt": False,
            "direction": "sendrecv",
        },
        {
            "kind": "video",
            "uri": "http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01",
            "preferredId": 5,
            "preferredEncrypt": False,
            "direction": "sendrecv",
        },
        {
            "kind": "audio",
            "uri": "urn:ietf:params:rtp-hdrext:ssrc-audio-level",
            "preferredId": 10,
            "preferredEncrypt": False,
            "direction": "sendrecv",
        },
        {
            "kind": "video",
            "uri": "urn:ietf:params:rtp-hdrext:toffset",
            "preferredId": 12,
            "preferredEncrypt": False,
            "direction": "sendrecv",
        },
        {
            "kind": "video",
            "uri": "http://www.webrtc.org/experiments/rtp-hdrext/playout-delay",
            "preferredId": 14,
            "preferredEncrypt": False,
            "direction": "sendrecv",
        },
    ],
    "fecMechanisms": [],
}


AIORTC_CAPS = {
    "codecs": [
        {
            "mimeType": "audio/opus",
            "clockRate": 48000,
            "channels": 2,
            "rtcpFeedback": [],
            "parameters": {},
            "kind": "audio",
            "preferredPayloadType": 100,
        },
        {
            "mimeType": "video/VP8",
            "clockRate": 90000,
            "rtcpFeedback": [
                {"type": "nack", "parameter": ""},
                {"type": "nack", "parameter": "pli"},
                {"type": "goog-remb", "parameter": ""},
            ],
            "parameters": {},
            "kind": "video",
            "preferredPayloadType": 101,
        },
        {
            "mimeType": "video/rtx",
            "clockRate": 90000,
            "rtcpFeedback": [],
            "parameters": {"apt": 101},
            "kind": "video",
            "preferredPayloadType": 102,
        },
        {
            "mimeType": "video/H264",
            "clockRate": 90000,
            "rtcpFeedback": [
                {"type": "nack", "parameter": ""},
                {"type": "nack", "parameter": "pli"},
                {"type": "goog-remb", "parameter": ""},
            ],
            "parameters": {"level-asymmetry-allowed": 1, "packetization-mode": 1, "profile-level-id": "42e01f"},
            "kind": "video",
            "preferredPayloadType": 107,
        },
        {
            "mimeType": "video/rtx",
            "clockRate": 90000,
            "rtcpFeedback": [],
            "parameters": {"apt": 107},
            "kind": "video",
            "preferredPayloadType": 108,
        },
    ],
    "headerExtensions": [
        {
            "kind": "audio",
            "uri": "urn:ietf:params:rtp-hdrext:sdes:mid",
            "preferredId": 1,
            "preferredEncrypt": False,
            "direction": "sendrecv",
        },
        {
            "kind": "video",
            "uri": "urn:ietf:params:rtp-hdrext:sdes:mid",
            "preferredId": 1,
            "preferredEncrypt": False,
            "direction": "sendrecv",
        },
        {
            "kind": "video",
            "uri": "http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time",
            "preferredId": 4,
            "preferredEncrypt": False,
            "direction": "sendrecv",
        },
        {
            "kind": "audio",
            "uri": "urn:ietf:params:rtp-hdrext:ssrc-audio-level",
            "preferredId": 10,
            "preferredEncrypt": False,
            "direction": "sendrecv",
        },
    ],
    "fecMechanisms": [],
}


CHROME_WEBCAM_PRODUCER = {
    "mid": "0",
    "codecs": [
        {
            "mimeType": "video/VP8",
            "clockRate": 90000,
            "rtcpFeedback": [
                {"type": "goog-remb", "parameter": ""},
                {"type": "transport-cc", "parameter": ""},
                {"type": "ccm", "parameter": "fir"},
                {"type": "nack", "parameter": ""},
                {"type": "nack", "parameter": "pli"},
            ],
            "parameters": {},
            "payloadType": 96,
        },
        {
            "mimeType": "video/rtx",
            "clockRate": 90000,
            "rtcpFeedback": [],
            "parameters": {"apt": 96},
            "payloadType": 97,
        },
    ],
    "headerExtensions": [
        {"uri": "urn:ietf:params:rtp-hdrext:sdes:mid", "id": 4, "encrypt": False, "parameters": {}},
        {
            "uri": "urn:ietf:params:rtp-hdrext:sdes:rtp-stream-id",
            "id": 10,
            "encrypt": False,
            "parameters": {},
        },
        {
            "uri": "urn:ietf:params:rtp-hdrext:sdes:repaired-rtp-stream-id",
            "id": 11,
            "encrypt": False,
            "parameters": {},
        },
        {
            "uri": "http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time",
            "id": 2,
            "encrypt": False,
            "parameters": {},
        },
        {
            "uri": "http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01",
            "id": 3,
            "encrypt": False,
            "parameters": {},
        },
        {"uri": "urn:ietf:params:rtp-hdrext:toffset", "id": 14, "encrypt": False, "parameters": {}},
        {
            "uri": "http://www.webrtc.org/experiments/rtp-hdrext/playout-delay",
            "id": 5,
            "encrypt": False,
            "parameters": {},
        },
    ],
    "encodings": [
        {"scaleResolutionDownBy": 4, "maxBitrate": 300000, "rid": "r0", "scalabilityMode": "L1T3"},
        {"scaleResolutionDownBy": 2, "maxBitrate": 800000, "rid": "r1", "scalabilityMode": "L1T3"},
    ],
    "rtcp": {"cname": "a7pVzFSfc1xgMw8P"},
}


CHROME_SIMULCAST_RID_PRODUCER = {
    **CHROME_WEBCAM_PRODUCER,
    "encodings": [
        {"scaleResolutionDownBy": 4, "maxBitrate": 300000, "rid": "r0", "scalabilityMode": "L1T3"},
        {"scaleResolutionDownBy": 2, "maxBitrate": 800000, "rid": "r1", "scalabilityMode": "L1T3"},
        {"scaleResolutionDownBy": 1, "maxBitrate": 1500000, "rid": "r2", "scalabilityMode": "L1T3"},
    ],
}


CHROME_SIMULCAST_SSRC_PRODUCER = {
    **CHROME_WEBCAM_PRODUCER,
    "encodings": [
        {"ssrc": 3162416325, "rtx": {"ssrc": 1433508702}},
        {"ssrc": 3162416326, "rtx": {"ssrc": 1433508703}},
        {"ssrc": 3162416327, "rtx": {"ssrc": 1433508704}},
    ],
}


CHROME_VP9_SVC_PRODUCER = {
    **CHROME_WEBCAM_PRODUCER,
    "mid": "2",
    "codecs": [
        {
            "mimeType": "video/VP9",
            "clockRate": 90000,
            "rtcpFeedback": [
                {"type": "goog-remb", "parameter": ""},
                {"type": "transport-cc", "parameter": ""},
                {"type": "ccm", "parameter": "fir"},
                {"type": "nack", "parameter": ""},
                {"type": "nack", "parameter": "pli"},
            ],
            "parameters": {"profile-id": 2},
            "payloadType": 100,
        },
        {
            "mimeType": "video/rtx",
            "clockRate": 90000,
            "rtcpFeedback": [],
            "parameters": {"apt": 100},
            "payloadType": 101,
        },
    ],
    "encodings": [{"ssrc": 2780917651, "rtx": {"ssrc": 926542318}, "scalabilityMode": "L3T3_KEY"}],
}


CHROME_H264_MAIN_PRODUCER = {
    **CHROME_WEBCAM_PRODUCER,
    "mid": "3",
    "codecs": [
        {
            "mimeType": "video/H264",
            "clockRate": 90000,
            "rtcpFeedback": [
                {"type": "goog-remb", "parameter": ""},
                {"type": "transport-cc", "parameter": ""},
                {"type": "ccm", "parameter": "fir"},
                {"type": "nack", "parameter": ""},
                {"type": "nack", "parameter": "pli"},
            ],
            "parameters": {"level-asymmetry-allowed": 1, "packetization-mode": 1, "profile-level-id": "4d001f"},
            "payloadType": 127,
        },
        {
            "mimeType": "video/rtx",
            "clockRate": 90000,
            "rtcpFeedback": [],
            "parameters": {"apt": 127},
            "payloadType": 125,
        },
    ],
    "encodings": [{"ssrc": 1852338911, "rtx": {"ssrc": 3924475507}}],
}


CHROME_MIC_PRODUCER = {
    "mid": "1",
    "codecs": [
        {
            "mimeType": "audio/opus",
            "clockRate": 48000,
            "channels": 2,
            "rtcpFeedback": [{"type": "transport-cc", "parameter": ""}],
            "parameters": {"minptime": 10, "useinbandfec": 1},
            "payloadType": 111,
        },
    ],
    "headerExtensions": [
        {"uri": "urn:ietf:params:rtp-hdrext:sdes:mid", "id": 4, "encrypt": False, "parameters": {}},
        {
            "uri": "http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time",
            "id": 2,
            "encrypt": False,
            "parameters": {},
        },
        {
            "uri": "http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01",
            "id": 3,
            "encrypt": False,
            "parameters": {},
        },
        {
            "uri": "urn:ietf:params:rtp-hdrext:ssrc-audio-level",
            "id": 1,
            "encrypt": False,
            "parameters": {},
        },
    ],
    "encodings": [{"ssrc": 2311442913}],
    "rtcp": {"cname": "a7pVzFSfc1xgMw8P"},
}


AIORTC_VIDEO_PRODUCER = {
    "mid": "0",
    "codecs": [
        {
            "mimeType": "video/VP8",
            "clockRate": 90000,
            "rtcpFeedback": [
                {"type": "nack", "parameter": ""},
                {"type": "nack", "parameter": "pli"},
                {"type": "goog-remb", "parameter": ""},
            ],
            "parameters": {},
            "payloadType": 97,
        },
        {
            "mimeType": "video/rtx",
            "clockRate": 90000,
            "rtcpFeedback": [],
            "parameters": {"apt": 97},
            "payloadType": 98,
        },
    ],
    "headerExtensions": [
        {"uri": "urn:ietf:params:rtp-hdrext:sdes:mid", "id": 1, "encrypt": False, "parameters": {}},
        {
            "uri": "http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time",
            "id": 3,
            "encrypt": False,
            "parameters": {},
        },
    ],
    "encodings": [{"ssrc": 922911687, "rtx": {"ssrc": 3384119278}, "dtx": False}],
    "rtcp": {"cname": "a939744e-d4e0-4beb-8171-eab2697bf934", "reducedSize": True, "mux": True},
}


AIORTC_AUDIO_PRODUCER = {
    "mid": "1",
    "codecs": [
        {
            "mimeType": "audio/opus",
            "clockRate": 48000,
            "channels": 2,
            "rtcpFeedback": [],
            "parameters": {},
            "payloadType": 96,
        },
    ],
    "headerExtensions": [
        {"uri": "urn:ietf:params:rtp-hdrext:sdes:mid", "id": 1, "encrypt": False, "parameters": {}},
        {
            "uri": "urn:ietf:params:rtp-hdrext:ssrc-audio-level",
            "id": 2,
            "encrypt": False,
            "parameters": {},
        },
    ],
    "encodings": [{"ssrc": 3408100604, "dtx": False}],
    "rtcp": {"cname": "a939744e-d4e0-4beb-8171-eab2697bf934", "reducedSize": True, "mux": True},
}
