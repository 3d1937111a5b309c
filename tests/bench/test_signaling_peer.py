"""The benchmarks' light socket.io peer speaks the protocol the server speaks."""

from __future__ import annotations

import asyncio

import aiohttp
import pytest

from bench.signaling_peer import SignalingError, SignalingPeer
from kolabmeet.media.capabilities import router_rtp_capabilities
from tests.helpers import KolabApp


async def _joined(app: KolabApp, http: aiohttp.ClientSession, room: str, nickname: str) -> SignalingPeer:
    peer = SignalingPeer(http, (await app.connection(room, 3))["token"])
    await peer.connect()
    await peer.ok("join", {"nickname": nickname, "rtpCapabilities": router_rtp_capabilities()})
    return peer


async def test_requests_are_answered_and_notifications_counted(app: KolabApp, http: aiohttp.ClientSession) -> None:
    room = await app.create_room()
    first = await _joined(app, http, room, "first")
    capabilities = await first.ok("getRouterRtpCapabilities")
    assert {codec["mimeType"] for codec in capabilities["codecs"]} >= {"audio/opus", "video/VP8"}
    before = first.notifications
    second = await _joined(app, http, room, "second")
    for _ in range(50):
        if first.notifications == before + 2:
            break
        await asyncio.sleep(0.05)
    assert first.notifications == before + 2  # newPeer and changeNickname of the second
    with pytest.raises(SignalingError, match="unknown request.method"):
        await second.ok("noSuchRequest")
    await first.close()
    await second.close()


async def test_a_wrong_token_is_refused(app: KolabApp, http: aiohttp.ClientSession) -> None:
    room = await app.create_room()
    token_url = (await app.connection(room, 3))["token"]
    peer = SignalingPeer(http, token_url.replace("authToken=", "authToken=x"))
    with pytest.raises(SignalingError):
        await peer.connect()
    await peer.close()
