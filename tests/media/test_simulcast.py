"""Simulcast: encodings found by MID and RID, one forwarded at a time, switched on key frames."""

from __future__ import annotations

import asyncio
import contextlib
import fractions
import os
from typing import Any, AsyncIterator

import av
from aiortc.codecs.vpx import Vp8Encoder
from aiortc.rtcrtpparameters import RTCRtpHeaderExtensionParameters, RTCRtpParameters
from aiortc.rtp import HeaderExtensionsMap, RtpPacket

from kolabmeet.media.capabilities import (
    ABS_SEND_TIME, MID, ROUTER_IDS, RTP_STREAM_ID, TRANSPORT_WIDE_CC as TWCC, router_rtp_capabilities,
)
from kolabmeet.media.worker.rtp import payload_bounds
from kolabmeet.media.worker.vp8 import parse_descriptor
from kolabmeet.media.worker import rtcp
from tests.helpers import Browser, KolabApp, joined
from tests.media.rtp_peer import VP8_PT, Receiver, gap_free, plain_viewer, udp_socket

EXTENSIONS = HeaderExtensionsMap()
EXTENSIONS.configure(RTCRtpParameters(headerExtensions=[
    RTCRtpHeaderExtensionParameters(id=1, uri=MID), RTCRtpHeaderExtensionParameters(id=2, uri=RTP_STREAM_ID)]))


class SimulcastSender:
    """Two VP8 encodings (160 and 320 wide) with MID and RID extensions, SSRCs never signalled."""

    def __init__(self, mid: str = "7", noisy: bool = False) -> None:
        self.mid = mid
        self.noisy = noisy
        """Frames of random pixels: a few Mbit/s per layer instead of a few kbit/s of blank frames."""
        self.tagged = True
        """Whether packets carry MID and RID (Chromium stops once RTCP acknowledged its SSRCs)."""
        self.layers = {"r0": (160, 120, 3001), "r1": (320, 240, 3002)}
        self.encoders = {rid: Vp8Encoder() for rid in self.layers}
        self.seq = {rid: 100 for rid in self.layers}
        self.frame = 0
        self.keyframe = True
        self.rtp: asyncio.DatagramTransport | None = None
        self.rtcp: asyncio.DatagramTransport | None = None

    async def open(self) -> None:
        self.rtp = await udp_socket(lambda data, addr: None)
        self.rtcp = await udp_socket(self._on_rtcp)

    def _on_rtcp(self, data: bytes, addr: Any) -> None:
        if any(pt == rtcp.PT_PSFB and fmt == rtcp.FMT_PLI for pt, fmt, _o, _s in rtcp.iter_packets(data)):
            self.keyframe = True

    def send_frame(self, address: tuple[str, int], rids: tuple[str, ...]) -> None:
        for rid in rids:
            width, height, ssrc = self.layers[rid]
            frame = av.VideoFrame(width, height, "yuv420p")
            if self.noisy:
                for plane in frame.planes:
                    plane.update(os.urandom(plane.buffer_size))
            frame.pts, frame.time_base = self.frame * 6000, fractions.Fraction(1, 90000)
            payloads, ts = self.encoders[rid].encode(frame, force_keyframe=self.keyframe)
            for index, payload in enumerate(payloads):
                packet = RtpPacket(payload_type=VP8_PT, sequence_number=self.seq[rid], timestamp=ts, ssrc=ssrc,
                                   marker=index == len(payloads) - 1, payload=payload)
                if self.tagged:
                    packet.extensions.mid = self.mid
                    packet.extensions.rtp_stream_id = rid
                self.seq[rid] = (self.seq[rid] + 1) & 0xFFFF
                self.rtp.sendto(packet.serialize(EXTENSIONS), address)
        self.keyframe = False
        self.frame += 1

    async def stream(self, address: tuple[str, int], seconds: float, rids: tuple[str, ...]) -> None:
        for _ in range(int(seconds * 15)):
            self.send_frame(address, rids)
            await asyncio.sleep(1 / 15)


class SizedReceiver(Receiver):
    """Also notes the width of every decoded frame."""

    def __init__(self) -> None:
        super().__init__()
        self.widths: list[int] = []

    def on_frames(self, frames: list[Any]) -> None:
        super().on_frames(frames)
        self.widths.extend(frame.width for frame in frames)


class RecordingReceiver(SizedReceiver):
    """Also keeps every packet."""

    def __init__(self) -> None:
        super().__init__()
        self.recorded: list[bytes] = []

    def _on_rtp(self, data: bytes, addr: Any) -> None:
        self.recorded.append(data)
        super()._on_rtp(data, addr)


def _producer_parameters(mid: str, by_ssrc: bool = False) -> dict[str, Any]:
    encodings = [{"rid": "r0", "scalabilityMode": "L1T1"}, {"rid": "r1", "scalabilityMode": "L1T1"}]
    if by_ssrc:
        encodings = [{"ssrc": 3001, "scalabilityMode": "L1T1"}, {"ssrc": 3002, "scalabilityMode": "L1T1"}]
    return {
        "mid": mid,
        "codecs": [{"mimeType": "video/VP8", "payloadType": VP8_PT, "clockRate": 90000,
                    "rtcpFeedback": [{"type": "nack", "parameter": "pli"}]}],
        "headerExtensions": [{"uri": MID, "id": 1}, {"uri": RTP_STREAM_ID, "id": 2}],
        "encodings": encodings,
        "rtcp": {},
    }


@contextlib.asynccontextmanager
async def _simulcast_call(app: KolabApp, browsers: list[Browser], receiver: Receiver, caps: dict[str, Any] | None = None,
                          mid: str = "7", by_ssrc: bool = False, noisy: bool = False
                          ) -> AsyncIterator[tuple[Browser, SimulcastSender, Any, dict[str, Any]]]:
    """A plain viewer, then a publisher of the two-encoding stream: (viewer, sender, address, newConsumer data);
    the sender and receiver are closed at the end."""
    room = await app.create_room()
    viewer, _ = await plain_viewer(app, room, receiver, caps)
    browsers.append(viewer)
    publisher = await joined(app, room, role=3)
    browsers.append(publisher)
    sender = SimulcastSender(mid, noisy)
    sender.tagged = not by_ssrc
    await sender.open()
    transport = await publisher.ok("createPlainTransport", {"producing": True, "consuming": False})
    sender.rtcp.sendto(rtcp.sender_report(1, rtcp.ntp_now(), 0, 0, 0), ("127.0.0.1", transport["rtcpPort"]))
    await publisher.ok("produce", {"transportId": transport["id"], "kind": "video",
                                   "rtpParameters": _producer_parameters(mid, by_ssrc), "appData": {"source": "webcam"}})
    (request,) = await viewer.wait_request("newConsumer")
    try:
        yield viewer, sender, ("127.0.0.1", transport["port"]), request["data"]
    finally:
        sender.rtp.close()
        sender.rtcp.close()
        receiver.close()


def _picture_ids(packets: list[bytes]) -> list[int]:
    """The VP8 PictureID of each new picture, in arrival order."""
    ids: list[int] = []
    for data in packets:
        start, end = payload_bounds(data, len(data))
        descriptor = parse_descriptor(data, start, end)
        picture = int.from_bytes(data[descriptor.picture_id_at:descriptor.picture_id_at + 2], "big") & 0x7FFF
        if not ids or ids[-1] != picture:
            ids.append(picture)
    return ids


async def test_simulcast_forwards_the_best_live_encoding(app: KolabApp, browsers: list[Browser]) -> None:
    receiver = RecordingReceiver()
    async with _simulcast_call(app, browsers, receiver) as (viewer, sender, address, consumer):
        assert consumer["type"] == "simulcast"
        assert consumer["rtpParameters"]["rtcp"]["cname"], "a producer that signalled no CNAME is given one"
        assert consumer["rtpParameters"]["encodings"][0]["scalabilityMode"].startswith("L2")
        await sender.stream(address, 1.5, ("r0", "r1"))
        await viewer.wait_for("consumerLayersChanged", lambda d: d["layers"]["spatialLayer"] == 1)
        assert receiver.widths and set(receiver.widths[-10:]) == {320}
        await sender.stream(address, 3.0, ("r0",))
        await viewer.wait_for("consumerLayersChanged", lambda d: d["layers"]["spatialLayer"] == 0)
        await sender.stream(address, 1.0, ("r0",))
        assert set(receiver.widths[-10:]) == {160}
        await sender.stream(address, 3.5, ("r0", "r1"))  # up again after two allocation rounds (hysteresis)
        switches = viewer.seen("consumerLayersChanged")
        assert [d["layers"]["spatialLayer"] for d in switches] == [1, 0, 1]
        await sender.stream(address, 1.0, ("r0", "r1"))
        assert set(receiver.widths[-10:]) == {320}
        (ssrc,) = receiver.streams
        assert ssrc == consumer["rtpParameters"]["encodings"][0]["ssrc"]
        assert gap_free(receiver.streams[ssrc].seqs)
        last = RtpPacket.parse(receiver.streams[ssrc].last_packet, EXTENSIONS)
        assert last.extensions.mid == consumer["rtpParameters"]["mid"], "the consumer's MID replaces the producer's"
        assert last.extensions.rtp_stream_id is None, "RIDs name the producer's encodings: not forwarded"
        pictures = _picture_ids(receiver.recorded)
        assert all((b - a) & 0x7FFF == 1 for a, b in zip(pictures, pictures[1:])), "PictureIDs continue across switches"


async def test_a_layer_the_sender_stops_is_left_within_a_second(app: KolabApp, browsers: list[Browser]) -> None:
    receiver = SizedReceiver()
    async with _simulcast_call(app, browsers, receiver) as (viewer, sender, address, _consumer):
        await sender.stream(address, 1.5, ("r0", "r1"))
        await viewer.wait_for("consumerLayersChanged", lambda d: d["layers"]["spatialLayer"] == 1)
        stopped = asyncio.get_running_loop().time()
        streaming = asyncio.ensure_future(sender.stream(address, 2.0, ("r0",)))
        await viewer.wait_for("consumerLayersChanged", lambda d: d["layers"]["spatialLayer"] == 0, timeout=2.0)
        assert asyncio.get_running_loop().time() - stopped < 1.0, "0.5 s of silence, then the next key frame"
        await streaming
        assert set(receiver.widths[-5:]) == {160}


async def test_extension_ids_follow_the_consumers_capabilities(app: KolabApp, browsers: list[Browser]) -> None:
    """A receiver that numbers MID 9 gets MID under id 9, with its own value."""
    caps = router_rtp_capabilities()
    for extension in caps["headerExtensions"]:
        if extension["uri"] == MID:
            extension["preferredId"] = 9
    receiver = Receiver()
    async with _simulcast_call(app, browsers, receiver, caps) as (_viewer, sender, address, consumer):
        await sender.stream(address, 1.0, ("r0", "r1"))
        (ssrc,) = receiver.streams
        theirs = HeaderExtensionsMap()
        theirs.configure(RTCRtpParameters(headerExtensions=[RTCRtpHeaderExtensionParameters(id=9, uri=MID)]))
        packet = RtpPacket.parse(receiver.streams[ssrc].last_packet, theirs)
        assert packet.extensions.mid == consumer["rtpParameters"]["mid"]
        assert RtpPacket.parse(receiver.streams[ssrc].last_packet, EXTENSIONS).extensions.mid is None


async def test_a_receiver_without_header_extensions_gets_none_of_ours(app: KolabApp, browsers: list[Browser]) -> None:
    """No MID, send time or transport-wide number is added for it (nor room made for them)."""
    caps = router_rtp_capabilities()
    caps["headerExtensions"] = []
    receiver = RecordingReceiver()
    async with _simulcast_call(app, browsers, receiver, caps) as (_viewer, sender, address, _consumer):
        await sender.stream(address, 1.0, ("r0", "r1"))
        assert receiver.frames_decoded > 5
        ours = HeaderExtensionsMap()
        ours.configure(RTCRtpParameters(headerExtensions=[
            RTCRtpHeaderExtensionParameters(id=ROUTER_IDS[uri], uri=uri) for uri in (MID, ABS_SEND_TIME, TWCC)]))
        for data in receiver.recorded:
            extensions = RtpPacket.parse(data, ours).extensions
            assert (extensions.mid, extensions.abs_send_time, extensions.transport_sequence_number) == (None,) * 3
            assert data[0] & 0x10 and int.from_bytes(data[14:16], "big") == 2, "the sender's MID and RID blanked, no room added"


async def test_every_packet_carries_the_consumers_mid(app: KolabApp, browsers: list[Browser]) -> None:
    """A MID longer than the consumer's, then none at all (as Chromium does): the consumer's MID is in every packet."""
    receiver = RecordingReceiver()
    async with _simulcast_call(app, browsers, receiver, mid="video-12") as (_viewer, sender, address, consumer):
        await sender.stream(address, 1.0, ("r0", "r1"))
        sender.tagged = False
        count = len(receiver.recorded)
        await sender.stream(address, 1.0, ("r0", "r1"))
        assert len(receiver.recorded) > count + 10, "packets without MID and RID still reach the consumer"
        assert receiver.frames_decoded > 20
        for data in receiver.recorded:
            assert RtpPacket.parse(data, EXTENSIONS).extensions.mid == consumer["rtpParameters"]["mid"]


async def test_simulcast_encodings_by_ssrc(app: KolabApp, browsers: list[Browser]) -> None:
    """Encodings signalled by SSRC (no MID or RID in the packets): the best one is forwarded, the other on loss."""
    receiver = SizedReceiver()
    async with _simulcast_call(app, browsers, receiver, by_ssrc=True) as (viewer, sender, address, consumer):
        assert consumer["type"] == "simulcast"
        await sender.stream(address, 1.5, ("r0", "r1"))
        await viewer.wait_for("consumerLayersChanged", lambda d: d["layers"]["spatialLayer"] == 1)
        assert set(receiver.widths[-10:]) == {320}
        await sender.stream(address, 3.0, ("r0",))
        await viewer.wait_for("consumerLayersChanged", lambda d: d["layers"]["spatialLayer"] == 0)
        await sender.stream(address, 1.0, ("r0",))
        assert set(receiver.widths[-10:]) == {160}
        (ssrc,) = receiver.streams
        assert gap_free(receiver.streams[ssrc].seqs)


async def _stream_with_remb(sender: SimulcastSender, receiver: Receiver, address: Any, seconds: float,
                            bitrate: int) -> None:
    """Both layers for `seconds`, the receiver asking (REMB) to get no more than `bitrate`."""
    server_rtcp = ("127.0.0.1", receiver.rtcp_source_port)
    for _ in range(int(seconds * 15)):
        sender.send_frame(address, ("r0", "r1"))
        if sender.frame % 5 == 0:
            receiver.rtcp.sendto(rtcp.remb(0x5EED, bitrate, list(receiver.streams)), server_rtcp)
        await asyncio.sleep(1 / 15)


async def test_layers_follow_the_receivers_estimate(app: KolabApp, browsers: list[Browser]) -> None:
    """A receiver whose REMB says its link is narrow gets the low layer (and keeps decoding); when it says the
    link is wide again, the high layer comes back after the allocator's hysteresis."""
    receiver = SizedReceiver()
    async with _simulcast_call(app, browsers, receiver, noisy=True) as (viewer, sender, address, _consumer):
        await sender.stream(address, 1.5, ("r0", "r1"))
        await viewer.wait_for("consumerLayersChanged", lambda d: d["layers"]["spatialLayer"] == 1)
        assert receiver.rtcp_source_port, "the server's sender reports told us its RTCP port"
        await _stream_with_remb(sender, receiver, address, 3.0, 30_000)
        assert viewer.seen("consumerLayersChanged")[-1]["layers"]["spatialLayer"] == 0
        decoded = receiver.frames_decoded
        await _stream_with_remb(sender, receiver, address, 1.0, 30_000)
        assert set(receiver.widths[-10:]) == {160} and receiver.frames_decoded > decoded + 10
        await _stream_with_remb(sender, receiver, address, 4.0, 5_000_000)
        assert viewer.seen("consumerLayersChanged")[-1]["layers"]["spatialLayer"] == 1
        assert set(receiver.widths[-10:]) == {320}
