"""Real calls through kolabmeet between pymediasoup (aiortc) peers over WebRTC."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

import aiohttp
import pytest
from aiortc.mediastreams import AudioStreamTrack
from pymediasoup.models.transport import IceParameters

from tests.helpers import Browser, KolabApp
from tests.media.webrtc_peer import CountingVideoTrack, FrameClock, WebRtcPeer, loopback_only

loopback_only()


@dataclass
class Call:
    app: KolabApp
    publisher: WebRtcPeer
    subscribers: list[WebRtcPeer]
    video: CountingVideoTrack

    def server_peer(self, peer: WebRtcPeer) -> Any:
        room = self.app.server.rooms.get(peer.browser.room_id)
        return room.peers[peer.browser.peer_id]

    async def close(self) -> None:
        for peer in (self.publisher, *self.subscribers):
            await peer.close()


async def _peer(app: KolabApp, room: str, role: int, tracks: list[Any] | None = None,
                relay: dict[str, Any] | None = None, force_tcp: bool = False) -> WebRtcPeer:
    browser = Browser((await app.connection(room, role))["token"])
    await browser.connect()
    peer = WebRtcPeer(browser, tracks)
    await peer.load()
    await peer.create_recv_transport(force_tcp=force_tcp, relay=relay)
    await peer.join(f"peer-{role}")
    return peer


async def start_call(app: KolabApp, force_tcp: bool = False, subscriber_relay: dict[str, Any] | None = None,
                     publisher_relay: dict[str, Any] | None = None, video_codec: str | None = None,
                     noise: bool = False) -> Call:
    """Two subscribers, then a publisher of aiortc's VP8 video and Opus audio test tracks."""
    room = await app.create_room()
    tcp = {"tcp": True} if force_tcp else None
    subscribers = [await _peer(app, room, 1, relay=tcp if subscriber_relay is None else subscriber_relay, force_tcp=force_tcp),
                   await _peer(app, room, 1, relay=tcp, force_tcp=force_tcp)]
    video, audio = CountingVideoTrack(noise), AudioStreamTrack()
    publisher = await _peer(app, room, 3, [video, audio], relay=tcp, force_tcp=force_tcp)
    await publisher.create_send_transport(force_tcp=force_tcp, relay=tcp if publisher_relay is None else publisher_relay)
    await publisher.produce(video, "webcam", video_codec)
    await publisher.produce(audio, "mic")
    for subscriber in subscribers:
        await subscriber.wait_consumers(2)
    return Call(app, publisher, subscribers, video)


async def decoded_share(call: Call, seconds: float = 5.0) -> list[float]:
    """Share of the frames sent during `seconds` that each subscriber decoded in that time."""
    clocks = [FrameClock(s.consumer_of_kind("video").track) for s in call.subscribers]
    try:
        await asyncio.sleep(1.0)
        loop = asyncio.get_running_loop()
        start, sent_before = loop.time(), call.video.frames
        await asyncio.sleep(seconds)
        end, sent = loop.time(), call.video.frames - sent_before
        assert sent > 5 * seconds
        return [clock.between(start, end) / sent for clock in clocks]
    finally:
        for clock in clocks:
            clock.stop()


async def audio_frames(call: Call, seconds: float) -> list[int]:
    clocks = [FrameClock(s.consumer_of_kind("audio").track) for s in call.subscribers]
    await asyncio.sleep(seconds)
    for clock in clocks:
        clock.stop()
    return [len(clock.times) for clock in clocks]


async def _transport_dumps(call: Call, peer: WebRtcPeer) -> list[dict[str, Any]]:
    return [await t.dump() for t in call.server_peer(peer).transports.values()]


@pytest.mark.parametrize("force_tcp", [False, True], ids=["udp", "tcp"])
async def test_call_decodes_video_and_audio(app: KolabApp, force_tcp: bool) -> None:
    call = await start_call(app, force_tcp)
    try:
        shares = await decoded_share(call)
        assert all(share >= 0.9 for share in shares), shares
        audio = await audio_frames(call, 1.0)
        assert all(frames >= 20 for frames in audio), audio
        sending = [d for d in await _transport_dumps(call, call.publisher) if d["producerIds"]]
        receiving = [d for d in await _transport_dumps(call, call.subscribers[0]) if d["consumerIds"]]
        assert [d["dtlsRole"] for d in sending] == ["client"], "mediasoup-client's send side is the DTLS server"
        assert [d["dtlsRole"] for d in receiving] == ["server"], "its receive side is the DTLS client"
        for dump in sending + receiving:
            assert dump["srtpProfile"] == "AEAD_AES_256_GCM", "our first choice, which aiortc supports"
            assert dump["iceSelectedTuple"]["protocol"] == ("tcp" if force_tcp else "udp")
            assert dump["iceState"] == "completed" and dump["dtlsState"] == "connected"
    finally:
        await call.close()


async def test_h264_call_decodes(app: KolabApp) -> None:
    call = await start_call(app, video_codec="video/H264")
    try:
        consumer = call.subscribers[0].consumer_of_kind("video")
        assert consumer.rtpParameters.codecs[0].mimeType.lower() == "video/h264"
        assert consumer.rtpParameters.codecs[0].parameters["profile-level-id"] == "42e01f"
        shares = await decoded_share(call)
        assert all(share >= 0.9 for share in shares), shares
    finally:
        await call.close()


@pytest.mark.parametrize("direction", ["to_subscriber", "from_publisher"])
async def test_loss_is_repaired_by_nack_and_rtx(app: KolabApp, direction: str) -> None:
    lossy = {"drop_to_peer": 0.05} if direction == "to_subscriber" else {"drop_to_server": 0.05}
    if direction == "to_subscriber":
        call = await start_call(app, subscriber_relay=lossy)
    else:
        call = await start_call(app, publisher_relay=lossy)
    try:
        shares = await decoded_share(call)
        assert all(share >= 0.8 for share in shares), shares
        relay = (call.subscribers[0] if direction == "to_subscriber" else call.publisher).relays[-1]
        assert relay.dropped > 20
        if direction == "to_subscriber":
            consumer = next(c for c in call.server_peer(call.subscribers[0]).consumers.values() if c.kind == "video")
            stats = (await consumer.get_stats())[0]
            assert stats["nackCount"] > 0 and stats["packetsRetransmitted"] > 0, stats
            scores = call.subscribers[0].browser.seen("consumerScoreChanged", lambda d: d["consumerId"] == consumer.id)
            assert any(d["score"]["score"] < 10 for d in scores), scores
        else:
            producer = next(p for p in call.server_peer(call.publisher).producers.values() if p.kind == "video")
            stats = (await producer.get_stats())[0]
            assert stats["nackCount"] > 0 and stats["packetsRetransmitted"] > 0, stats
            scores = call.subscribers[1].browser.seen("consumerScoreChanged")
            assert any(d["score"]["producerScore"] < 10 for d in scores), scores
    finally:
        await call.close()


async def test_restart_ice_gives_new_credentials_and_media_keeps_flowing(app: KolabApp) -> None:
    call = await start_call(app, subscriber_relay={})
    try:
        subscriber = call.subscribers[0]
        transport_id = subscriber.recv_transport.id
        old = next(t for t in call.server_peer(subscriber).transports.values() if t.id == transport_id).ice_parameters
        old = dict(old)
        fresh = await subscriber.browser.ok("restartIce", {"transportId": transport_id})
        assert fresh["usernameFragment"] != old["usernameFragment"] and fresh["password"] != old["password"]
        assert fresh["iceLite"] is True
        relay = subscriber.relays[0]
        assert await relay.stun_check(f"{old['usernameFragment']}:peer", old["password"]) is None
        answer = await relay.stun_check(f"{fresh['usernameFragment']}:peer", fresh["password"])
        assert answer is not None and answer.check_message_integrity(fresh["password"].encode())
        await subscriber.recv_transport.restartIce(IceParameters(**fresh))
        shares = await decoded_share(call, seconds=2.0)
        assert shares[0] >= 0.9, shares
    finally:
        await call.close()


def _video_target(call: Call) -> int | None:
    """The target bitrate of the publisher's VP8 encoder (aiortc sets it from the REMB it receives)."""
    senders = call.publisher.send_transport._handler.pc.getSenders()
    video = next(s for s in senders if s.track and s.track.kind == "video")
    encoder = video._RTCRtpSender__encoder
    return encoder.target_bitrate if encoder is not None else None


async def test_a_remb_sender_is_told_our_estimate_of_its_uplink(server_with: Any) -> None:
    """aiortc negotiates REMB, not transport-wide CC: the server estimates the uplink (abs-send-time, and the
    loss its receiver reports see) and sends that in REMB. Through a 400 kbit/s uplink the estimate and
    aiortc's encoder stay under it, though maxIncomingBitrate is far above; once the uplink is open, both climb."""
    async with server_with(max_incoming_bitrate=10_000_000) as server, aiohttp.ClientSession() as http:
        call = await start_call(KolabApp(server, http), publisher_relay={"rate_to_server": 400_000}, noise=True)
        try:
            transport = next(t for t in call.server_peer(call.publisher).transports.values()
                             if t.app_data["producing"])

            async def estimate() -> int:
                return (await transport.get_stats())[0]["availableIncomingBitrate"] or 0

            async def followed(low: int, high: int) -> bool:
                return low <= await estimate() <= high and low <= (_video_target(call) or 0) <= high

            await _within(lambda: followed(1, 400_000), 10, "estimate and encoder under the 400 kbit/s uplink")
            call.publisher.relays[0].rate_to_server = None
            await _within(lambda: followed(1_000_000, 9_000_000), 15, "estimate and encoder up on the open uplink")
        finally:
            await call.close()


async def _within(check: Any, seconds: float, what: str) -> None:
    for _ in range(int(seconds * 10)):
        if await check():
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"not within {seconds} s: {what}")


async def test_senders_are_held_below_max_incoming_bitrate(server_with: Any) -> None:
    async with server_with(max_incoming_bitrate=300_000) as server, aiohttp.ClientSession() as http:
        call = await start_call(KolabApp(server, http))
        try:
            # aiortc starts at 500 kbit/s and takes what a REMB says (at least 250 kbit/s); the REMB is the
            # server's estimate held to the ceiling, lower while a loaded machine delays packets.
            async def held() -> bool:
                return (_video_target(call) or 500_000) <= 300_000

            await _within(held, 6, "aiortc's VP8 encoder follows the server's REMB")
            for _ in range(10):
                assert await held(), _video_target(call)
                await asyncio.sleep(0.1)
        finally:
            await call.close()
