"""A consumer inside the worker: one outgoing copy of a producer's stream."""

from __future__ import annotations

import re
import secrets
import time
from typing import TYPE_CHECKING, Any, Callable

from kolabmeet.media.capabilities import ABS_SEND_TIME, MID, ROUTER_IDS, TRANSPORT_WIDE_CC
from kolabmeet.media.errors import MediaError
from kolabmeet.media.worker import rtcp
from kolabmeet.media.worker.allocator import UP_ROUNDS, Want
from kolabmeet.media.worker.consumer_core import ConsumerCore
from kolabmeet.media.worker.retransmission import RetransmissionBuffer, build_rtx
from kolabmeet.media.worker.rtp import MID_SLOT, map_extensions, mid_elements, set_transport_wide_seq
from kolabmeet.media.worker.rtp_stream import loss_score
from kolabmeet.media.worker.vp8 import MAX_TEMPORAL_LAYER, Vp8Rewriter

if TYPE_CHECKING:
    from kolabmeet.media.worker.prober import ProbeCluster
    from kolabmeet.media.worker.producer import Producer
    from kolabmeet.media.worker.transport import Transport

_WRITTEN = (MID, ABS_SEND_TIME, TRANSPORT_WIDE_CC)
"""The header extensions whose values are per packet sent: written into the forwarded packets."""
_SCALABILITY = re.compile(r"L(\d+)T(\d+)")
RTX_SCRATCH = bytearray(2048)
MIN_RESEND_INTERVAL_MS = 100.0
"""A packet is resent at most once per round trip (and not more often than this)."""
_TWCC = (0, 0, ROUTER_IDS[TRANSPORT_WIDE_CC])


class Consumer(ConsumerCore):
    """Rewrites a producer's packets (SSRC, payload type, sequence, timestamp) for one receiver.

    Its per-packet rules are its core's (consumer_core.py); here is what it is told and answers.

    Sequence numbers and timestamps stay continuous across pauses: each time the
    stream (re)starts, the offsets are set so that the next packet follows the
    last one sent. Video (re)starts only on a key frame. Sent video packets are
    kept for retransmission (RTX when negotiated) on the receiver's NACKs.
    """

    def __init__(self, consumer_id: str, transport: "Transport", producer: "Producer",
                 data: dict[str, Any], notify: Callable[[str, str, Any], None]) -> None:
        self.id = consumer_id
        self.transport = transport
        self.producer = producer
        self.kind: str = data["kind"]
        self.type: str = data.get("type", "simple")
        self.rtp_parameters: dict[str, Any] = data["rtpParameters"]
        self.paused: bool = bool(data.get("paused", False))
        self.priority = 1
        self.set_priority(data.get("priority", 1))
        self.producer_is_paused = producer.paused
        self.closed = False
        self._notify = notify
        encoding = self.rtp_parameters["encodings"][0]
        self.ssrc: int = encoding["ssrc"]
        self.rtx_ssrc: int | None = (encoding.get("rtx") or {}).get("ssrc")
        media = self.rtp_parameters["codecs"][0]
        self._clock_rate: int = media["clockRate"]
        self.rtx_pt = self._rtx_payload_type(media["payloadType"])
        self.ext_map: bytes | None = bytes(data["extensionMap"]) if data.get("extensionMap") else None
        negotiated = {e["uri"] for e in self.rtp_parameters.get("headerExtensions", [])}
        self.written_extensions = frozenset(ROUTER_IDS[uri] for uri in _WRITTEN if uri in negotiated)
        """Router ids of the header extensions this consumer's packets carry values of (its producer
        gives packets room for them)."""
        mid = self.rtp_parameters.get("mid") if MID in negotiated else None
        self._mid = mid_elements(mid.encode(), ROUTER_IDS[MID]) if mid and len(mid.encode()) <= MID_SLOT else None
        self._writes_twcc = TRANSPORT_WIDE_CC in negotiated
        self._pt_map = self._payload_type_map()
        self._is_video = self.kind == "video"
        self._vp8 = Vp8Rewriter() if media["mimeType"].lower() == "video/vp8" else None
        self.rtx_buffer = RetransmissionBuffer() if self._is_video and self._wants_nack(media) else None
        self._simulcast = producer.layers > 1
        self._temporal_layers = _temporal_layers(encoding.get("scalabilityMode"))
        self.current_layer = -1 if self._simulcast else 0
        self.target_layer = producer.layers - 1 if self._simulcast else 0
        self.preferred_spatial = producer.layers - 1
        self._up_rounds = 0
        self._silent_since = 0.0
        self.preferred_temporal = self.target_temporal = self._temporal_layers - 1
        self._notified_layers = (-1, -1)
        self.active = False
        self._sync_needed = True
        self._waiting = False
        self._sync_seq = 0
        self._seq_off = 0
        self._ts_off = 0
        self._rtx_seq = secrets.randbits(16)
        self.last_seq = secrets.randbits(16)
        self.last_ts = secrets.randbits(32)
        self.last_sent = 0.0
        self.packets = 0
        self.bytes = 0
        self.keyframe_requests = 0
        self.nacks_received = 0
        self.retransmitted = 0
        self.score = 10
        self.rtt_ms = 0.0
        self._sr_sent: dict[int, float] = {}
        self._producer_scores: list[int] = []

    def _rtx_payload_type(self, media_pt: int) -> int | None:
        for codec in self.rtp_parameters["codecs"]:
            if codec["mimeType"].lower().endswith("/rtx") and int(codec["parameters"].get("apt", -1)) == media_pt:
                return codec["payloadType"]
        return None

    @staticmethod
    def _wants_nack(media: dict[str, Any]) -> bool:
        return any(f.get("type") == "nack" and not f.get("parameter") for f in media.get("rtcpFeedback", []))

    def _payload_type_map(self) -> bytes:
        """Table: router payload type (with marker bit) -> this consumer's (with marker bit)."""
        table = bytearray(256)
        mapped = {c["mappedPayloadType"] for c in self.producer.rtp_mapping.get("codecs", [])}
        for codec in self.rtp_parameters["codecs"]:
            pt = codec["payloadType"]
            if pt in mapped and not codec["mimeType"].lower().endswith("/rtx"):
                table[pt] = pt
                table[pt | 0x80] = pt | 0x80
        return bytes(table)

    def ssrcs(self) -> list[int]:
        """The SSRCs this consumer sends on (feedback about them reaches it)."""
        return [e["ssrc"] for e in self.rtp_parameters["encodings"]]

    def start(self) -> None:
        """Attach to the producer and start flowing unless paused."""
        self.producer.add_consumer(self)
        self._update_active()

    def _switch_layer(self, layer: int) -> None:
        """Start forwarding another simulcast encoding, on its key frame, as one continuous stream."""
        self.current_layer = layer
        self._sync_needed = True
        self._notify_layers()

    def _fall_back(self, layer: int) -> None:
        """The layer aimed at went silent (the sender stopped it) while `layer` arrives: take that one."""
        self.target_layer = layer
        self._up_rounds = self._silent_since = 0
        self._set_waiting(True)
        self.request_keyframe()

    def _notify_layers(self) -> None:
        layers = (self.current_layer, self.temporal_layer)
        if layers != self._notified_layers and self.current_layer >= 0:
            self._notified_layers = layers
            self._notify(self.id, "layerschange", {"spatialLayer": layers[0], "temporalLayer": layers[1]})

    @property
    def temporal_layer(self) -> int:
        """The highest temporal layer forwarded: the allocator's aim within the preferred one."""
        return min(self.target_temporal, self.preferred_temporal)

    @property
    def allocatable(self) -> bool:
        """Whether the allocator has layers to choose for it: simulcast, or VP8 temporal layers."""
        return self._simulcast or (self._vp8 is not None and self._temporal_layers > 1)

    def want(self) -> Want:
        """What the allocator needs to know of this consumer."""
        return Want(self.priority, self.producer.layer_bitrates(), self.preferred_spatial, self.current_layer,
                    self._temporal_layers, self.preferred_temporal, self.temporal_layer)

    def aim_at(self, rung: tuple[int, int]) -> None:
        """Aim at (spatial, temporal): a lower rung at once, a higher one only once it has been the aim for
        UP_ROUNDS calls in a row. Another simulcast encoding starts at its next key frame (asked for now)."""
        spatial, temporal = rung
        if not self.active or spatial < 0:
            return
        if rung > (self.target_layer, self.target_temporal) and self.current_layer >= 0:
            self._up_rounds += 1
            if self._up_rounds < UP_ROUNDS:
                return
        self._up_rounds = 0
        self.target_temporal = temporal
        self._apply_temporal()
        if self._simulcast and spatial != self.target_layer:
            self.target_layer = spatial
            if self.current_layer != spatial:
                self._set_waiting(True)
                self.request_keyframe()

    def _apply_temporal(self) -> None:
        if self._vp8 is not None:
            temporal = self.temporal_layer
            self._vp8.max_temporal_layer = temporal if temporal < self._temporal_layers - 1 else MAX_TEMPORAL_LAYER
        self._notify_layers()

    def _sync(self, seq: int, ts: int) -> None:
        next_seq = (self.last_seq + 1) & 0xFFFF
        elapsed = time.monotonic() - self.last_sent if self.last_sent else 0.0
        next_ts = (self.last_ts + max(1, int(elapsed * self._clock_rate))) & 0xFFFFFFFF
        self._seq_off = (next_seq - seq) & 0xFFFF
        self._ts_off = (next_ts - ts) & 0xFFFFFFFF
        self._sync_seq = seq
        self._sync_needed = False
        if self._vp8 is not None:
            self._vp8.sync()
        self._set_waiting(False)

    def receive_nack(self, seqs: list[int]) -> None:
        """Resend what the receiver lost: as RTX when negotiated, else the packet itself."""
        self.nacks_received += 1
        if self.rtx_buffer is None or not self.active:
            return
        now_ms = time.monotonic() * 1000
        hold_ms = max(self.rtt_ms, MIN_RESEND_INTERVAL_MS)
        for seq in seqs:
            stored = self.rtx_buffer.resend(seq, now_ms, hold_ms)
            if stored is not None and self._resend(*stored):
                self.retransmitted += 1

    def can_probe(self) -> bool:
        """Whether this consumer has sent video it can resend as RTX to probe the path."""
        return self.active and self.packets > 0 and self.rtx_buffer is not None and self.rtx_pt is not None

    def send_probe(self, back: int, cluster: "ProbeCluster") -> int:
        """Resend as RTX the packet sent `back` packets ago, as part of `cluster`; its size (0: none left)."""
        if self.rtx_buffer is None:
            return 0
        stored = self.rtx_buffer.get((self.last_seq - back) & 0xFFFF, time.monotonic() * 1000)
        if stored is None:
            return 0
        return self._resend(*stored, cluster=cluster)

    def _resend(self, packet: bytearray, length: int, cluster: "ProbeCluster | None" = None) -> int:
        """Send a stored packet again (as RTX when negotiated): its size, 0 when it did not go."""
        if self.rtx_pt is not None and self.rtx_ssrc is not None:
            self._rtx_seq = (self._rtx_seq + 1) & 0xFFFF
            length = build_rtx(packet, length, RTX_SCRATCH, self.rtx_pt, self.rtx_ssrc, self._rtx_seq)
            if length < 0:
                return 0
            packet = RTX_SCRATCH
        now = time.monotonic()
        twcc_seq = self._renumber(packet, length, now)
        if cluster is not None and twcc_seq >= 0:
            cluster.sent(twcc_seq, now, length)
        sent = self.transport.send_rtp(memoryview(packet)[:length], self.ext_map, self.priority,
                                       paced=cluster is None, now=now, twcc_seq=twcc_seq)
        return length if sent else 0

    def _renumber(self, packet: bytearray, length: int, now: float) -> int:
        """A resent packet is a new one for the transport-wide count (the estimate would take it twice)."""
        at = map_extensions(packet, length, None, _TWCC)[2]
        if at < 0:
            return -1
        twcc_seq = self.transport.next_twcc_seq(length, now)
        set_transport_wide_seq(packet, at, twcc_seq)
        return twcc_seq

    def receive_report(self, block: rtcp.ReportBlock) -> None:
        """A receiver report about our stream: loss gives the score, LSR/DLSR the round trip."""
        sent_at = self._sr_sent.get(block.lsr)
        if sent_at is not None:
            self.rtt_ms = max(0.0, (time.monotonic() - sent_at - block.dlsr / 65536) * 1000)
        score = loss_score(block.fraction_lost / 256)
        if score != self.score:
            self.score = score
            self._notify_score()

    def producer_score_changed(self, scores: list[int]) -> None:
        if scores != self._producer_scores:
            self._producer_scores = scores
            self._notify_score()

    def _notify_score(self) -> None:
        """consumer.score: ours (the receiver's loss) and the producer's (the sender's loss)."""
        scores = self._producer_scores or self.producer.scores()
        self._notify(self.id, "score", {"score": self.score, "producerScore": min(scores, default=10),
                                        "producerScores": scores})

    def _update_active(self) -> None:
        active = not (self.paused or self.producer_is_paused or self.closed) and self.transport.can_send()
        if active and not self.active:
            self._sync_needed = True
            if self._simulcast:
                self.current_layer = -1
            if self._is_video:
                self._set_waiting(True)
                self.request_keyframe()
        elif not active:
            self._set_waiting(False)
        self.active = active

    def _set_waiting(self, waiting: bool) -> None:
        if waiting != self._waiting:
            self._waiting = waiting
            self.producer.keyframe_waiters += 1 if waiting else -1

    @property
    def waiting_for_keyframe(self) -> bool:
        return self._waiting

    def set_preferred_layers(self, spatial: Any, temporal: Any) -> None:
        """Forward at most simulcast layer `spatial` and (VP8) temporal layer `temporal` (None: all)."""
        if not isinstance(spatial, int) or not 0 <= spatial < self.producer.layers:
            raise MediaError(f"spatialLayer must be an integer from 0 to {self.producer.layers - 1}")
        if temporal is None:
            temporal = self._temporal_layers - 1
        if not isinstance(temporal, int) or not 0 <= temporal < max(self._temporal_layers, 1):
            raise MediaError(f"temporalLayer must be an integer from 0 to {self._temporal_layers - 1}")
        self.preferred_spatial, self.preferred_temporal = spatial, temporal
        self._apply_temporal()
        if self.target_layer > spatial:
            self.aim_at((spatial, self.target_temporal))

    def set_priority(self, priority: int) -> None:
        if not isinstance(priority, int) or not 1 <= priority <= 255:
            raise MediaError("priority must be an integer from 1 to 255")
        self.priority = priority

    def request_keyframe(self) -> None:
        self.keyframe_requests += 1
        self.producer.request_keyframe()

    def transport_state_changed(self) -> None:
        self._update_active()

    def pause(self) -> None:
        self.paused = True
        self._update_active()

    def resume(self) -> None:
        self.paused = False
        self._update_active()

    def producer_paused(self) -> None:
        self.producer_is_paused = True
        self._update_active()
        self._notify(self.id, "producerpause", None)

    def producer_resumed(self) -> None:
        self.producer_is_paused = False
        self._update_active()
        self._notify(self.id, "producerresume", None)

    def producer_closed(self) -> None:
        """The producer went away: close and tell the control process."""
        self.close(detach=False)
        self._notify(self.id, "producerclose", None)

    def close(self, detach: bool = True) -> None:
        if self.closed:
            return
        self.closed = True
        self._set_waiting(False)
        self.active = False
        self.transport.router.totals.retire_consumer(self)
        if detach:
            self.producer.remove_consumer(self)
        self.transport.remove_consumer(self)

    def sender_report(self, ntp: int) -> bytes | None:
        """An RTCP SR mapping now to this stream's RTP clock, or None before the first packet."""
        if not self.packets:
            return None
        now = time.monotonic()
        rtp_ts = (self.last_ts + int((now - self.last_sent) * self._clock_rate)) & 0xFFFFFFFF
        if len(self._sr_sent) > 8:
            self._sr_sent.clear()
        self._sr_sent[rtcp.ntp_middle32(ntp)] = now
        return rtcp.sender_report(self.ssrc, ntp, rtp_ts, self.packets & 0xFFFFFFFF, self.bytes & 0xFFFFFFFF)

    def get_stats(self) -> list[dict[str, Any]]:
        own = {
            "type": "outbound-rtp",
            "timestamp": int(time.time() * 1000),
            "ssrc": self.ssrc,
            "rtxSsrc": self.rtx_ssrc,
            "kind": self.kind,
            "mimeType": self.rtp_parameters["codecs"][0]["mimeType"],
            "packetCount": self.packets,
            "byteCount": self.bytes,
            "pliCount": self.keyframe_requests,
            "nackCount": self.nacks_received,
            "packetsRetransmitted": self.retransmitted,
            "roundTripTime": self.rtt_ms,
            "score": self.score,
            "spatialLayer": self.current_layer,
            "targetSpatialLayer": self.target_layer,
            "temporalLayer": self.temporal_layer,
        }
        return [own, *self.producer.get_stats()]

    def dump(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "producerId": self.producer.id,
            "kind": self.kind,
            "type": self.type,
            "rtpParameters": self.rtp_parameters,
            "paused": self.paused,
            "producerPaused": self.producer_is_paused,
            "priority": self.priority,
            "score": self.score,
            "preferredLayers": {"spatialLayer": self.preferred_spatial, "temporalLayer": self.preferred_temporal},
            "currentLayers": {"spatialLayer": self.current_layer, "temporalLayer": self.temporal_layer},
        }


def _temporal_layers(scalability_mode: str | None) -> int:
    """T of an "LxTy" scalability mode (1 without one)."""
    match = _SCALABILITY.match(scalability_mode or "")
    return int(match.group(2)) if match else 1
