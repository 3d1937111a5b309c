"""A producer inside the worker: one incoming media stream and its fan-out."""

from __future__ import annotations

import asyncio
import struct
import time
from typing import TYPE_CHECKING, Any, Callable

from kolabmeet.media.worker import rtcp
from kolabmeet.media.worker.keyframe import KEYFRAME_DETECTORS
from kolabmeet.media.worker.rtp import payload_bounds
from kolabmeet.media.worker.rtp_stream import RecvStats

if TYPE_CHECKING:
    from kolabmeet.media.worker.consumer import Consumer
    from kolabmeet.media.worker.transport import Transport

_SEQ_TS = struct.Struct("!HI")

KEYFRAME_REQUEST_INTERVAL = 0.5


class Producer:
    """Receives one RTP stream (per encoding) and hands each packet to its consumers."""

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
        self._notify = notify
        self._pt_map = self._mapped_payload_types()
        self._is_keyframe = self._keyframe_detector()
        self._stats: dict[int, RecvStats] = {}
        self._last_keyframe_request = 0.0
        self._keyframe_timer: asyncio.TimerHandle | None = None

    def _mapped_payload_types(self) -> bytes:
        """Table: producer payload type -> router payload type (0 = unknown)."""
        table = bytearray(128)
        for codec in self.rtp_mapping.get("codecs", []):
            table[codec["payloadType"] & 0x7F] = codec["mappedPayloadType"]
        return bytes(table)

    def _keyframe_detector(self) -> Callable[[Any, int, int], bool] | None:
        if self.kind != "video":
            return None
        codecs = [c for c in self.rtp_parameters.get("codecs", []) if not c["mimeType"].lower().endswith("/rtx")]
        return KEYFRAME_DETECTORS.get(codecs[0]["mimeType"].lower()) if codecs else None

    def media_ssrcs(self) -> list[int]:
        """The SSRCs this producer receives on, as signalled in its encodings."""
        return [e["ssrc"] for e in self.rtp_parameters.get("encodings", []) if "ssrc" in e]

    def receive_rtp(self, buf: bytearray, view: memoryview, length: int, ssrc: int) -> None:
        """Hot path: account for one packet and forward it to every consumer."""
        stats = self._stats.get(ssrc)
        if stats is None:
            stats = self._stats[ssrc] = RecvStats(ssrc)
        seq, ts = _SEQ_TS.unpack_from(buf, 2)
        stats.update(seq, length)
        if self.paused:
            return
        byte1 = buf[1]
        mapped_pt = self._pt_map[byte1 & 0x7F]
        if mapped_pt == 0:
            return
        keyframe = False
        if self.keyframe_waiters and self._is_keyframe is not None:
            start, end = payload_bounds(buf, length)
            keyframe = start > 0 and self._is_keyframe(buf, start, end)
        marked_pt = (byte1 & 0x80) | mapped_pt
        for consumer in self.consumers:
            consumer.send_rtp(buf, view, length, marked_pt, seq, ts, keyframe)

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
        for ssrc in self.media_ssrcs() or list(self._stats):
            self.transport.send_rtcp(rtcp.pli(self.transport.rtcp_ssrc, ssrc))

    def add_consumer(self, consumer: "Consumer") -> None:
        self.consumers = self.consumers + (consumer,)

    def remove_consumer(self, consumer: "Consumer") -> None:
        self.consumers = tuple(c for c in self.consumers if c is not consumer)

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
        if self._keyframe_timer is not None:
            self._keyframe_timer.cancel()
        for consumer in self.consumers:
            consumer.producer_closed()
        self.consumers = ()

    def score(self) -> int:
        scores = [s.score() for s in self._stats.values()]
        return min(scores) if scores else 0

    def get_stats(self) -> list[dict[str, Any]]:
        codec = self.rtp_parameters["codecs"][0]["mimeType"] if self.rtp_parameters.get("codecs") else ""
        return [stats.as_dict("inbound-rtp", self.kind, codec) for stats in self._stats.values()]

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
