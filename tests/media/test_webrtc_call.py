"""A real call through kolabmeet between pymediasoup (aiortc) peers over WebRTC."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from aiortc.mediastreams import AudioStreamTrack

from tests.helpers import Browser, KolabApp
from tests.media.webrtc_peer import CountingVideoTrack, WebRtcPeer, count_frames, loopback_only

loopback_only()


async def _peer(app: KolabApp, room: str, role: int, tracks: list[Any] | None = None,
                force_tcp: bool = False) -> WebRtcPeer:
    browser = Browser((await app.connection(room, role))["token"])
    await browser.connect()
    peer = WebRtcPeer(browser, tracks)
    await peer.load()
    await peer.create_recv_transport(force_tcp=force_tcp, relay={"tcp": True} if force_tcp else None)
    await peer.join(f"peer-{role}")
    return peer


async def _call(app: KolabApp, force_tcp: bool = False) -> tuple[WebRtcPeer, list[WebRtcPeer], CountingVideoTrack]:
    room = await app.create_room()
    subscribers = [await _peer(app, room, 1, force_tcp=force_tcp) for _ in range(2)]
    video, audio = CountingVideoTrack(), AudioStreamTrack()
    publisher = await _peer(app, room, 3, [video, audio], force_tcp=force_tcp)
    await publisher.create_send_transport(force_tcp=force_tcp, relay={"tcp": True} if force_tcp else None)
    await publisher.produce(video, "webcam")
    await publisher.produce(audio, "mic")
    for subscriber in subscribers:
        await subscriber.wait_consumers(2)
    return publisher, subscribers, video


@pytest.mark.parametrize("force_tcp", [False, True], ids=["udp", "tcp"])
async def test_call_decodes_video_and_audio(app: KolabApp, force_tcp: bool) -> None:
    publisher, subscribers, video = await _call(app, force_tcp)
    try:
        await asyncio.sleep(1.0)
        sent_before = video.frames
        counts = await asyncio.gather(*(count_frames(s.consumer_of_kind("video").track, 5.0) for s in subscribers))
        sent = video.frames - sent_before
        audio = await asyncio.gather(*(count_frames(s.consumer_of_kind("audio").track, 1.0) for s in subscribers))
        for count in counts:
            assert count >= 0.9 * sent, (counts, sent)
        assert all(a > 20 for a in audio), audio
        stats = (await publisher.browser.ok("getRouterRtpCapabilities"))
        assert stats["codecs"]
    finally:
        for peer in (publisher, *subscribers):
            await peer.close()
