"""What every transport in the worker shares: its producers, consumers, RTCP and timers."""

from __future__ import annotations

import asyncio
import secrets
import struct
import time
from abc import ABC, abstractmethod
from typing import TYPE_CHECKING, Any, Callable

from kolabmeet.media.capabilities import ABS_SEND_TIME, TRANSPORT_WIDE_CC
from kolabmeet.media.errors import InvalidStateError, MediaError
from kolabmeet.media.worker import rtcp
from kolabmeet.media.worker.allocator import allocate, rungs, wanted_bitrate
from kolabmeet.media.worker.bandwidth_estimator import BandwidthEstimator
from kolabmeet.media.worker.consumer import Consumer
from kolabmeet.media.worker.incoming_estimator import IncomingEstimator
from kolabmeet.media.worker.pacer import Pacer
from kolabmeet.media.worker.prober import Prober
from kolabmeet.media.worker.producer import Producer
from kolabmeet.media.worker.rtp import find_extension, map_extensions
from kolabmeet.media.worker.srtp import PacketBuffer
from kolabmeet.media.worker.tcc_feedback import FEEDBACK_INTERVAL, FEEDBACK_ON_LOSS, TccFeedback

if TYPE_CHECKING:
    from kolabmeet.media.worker.router import Router

RTCP_INTERVAL = 1.0
RTCP_COMPOUND_MAX = 1200
"""Bytes of one compound RTCP packet of sender reports (and their SDES), under a path's MTU with SRTCP's trailer."""
RECV = PacketBuffer()
RECV_BUFFER = RECV.data
RECV_VIEW = RECV.view
DRAIN_BURST = 64
"""Datagrams a socket's reader takes per wake-up of the event loop. A worker past a full core
receives faster than it forwards: a reader draining until the socket is empty then never returned,
and the control channel and the timers (RTCP, pacing, layer choices) starved for many seconds.
Stopping after a burst leaves the socket readable; the loop comes back to it after the others,
and what the worker cannot take, the kernel drops."""
SEND = PacketBuffer()
"""Where a consumer's copy of a packet is made (extension ids changed, SRTP applied)."""
_SSRC = struct.Struct("!I")
_U16 = struct.Struct("!H")

Notify = Callable[[str, str, Any], None]


def _wants_remb(rtp_parameters: dict[str, Any]) -> bool:
    feedback = (f for codec in rtp_parameters.get("codecs", []) for f in codec.get("rtcpFeedback", []))
    return any(f.get("type") == "goog-remb" for f in feedback)


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
        self.estimator = BandwidthEstimator()
        self.next_twcc_seq = self.estimator.history.next
        """(size, now) -> the transport-wide sequence number of a packet leaving now, noted for the estimate."""
        self.prober = Prober(self)
        self.pacer: Pacer | None = None
        """Where video bursts wait: made (by transports that pace) once the receiver gave feedback
        (`estimator.informed`), since before that the estimate is a guess not worth holding packets for."""
        """What this transport can send to its remote, from the remote's feedback on our packets."""
        self._allocated_for = 0.0
        self.allocated_bitrate = 0.0
        """What the layers chosen last send (the lowest layers go out whatever the estimate)."""
        self._by_mid: dict[str, Producer] = {}
        self.incoming: IncomingEstimator | None = None
        """For senders that negotiated REMB and not transport-wide CC: what they can send us."""
        self._abs_id = 0
        self.tcc = TccFeedback()
        self._tcc_id = 0
        """The remote's transport-wide-cc extension id, once a producer signalled it: we then send feedback."""
        self._tcc_timer: asyncio.TimerHandle | None = None
        self._rtcp_timer = asyncio.get_running_loop().call_later(RTCP_INTERVAL, self._on_rtcp_timer)

    @abstractmethod
    def send_rtp(self, view: memoryview, ext_map: bytes | None = None, priority: int = 1,
                 paced: bool = True, now: float = 0.0, twcc_seq: int = -1) -> bool:
        """Send one RTP packet towards the remote (its extension ids mapped); False when it could not go.

        Under congestion, packets of consumers below priority 255 (video) go first; audio's stay.
        A transport with a pacer may hold video packets a little (not when `paced` is False: probes
        are spaced by the prober); `now` is the packet's arrival time when the caller has it, `twcc_seq`
        its transport-wide sequence number (-1: none), whose send time a held packet updates.
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
        self._choose_feedback(producer)
        self.producers[producer_id] = producer
        self.router.add_producer(producer)
        return producer

    def _choose_feedback(self, producer: Producer) -> None:
        """Transport-wide CC feedback when the sender negotiated it, else a REMB estimate when it can use one."""
        ids = {e["uri"]: e["id"] for e in producer.rtp_parameters.get("headerExtensions", [])}
        if TRANSPORT_WIDE_CC in ids:
            self._tcc_id = ids[TRANSPORT_WIDE_CC]
            self.incoming, self._abs_id = None, 0
        elif not self._tcc_id and ABS_SEND_TIME in ids and _wants_remb(producer.rtp_parameters):
            self._abs_id = ids[ABS_SEND_TIME]
            self.incoming = self.incoming or IncomingEstimator()

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
        if buf[0] & 0x10:
            if self._tcc_id:
                self._tcc_received(buf, length, ssrc)
            elif self._abs_id:
                self._abs_send_time_received(buf, length)
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

    def _abs_send_time_received(self, buf: bytearray, length: int) -> None:
        at = map_extensions(buf, length, None, (self._abs_id, 0, 0))[0]
        incoming = self.incoming
        if at < 0 or incoming is None:
            return
        abs_send_time = buf[at] << 16 | buf[at + 1] << 8 | buf[at + 2]
        if incoming.received(abs_send_time, length, time.monotonic()) and incoming.remb_due():
            self._send_remb()

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
                    self.estimate_changed()
                    if self.estimator.bitrate < 0.8 * self._allocated_for:
                        self._allocate_layers()  # the link got worse: do not wait for the next round
            elif packet_type == rtcp.PT_PSFB and fmt == rtcp.FMT_REMB:
                remb = rtcp.parse_remb(data, offset, size)
                if remb is not None:
                    self.estimator.on_remb(remb[0])
                    self.estimate_changed()
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
        self._send_sender_reports()
        for consumer in list(self.consumers.values()):
            if consumer.waiting_for_keyframe:
                consumer.request_keyframe()
        self._allocate_layers()
        lost = 0.0
        for producer in list(self.producers.values()):
            blocks = producer.report_blocks()
            lost = max([lost, *(block.fraction_lost / 256 for block in blocks)])
            for start in range(0, len(blocks), 31):
                self.send_rtcp(rtcp.receiver_report(self.rtcp_ssrc, blocks[start:start + 31]))
        if self.incoming is not None:
            self.incoming.on_loss(lost)
        self._send_remb()

    def _send_sender_reports(self) -> None:
        """Our consumers' SRs, then their CNAMEs, in as few compound packets as fit RTCP_COMPOUND_MAX.

        One SDES packet per CNAME, not one of many chunks: aiortc's parser (pymediasoup clients)
        misreads the padding between chunks and drops the whole compound."""
        ntp = rtcp.ntp_now()
        reports: list[bytes] = []
        cnames: list[bytes] = []
        size = 0
        for consumer in list(self.consumers.values()):
            report = consumer.sender_report(ntp)
            if report is None:
                continue
            sdes = rtcp.sdes_cname(consumer.ssrc, consumer.rtp_parameters.get("rtcp", {}).get("cname") or "kolabmeet")
            if reports and size + len(report) + len(sdes) > RTCP_COMPOUND_MAX:
                self.send_rtcp(b"".join(reports + cnames))
                reports, cnames, size = [], [], 0
            reports.append(report)
            cnames.append(sdes)
            size += len(report) + len(sdes)
        if reports:
            self.send_rtcp(b"".join(reports + cnames))

    def _send_remb(self) -> None:
        """REMB: our estimate to a REMB sender, maxIncomingBitrate (if set) to any; both capped by it."""
        cap = self.max_incoming_bitrate
        value = int(self.incoming.bitrate) if self.incoming is not None and self.incoming.ready else cap
        if cap:
            value = min(value, cap) if value else cap
        if value and self._ssrc_table:
            self.send_rtcp(rtcp.remb(self.rtcp_ssrc, value, list(self._ssrc_table)[:255]))
            if self.incoming is not None:
                self.incoming.last_remb = value

    def _allocate_layers(self) -> None:
        """Layers that fit the estimate, after audio and the video that has no layers to choose from."""
        self._allocated_for = self.estimator.bitrate
        active = [c for c in self.consumers.values() if c.active]
        audio = sum(c.producer.bitrate() for c in active if c.kind == "audio")
        fixed = audio + sum(c.producer.bitrate() for c in active if c.kind == "video" and not c.allocatable)
        self.estimator.untracked_bitrate = audio
        video = [c for c in active if c.allocatable]
        allocated = 0.0
        if video:
            wants = [c.want() for c in video]
            self._probe(fixed + wanted_bitrate(wants))
            aims = allocate(self._budget() - fixed, wants)
            for consumer, aim in zip(video, aims):
                consumer.aim_at(aim)
            allocated = sum(dict(rungs(want)).get(aim, 0.0) for want, aim in zip(wants, aims))
        self.allocated_bitrate = fixed + allocated
        self.estimate_changed()

    def _budget(self) -> float:
        """What the layers may use: the estimate, once the receiver gave feedback; without any (a plain
        receiver), the estimate is only a guess and every consumer takes its best layer."""
        return self.estimator.bitrate if self.estimator.informed else float("inf")

    def _probe(self, bitrate: float) -> None:
        """Probe for `bitrate` when the estimate is short of it (now and then)."""
        cluster = self.estimator.probe_due(bitrate)
        if cluster is not None and not self.prober.start(cluster):
            self.estimator.raise_to(bitrate)

    def make_pacer(self) -> Pacer | None:
        """A pacer for this transport's sends; None: this kind of transport does not pace."""
        return None

    def estimate_changed(self) -> None:
        """The estimate (or the allocation) moved: the pacer follows it, made once the receiver gave feedback."""
        if self.pacer is None and self.estimator.informed:
            self.pacer = self.make_pacer()
        if self.pacer is not None:
            self.pacer.set_bitrate(max(self.estimator.bitrate, self.allocated_bitrate))

    def state_changed(self) -> None:
        for consumer in list(self.consumers.values()):
            consumer.transport_state_changed()

    def close(self) -> None:
        """Close the transport with all its producers and consumers."""
        if self.closed:
            return
        self.closed = True
        self._rtcp_timer.cancel()
        self.prober.close()
        if self._tcc_timer is not None:
            self._tcc_timer.cancel()
        for producer in list(self.producers.values()):
            producer.close()
            self.remove_producer(producer)
        for consumer in list(self.consumers.values()):
            consumer.close()

    def total_bytes_sent(self) -> int:
        """RTP and RTCP bytes sent (a transport whose sender counts its own adds them)."""
        return self.bytes_sent

    def check_open(self) -> None:
        if self.closed:
            raise InvalidStateError(f"transport {self.id} is closed")

    def get_stats(self) -> list[dict[str, Any]]:
        return [{
            "type": self.kind_name,
            "transportId": self.id,
            "bytesReceived": self.bytes_received,
            "bytesSent": self.total_bytes_sent(),
            "availableOutgoingBitrate": int(self.estimator.bitrate),
            "deliveredOutgoingBitrate": int(self.estimator.delivered_bitrate),
            "outgoingLoss": round(self.estimator.loss, 3),
            "outgoingBandwidthState": self.estimator.state,
            "probeClusters": self.estimator.probes,
            "probeClustersPassed": self.estimator.probes_passed,
            "availableIncomingBitrate": int(self.incoming.bitrate) if self.incoming and self.incoming.ready else None,
            "maxIncomingBitrate": self.max_incoming_bitrate,
        }]

    def dump(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "producerIds": list(self.producers),
            "consumerIds": list(self.consumers),
            "mapSsrcProducerId": {str(s): p.id for s, p in self._ssrc_table.items()},
        }
