"""Capability negotiation, with capabilities and producer parameters of real clients."""

import copy

import pytest

from kolabmeet.media import ortc
from kolabmeet.media.capabilities import router_rtp_capabilities
from kolabmeet.media.errors import UnsupportedError
from kolabmeet.media.ortc import InvalidParametersError
from tests.media.client_caps import (
    AIORTC_AUDIO_PRODUCER,
    AIORTC_CAPS,
    AIORTC_VIDEO_PRODUCER,
    CHROME_CAPS,
    CHROME_H264_MAIN_PRODUCER,
    CHROME_MIC_PRODUCER,
    CHROME_SIMULCAST_RID_PRODUCER,
    CHROME_SIMULCAST_SSRC_PRODUCER,
    CHROME_VP9_SVC_PRODUCER,
    CHROME_WEBCAM_PRODUCER,
    FIREFOX_CAPS,
    SAFARI_CAPS,
)

MID = "urn:ietf:params:rtp-hdrext:sdes:mid"
ABS_SEND_TIME = "http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time"
TWCC = "http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01"
AUDIO_LEVEL = "urn:ietf:params:rtp-hdrext:ssrc-audio-level"
TOFFSET = "urn:ietf:params:rtp-hdrext:toffset"
PLAYOUT_DELAY = "http://www.webrtc.org/experiments/rtp-hdrext/playout-delay"

ALL_CLIENTS = {"chrome": CHROME_CAPS, "firefox": FIREFOX_CAPS, "safari": SAFARI_CAPS, "aiortc": AIORTC_CAPS}


def kind_of(producer: dict) -> str:
    return producer["codecs"][0]["mimeType"].split("/")[0]


def produce(producer: dict) -> tuple[dict, dict]:
    """What the server does on `produce`: validate, map, make the consumable parameters."""
    caps = router_rtp_capabilities()
    params = ortc.validate_rtp_parameters(producer)
    mapping = ortc.get_producer_rtp_mapping(params, caps)
    return mapping, ortc.get_consumable_rtp_parameters(kind_of(producer), params, caps, mapping)


def consume(producer: dict, client_caps: dict) -> dict:
    _mapping, consumable = produce(producer)
    return ortc.get_consumer_rtp_parameters(consumable, client_caps)


def fb(*pairs: str) -> list[dict]:
    """Feedback entries from "type" or "type parameter" strings."""
    return [{"type": p.split(" ")[0], "parameter": (p.split(" ") + [""])[1]} for p in pairs]


def ext_ids(params: dict) -> list[tuple[str, int]]:
    return [(e["uri"], e["id"]) for e in params["headerExtensions"]]


# --- Validation -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("caps", "message"),
    [
        ([], "rtpCapabilities must be an object"),
        ({"codecs": {}}, "rtpCapabilities.codecs must be a list"),
        ({"codecs": ["opus"]}, "rtpCapabilities.codecs[0] must be an object"),
        ({"codecs": [{"mimeType": "opus", "clockRate": 48000}]}, "rtpCapabilities.codecs[0].mimeType"),
        ({"codecs": [{"mimeType": "audio/opus", "clockRate": "48000"}]},
         "rtpCapabilities.codecs[0].clockRate must be an integer"),
        ({"codecs": [{"mimeType": "audio/opus", "clockRate": True}]},
         "rtpCapabilities.codecs[0].clockRate must be an integer"),
        ({"codecs": [{"mimeType": "video/VP8", "clockRate": 90000, "preferredPayloadType": 300}]},
         "rtpCapabilities.codecs[0].preferredPayloadType must be an integer from 0 to 127"),
        ({"codecs": [{"mimeType": "video/rtx", "clockRate": 90000, "parameters": {"apt": "96"}}]},
         "rtpCapabilities.codecs[0].parameters.apt must be an integer"),
        ({"codecs": [{"mimeType": "video/VP8", "clockRate": 90000, "parameters": {"x": [1]}}]},
         "rtpCapabilities.codecs[0].parameters.x must be a string or a number"),
        ({"codecs": [{"mimeType": "video/VP8", "clockRate": 90000, "rtcpFeedback": [{"parameter": "pli"}]}]},
         "rtpCapabilities.codecs[0].rtcpFeedback[0].type must be a string"),
        ({"headerExtensions": [{"kind": "data", "uri": MID, "preferredId": 1}]},
         "rtpCapabilities.headerExtensions[0].kind must be 'audio' or 'video'"),
        ({"headerExtensions": [{"kind": "audio", "uri": MID}]},
         "rtpCapabilities.headerExtensions[0].preferredId must be an integer"),
        ({"headerExtensions": [{"kind": "audio", "uri": MID, "preferredId": 1, "direction": "up"}]},
         "rtpCapabilities.headerExtensions[0].direction must be one of"),
    ],
)
def test_invalid_capabilities(caps, message):
    with pytest.raises(InvalidParametersError, match=message.replace("[", r"\[").replace(".", r"\.")):
        ortc.validate_rtp_capabilities(caps)


def test_capabilities_defaults_are_filled_in():
    caps = ortc.validate_rtp_capabilities(
        {
            "codecs": [
                {"mimeType": "AUDIO/opus", "clockRate": 48000},
                {"mimeType": "video/VP8", "clockRate": 90000, "channels": None,
                 "rtcpFeedback": [{"type": "nack"}], "parameters": {"a": None}},
            ],
            "headerExtensions": [{"kind": "video", "uri": MID, "preferredId": 1}],
        }
    )
    assert caps["codecs"] == [
        {"mimeType": "AUDIO/opus", "kind": "audio", "clockRate": 48000, "channels": 1,
         "parameters": {}, "rtcpFeedback": []},
        {"mimeType": "video/VP8", "kind": "video", "clockRate": 90000,
         "parameters": {"a": ""}, "rtcpFeedback": [{"type": "nack", "parameter": ""}]},
    ]
    assert caps["headerExtensions"] == [
        {"kind": "video", "uri": MID, "preferredId": 1, "preferredEncrypt": False, "direction": "sendrecv"}
    ]
    assert ortc.validate_rtp_capabilities({}) == {"codecs": [], "headerExtensions": []}


def test_client_capabilities_validate_unchanged_and_unmutated():
    for caps in ALL_CLIENTS.values():
        before = copy.deepcopy(caps)
        normalized = ortc.validate_rtp_capabilities(caps)
        assert caps == before
        assert normalized["codecs"] == caps["codecs"]
        assert normalized["headerExtensions"] == caps["headerExtensions"]


def webcam_with(**changes) -> dict:
    params = copy.deepcopy(CHROME_WEBCAM_PRODUCER)
    params.update(changes)
    return params


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ("x", "rtpParameters must be an object"),
        (webcam_with(mid=0), "rtpParameters.mid must be a string"),
        (webcam_with(codecs=None), "rtpParameters.codecs must be a list"),
        (webcam_with(codecs=[]), "rtpParameters.codecs must not be empty"),
        (webcam_with(encodings=[]), "rtpParameters.encodings must not be empty"),
        (webcam_with(encodings=[{"ssrc": "1234"}]), "rtpParameters.encodings[0].ssrc must be an integer"),
        (webcam_with(encodings=[{"ssrc": 1}, {"ssrc": 2**32}]),
         "rtpParameters.encodings[1].ssrc must be an integer from 0 to 4294967295"),
        (webcam_with(encodings=[{"ssrc": 1, "rtx": {}}]),
         "rtpParameters.encodings[0].rtx.ssrc must be an integer"),
        (webcam_with(encodings=[{"rid": 0}]), "rtpParameters.encodings[0].rid must be a string"),
        (webcam_with(encodings=[{"rid": "r0", "dtx": "yes"}]),
         "rtpParameters.encodings[0].dtx must be a boolean"),
        (webcam_with(encodings=[{"rid": "r0", "maxBitrate": "1M"}]),
         "rtpParameters.encodings[0].maxBitrate must be a non-negative number"),
        (webcam_with(codecs=[{"mimeType": "video/VP8", "clockRate": 90000}]),
         "rtpParameters.codecs[0].payloadType must be an integer"),
        (webcam_with(headerExtensions=[{"uri": MID, "id": "1"}]),
         "rtpParameters.headerExtensions[0].id must be an integer"),
        (webcam_with(headerExtensions=[{"uri": MID, "id": 1, "encrypt": 1}]),
         "rtpParameters.headerExtensions[0].encrypt must be a boolean"),
        (webcam_with(rtcp={"cname": 5}), "rtpParameters.rtcp.cname must be a string"),
        (webcam_with(rtcp=[]), "rtpParameters.rtcp must be an object"),
    ],
)
def test_invalid_rtp_parameters(params, message):
    with pytest.raises(InvalidParametersError) as error:
        ortc.validate_rtp_parameters(params)
    assert str(error.value).startswith(message)


def test_rtp_parameters_defaults_are_filled_in():
    params = ortc.validate_rtp_parameters(
        {"codecs": [{"mimeType": "audio/opus", "payloadType": 111, "clockRate": 48000}],
         "encodings": [{"ssrc": 5, "rid": None}]}
    )
    assert params == {
        "codecs": [{"mimeType": "audio/opus", "payloadType": 111, "clockRate": 48000, "channels": 1,
                    "parameters": {}, "rtcpFeedback": []}],
        "headerExtensions": [],
        "encodings": [{"ssrc": 5, "dtx": False}],
        "rtcp": {"reducedSize": True},
    }


# --- Producers ------------------------------------------------------------------


def test_mapping_of_chrome_webcam_simulcast_by_rid():
    mapping, _consumable = produce(CHROME_WEBCAM_PRODUCER)
    assert mapping["codecs"] == [
        {"payloadType": 96, "mappedPayloadType": 101},
        {"payloadType": 97, "mappedPayloadType": 102},
    ]
    encodings = mapping["encodings"]
    assert [{k: v for k, v in e.items() if k != "mappedSsrc"} for e in encodings] == [
        {"rid": "r0", "scalabilityMode": "L1T3"},
        {"rid": "r1", "scalabilityMode": "L1T3"},
    ]
    ssrcs = [e["mappedSsrc"] for e in encodings]
    assert len(set(ssrcs)) == 2 and all(0 < s <= 0xFFFFFFFF for s in ssrcs)


def test_mapping_of_simulcast_by_ssrc_and_of_h264_main():
    mapping, _ = produce(CHROME_SIMULCAST_SSRC_PRODUCER)
    assert [e["ssrc"] for e in mapping["encodings"]] == [3162416325, 3162416326, 3162416327]
    assert all(set(e) == {"ssrc", "mappedSsrc"} for e in mapping["encodings"])
    mapping, _ = produce(CHROME_H264_MAIN_PRODUCER)  # 4d001f: Main like the router's 4d0032
    assert mapping["codecs"] == [
        {"payloadType": 127, "mappedPayloadType": 105},
        {"payloadType": 125, "mappedPayloadType": 106},
    ]


def test_mapping_of_audio_and_aiortc():
    assert produce(CHROME_MIC_PRODUCER)[0]["codecs"] == [{"payloadType": 111, "mappedPayloadType": 100}]
    assert produce(AIORTC_AUDIO_PRODUCER)[0]["codecs"] == [{"payloadType": 96, "mappedPayloadType": 100}]
    mapping, _ = produce(AIORTC_VIDEO_PRODUCER)
    assert mapping["codecs"] == [
        {"payloadType": 97, "mappedPayloadType": 101},
        {"payloadType": 98, "mappedPayloadType": 102},
    ]
    assert mapping["encodings"][0]["ssrc"] == AIORTC_VIDEO_PRODUCER["encodings"][0]["ssrc"]


def h264_producer(**parameters) -> dict:
    params = copy.deepcopy(CHROME_H264_MAIN_PRODUCER)
    params["codecs"][0]["parameters"].update(parameters)
    return params


@pytest.mark.parametrize(
    "params",
    [
        h264_producer(**{"profile-level-id": "640c1f"}),  # Safari's constrained high
        h264_producer(**{"profile-level-id": "42001f"}),  # baseline, not constrained baseline
        h264_producer(**{"packetization-mode": 0}),
        h264_producer(**{"profile-level-id": "4d00ff"}),  # no such level
        webcam_with(codecs=[{"mimeType": "video/AV1", "payloadType": 45, "clockRate": 90000}]),
        webcam_with(codecs=[{"mimeType": "video/VP9", "payloadType": 98, "clockRate": 90000,
                             "parameters": {"profile-id": 0}}]),
        webcam_with(codecs=[{"mimeType": "audio/opus", "payloadType": 111, "clockRate": 48000,
                             "channels": 1}]),
        webcam_with(codecs=[{"mimeType": "video/rtx", "payloadType": 97, "clockRate": 90000,
                             "parameters": {"apt": 96}}]),
    ],
)
def test_producer_codec_the_router_lacks(params):
    with pytest.raises(UnsupportedError):
        ortc.get_producer_rtp_mapping(ortc.validate_rtp_parameters(params), router_rtp_capabilities())


def test_producer_rtx_without_its_media_codec():
    params = webcam_with()
    params["codecs"][1]["parameters"]["apt"] = 99
    with pytest.raises(InvalidParametersError, match="payloadType 97"):
        ortc.get_producer_rtp_mapping(ortc.validate_rtp_parameters(params), router_rtp_capabilities())


def test_mime_type_and_numeric_parameters_match_loosely():
    params = h264_producer(**{"packetization-mode": "1"})
    params["codecs"][0]["mimeType"] = "video/h264"
    assert produce(params)[0]["codecs"][0] == {"payloadType": 127, "mappedPayloadType": 105}


def test_consumable_video():
    mapping, consumable = produce(CHROME_WEBCAM_PRODUCER)
    router_codecs = router_rtp_capabilities()["codecs"]
    assert consumable["codecs"] == [
        {"mimeType": "video/VP8", "payloadType": 101, "clockRate": 90000, "parameters": {},
         "rtcpFeedback": router_codecs[1]["rtcpFeedback"]},
        {"mimeType": "video/rtx", "payloadType": 102, "clockRate": 90000, "parameters": {"apt": 101},
         "rtcpFeedback": []},
    ]
    assert [e["id"] for e in consumable["headerExtensions"]] == [1, 4, 5, 6, 7, 11, 12, 13, 14]
    assert consumable["encodings"] == [
        {"scaleResolutionDownBy": 4, "maxBitrate": 300000, "scalabilityMode": "L1T3", "dtx": False,
         "ssrc": mapping["encodings"][0]["mappedSsrc"]},
        {"scaleResolutionDownBy": 2, "maxBitrate": 800000, "scalabilityMode": "L1T3", "dtx": False,
         "ssrc": mapping["encodings"][1]["mappedSsrc"]},
    ]
    assert consumable["rtcp"] == {"cname": "a7pVzFSfc1xgMw8P", "reducedSize": True}


def test_consumable_audio_and_h264_keep_producer_parameters():
    _, audio = produce(CHROME_MIC_PRODUCER)
    assert audio["codecs"] == [
        {"mimeType": "audio/opus", "payloadType": 100, "clockRate": 48000, "channels": 2,
         "parameters": {"minptime": 10, "useinbandfec": 1}, "rtcpFeedback": fb("nack", "transport-cc")}
    ]
    assert [e["id"] for e in audio["headerExtensions"]] == [1, 4, 10, 13, 14]  # no audio transport-cc
    _, h264 = produce(CHROME_H264_MAIN_PRODUCER)
    assert h264["codecs"][0]["parameters"]["profile-level-id"] == "4d001f"
    assert [c["payloadType"] for c in h264["codecs"]] == [105, 106]


def test_producing_does_not_change_its_input():
    before = copy.deepcopy(CHROME_WEBCAM_PRODUCER)
    consume(CHROME_WEBCAM_PRODUCER, CHROME_CAPS)
    assert CHROME_WEBCAM_PRODUCER == before


# --- Consumers ------------------------------------------------------------------

BROWSER_VIDEO_EXTENSIONS = [(MID, 1), (ABS_SEND_TIME, 4), (TWCC, 5), (TOFFSET, 12), (PLAYOUT_DELAY, 14)]


@pytest.mark.parametrize(
    ("client", "extensions", "feedback"),
    [
        ("chrome", BROWSER_VIDEO_EXTENSIONS, fb("nack", "nack pli", "ccm fir", "transport-cc")),
        ("firefox", BROWSER_VIDEO_EXTENSIONS, fb("nack", "nack pli", "ccm fir", "transport-cc")),
        ("safari", BROWSER_VIDEO_EXTENSIONS, fb("nack", "nack pli", "ccm fir", "transport-cc")),
        ("aiortc", [(MID, 1), (ABS_SEND_TIME, 4)], fb("nack", "nack pli", "goog-remb")),
    ],
)
def test_webcam_consumer_per_client(client, extensions, feedback):
    mapping, consumable = produce(CHROME_WEBCAM_PRODUCER)
    params = ortc.get_consumer_rtp_parameters(consumable, ALL_CLIENTS[client])
    codecs = [(c["mimeType"], c["payloadType"]) for c in params["codecs"]]
    assert codecs == [("video/VP8", 101), ("video/rtx", 102)]
    assert params["codecs"][0]["rtcpFeedback"] == feedback
    assert params["codecs"][1]["parameters"] == {"apt": 101}
    assert ext_ids(params) == extensions
    [encoding] = params["encodings"]
    assert set(encoding) == {"ssrc", "rtx", "scalabilityMode", "maxBitrate"}
    assert encoding["scalabilityMode"] == "L2T3"
    assert encoding["maxBitrate"] == 800000
    producer_side = {e["mappedSsrc"] for e in mapping["encodings"]}
    assert encoding["ssrc"] not in producer_side
    assert encoding["rtx"]["ssrc"] not in producer_side | {encoding["ssrc"]}
    assert params["rtcp"] == {"cname": "a7pVzFSfc1xgMw8P", "reducedSize": True, "mux": True}
    assert "mid" not in params
    assert ortc.consumer_type(consumable) == "simulcast"


@pytest.mark.parametrize(
    ("client", "extensions"),
    [
        ("chrome", [(MID, 1), (ABS_SEND_TIME, 4), (AUDIO_LEVEL, 10)]),
        ("firefox", [(MID, 1), (AUDIO_LEVEL, 10)]),
        ("safari", [(MID, 1), (ABS_SEND_TIME, 4), (AUDIO_LEVEL, 10)]),
        ("aiortc", [(MID, 1), (AUDIO_LEVEL, 10)]),
    ],
)
def test_microphone_consumer_per_client(client, extensions):
    _, consumable = produce(CHROME_MIC_PRODUCER)
    params = ortc.get_consumer_rtp_parameters(consumable, ALL_CLIENTS[client])
    [codec] = params["codecs"]
    assert (codec["mimeType"], codec["payloadType"], codec["channels"]) == ("audio/opus", 100, 2)
    assert codec["parameters"] == {"minptime": 10, "useinbandfec": 1}
    assert codec["rtcpFeedback"] == []  # no client takes audio nack; no audio transport-cc extension
    assert ext_ids(params) == extensions
    [encoding] = params["encodings"]
    assert set(encoding) == {"ssrc"}
    assert encoding["ssrc"] != consumable["encodings"][0]["ssrc"]
    assert ortc.consumer_type(consumable) == "simple"


def test_aiortc_producer_to_a_browser():
    _, consumable = produce(AIORTC_VIDEO_PRODUCER)
    params = ortc.get_consumer_rtp_parameters(consumable, CHROME_CAPS)
    assert [c["payloadType"] for c in params["codecs"]] == [101, 102]
    [encoding] = params["encodings"]
    producer_ssrcs = (AIORTC_VIDEO_PRODUCER["encodings"][0]["ssrc"], consumable["encodings"][0]["ssrc"])
    assert encoding["ssrc"] not in producer_ssrcs
    assert "rtx" in encoding and "scalabilityMode" not in encoding
    assert params["rtcp"]["cname"] == AIORTC_VIDEO_PRODUCER["rtcp"]["cname"]


@pytest.mark.parametrize(
    ("producer", "consumers", "non_consumers"),
    [
        (CHROME_VP9_SVC_PRODUCER, ["chrome"], ["firefox", "safari", "aiortc"]),
        (CHROME_H264_MAIN_PRODUCER, ["chrome"], ["firefox", "safari", "aiortc"]),
        (CHROME_WEBCAM_PRODUCER, ["chrome", "firefox", "safari", "aiortc"], []),
        (AIORTC_AUDIO_PRODUCER, ["chrome", "firefox", "safari", "aiortc"], []),
    ],
)
def test_can_consume(producer, consumers, non_consumers):
    _, consumable = produce(producer)
    for client in consumers:
        assert ortc.can_consume(consumable, ALL_CLIENTS[client]), client
    for client in non_consumers:
        assert not ortc.can_consume(consumable, ALL_CLIENTS[client]), client
        with pytest.raises(UnsupportedError):
            ortc.get_consumer_rtp_parameters(consumable, ALL_CLIENTS[client])


def test_can_consume_validates_capabilities():
    _, consumable = produce(CHROME_WEBCAM_PRODUCER)
    with pytest.raises(InvalidParametersError):
        ortc.can_consume(consumable, {"codecs": "VP8"})


def test_svc_consumer():
    _, consumable = produce(CHROME_VP9_SVC_PRODUCER)
    params = ortc.get_consumer_rtp_parameters(consumable, CHROME_CAPS)
    assert [c["payloadType"] for c in params["codecs"]] == [103, 104]
    assert params["codecs"][0]["parameters"] == {"profile-id": 2}
    assert params["encodings"][0]["scalabilityMode"] == "L3T3_KEY"
    assert ortc.consumer_type(consumable) == "svc"


def test_h264_consumer_keeps_producer_level():
    _, consumable = produce(CHROME_H264_MAIN_PRODUCER)
    params = ortc.get_consumer_rtp_parameters(consumable, CHROME_CAPS)
    assert [c["payloadType"] for c in params["codecs"]] == [105, 106]
    assert params["codecs"][0]["parameters"]["profile-level-id"] == "4d001f"


@pytest.mark.parametrize(
    ("producer", "mode"),
    [(CHROME_SIMULCAST_RID_PRODUCER, "L3T3"), (CHROME_SIMULCAST_SSRC_PRODUCER, "L3T1")],
)
def test_simulcast_becomes_spatial_layers(producer, mode):
    _, consumable = produce(producer)
    [encoding] = ortc.get_consumer_rtp_parameters(consumable, CHROME_CAPS)["encodings"]
    assert encoding["scalabilityMode"] == mode
    assert ortc.consumer_type(consumable) == "simulcast"


def test_client_without_rtx_gets_no_rtx():
    caps = copy.deepcopy(CHROME_CAPS)
    caps["codecs"] = [c for c in caps["codecs"] if c["mimeType"] != "video/rtx"]
    _, consumable = produce(CHROME_WEBCAM_PRODUCER)
    params = ortc.get_consumer_rtp_parameters(consumable, caps)
    assert [c["mimeType"] for c in params["codecs"]] == ["video/VP8"]
    assert "rtx" not in params["encodings"][0]


def test_consumer_uses_the_clients_ids_and_payload_types():
    caps = copy.deepcopy(CHROME_CAPS)
    for codec in caps["codecs"]:
        if codec["mimeType"] == "video/VP8":
            codec["preferredPayloadType"] = 96
        if codec["parameters"].get("apt") == 101:
            codec.update(preferredPayloadType=97, parameters={"apt": 96})
    for ext in caps["headerExtensions"]:
        if ext["uri"] == ABS_SEND_TIME:
            ext["preferredId"] = 9
        if ext["uri"] == TOFFSET:
            ext["direction"] = "sendonly"  # the client cannot receive it
    _, consumable = produce(CHROME_WEBCAM_PRODUCER)
    params = ortc.get_consumer_rtp_parameters(consumable, caps)
    assert [(c["payloadType"], c["parameters"]) for c in params["codecs"]] == [(96, {}), (97, {"apt": 96})]
    assert ext_ids(params) == [(MID, 1), (ABS_SEND_TIME, 9), (TWCC, 5), (PLAYOUT_DELAY, 14)]


def test_feedback_without_congestion_control_extensions():
    caps = copy.deepcopy(CHROME_CAPS)
    caps["headerExtensions"] = [
        e for e in caps["headerExtensions"] if e["uri"] not in (TWCC, ABS_SEND_TIME)
    ]
    _, consumable = produce(CHROME_WEBCAM_PRODUCER)
    params = ortc.get_consumer_rtp_parameters(consumable, caps)
    assert params["codecs"][0]["rtcpFeedback"] == fb("nack", "nack pli", "ccm fir")


def test_pipe_consumer_keeps_encodings_and_ssrcs():
    _, consumable = produce(CHROME_WEBCAM_PRODUCER)
    params = ortc.get_consumer_rtp_parameters(consumable, router_rtp_capabilities(), pipe=True)
    assert params["encodings"] == consumable["encodings"]
    assert params["encodings"] is not consumable["encodings"]
    assert [c["payloadType"] for c in params["codecs"]] == [101, 102]


def test_consumer_type():
    assert ortc.consumer_type({"encodings": [{"ssrc": 1}]}) == "simple"
    assert ortc.consumer_type({"encodings": [{"ssrc": 1, "scalabilityMode": "L1T3"}]}) == "simple"
    assert ortc.consumer_type({"encodings": [{"ssrc": 1, "scalabilityMode": "L2T3"}]}) == "svc"
    assert ortc.consumer_type({"encodings": [{"ssrc": 1}, {"ssrc": 2}]}) == "simulcast"


def test_consumer_extension_map_only_when_ids_that_reach_consumers_differ() -> None:
    router = router_rtp_capabilities()
    video = [e for e in router["headerExtensions"] if e["kind"] == "video"]
    same = [{"uri": e["uri"], "id": e["preferredId"]} for e in video
            if not e["uri"].startswith("urn:ietf:params:rtp-hdrext:sdes:r")]
    assert len(same) < len(video), "the router's RID extensions are not offered to consumers"
    assert ortc.consumer_extension_map("video", {"headerExtensions": same}, router) is None
    fewer = [e for e in same if "abs-send-time" not in e["uri"]]
    table = ortc.consumer_extension_map("video", {"headerExtensions": fewer}, router)
    assert table is not None and table[4] == 0 and table[1] == 1


def test_capabilities_validated_once_are_not_checked_again() -> None:
    caps = ortc.validate_rtp_capabilities(router_rtp_capabilities())
    assert ortc.validate_rtp_capabilities(caps) is caps
    with pytest.raises(InvalidParametersError, match="codecs"):
        ortc.validate_rtp_capabilities(dict(caps, codecs="VP8"))


def test_the_same_capabilities_are_validated_once_and_shared():
    first = ortc.validate_rtp_capabilities(copy.deepcopy(ALL_CLIENTS["chrome"]))
    again = ortc.validate_rtp_capabilities(copy.deepcopy(ALL_CLIENTS["chrome"]))
    assert again is first
    other = ortc.validate_rtp_capabilities(copy.deepcopy(ALL_CLIENTS["firefox"]))
    assert other is not first and other["codecs"] != first["codecs"]


def test_capabilities_that_differ_in_one_value_are_validated_on_their_own():
    caps = copy.deepcopy(ALL_CLIENTS["chrome"])
    first = ortc.validate_rtp_capabilities(caps)
    caps["codecs"][0]["clockRate"] = "48000"
    with pytest.raises(InvalidParametersError, match=r"rtpCapabilities\.codecs\[0\]\.clockRate"):
        ortc.validate_rtp_capabilities(caps)
    with pytest.raises(InvalidParametersError):
        ortc.validate_rtp_capabilities(caps)
    assert ortc.validate_rtp_capabilities(copy.deepcopy(ALL_CLIENTS["chrome"])) is first


def test_the_validated_capabilities_kept_are_bounded():
    def caps(n: int) -> dict:
        return {"codecs": [{"mimeType": "audio/opus", "clockRate": 48000, "preferredPayloadType": 100,
                            "parameters": {"n": n}}]}

    kept = [ortc.validate_rtp_capabilities(caps(n)) for n in range(ortc.MAX_CACHED_CAPABILITIES + 10)]
    assert ortc.validate_rtp_capabilities(caps(0)) is not kept[0]
    assert ortc.validate_rtp_capabilities(caps(ortc.MAX_CACHED_CAPABILITIES + 9)) is kept[-1]
    long_uri = {"headerExtensions": [{"kind": "audio", "uri": "x" * ortc.MAX_CACHED_CAPABILITIES_BYTES,
                                      "preferredId": 1}]}
    assert ortc.validate_rtp_capabilities(long_uri) is not ortc.validate_rtp_capabilities(long_uri)
