"""RTP capability negotiation: which codecs, header extensions and streams flow where.

Pure functions over the JSON dicts mediasoup-client exchanges with the server:

* a client's *RTP capabilities* (`{codecs, headerExtensions}`, codecs carry a
  `preferredPayloadType`), and a producer's *RTP parameters* (`{mid, codecs,
  headerExtensions, encodings, rtcp}`, codecs carry a `payloadType`);
* a producer's *mapping* from its payload types and streams to the router's;
* the *consumable* parameters: what the producer sends, in the router's terms;
* a consumer's parameters: the consumable ones cut down to what one client supports.

Malformed input raises `InvalidParametersError` naming the field; media that
cannot be handled raises `UnsupportedError`. The functions after the two
`validate_*` ones expect input those have validated, and never change it.
"""

import copy
import re
import secrets
from collections.abc import Callable, Iterable
from typing import Any

import msgspec

from kolabmeet.media.capabilities import (
    ABS_SEND_TIME,
    REPAIRED_RTP_STREAM_ID,
    RTP_STREAM_ID,
    TRANSPORT_WIDE_CC,
)
from kolabmeet.media.errors import MediaError, UnsupportedError


class InvalidParametersError(MediaError):
    """Capabilities or RTP parameters have a missing or malformed field."""


KINDS = ("audio", "video")
DIRECTIONS = ("sendrecv", "sendonly", "recvonly", "inactive")

_MIME_TYPE = re.compile(r"^(audio|video)/(.+)$", re.IGNORECASE)
_SCALABILITY_MODE = re.compile(r"^[LS]([1-9]\d?)T([1-9]\d?)")
_MAX_SSRC = 0xFFFFFFFF
MAX_ITEMS = 64


# --- Field checks -------------------------------------------------------------
# Each takes the value and its path (like "rtpParameters.codecs[0].clockRate")
# and returns the value or raises InvalidParametersError naming the path.


def _object(value: Any, path: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise InvalidParametersError(f"{path} must be an object")
    return value


def _list(value: Any, path: str) -> list[Any]:
    if not isinstance(value, list):
        raise InvalidParametersError(f"{path} must be a list")
    return value


def _string(value: Any, path: str) -> str:
    if not isinstance(value, str):
        raise InvalidParametersError(f"{path} must be a string")
    return value


def _boolean(value: Any, path: str) -> bool:
    if not isinstance(value, bool):
        raise InvalidParametersError(f"{path} must be a boolean")
    return value


def _integer(value: Any, path: str, low: int = 0, high: int | None = None) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise InvalidParametersError(f"{path} must be an integer")
    if value < low or (high is not None and value > high):
        upper = "" if high is None else f" to {high}"
        raise InvalidParametersError(f"{path} must be an integer from {low}{upper}")
    return value


def _number(value: Any, path: str) -> int | float:
    if not isinstance(value, (int, float)) or isinstance(value, bool) or value < 0:
        raise InvalidParametersError(f"{path} must be a non-negative number")
    return value


def _payload_type(value: Any, path: str) -> int:
    return _integer(value, path, 0, 127)


def _ssrc(value: Any, path: str) -> int:
    return _integer(value, path, 0, _MAX_SSRC)


def _extension_id(value: Any, path: str) -> int:
    return _integer(value, path, 1, 255)


def _items(value: Any, path: str, check: Callable[[Any, str], Any]) -> list[Any]:
    """Checks each item of a list that may be absent (then empty), of at most MAX_ITEMS."""
    if value is None:
        return []
    items = _list(value, path)
    if len(items) > MAX_ITEMS:
        raise InvalidParametersError(f"{path} has more than {MAX_ITEMS} items")
    return [check(item, f"{path}[{i}]") for i, item in enumerate(items)]


def _required_items(value: Any, path: str, check: Callable[[Any, str], Any]) -> list[Any]:
    """Checks each item of a list that must have at least one."""
    if not _list(value, path):
        raise InvalidParametersError(f"{path} must not be empty")
    return _items(value, path, check)


def _set_optional(
    target: dict[str, Any], key: str, path: str, check: Callable[[Any, str], Any]
) -> None:
    """Checks target[key] if it is set; drops it when it is None."""
    if target.get(key) is None:
        target.pop(key, None)
    else:
        target[key] = check(target[key], f"{path}.{key}")


# --- Validation of capabilities and parameters ------------------------------


def _parameters(value: Any, path: str) -> dict[str, Any]:
    """Codec or header extension parameters: strings or numbers (None becomes "")."""
    if value is None:
        return {}
    parameters = dict(_object(value, path))
    for key, item in parameters.items():
        if item is None:
            parameters[key] = ""
        elif isinstance(item, bool) or not isinstance(item, (str, int, float)):
            raise InvalidParametersError(f"{path}.{key} must be a string or a number")
    if "apt" in parameters:
        _payload_type(parameters["apt"], f"{path}.apt")
    return parameters


def _feedback(value: Any, path: str) -> dict[str, str]:
    feedback = _object(value, path)
    parameter = feedback.get("parameter")
    return {
        "type": _string(feedback.get("type"), f"{path}.type"),
        "parameter": "" if parameter is None else _string(parameter, f"{path}.parameter"),
    }


def _codec(value: Any, path: str) -> tuple[dict[str, Any], str]:
    """The fields codec capabilities and codec parameters share; returns it and its kind."""
    codec = dict(_object(value, path))
    mime_type = codec.get("mimeType")
    match = _MIME_TYPE.match(mime_type) if isinstance(mime_type, str) else None
    if match is None:
        raise InvalidParametersError(f"{path}.mimeType must be a string like 'video/VP8'")
    kind = match.group(1).lower()
    codec["clockRate"] = _integer(codec.get("clockRate"), f"{path}.clockRate", 1)
    if kind == "audio":
        codec["channels"] = _integer(codec.get("channels", 1), f"{path}.channels", 1)
    else:
        codec.pop("channels", None)
    codec["parameters"] = _parameters(codec.get("parameters"), f"{path}.parameters")
    codec["rtcpFeedback"] = _items(codec.get("rtcpFeedback"), f"{path}.rtcpFeedback", _feedback)
    return codec, kind


def _codec_capability(value: Any, path: str) -> dict[str, Any]:
    codec, kind = _codec(value, path)
    codec["kind"] = kind
    _set_optional(codec, "preferredPayloadType", path, _payload_type)
    return codec


def _header_extension_capability(value: Any, path: str) -> dict[str, Any]:
    extension = dict(_object(value, path))
    if extension.get("kind") not in KINDS:
        raise InvalidParametersError(f"{path}.kind must be 'audio' or 'video'")
    extension["uri"] = _string(extension.get("uri"), f"{path}.uri")
    extension["preferredId"] = _extension_id(extension.get("preferredId"), f"{path}.preferredId")
    extension["preferredEncrypt"] = _boolean(
        extension.get("preferredEncrypt", False), f"{path}.preferredEncrypt"
    )
    if extension.setdefault("direction", "sendrecv") not in DIRECTIONS:
        raise InvalidParametersError(f"{path}.direction must be one of {', '.join(DIRECTIONS)}")
    return extension


class ValidCapabilities(dict):  # type: ignore[type-arg]
    """RTP capabilities `validate_rtp_capabilities` made: checked once, not again at each consume.
    Shared by every peer that sent the same capabilities: never changed after it is made."""


MAX_CACHED_CAPABILITIES = 64
"""Distinct capabilities kept validated (one per browser build and device, in practice)."""
MAX_CACHED_CAPABILITIES_BYTES = 16 * 1024
"""Capabilities longer than this as JSON (browsers' are 3-6 KiB) are validated each time, not kept."""
_validated: dict[bytes, ValidCapabilities] = {}
_encode_json = msgspec.json.Encoder().encode


def validate_rtp_capabilities(caps: Any) -> dict[str, Any]:
    """Checks a client's RTP capabilities; returns a normalized copy (or them, when they are one).

    Absent lists become empty; defaults are filled in: a codec's `kind` from its
    mimeType, audio `channels` 1, empty `parameters` and `rtcpFeedback`, feedback
    `parameter` "", extension `preferredEncrypt` false and `direction` "sendrecv".
    Every browser of one build sends the same capabilities: the copy made for them
    is kept, keyed by their JSON, and given to the next peer that sends them.
    """
    if isinstance(caps, ValidCapabilities):
        return caps
    try:
        key = _encode_json(caps)
    except (TypeError, ValueError):
        return _validated_copy(caps)
    valid = _validated.get(key)
    if valid is None:
        valid = _validated_copy(caps)
        if len(key) <= MAX_CACHED_CAPABILITIES_BYTES:
            if len(_validated) >= MAX_CACHED_CAPABILITIES:
                del _validated[next(iter(_validated))]
            _validated[key] = valid
    return valid


def _validated_copy(caps: Any) -> ValidCapabilities:
    caps = _object(caps, "rtpCapabilities")
    return ValidCapabilities(
        codecs=_items(caps.get("codecs"), "rtpCapabilities.codecs", _codec_capability),
        headerExtensions=_items(
            caps.get("headerExtensions"),
            "rtpCapabilities.headerExtensions",
            _header_extension_capability,
        ),
    )


def _codec_parameters(value: Any, path: str) -> dict[str, Any]:
    codec, _kind = _codec(value, path)
    codec["payloadType"] = _payload_type(codec.get("payloadType"), f"{path}.payloadType")
    return codec


def _header_extension_parameters(value: Any, path: str) -> dict[str, Any]:
    extension = dict(_object(value, path))
    extension["uri"] = _string(extension.get("uri"), f"{path}.uri")
    extension["id"] = _extension_id(extension.get("id"), f"{path}.id")
    extension["encrypt"] = _boolean(extension.get("encrypt", False), f"{path}.encrypt")
    extension["parameters"] = _parameters(extension.get("parameters"), f"{path}.parameters")
    return extension


def _rtx_stream(value: Any, path: str) -> dict[str, int]:
    return {"ssrc": _ssrc(_object(value, path).get("ssrc"), f"{path}.ssrc")}


def _encoding(value: Any, path: str) -> dict[str, Any]:
    encoding = dict(_object(value, path))
    _set_optional(encoding, "ssrc", path, _ssrc)
    _set_optional(encoding, "rid", path, _string)
    _set_optional(encoding, "rtx", path, _rtx_stream)
    _set_optional(encoding, "codecPayloadType", path, _payload_type)
    _set_optional(encoding, "scalabilityMode", path, _string)
    _set_optional(encoding, "maxBitrate", path, _number)
    encoding["dtx"] = _boolean(encoding.get("dtx", False), f"{path}.dtx")
    return encoding


def _rtcp(value: Any, path: str) -> dict[str, Any]:
    rtcp = dict(_object(value, path))
    _set_optional(rtcp, "cname", path, _string)
    rtcp["reducedSize"] = _boolean(rtcp.get("reducedSize", True), f"{path}.reducedSize")
    return rtcp


def validate_rtp_parameters(params: Any) -> dict[str, Any]:
    """Checks a producer's RTP parameters; returns a normalized copy.

    `codecs` and `encodings` must be non-empty lists; `mid` is an optional string.
    Defaults filled in: audio `channels` 1, empty `parameters` and `rtcpFeedback`,
    extension `encrypt` false, encoding `dtx` false, `rtcp.reducedSize` true.
    """
    params = dict(_object(params, "rtpParameters"))
    _set_optional(params, "mid", "rtpParameters", _string)
    params["codecs"] = _required_items(
        params.get("codecs"), "rtpParameters.codecs", _codec_parameters
    )
    params["headerExtensions"] = _items(
        params.get("headerExtensions"),
        "rtpParameters.headerExtensions",
        _header_extension_parameters,
    )
    params["encodings"] = _required_items(
        params.get("encodings"), "rtpParameters.encodings", _encoding
    )
    rtcp = params.get("rtcp")
    params["rtcp"] = _rtcp({} if rtcp is None else rtcp, "rtpParameters.rtcp")
    return params


# --- Codec matching -----------------------------------------------------------

# H264 profiles by profile_idc and a bit pattern of profile-iop ("x": any bit),
# as RFC 6184 and WebRTC read the first two bytes of profile-level-id.
_H264_PROFILES: list[tuple[int, str, str]] = [
    (0x42, "x1xx0000", "constrained-baseline"),
    (0x4D, "1xxx0000", "constrained-baseline"),
    (0x58, "11xx0000", "constrained-baseline"),
    (0x42, "x0xx0000", "baseline"),
    (0x58, "10xx0000", "baseline"),
    (0x4D, "0x0x0000", "main"),
    (0x64, "00000000", "high"),
    (0x64, "00001100", "constrained-high"),
    (0xF4, "00000000", "predictive-high-444"),
]
# level_idc values: 1, 1.1 (or 1b), 1.2, 1.3, 2, ..., 6.2.
_H264_LEVELS = {10, 11, 12, 13, 20, 21, 22, 30, 31, 32, 40, 41, 42, 50, 51, 52, 60, 61, 62}
_H264_DEFAULT_PROFILE_LEVEL_ID = "42e01f"


def _bits_match(value: int, pattern: str) -> bool:
    return all(bit == "x" or int(bit) == (value >> (7 - i)) & 1 for i, bit in enumerate(pattern))


def _h264_profile(parameters: dict[str, Any]) -> str | None:
    """The H264 profile named by `profile-level-id`, or None if it is invalid."""
    text = str(parameters.get("profile-level-id", _H264_DEFAULT_PROFILE_LEVEL_ID))
    if not re.fullmatch(r"[0-9a-fA-F]{6}", text):
        return None
    profile_idc, profile_iop, level_idc = (int(text[i : i + 2], 16) for i in (0, 2, 4))
    if level_idc not in _H264_LEVELS:
        return None
    for idc, pattern, profile in _H264_PROFILES:
        if idc == profile_idc and _bits_match(profile_iop, pattern):
            return profile
    return None


def _same_parameter(a: dict[str, Any], b: dict[str, Any], key: str) -> bool:
    """Compares a numeric codec parameter that defaults to 0 ("1" equals 1)."""
    return str(a.get(key, 0)) == str(b.get(key, 0))


def _codecs_match(a: dict[str, Any], b: dict[str, Any]) -> bool:
    """Whether two codecs are the same media format, as mediasoup's strict matching.

    mimeType (any case), clock rate and channels must be equal; H264 also needs
    the same packetization-mode and profile (the level may differ); VP9 the
    same profile-id.
    """
    mime_type = a["mimeType"].lower()
    if mime_type != b["mimeType"].lower() or a["clockRate"] != b["clockRate"]:
        return False
    if a.get("channels") != b.get("channels"):
        return False
    if mime_type == "video/h264":
        profile = _h264_profile(a["parameters"])
        return (
            _same_parameter(a["parameters"], b["parameters"], "packetization-mode")
            and profile is not None
            and profile == _h264_profile(b["parameters"])
        )
    if mime_type == "video/vp9":
        return _same_parameter(a["parameters"], b["parameters"], "profile-id")
    return True


def _is_rtx(codec: dict[str, Any]) -> bool:
    """Whether the codec is a retransmission (RTX) stream of another codec."""
    return codec["mimeType"].lower().endswith("/rtx")


def _rtx_for(codecs: Iterable[dict[str, Any]], payload_type: int) -> dict[str, Any] | None:
    """The RTX codec among `codecs` that repairs the codec of payload_type."""
    repairs = (c for c in codecs if _is_rtx(c) and c["parameters"].get("apt") == payload_type)
    return next(repairs, None)


# --- Producers ------------------------------------------------------------------


def _random_ssrcs(count: int, avoid: Iterable[int] = ()) -> list[int]:
    """`count` distinct random non-zero 32-bit SSRCs, none of them in `avoid`."""
    taken = set(avoid)
    ssrcs: list[int] = []
    while len(ssrcs) < count:
        ssrc = secrets.randbelow(_MAX_SSRC) + 1
        if ssrc not in taken:
            taken.add(ssrc)
            ssrcs.append(ssrc)
    return ssrcs


def _router_media_codec(codec: dict[str, Any], router_caps: dict[str, Any]) -> dict[str, Any]:
    """The router's codec for the producer's media `codec`."""
    found = next((c for c in router_caps["codecs"] if _codecs_match(codec, c)), None)
    if found is None:
        raise UnsupportedError(
            f"unsupported codec {codec['mimeType']} (payloadType {codec['payloadType']})"
        )
    return found


def _router_rtx_codec(
    codec: dict[str, Any], by_payload_type: dict[int, dict[str, Any]], router_caps: dict[str, Any]
) -> dict[str, Any]:
    """The router's RTX codec for the producer's RTX `codec`."""
    media = by_payload_type.get(codec["parameters"].get("apt"))
    if media is None:
        raise InvalidParametersError(
            f"rtx codec with payloadType {codec['payloadType']} has no media codec of its apt"
        )
    found = _rtx_for(router_caps["codecs"], media["preferredPayloadType"])
    if found is None:
        raise UnsupportedError(f"no rtx for {media['mimeType']} in the router")
    return found


def _mapped_encoding(encoding: dict[str, Any], mapped_ssrc: int) -> dict[str, Any]:
    """How the router tells an incoming stream (by ssrc or rid) and renames it."""
    mapped = {key: encoding[key] for key in ("ssrc", "rid", "scalabilityMode") if encoding.get(key)}
    return {**mapped, "mappedSsrc": mapped_ssrc}


def get_producer_rtp_mapping(
    rtp_parameters: dict[str, Any], router_caps: dict[str, Any]
) -> dict[str, Any]:
    """Maps a producer's payload types and streams to the router's.

    Returns `{"codecs": [{"payloadType", "mappedPayloadType"}], "encodings":
    [{"ssrc"?, "rid"?, "scalabilityMode"?, "mappedSsrc"}]}`, media codecs first,
    one entry per encoding with a fresh random `mappedSsrc`. Raises
    UnsupportedError when a codec has no match in the router.
    """
    codecs = rtp_parameters["codecs"]
    if all(_is_rtx(codec) for codec in codecs):
        raise UnsupportedError("rtpParameters.codecs has no media codec")
    by_payload_type = {
        c["payloadType"]: _router_media_codec(c, router_caps) for c in codecs if not _is_rtx(c)
    }
    for codec in filter(_is_rtx, codecs):
        rtx = _router_rtx_codec(codec, by_payload_type, router_caps)
        by_payload_type[codec["payloadType"]] = rtx
    encodings = rtp_parameters["encodings"]
    kind = next(c for c in codecs if not _is_rtx(c))["mimeType"].split("/")[0].lower()
    return {
        "codecs": [
            {"payloadType": pt, "mappedPayloadType": c["preferredPayloadType"]}
            for pt, c in by_payload_type.items()
        ],
        "encodings": [
            _mapped_encoding(encoding, ssrc)
            for encoding, ssrc in zip(encodings, _random_ssrcs(len(encodings)))
        ],
        "headerExtensions": _mapped_extensions(kind, rtp_parameters.get("headerExtensions", []), router_caps),
    }


_PER_STREAM_EXTENSIONS = (RTP_STREAM_ID, REPAIRED_RTP_STREAM_ID)


def consumer_extension_map(kind: str, consumer_params: dict[str, Any], router_caps: dict[str, Any]) -> list[int] | None:
    """A 256-entry table: router extension id -> the consumer's (0: not sent); None if the same ids.

    Per-stream extensions (RIDs) are left out of the comparison: producers drop them on the way in, so
    that a consumer without them (the usual case) costs no rewrite per packet.
    """
    consumer_ids = {e["uri"]: e["id"] for e in consumer_params.get("headerExtensions", [])}
    table = list(range(256))
    same = True
    for ext in router_caps["headerExtensions"]:
        if ext["kind"] != kind:
            continue
        mapped = consumer_ids.get(ext["uri"], 0)
        table[ext["preferredId"]] = mapped
        same = same and (mapped == ext["preferredId"] or ext["uri"] in _PER_STREAM_EXTENSIONS)
    return None if same else table


def _mapped_extensions(kind: str, extensions: list[dict[str, Any]],
                       router_caps: dict[str, Any]) -> list[dict[str, int]]:
    """Producer extension ids -> the router's (0: dropped on the way in).

    RID values name the producer's own encodings, so they never reach consumers.
    """
    router_ids = {e["uri"]: e["preferredId"] for e in router_caps["headerExtensions"] if e["kind"] == kind}
    return [
        {"id": e["id"], "mappedId": 0 if e["uri"] in _PER_STREAM_EXTENSIONS else router_ids.get(e["uri"], 0)}
        for e in extensions
    ]


def _codec_from_capability(
    capability: dict[str, Any], parameters: dict[str, Any]
) -> dict[str, Any]:
    """Codec parameters for the router codec `capability`, with the given fmtp parameters."""
    codec = {
        "mimeType": capability["mimeType"],
        "payloadType": capability["preferredPayloadType"],
        "clockRate": capability["clockRate"],
        "parameters": copy.deepcopy(parameters),
        "rtcpFeedback": copy.deepcopy(capability["rtcpFeedback"]),
    }
    if "channels" in capability:
        codec["channels"] = capability["channels"]
    return codec


def _consumable_codecs(
    rtp_parameters: dict[str, Any], router_caps: dict[str, Any], mapping: dict[str, Any]
) -> list[dict[str, Any]]:
    """The producer's media codecs as router codecs, each followed by its router RTX."""
    mapped = {m["payloadType"]: m["mappedPayloadType"] for m in mapping["codecs"]}
    router_codecs = {c["preferredPayloadType"]: c for c in router_caps["codecs"]}
    codecs = []
    for codec in rtp_parameters["codecs"]:
        if _is_rtx(codec):
            continue
        router_codec = router_codecs[mapped[codec["payloadType"]]]
        # The producer's own fmtp parameters (e.g. its H264 level) are kept.
        codecs.append(_codec_from_capability(router_codec, codec["parameters"]))
        rtx = _rtx_for(router_codecs.values(), router_codec["preferredPayloadType"])
        if rtx is not None:
            codecs.append(_codec_from_capability(rtx, rtx["parameters"]))
    return codecs


def get_consumable_rtp_parameters(
    kind: str, rtp_parameters: dict[str, Any], router_caps: dict[str, Any], mapping: dict[str, Any]
) -> dict[str, Any]:
    """The producer's RTP parameters in the router's terms, what consumers start from.

    Codecs take the router's payload types (each media codec followed by its
    RTX); header extensions are the router's of that kind it can send
    (sendrecv/sendonly); encodings take their `mappedSsrc` and lose rid and rtx.
    """
    extensions = [
        {"uri": e["uri"], "id": e["preferredId"], "encrypt": e["preferredEncrypt"],
         "parameters": {}}
        for e in router_caps["headerExtensions"]
        if e["kind"] == kind and e["direction"] in ("sendrecv", "sendonly")
    ]
    encodings = []
    for encoding, mapped in zip(rtp_parameters["encodings"], mapping["encodings"]):
        kept = {k: v for k, v in encoding.items() if k not in ("rid", "rtx", "codecPayloadType")}
        encodings.append({**copy.deepcopy(kept), "ssrc": mapped["mappedSsrc"]})
    rtcp: dict[str, Any] = {"reducedSize": True}
    if rtp_parameters["rtcp"].get("cname"):
        rtcp["cname"] = rtp_parameters["rtcp"]["cname"]
    return {
        "codecs": _consumable_codecs(rtp_parameters, router_caps, mapping),
        "headerExtensions": extensions,
        "encodings": encodings,
        "rtcp": rtcp,
    }


# --- Consumers ------------------------------------------------------------------


def _scalability(mode: str | None) -> tuple[int, int]:
    """(spatial layers, temporal layers) of a scalabilityMode like "L1T3"; (1, 1) if none."""
    match = _SCALABILITY_MODE.match(mode or "")
    return (int(match.group(1)), int(match.group(2))) if match else (1, 1)


def consumer_type(consumable: dict[str, Any]) -> str:
    """"simulcast" for several encodings, "svc" for one with spatial layers, else "simple"."""
    encodings = consumable["encodings"]
    if len(encodings) > 1:
        return "simulcast"
    spatial_layers, _temporal = _scalability(encodings[0].get("scalabilityMode"))
    return "svc" if spatial_layers > 1 else "simple"


def _negotiated_codec(codec: dict[str, Any], capability: dict[str, Any]) -> dict[str, Any]:
    """`codec` in the client's payload type, with the RTCP feedback both sides support."""
    supported = {(fb["type"], fb["parameter"]) for fb in capability["rtcpFeedback"]}
    return {
        **copy.deepcopy(codec),
        "payloadType": capability.get("preferredPayloadType", codec["payloadType"]),
        "rtcpFeedback": [
            dict(fb) for fb in codec["rtcpFeedback"] if (fb["type"], fb["parameter"]) in supported
        ],
    }


def _consumer_codecs(
    consumable_codecs: list[dict[str, Any]], capabilities: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """The media codecs the client supports, in its payload types, each with its RTX if any."""
    codecs = []
    for codec in consumable_codecs:
        if _is_rtx(codec):
            continue
        capability = next((c for c in capabilities if _codecs_match(c, codec)), None)
        if capability is None:
            continue
        media = _negotiated_codec(codec, capability)
        codecs.append(media)
        rtx = _rtx_for(consumable_codecs, codec["payloadType"])
        rtx_capability = _rtx_for(capabilities, media["payloadType"])
        if rtx is not None and rtx_capability is not None:
            repair = _negotiated_codec(rtx, rtx_capability)
            codecs.append({**repair, "parameters": {"apt": media["payloadType"]}})
    return codecs


def _consumer_header_extensions(
    consumable: dict[str, Any], caps: dict[str, Any], kind: str
) -> list[dict[str, Any]]:
    """The consumable header extensions the client can receive, with the client's ids."""
    receivable = {
        e["uri"]: e["preferredId"]
        for e in caps["headerExtensions"]
        if e["kind"] == kind and e["direction"] in ("sendrecv", "recvonly")
    }
    return [
        {**copy.deepcopy(e), "id": receivable[e["uri"]]}
        for e in consumable["headerExtensions"]
        if e["uri"] in receivable
    ]


def _keep_one_congestion_control(
    codecs: list[dict[str, Any]], extensions: list[dict[str, Any]]
) -> None:
    """Keeps the feedback of one bandwidth estimation: transport-cc, else REMB, else none."""
    uris = {e["uri"] for e in extensions}
    if TRANSPORT_WIDE_CC in uris:
        dropped = {"goog-remb"}
    elif ABS_SEND_TIME in uris:
        dropped = {"transport-cc"}
    else:
        dropped = {"goog-remb", "transport-cc"}
    for codec in codecs:
        codec["rtcpFeedback"] = [fb for fb in codec["rtcpFeedback"] if fb["type"] not in dropped]


def _consumer_encoding(
    consumable_encodings: list[dict[str, Any]], with_rtx: bool
) -> dict[str, Any]:
    """The single encoding a consumer receives, with fresh SSRCs."""
    producer_ssrcs = (e["ssrc"] for e in consumable_encodings if "ssrc" in e)
    ssrc, rtx_ssrc = _random_ssrcs(2, avoid=producer_ssrcs)
    encoding: dict[str, Any] = {"ssrc": ssrc}
    if with_rtx:
        encoding["rtx"] = {"ssrc": rtx_ssrc}
    modes = [e["scalabilityMode"] for e in consumable_encodings if e.get("scalabilityMode")]
    mode = modes[0] if modes else None
    if len(consumable_encodings) > 1:
        # Simulcast streams are offered to the consumer as spatial layers.
        mode = f"L{len(consumable_encodings)}T{_scalability(mode)[1]}"
    if mode:
        encoding["scalabilityMode"] = mode
    max_bitrate = max((e.get("maxBitrate") or 0 for e in consumable_encodings), default=0)
    if max_bitrate:
        encoding["maxBitrate"] = max_bitrate
    return encoding


def can_consume(consumable: dict[str, Any], caps: dict[str, Any]) -> bool:
    """Whether a client with these RTP capabilities supports a media codec of the producer."""
    capabilities = validate_rtp_capabilities(caps)["codecs"]
    return bool(_consumer_codecs(consumable["codecs"], capabilities))


def get_consumer_rtp_parameters(
    consumable: dict[str, Any], caps: dict[str, Any], pipe: bool = False
) -> dict[str, Any]:
    """The RTP parameters of a consumer of `consumable` for a client with `caps`.

    Codecs, their RTCP feedback and header extensions are cut down to what the
    client supports, in its payload types and extension ids. A normal consumer
    gets one encoding with fresh SSRCs (and an RTX SSRC when RTX is negotiated);
    a pipe consumer keeps the consumable's encodings and SSRCs. `mid` is left
    to the caller. Raises UnsupportedError when no media codec is supported.
    """
    caps = validate_rtp_capabilities(caps)
    codecs = _consumer_codecs(consumable["codecs"], caps["codecs"])
    if not codecs:
        raise UnsupportedError("no compatible media codecs")
    kind = consumable["codecs"][0]["mimeType"].split("/")[0].lower()
    extensions = _consumer_header_extensions(consumable, caps, kind)
    _keep_one_congestion_control(codecs, extensions)
    if pipe:
        encodings = copy.deepcopy(consumable["encodings"])
    else:
        with_rtx = any(_is_rtx(codec) for codec in codecs)
        encodings = [_consumer_encoding(consumable["encodings"], with_rtx)]
    rtcp = {**consumable["rtcp"], "reducedSize": True, "mux": True}
    return {"codecs": codecs, "headerExtensions": extensions, "encodings": encodings, "rtcp": rtcp}
