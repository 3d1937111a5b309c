"""Plain-RTP test peers on 127.0.0.1: a VP8+Opus sender and a receiver that decodes.

They use aiortc's codecs (libvpx, libopus) so that what crosses the server is
real media: the receiver reassembles VP8 frames and decodes them.
"""

from __future__ import annotations

import asyncio
import fractions
import struct
import time
from dataclasses import dataclass, field
from typing import Any

import av
from aiortc.codecs.opus import OpusEncoder
from aiortc.codecs.vpx import Vp8Decoder, Vp8Encoder, vp8_depayload
from aiortc.jitterbuffer import JitterFrame

from kolabmeet.media.capabilities import ROUTER_IDS, TRANSPORT_WIDE_CC, router_rtp_capabilities
from kolabmeet.media.worker import rtcp
from kolabmeet.media.worker.rtp import payload_bounds

from tests.helpers import Browser, KolabApp, joined

VP8_PT = 101
RTX_PT = 102
OPUS_PT = 100
_HEADER = struct.Struct("!BBHII")
TCC_ID = ROUTER_IDS[TRANSPORT_WIDE_CC]


class _Udp(asyncio.DatagramProtocol):
    def __init__(self, on_datagram: Any) -> None:
        self.on_datagram = on_datagram

    def datagram_received(self, data: bytes, addr: Any) -> None:
        self.on_datagram(data, addr)


async def udp_socket(on_datagram: Any) -> asyncio.DatagramTransport:
    loop = asyncio.get_running_loop()
    transport, _ = await loop.create_datagram_endpoint(lambda: _Udp(on_datagram), local_addr=("127.0.0.1", 0))
    return transport


def port_of(transport: asyncio.DatagramTransport) -> int:
    return transport.get_extra_info("sockname")[1]


def rtp_packet(pt: int, seq: int, ts: int, ssrc: int, payload: bytes, marker: bool = False,
               transport_cc: int | None = None) -> bytes:
    """An RTP packet; with `transport_cc`, a one-byte extension element carrying that transport-wide number."""
    header = _HEADER.pack(0x80 if transport_cc is None else 0x90, pt | (0x80 if marker else 0), seq & 0xFFFF,
                          ts & 0xFFFFFFFF, ssrc)
    if transport_cc is None:
        return header + payload
    element = bytes([TCC_ID << 4 | 1]) + (transport_cc & 0xFFFF).to_bytes(2, "big") + b"\0"
    return header + b"\xbe\xde\x00\x01" + element + payload


class Sender:
    """Sends VP8 video and Opus audio over RTP; answers PLI with a key frame."""

    def __init__(self, video_ssrc: int = 11111111, audio_ssrc: int = 22222222, rtx_ssrc: int | None = None,
                 transport_cc: bool = False) -> None:
        self.video_ssrc = video_ssrc
        self.transport_cc = transport_cc
        """With it, video is signalled and sent with transport-wide sequence numbers (as browsers do)."""
        self._transport_seq = 0
        self.audio_ssrc = audio_ssrc
        self.rtx_ssrc = rtx_ssrc
        """With one, video is signalled with RTX and `send_rtx` resends packets on it."""
        self.sent: dict[int, bytes] = {}
        self.skip: set[int] = set()
        """Video sequence numbers not to send (lost on the way)."""
        self._rtx_seq = 7000
        self.plis = 0
        self.rtcp_received: list[bytes] = []
        self._video = Vp8Encoder()
        self._audio = OpusEncoder()
        self._seq = {video_ssrc: 1000, audio_ssrc: 5000}
        self._frame_index = 0
        self._audio_pts = 0
        self._force_keyframe = True
        self.rtp: asyncio.DatagramTransport | None = None
        self.rtcp: asyncio.DatagramTransport | None = None
        self.frames_sent = 0

    async def open(self) -> None:
        self.rtp = await udp_socket(lambda data, addr: None)
        self.rtcp = await udp_socket(self._on_rtcp)

    def _on_rtcp(self, data: bytes, addr: Any) -> None:
        self.rtcp_received.append(data)
        for packet_type, fmt, _offset, _size in rtcp.iter_packets(data):
            if packet_type == rtcp.PT_PSFB and fmt == rtcp.FMT_PLI:
                self.plis += 1
                self._force_keyframe = True

    def rtp_parameters(self, kind: str) -> dict[str, Any]:
        """What a plain-RTP client passes to `produce`."""
        rtcp_params = {"cname": "sender", "reducedSize": True}
        if kind == "audio":
            codec = {"mimeType": "audio/opus", "payloadType": OPUS_PT, "clockRate": 48000, "channels": 2,
                     "parameters": {}, "rtcpFeedback": []}
            return {"codecs": [codec], "encodings": [{"ssrc": self.audio_ssrc}], "rtcp": rtcp_params}
        codec = {"mimeType": "video/VP8", "payloadType": VP8_PT, "clockRate": 90000, "parameters": {},
                 "rtcpFeedback": [{"type": "nack"}, {"type": "nack", "parameter": "pli"}]}
        params: dict[str, Any] = {"codecs": [codec], "encodings": [{"ssrc": self.video_ssrc}], "rtcp": rtcp_params}
        if self.rtx_ssrc is not None:
            params["codecs"].append({"mimeType": "video/rtx", "payloadType": RTX_PT, "clockRate": 90000,
                                     "parameters": {"apt": VP8_PT}, "rtcpFeedback": []})
            params["encodings"][0]["rtx"] = {"ssrc": self.rtx_ssrc}
        if self.transport_cc:
            codec["rtcpFeedback"].append({"type": "transport-cc"})
            params["headerExtensions"] = [{"uri": TRANSPORT_WIDE_CC, "id": TCC_ID}]
        return params

    def _send(self, address: tuple[str, int], pt: int, ssrc: int, ts: int, payloads: list[bytes]) -> None:
        for index, payload in enumerate(payloads):
            seq = self._seq[ssrc]
            self._seq[ssrc] = seq + 1
            transport_seq = None
            if self.transport_cc and ssrc == self.video_ssrc:
                transport_seq = self._transport_seq = self._transport_seq + 1
            packet = rtp_packet(pt, seq, ts, ssrc, payload, marker=index == len(payloads) - 1,
                                transport_cc=transport_seq)
            if ssrc == self.video_ssrc:
                self.sent[seq] = packet
                if seq in self.skip:
                    continue
            self.rtp.sendto(packet, address)

    @property
    def next_video_seq(self) -> int:
        """The sequence number the next video packet gets."""
        return self._seq[self.video_ssrc]

    def send_rtx(self, address: tuple[str, int], seq: int) -> None:
        """Resend video packet `seq` as RTX (RFC 4588: the original sequence number before the payload)."""
        original = self.sent[seq]
        self._rtx_seq += 1
        header = _HEADER.pack(0x80, (original[1] & 0x80) | RTX_PT, self._rtx_seq, *struct.unpack_from("!I", original, 4),
                              self.rtx_ssrc)
        self.rtp.sendto(header + original[2:4] + original[12:], address)

    def send_video_frame(self, address: tuple[str, int]) -> None:
        frame = av.VideoFrame(160, 120, "yuv420p")
        shade = (self._frame_index * 7) % 256
        for plane in frame.planes:
            plane.update(bytes([shade]) * plane.buffer_size)
        frame.pts = self._frame_index * 6000
        frame.time_base = fractions.Fraction(1, 90000)
        payloads, ts = self._video.encode(frame, force_keyframe=self._force_keyframe)
        self._force_keyframe = False
        self._frame_index += 1
        self.frames_sent += 1
        self._send(address, VP8_PT, self.video_ssrc, ts, payloads)

    def send_audio_frame(self, address: tuple[str, int]) -> None:
        frame = av.AudioFrame(format="s16", layout="stereo", samples=960)
        frame.planes[0].update(bytes(frame.planes[0].buffer_size))
        frame.sample_rate = 48000
        frame.pts = self._audio_pts
        frame.time_base = fractions.Fraction(1, 48000)
        self._audio_pts += 960
        payloads, ts = self._audio.encode(frame)
        self._send(address, OPUS_PT, self.audio_ssrc, ts, payloads)

    def send_sender_report(self, address: tuple[str, int]) -> None:
        self.rtcp.sendto(rtcp.sender_report(self.video_ssrc, rtcp.ntp_now(), 0, 0, 0), address)

    async def stream(self, rtp_address: tuple[str, int], seconds: float, fps: int = 15) -> None:
        """Video at `fps` and audio every 20 ms, for `seconds`."""
        loop = asyncio.get_running_loop()
        end = loop.time() + seconds
        next_video = loop.time()
        while loop.time() < end:
            if loop.time() >= next_video:
                self.send_video_frame(rtp_address)
                next_video += 1 / fps
            self.send_audio_frame(rtp_address)
            await asyncio.sleep(0.02)

    def close(self) -> None:
        for transport in (self.rtp, self.rtcp):
            if transport is not None:
                transport.close()


@dataclass
class Stream:
    """What a receiver saw of one SSRC."""

    payload_types: set[int] = field(default_factory=set)
    seqs: list[int] = field(default_factory=list)
    timestamps: list[int] = field(default_factory=list)
    first_payload: bytes = b""
    last_packet: bytes = b""
    arrivals: list[float] = field(default_factory=list)


class Receiver:
    """Receives RTP and RTCP on two ports; reassembles and decodes VP8 frames."""

    def __init__(self) -> None:
        self.streams: dict[int, Stream] = {}
        self.rtcp_received: list[bytes] = []
        self.frames_decoded = 0
        self.undecodable = 0
        self.rtcp_arrivals: list[float] = []
        self.rtcp_source_port = 0
        self.packets = asyncio.Event()
        self._decoder = Vp8Decoder()
        self._frame_parts: list[bytes] = []
        self.rtp: asyncio.DatagramTransport | None = None
        self.rtcp: asyncio.DatagramTransport | None = None

    async def open(self) -> None:
        self.rtp = await udp_socket(self._on_rtp)
        self.rtcp = await udp_socket(self._on_rtcp)

    @property
    def ports(self) -> tuple[int, int]:
        return port_of(self.rtp), port_of(self.rtcp)

    def _on_rtcp(self, data: bytes, addr: Any) -> None:
        self.rtcp_received.append(data)
        self.rtcp_arrivals.append(time.time())
        self.rtcp_source_port = addr[1]

    def _on_rtp(self, data: bytes, addr: Any) -> None:
        _b0, b1, seq, ts, ssrc = _HEADER.unpack_from(data)
        start, end = payload_bounds(data, len(data))
        payload = data[start:end]
        stream = self.streams.setdefault(ssrc, Stream())
        if not stream.seqs:
            stream.first_payload = payload
        stream.payload_types.add(b1 & 0x7F)
        stream.last_packet = data
        stream.arrivals.append(time.time())
        stream.seqs.append(seq)
        stream.timestamps.append(ts)
        if b1 & 0x7F == VP8_PT:
            self._on_vp8(payload, ts, bool(b1 & 0x80))
        self.packets.set()

    def _on_vp8(self, payload: bytes, ts: int, marker: bool) -> None:
        try:
            self._frame_parts.append(vp8_depayload(payload))
        except ValueError:
            self.undecodable += 1
            return
        if marker:
            data, self._frame_parts = b"".join(self._frame_parts), []
            try:
                self.on_frames(self._decoder.decode(JitterFrame(data, ts)))
            except av.error.FFmpegError:
                self.undecodable += 1

    def on_frames(self, frames: list[Any]) -> None:
        self.frames_decoded += len(frames)

    def count(self, ssrc: int) -> int:
        stream = self.streams.get(ssrc)
        return len(stream.seqs) if stream else 0

    def close(self) -> None:
        for transport in (self.rtp, self.rtcp):
            if transport is not None:
                transport.close()


def gap_free(seqs: list[int]) -> bool:
    """Each sequence number follows the previous one (mod 2^16)."""
    return all((b - a) & 0xFFFF == 1 for a, b in zip(seqs, seqs[1:]))


async def plain_viewer(app: KolabApp, room: str, receiver: Receiver | None = None,
                       rtp_capabilities: dict[str, Any] | None = None) -> tuple[Browser, Receiver]:
    """A subscriber that joined and receives on a connected plain transport, made after joining (it
    consumes what is produced from then on)."""
    browser = await joined(app, room, role=1, nickname="viewer", rtp_capabilities=rtp_capabilities)
    return browser, await _plain_receiver(browser, receiver)


async def late_plain_viewer(app: KolabApp, room: str) -> tuple[Browser, Receiver]:
    """A subscriber whose plain transport is connected before it joins, as the Kolab client does: it
    consumes what was produced before it came."""
    browser = Browser((await app.connection(room, 1))["token"])
    await browser.connect()
    receiver = await _plain_receiver(browser, None)
    await browser.ok("join", {"nickname": "late viewer", "rtpCapabilities": router_rtp_capabilities()})
    return browser, receiver


async def _plain_receiver(browser: Browser, receiver: Receiver | None) -> Receiver:
    receiver = receiver or Receiver()
    await receiver.open()
    transport = await browser.ok("createPlainTransport", {"producing": False, "consuming": True})
    rtp_port, rtcp_port = receiver.ports
    await browser.ok("connectPlainTransport", {"transportId": transport["id"], "ip": "127.0.0.1",
                                               "port": rtp_port, "rtcpPort": rtcp_port})
    return receiver
