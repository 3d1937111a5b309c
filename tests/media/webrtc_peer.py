"""A WebRTC test peer: pymediasoup (mediasoup-client's port to aiortc) over our signaling.

It does what Kolab's web client does: load the router capabilities, create a
receive transport, join, consume every `newConsumer` before acknowledging it,
and, to publish, create a send transport and produce tracks.
"""

from __future__ import annotations

import asyncio
import os
from typing import Any

import aioice.ice
import av
from aiortc import MediaStreamTrack
from aiortc.mediastreams import AudioStreamTrack, VideoStreamTrack
from pymediasoup import AiortcHandler, Device
from pymediasoup.consumer import Consumer
from pymediasoup.models.transport import DtlsParameters
from pymediasoup.rtp_parameters import RtpCapabilities, RtpParameters
from pymediasoup.transport import Transport

from tests.helpers import Browser
from tests.media.relay import Relay


def loopback_only() -> None:
    """aioice gathers every interface's address by default: keep tests on 127.0.0.1."""
    aioice.ice.get_host_addresses = lambda use_ipv4, use_ipv6: ["127.0.0.1"]


_FAINT = bytes(120 + value % 24 for value in range(256))
"""Pixel values narrowed to 120..143: noise an encoder can spend any bitrate on, yet smooth at a low one."""


class CountingVideoTrack(VideoStreamTrack):
    """aiortc's test video source, counting the frames it hands to the encoder; with `noise`, 320x240
    frames of faint random pixels instead, so that the encoder sends about its target bitrate."""

    def __init__(self, noise: bool = False) -> None:
        super().__init__()
        self.frames = 0
        self.noise = noise

    async def recv(self) -> Any:
        frame = await super().recv()
        self.frames += 1
        if self.noise:
            noisy = av.VideoFrame(320, 240, "yuv420p")
            for plane in noisy.planes:
                plane.update(os.urandom(plane.buffer_size).translate(_FAINT))
            noisy.pts, noisy.time_base = frame.pts, frame.time_base
            return noisy
        return frame


class WebRtcPeer:
    """One participant with a pymediasoup Device."""

    def __init__(self, browser: Browser, tracks: list[MediaStreamTrack] | None = None) -> None:
        self.browser = browser
        self.device = Device(handlerFactory=AiortcHandler.createFactory(tracks=tracks or []))
        self.recv_transport: Transport | None = None
        self.send_transport: Transport | None = None
        self.consumers: dict[str, Consumer] = {}
        self.consumer_data: dict[str, dict[str, Any]] = {}
        self.refuse_consumers = False
        self.relays: list[Relay] = []
        browser.answer_request = self._on_server_request

    async def load(self) -> None:
        caps = await self.browser.ok("getRouterRtpCapabilities")
        await self.device.load(RtpCapabilities(**caps))

    async def join(self, nickname: str) -> dict[str, Any]:
        caps = self.device.rtpCapabilities.model_dump(exclude_none=True)
        return await self.browser.ok("join", {"nickname": nickname, "rtpCapabilities": caps})

    async def _server_transport(self, producing: bool, force_tcp: bool,
                                relay: dict[str, Any] | None) -> dict[str, Any]:
        """createWebRtcTransport; with `relay` options, the peer reaches it through a Relay."""
        info = await self.browser.ok("createWebRtcTransport",
                                     {"forceTcp": force_tcp, "producing": producing, "consuming": not producing})
        if relay is None:
            return info
        protocol = "tcp" if relay.get("tcp") else "udp"
        target = next(c for c in info["iceCandidates"] if c["protocol"] == protocol)
        proxy = Relay((target["ip"], target["port"]), **relay)
        self.relays.append(proxy)
        port = await proxy.start()
        candidate = {**target, "protocol": "udp", "port": port}
        candidate.pop("tcpType", None)
        return {**info, "iceCandidates": [candidate]}

    def _wire(self, transport: Transport) -> None:
        @transport.on("connect")
        async def on_connect(dtls_parameters: DtlsParameters) -> None:
            await self.browser.ok("connectWebRtcTransport", {"transportId": transport.id,
                                                             "dtlsParameters": dtls_parameters.model_dump(exclude_none=True)})

    async def create_recv_transport(self, force_tcp: bool = False,
                                    relay: dict[str, Any] | None = None) -> dict[str, Any]:
        info = await self._server_transport(False, force_tcp, relay)
        self.recv_transport = self.device.createRecvTransport(
            id=info["id"], iceParameters=info["iceParameters"], iceCandidates=info["iceCandidates"],
            dtlsParameters=info["dtlsParameters"], iceServers=[])
        self._wire(self.recv_transport)
        return info

    async def create_send_transport(self, force_tcp: bool = False,
                                    relay: dict[str, Any] | None = None) -> dict[str, Any]:
        info = await self._server_transport(True, force_tcp, relay)
        self.send_transport = self.device.createSendTransport(
            id=info["id"], iceParameters=info["iceParameters"], iceCandidates=info["iceCandidates"],
            dtlsParameters=info["dtlsParameters"], sctpParameters=None, iceServers=[])
        self._wire(self.send_transport)

        @self.send_transport.on("produce")
        async def on_produce(kind: str, rtp_parameters: RtpParameters, app_data: dict[str, Any]) -> str:
            answer = await self.browser.ok("produce", {
                "transportId": self.send_transport.id, "kind": kind,
                "rtpParameters": rtp_parameters.model_dump(exclude_none=True), "appData": app_data})
            return answer["id"]

        return info

    async def produce(self, track: MediaStreamTrack, source: str, mime_type: str | None = None) -> Any:
        """Produce a track, with the device's codec of `mime_type` if given (e.g. video/H264)."""
        codec = None
        if mime_type is not None:
            codec = next(c for c in self.device.rtpCapabilities.codecs if c.mimeType.lower() == mime_type.lower())
        return await self.send_transport.produce(track=track, stopTracks=False, codec=codec,
                                                 appData={"source": source})

    async def _on_server_request(self, request: dict[str, Any]) -> Any:
        if request["method"] != "newConsumer":
            return None
        if self.refuse_consumers:
            return 500, "refused"
        data = request["data"]
        consumer = await self.recv_transport.consume(
            id=data["id"], producerId=data["producerId"], kind=data["kind"],
            rtpParameters=RtpParameters(**data["rtpParameters"]))
        self.consumers[data["id"]] = consumer
        self.consumer_data[data["id"]] = data
        return None

    def consumer_of_kind(self, kind: str) -> Consumer:
        return next(c for c in self.consumers.values() if c.kind == kind)

    async def wait_consumers(self, count: int, timeout: float = 10.0) -> None:
        loop = asyncio.get_running_loop()
        end = loop.time() + timeout
        while len(self.consumers) < count:
            assert loop.time() < end, f"{len(self.consumers)} of {count} consumers"
            await asyncio.sleep(0.05)

    async def close(self) -> None:
        for transport in (self.send_transport, self.recv_transport):
            if transport is not None:
                await transport.close()
        for relay in self.relays:
            relay.close()
        await self.browser.close()


class FrameClock:
    """Reads a remote track from the start and notes when each decoded frame came out."""

    def __init__(self, track: MediaStreamTrack) -> None:
        self.times: list[float] = []
        self._task = asyncio.get_running_loop().create_task(self._read(track))

    async def _read(self, track: MediaStreamTrack) -> None:
        try:
            while True:
                await track.recv()
                self.times.append(asyncio.get_running_loop().time())
        except Exception:
            return

    def between(self, start: float, end: float) -> int:
        return sum(1 for t in self.times if start <= t < end)

    def stop(self) -> None:
        self._task.cancel()


__all__ = ["AudioStreamTrack", "CountingVideoTrack", "FrameClock", "WebRtcPeer", "loopback_only"]
