"""What every transport in the worker shares: its producers, consumers, RTCP and timers."""

from __future__ import annotations

import asyncio
import secrets
import struct
import time
from abc import ABC, abstractmethod
from typing import TYPE_CHECKING, Any, Callable

from kolabmeet.media.capabilities import TRANSPORT_WIDE_CC
from kolabmeet.media.errors import InvalidStateError, MediaError
from kolabmeet.media.worker import rtcp
from kolabmeet.media.worker.allocator import allocate, wanted_bitrate
from kolabmeet.media.worker.bandwidth_estimator import BandwidthEstimator
from kolabmeet.media.worker.consumer import Consumer
from kolabmeet.media.worker.producer import Producer
from kolabmeet.media.worker.rtp import find_extension, map_extensions
from kolabmeet.media.worker.srtp import PacketBuffer
from kolabmeet.media.worker.tcc_feedback import FEEDBACK_INTERVAL, FEEDBACK_ON_LOSS, TccFeedback

if TYPE_CHECKING:
    from kolabmeet.media.worker.router import Router

RTCP_INTERVAL = 1.0
RECV = PacketBuffer()
RECV_BUFFER = RECV.data
RECV_VIEW = RECV.view
SEND = PacketBuffer()
"""Where a consumer's copy of a packet is made (extension ids changed, SRTP applied)."""
_SSRC = struct.Struct("!I")
_U16 = struct.Struct("!H")

Notify = Callable[[str, str, Any], None]


def _extension_text(buf: bytearray, length: int, ext_id: int) -> str | None:
    """The value of a text header extension (MID, RID), or None."""
    if not ext_id:
        return None
    offset, size = find_extension(buf, length, ext_id)
    if offset < 0:
        return None
    return bytes(buf[offset:offset + size]).decode("ascii", "replace")


class Transport(ABC):
    """Base of the worker's transports; subclasses move the bytes."""

    kind_name = "transport"

    def __init__(self, transport_id: str, router: "Router", notify: Notify) -> None:
        self.id = transport_id
        self.router = router
        self.notify = notify
        self.producers: dict[str, Producer] = {}
        self.consumers: dict[str, Consumer] = {}
        self.rtcp_ssrc = secrets.randbits(32) or 1
        self.closed = False
        self.bytes_received = 0
        self.bytes_sent = 0
        self.max_incoming_bitrate: int | None = None
        self._ssrc_table: dict[int, Producer] = {}
        self._consumer_by_ssrc: dict[int, Consumer] = {}
        self._twcc_seq = 0
        self.estimator = BandwidthEstimator()
        """What this transport can send to its remote, from the remote's feedback on our packets."""
        self._allocated_for = 0.0
        self._by_mid: dict[str, Producer] = {}
        self.tcc = TccFeedback()
        self._tcc_id = 0
        """The remote's transport-wide-cc extension id, once a producer signalled it: we then send feedback."""
        self._tcc_timer: asyncio.TimerHandle | None = None
        self._rtcp_timer = asyncio.get_running_loop().call_later(RTCP_INTERVAL, self._on_rtcp_timer)

    @abstractmethod
    def send_rtp(self, view: memoryview, ext_map: bytes | None = None, priority: int = 1) -> bool:
        """Send one RTP packet towards the remote (its extension ids mapped); False when it could not go.

        Under congestion, packets of consumers below priority 255 (video) go first; audio's stay.
        """

    @abstractmethod
    def send_rtcp(self, data: bytes) -> None:
        """Send one (compound) RTCP packet towards the remote."""

    @abstractmethod
    def connect(self, data: dict[str, Any]) -> None:
        """Where the remote is (plain) or how to secure the connection (WebRTC)."""

    @abstractmethod
    def can_send(self) -> bool:
        """Whether media can go out now (remote known, connection up)."""

    def produce(self, data: dict[str, Any]) -> Producer:
        producer_id = data["producerId"]
        if producer_id in self.router.producers:
            raise MediaError(f"producer {producer_id} already exists")
        producer = Producer(producer_id, self, data, self.notify)
        for ssrc in producer.media_ssrcs():
            if ssrc in self._ssrc_table:
                raise MediaError(f"ssrc {ssrc} is already in use on this transport")
        if producer.identifies_by_rid():
            if not producer.mid or not producer.mid_ext:
                raise MediaError("a producer without SSRCs needs a mid and the MID header extension")
            if producer.mid in self._by_mid:
                raise MediaError(f"mid {producer.mid} is already in use on this transport")
            self._by_mid[producer.mid] = producer
        for ssrc in producer.media_ssrcs():
            self._ssrc_table[ssrc] = producer
        for extension in producer.rtp_parameters.get("headerExtensions", []):
            if extension["uri"] == TRANSPORT_WIDE_CC:
                self._tcc_id = extension["id"]
        self.producers[producer_id] = producer
        self.router.add_producer(producer)
        return producer

    def consume(self, data: dict[str, Any]) -> Consumer:
        producer = self.router.producers.get(data["producerId"])
        if producer is None:
            raise MediaError(f"producer {data['producerId']} not found")
        consumer = self.make_consumer(producer, data)
        self.consumers[consumer.id] = consumer
        for ssrc in consumer.ssrcs():
            self._consumer_by_ssrc[ssrc] = consumer
        self.router.objects[consumer.id] = consumer
        consumer.start()
        return consumer

    def make_consumer(self, producer: Producer, data: dict[str, Any]) -> Consumer:
        return Consumer(data["consumerId"], self, producer, data, self.notify)

    def remove_producer(self, producer: Producer) -> None:
        self.producers.pop(producer.id, None)
        for ssrc in [s for s, p in self._ssrc_table.items() if p is producer]:
            del self._ssrc_table[ssrc]
        if self._by_mid.get(producer.mid or "") is producer:
            del self._by_mid[producer.mid]
        self.router.remove_producer(producer)

    def remove_consumer(self, consumer: Consumer) -> None:
        self.consumers.pop(consumer.id, None)
        for ssrc in consumer.ssrcs():
            self._consumer_by_ssrc.pop(ssrc, None)
        self.router.objects.pop(consumer.id, None)

    def receive_rtp(self, buf: bytearray, length: int) -> None:
        """Hot path: find the producer by SSRC and hand it the packet."""
        self.bytes_received += length
        ssrc = _SSRC.unpack_from(buf, 8)[0]
        if self._tcc_id and buf[0] & 0x10:
            self._tcc_received(buf, length, ssrc)
        producer = self._ssrc_table.get(ssrc)
        if producer is None:
            producer = self._identify(buf, length, ssrc)
            if producer is None:
                return
        producer.receive_rtp(buf, RECV_VIEW[:length], length, ssrc)

    def _tcc_received(self, buf: bytearray, length: int, ssrc: int) -> None:
        """Note the packet's transport-wide sequence number (probes and unknown SSRCs too: all count)."""
        at = map_extensions(buf, length, None, (self._tcc_id, 0, 0))[0]
        if at < 0:
            return
        tcc = self.tcc
        now = time.monotonic()
        tcc.received(_U16.unpack_from(buf, at)[0], now, ssrc)
        timer = self._tcc_timer
        if timer is None or (tcc.gap and timer.when() > asyncio.get_running_loop().time() + FEEDBACK_ON_LOSS):
            if timer is not None:
                timer.cancel()
            delay = FEEDBACK_ON_LOSS if tcc.gap else FEEDBACK_INTERVAL
            self._tcc_timer = asyncio.get_running_loop().call_later(delay, self._send_tcc)

    def _send_tcc(self) -> None:
        self._tcc_timer = None
        if self.closed:
            return
        for packet in self.tcc.packets(self.rtcp_ssrc):
            self.send_rtcp(packet)

    def _identify(self, buf: bytearray, length: int, ssrc: int) -> Producer | None:
        """A new SSRC: its MID names the producer, its RID (or repaired RID) the encoding."""
        if not self._by_mid:
            return None
        any_producer = next(iter(self._by_mid.values()))
        producer = self._by_mid.get(_extension_text(buf, length, any_producer.mid_ext) or "")
        if producer is None:
            return None
        rid = _extension_text(buf, length, producer.rid_ext)
        repaired = rid is None and producer.rrid_ext > 0
        if repaired:
            rid = _extension_text(buf, length, producer.rrid_ext)
            repaired = rid is not None
        if not producer.bind(ssrc, rid, repaired):
            return None
        self._ssrc_table[ssrc] = producer
        return producer

    def next_twcc_seq(self, size: int, now: float) -> int:
        """The transport-wide sequence number of a packet of `size` bytes leaving now, noted for the estimate."""
        seq = self._twcc_seq = (self._twcc_seq + 1) & 0xFFFF
        self.estimator.history.sent(seq, now, size)
        return seq

    def receive_rtcp(self, buf: bytearray, length: int) -> None:
        """RTCP from the remote: reports and feedback reach their producer or consumer."""
        self.bytes_received += length
        data = bytes(buf[:length])
        for packet_type, fmt, offset, size in rtcp.iter_packets(data):
            if packet_type == rtcp.PT_PSFB and fmt in (rtcp.FMT_PLI, rtcp.FMT_FIR):
                self._on_keyframe_request(data, fmt, offset, size)
            elif packet_type == rtcp.PT_RTPFB and fmt == rtcp.FMT_NACK:
                consumer = self._consumer_by_ssrc.get(rtcp.parse_feedback_ssrcs(data, offset, size)[1])
                if consumer is not None:
                    consumer.receive_nack(rtcp.parse_nack(data, offset, size))
            elif packet_type == rtcp.PT_RTPFB and fmt == rtcp.FMT_TCC:
                feedback = rtcp.parse_transport_cc(data, offset, size)
                if feedback is not None:
                    self.estimator.on_feedback(feedback)
                    if self.estimator.bitrate < 0.8 * self._allocated_for:
                        self._allocate_layers()  # the link got worse: do not wait for the next round
            elif packet_type == rtcp.PT_PSFB and fmt == rtcp.FMT_REMB:
                remb = rtcp.parse_remb(data, offset, size)
                if remb is not None:
                    self.estimator.on_remb(remb[0])
            elif packet_type == rtcp.PT_SR:
                self._on_sender_report(data, offset, size)
            elif packet_type == rtcp.PT_RR:
                parsed = rtcp.parse_receiver_report(data, offset, size)
                if parsed is not None:
                    self._on_report_blocks(parsed[1])

    def _on_sender_report(self, data: bytes, offset: int, size: int) -> None:
        report = rtcp.parse_sender_report(data, offset, size)
        if report is None:
            return
        producer = self._ssrc_table.get(report.ssrc)
        if producer is not None:
            producer.sender_report(report.ssrc, report.ntp)
        self._on_report_blocks(report.reports)

    def _on_report_blocks(self, blocks: list[rtcp.ReportBlock]) -> None:
        for block in blocks:
            consumer = self._consumer_by_ssrc.get(block.ssrc)
            if consumer is not None:
                consumer.receive_report(block)

    def _on_keyframe_request(self, data: bytes, fmt: int, offset: int, size: int) -> None:
        if fmt == rtcp.FMT_PLI:
            ssrcs = [rtcp.parse_feedback_ssrcs(data, offset)[1]]
        else:
            ssrcs = [ssrc for ssrc, _seq in rtcp.parse_fir(data, offset, size)]
        for ssrc in ssrcs:
            consumer = self._consumer_by_ssrc.get(ssrc)
            if consumer is not None and consumer.active:
                consumer.request_keyframe()

    def _on_rtcp_timer(self) -> None:
        if self.closed:
            return
        if self.can_send():
            self._send_reports()
        self._rtcp_timer = asyncio.get_running_loop().call_later(RTCP_INTERVAL, self._on_rtcp_timer)

    def _send_reports(self) -> None:
        """Sender reports for our consumers, receiver reports for our producers."""
        ntp = rtcp.ntp_now()
        for consumer in list(self.consumers.values()):
            report = consumer.sender_report(ntp)
            if report is not None:
                cname = consumer.rtp_parameters.get("rtcp", {}).get("cname") or "kolabmeet"
                self.send_rtcp(report + rtcp.sdes_cname(consumer.ssrc, cname))
            if consumer.waiting_for_keyframe:
                consumer.request_keyframe()
        self._allocate_layers()
        for producer in list(self.producers.values()):
            blocks = producer.report_blocks()
            for start in range(0, len(blocks), 31):
                self.send_rtcp(rtcp.receiver_report(self.rtcp_ssrc, blocks[start:start + 31]))
        if self.max_incoming_bitrate and self._ssrc_table:
            self.send_rtcp(rtcp.remb(self.rtcp_ssrc, self.max_incoming_bitrate, list(self._ssrc_table)[:255]))

    def _allocate_layers(self) -> None:
        """Simulcast layers that fit the estimate, audio counted first."""
        self._allocated_for = self.estimator.bitrate
        video = [c for c in self.consumers.values() if c.simulcast and c.active]
        if not video:
            return
        audio = sum(c.producer.bitrate() for c in self.consumers.values() if c.kind == "audio" and c.active)
        wants = [c.want() for c in video]
        self.estimator.probe_to(audio + wanted_bitrate(wants))
        aims = allocate(self.estimator.bitrate - audio, wants)
        for consumer, aim in zip(video, aims):
            consumer.aim_at(aim)

    def state_changed(self) -> None:
        for consumer in list(self.consumers.values()):
            consumer.transport_state_changed()

    def close(self) -> None:
        """Close the transport with all its producers and consumers."""
        if self.closed:
            return
        self.closed = True
        self._rtcp_timer.cancel()
        if self._tcc_timer is not None:
            self._tcc_timer.cancel()
        for producer in list(self.producers.values()):
            producer.close()
            self.remove_producer(producer)
        for consumer in list(self.consumers.values()):
            consumer.close()

    def check_open(self) -> None:
        if self.closed:
            raise InvalidStateError(f"transport {self.id} is closed")

    def get_stats(self) -> list[dict[str, Any]]:
        return [{
            "type": self.kind_name,
            "transportId": self.id,
            "bytesReceived": self.bytes_received,
            "bytesSent": self.bytes_sent,
            "availableOutgoingBitrate": int(self.estimator.bitrate),
            "deliveredOutgoingBitrate": int(self.estimator.delivered_bitrate),
            "outgoingLoss": round(self.estimator.loss, 3),
            "outgoingBandwidthState": self.estimator.state,
            "maxIncomingBitrate": self.max_incoming_bitrate,
        }]

    def dump(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "producerIds": list(self.producers),
            "consumerIds": list(self.consumers),
            "mapSsrcProducerId": {str(s): p.id for s, p in self._ssrc_table.items()},
        }
