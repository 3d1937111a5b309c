"""A producer inside the worker: one incoming media stream and its fan-out."""

from __future__ import annotations

import asyncio
import struct
import time
from typing import TYPE_CHECKING, Any, Callable

from kolabmeet.media.capabilities import (
    ABS_SEND_TIME,
    AUDIO_LEVEL,
    MID,
    REPAIRED_RTP_STREAM_ID as RRID,
    ROUTER_IDS,
    RTP_STREAM_ID as RID,
    TRANSPORT_WIDE_CC,
)
from kolabmeet.media.worker import rtcp
from kolabmeet.media.worker.consumer_core import fan_out
from kolabmeet.media.worker.keyframe import KEYFRAME_DETECTORS
from kolabmeet.media.worker.retransmission import restore_rtx
from kolabmeet.media.worker.rtp import (
    MID_SLOT, add_extension_slots, extension_size, is_two_byte_form, map_extensions, payload_bounds, set_abs_send_time,
)
from kolabmeet.media.worker.rtp_stream import RecvStream
from kolabmeet.media.worker.vp8 import Vp8Picture, read_picture

if TYPE_CHECKING:
    from kolabmeet.media.worker.consumer import Consumer
    from kolabmeet.media.worker.transport import Transport

_SEQ_TS = struct.Struct("!HI")
_ABSENT = (-1, -1, -1)

KEYFRAME_REQUEST_INTERVAL = 0.5
NACK_INTERVAL = 0.04
_MID_ID, _ABS_ID, _TWCC_ID, _LEVEL_ID = (ROUTER_IDS[u] for u in (MID, ABS_SEND_TIME, TRANSPORT_WIDE_CC, AUDIO_LEVEL))
_WANTED = {"video": (_MID_ID, _ABS_ID, _TWCC_ID), "audio": (_MID_ID, _ABS_ID, _LEVEL_ID)}
"""Router ids of the extensions found per packet: MID and abs-send-time (consumers write them), then
transport-wide-cc (video: consumers write it) or the audio level (audio: the active speaker reads it)."""
_SLOTS = ((_MID_ID, MID_SLOT), (_ABS_ID, 3), (_TWCC_ID, 2))
"""The elements a forwarded packet is given where a consumer writes them, whatever the sender sent
(Chromium stops sending MID), in the order of map_extensions' offsets."""


class Producer:
    """Receives one track (an RTP stream per encoding, plus RTX) and hands packets to consumers.

    Header extension ids are mapped to the router's on the way in, so every
    consumer sees the router's ids, and every packet gets room for a MID, an
    abs-send-time and (video) a transport-wide sequence number: `mid_at` (in the
    two-byte form when `mid_two_byte`) and `twcc_at` give the current packet's value
    offsets for consumers to fill in (-1 when absent), `abs_send_time_at` that of
    the send time the producer wrote once for all, `payload_at`/`payload_end` the
    payload of a video packet, `vp8_picture` what VP8 consumers rewrite in it, and
    `now` its arrival time.
    """

    def __init__(self, producer_id: str, transport: "Transport", data: dict[str, Any],
                 notify: Callable[[str, str, Any], None]) -> None:
        self.id = producer_id
        self.transport = transport
        self.kind: str = data["kind"]
        self.rtp_parameters: dict[str, Any] = data["rtpParameters"]
        self.rtp_mapping: dict[str, Any] = data["rtpMapping"]
        self.type: str = "simulcast" if len(self.rtp_parameters.get("encodings", [])) > 1 else "simple"
        self.paused: bool = bool(data.get("paused", False))
        self.consumers: tuple["Consumer", ...] = ()
        self.keyframe_waiters = 0
        self.closed = False
        self.abs_send_time_at = -1
        self.twcc_at = -1
        self.mid_at = -1
        self.mid_two_byte = 0
        self.payload_at = self.payload_end = -1
        self.vp8_picture: Vp8Picture | None = None
        self.now = 0.0
        self._notify = notify
        self._pt_map = self._mapped_payload_types()
        self._ext_map = self._mapped_extension_ids()
        self._media = self._media_codec()
        self._is_video = self.kind == "video"
        self._is_vp8 = self._media["mimeType"].lower() == "video/vp8"
        self._slots: tuple[tuple[int, int] | None, ...] = (None, None, None)
        """_SLOTS, None where no consumer writes that element."""
        self._wanted = _WANTED[self.kind]
        self._level_sum = self._level_count = 0
        self._is_keyframe = KEYFRAME_DETECTORS.get(self._media["mimeType"].lower()) if self.kind == "video" else None
        self._streams: dict[int, RecvStream] = {}
        self._rtx: dict[int, int] = {}
        self._rtx_apt = self._rtx_payload_types()
        self.layer_of: dict[int, int] = {}
        self.layer_streams: list[RecvStream | None] = [None] * self.layers
        """The stream of each spatial layer, once known (its `last_time` says when a packet last came)."""
        self.mid: str | None = self.rtp_parameters.get("mid")
        ids = {e["uri"]: e["id"] for e in self.rtp_parameters.get("headerExtensions", [])}
        self.mid_ext, self.rid_ext, self.rrid_ext = (ids.get(uri, 0) for uri in (MID, RID, RRID))
        self._rid_layer: dict[str, int] = {}
        self._rid_ssrc: dict[str, int] = {}
        for layer, encoding in enumerate(self.rtp_parameters.get("encodings", [])):
            if "ssrc" in encoding:
                self._bind_layer(encoding["ssrc"], layer)
                rtx_ssrc = (encoding.get("rtx") or {}).get("ssrc")
                if rtx_ssrc:
                    self._rtx[rtx_ssrc] = encoding["ssrc"]
            elif "rid" in encoding:
                self._rid_layer[encoding["rid"]] = layer
        self._last_keyframe_request = 0.0
        self._keyframe_timer: asyncio.TimerHandle | None = None
        self._nack_timer: asyncio.TimerHandle | None = None

    def _media_codec(self) -> dict[str, Any]:
        codecs = [c for c in self.rtp_parameters.get("codecs", []) if not c["mimeType"].lower().endswith("/rtx")]
        return codecs[0]

    def _mapped_payload_types(self) -> bytes:
        """Table: producer payload type -> router payload type (0 = unknown)."""
        table = bytearray(128)
        for codec in self.rtp_mapping.get("codecs", []):
            table[codec["payloadType"] & 0x7F] = codec["mappedPayloadType"]
        return bytes(table)

    def _mapped_extension_ids(self) -> bytes | None:
        """Table: producer extension id -> router id (0 drops it); None without extensions."""
        pairs = self.rtp_mapping.get("headerExtensions", [])
        if not pairs:
            return None
        table = bytearray(256)
        for pair in pairs:
            table[pair["id"]] = pair["mappedId"]
        return bytes(table)

    def _rtx_payload_types(self) -> dict[int, int]:
        """RTX payload type -> the payload type it repairs."""
        return {c["payloadType"]: int(c["parameters"]["apt"]) for c in self.rtp_parameters.get("codecs", [])
                if c["mimeType"].lower().endswith("/rtx") and "apt" in c.get("parameters", {})}

    def _stream(self, ssrc: int) -> RecvStream:
        stream = self._streams.get(ssrc)
        if stream is None:
            use_nack = self.kind == "video" and any(f.get("type") == "nack" and not f.get("parameter")
                                                    for f in self._media.get("rtcpFeedback", []))
            stream = self._streams[ssrc] = RecvStream(ssrc, self.kind, self._media["clockRate"], use_nack)
        return stream

    @property
    def layers(self) -> int:
        """Spatial layers (simulcast encodings)."""
        return max(1, len(self.rtp_parameters.get("encodings", [])))

    def identifies_by_rid(self) -> bool:
        return bool(self._rid_layer) or (self.mid is not None and not self.layer_of)

    def bind(self, ssrc: int, rid: str | None, repaired: bool) -> bool:
        """Tie a new SSRC to the encoding its RID (or repaired RID, for RTX) names."""
        if repaired:
            media_ssrc = self._rid_ssrc.get(rid or "")
            if media_ssrc is None:
                return False
            self._rtx[ssrc] = media_ssrc
            return True
        if rid is None:
            if self._rid_layer:
                return False
            layer = 0
        else:
            layer = self._rid_layer.get(rid, -1)
            if layer < 0 or rid in self._rid_ssrc:
                return False
            self._rid_ssrc[rid] = ssrc
        self._bind_layer(ssrc, layer)
        return True

    def _bind_layer(self, ssrc: int, layer: int) -> None:
        self.layer_of[ssrc] = layer
        if layer < self.layers:
            self.layer_streams[layer] = self._stream(ssrc)

    def layer_bitrates(self) -> list[float]:
        """Bit/s arriving on each spatial layer lately (0 for a layer silent for a second)."""
        now = time.monotonic()
        rates = [0.0] * self.layers
        for stream in self._streams.values():
            layer = self.layer_of.get(stream.ssrc)
            if layer is not None and layer < self.layers and now - stream.last_time < 1.0:
                rates[layer] = max(stream.measure(now), 1.0)
        return rates

    def bitrate(self) -> float:
        """Bit/s arriving on all layers lately."""
        return sum(self.layer_bitrates())

    def media_ssrcs(self) -> list[int]:
        """The SSRCs this producer receives on, as signalled (media and RTX)."""
        return [e["ssrc"] for e in self.rtp_parameters.get("encodings", []) if "ssrc" in e] + list(self._rtx)

    def receive_rtp(self, buf: bytearray, view: memoryview, length: int, ssrc: int) -> None:
        """Hot path: account for one packet and forward it to every consumer."""
        recovered = False
        rtx = self._rtx.get(ssrc)
        if rtx is not None:
            media_pt = self._rtx_apt.get(buf[1] & 0x7F)
            if media_pt is None:
                return
            length = restore_rtx(buf, length, media_pt, rtx)
            if length < 0:
                return
            ssrc, view, recovered = rtx, view[:length], True
        stream = self._streams.get(ssrc) or self._stream(ssrc)
        seq, ts = _SEQ_TS.unpack_from(buf, 2)
        if recovered and (stream.nack is None or not stream.nack.is_missing(seq)):
            stream.rtx_discarded += 1  # the sender's RTX padding (probes): a copy of what came already
            return
        self.now = now = time.monotonic()
        stream.update(seq, ts, length, now)
        if recovered:
            stream.retransmitted += 1
        if stream.nack is not None:
            self._track_loss(stream, seq, recovered)
        if self.paused:
            return
        self._forward(buf, view, length, seq, ts, self.layer_of.get(ssrc, 0), recovered)

    def _forward(self, buf: bytearray, view: memoryview, length: int, seq: int, ts: int, layer: int,
                 recovered: bool) -> None:
        byte1 = buf[1]
        mapped_pt = self._pt_map[byte1 & 0x7F]
        if mapped_pt == 0:
            return
        if buf[0] & 0x10:
            mid_at, abs_at, third_at = map_extensions(buf, length, self._ext_map, self._wanted)
        else:
            mid_at, abs_at, third_at = _ABSENT
        twcc_at = third_at if self._is_video else -1
        if third_at > 0 and not self._is_video:
            self._level_sum += buf[third_at] & 0x7F
            self._level_count += 1
        mid_slot, abs_slot, twcc_slot = slots = self._slots
        if ((mid_slot and (mid_at < 0 or extension_size(buf, mid_at) != MID_SLOT)) or (abs_slot and abs_at < 0)
                or (twcc_slot and twcc_at < 0)):
            grown = add_extension_slots(buf, length, slots, (mid_at, abs_at, twcc_at), len(buf) - 64)
            if grown > 0:
                length = grown
                view = memoryview(buf)[:length]
                mid_at, abs_at, third_at = map_extensions(buf, length, None, self._wanted)
                twcc_at = third_at if self._is_video else -1
        self.mid_at, self.abs_send_time_at, self.twcc_at = mid_at, abs_at, twcc_at
        if mid_at > 0:
            self.mid_two_byte = is_two_byte_form(buf)
        if abs_at > 0:
            set_abs_send_time(buf, abs_at, self.now)  # the same for every consumer: written once
        keyframe = False
        if self._is_video:
            self.payload_at, self.payload_end = start, end = payload_bounds(buf, length)
            if self._is_vp8:
                self.vp8_picture = read_picture(buf, start, end)
            if self.keyframe_waiters and self._is_keyframe is not None:
                keyframe = start > 0 and self._is_keyframe(buf, start, end)
                if keyframe and recovered:
                    # Not a place to start: the consumers waiting dropped the packets that came after
                    # it (they arrived first), and their receivers would miss those for good.
                    keyframe = False
                    self.request_keyframe()
        fan_out(self.consumers, buf, view, length, (byte1 & 0x80) | mapped_pt, seq, ts, keyframe, layer, self)

    def _track_loss(self, stream: RecvStream, seq: int, recovered: bool) -> None:
        nack = stream.nack
        before = nack.missing_count
        if nack.receive(seq, recovered):
            self.request_keyframe()
        elif nack.missing_count > before:
            self._send_nacks()

    def _send_nacks(self) -> None:
        """NACK what is missing now; keep a timer while anything is missing."""
        self._nack_timer = None
        if self.closed:
            return
        now_ms = time.monotonic() * 1000
        waiting = False
        for stream in self._streams.values():
            if stream.nack is None or not stream.nack.missing_count:
                continue
            seqs = stream.nack.pending(now_ms)
            if seqs:
                stream.nacks_sent += 1
                stream.nacked_packets += len(seqs)
                self.transport.send_rtcp(rtcp.nack(self.transport.rtcp_ssrc, stream.ssrc, seqs))
            waiting = waiting or stream.nack.missing_count > 0
        if waiting and self._nack_timer is None:
            self._nack_timer = asyncio.get_running_loop().call_later(NACK_INTERVAL, self._send_nacks)

    def sender_report(self, ssrc: int, ntp: int) -> None:
        stream = self._streams.get(ssrc)
        if stream is not None:
            stream.sender_report_received(ntp)

    def report_blocks(self) -> list[rtcp.ReportBlock]:
        """Receiver report blocks for our streams; also refreshes scores."""
        blocks = [s.report_block() for s in self._streams.values() if s.packets]
        self._notify_score()
        return blocks

    def _notify_score(self) -> None:
        scores = self.scores()
        for consumer in self.consumers:
            consumer.producer_score_changed(scores)

    def request_keyframe(self) -> None:
        """Ask the sender for a key frame (PLI), at most every KEYFRAME_REQUEST_INTERVAL."""
        if self.kind != "video" or self.closed or self._keyframe_timer is not None:
            return
        wait = self._last_keyframe_request + KEYFRAME_REQUEST_INTERVAL - time.monotonic()
        if wait > 0:
            loop = asyncio.get_running_loop()
            self._keyframe_timer = loop.call_later(wait, self._send_keyframe_request)
            return
        self._send_keyframe_request()

    def _send_keyframe_request(self) -> None:
        self._keyframe_timer = None
        if self.closed:
            return
        self._last_keyframe_request = time.monotonic()
        for ssrc in list(self._streams):
            self.transport.send_rtcp(rtcp.pli(self.transport.rtcp_ssrc, ssrc))

    def add_consumer(self, consumer: "Consumer") -> None:
        self.consumers = self.consumers + (consumer,)
        self._choose_slots()

    def remove_consumer(self, consumer: "Consumer") -> None:
        self.consumers = tuple(c for c in self.consumers if c is not consumer)
        self._choose_slots()

    def _choose_slots(self) -> None:
        """Give packets the elements some consumer writes, and only those (none: no packet grows)."""
        written = {ext_id for consumer in self.consumers for ext_id in consumer.written_extensions}
        if self.kind == "audio":
            written.discard(_TWCC_ID)  # the third offset of an audio packet is its audio level
        self._slots = tuple(slot if slot[0] in written else None for slot in _SLOTS)

    def pause(self) -> None:
        if self.paused:
            return
        self.paused = True
        for consumer in self.consumers:
            consumer.producer_paused()

    def resume(self) -> None:
        if not self.paused:
            return
        self.paused = False
        for consumer in self.consumers:
            consumer.producer_resumed()

    def close(self) -> None:
        """Close this producer and, with it, every consumer of it."""
        if self.closed:
            return
        self.closed = True
        self.transport.router.totals.retire_producer(self)
        for timer in (self._keyframe_timer, self._nack_timer):
            if timer is not None:
                timer.cancel()
        for consumer in self.consumers:
            consumer.producer_closed()
        self.consumers = ()

    def take_audio_level(self) -> float:
        """Mean audio level (-dBov: 0 loudest, 127 silence) since the last call; 127 without packets."""
        if not self._level_count or self.paused:
            mean = 127.0
        else:
            mean = self._level_sum / self._level_count
        self._level_sum = self._level_count = 0
        return mean

    def scores(self) -> list[int]:
        """Score of each encoding that has received packets, in layer order."""
        streams = sorted((s for s in self._streams.values() if s.packets), key=lambda s: self.layer_of.get(s.ssrc, 0))
        return [s.score for s in streams]

    def streams(self) -> list[RecvStream]:
        """The streams of every encoding that has been seen."""
        return list(self._streams.values())

    def get_stats(self) -> list[dict[str, Any]]:
        return [stream.as_dict(self._media["mimeType"]) for stream in self._streams.values()]

    def dump(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "kind": self.kind,
            "type": self.type,
            "paused": self.paused,
            "rtpParameters": self.rtp_parameters,
            "rtpMapping": self.rtp_mapping,
            "consumerIds": [c.id for c in self.consumers],
        }
