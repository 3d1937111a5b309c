"""The benchmarks' light socket.io peer speaks the protocol the server speaks."""

from __future__ import annotations

import asyncio
import base64
import hashlib

import pytest

from bench.signaling_peer import SignalingError, SignalingPeer
from kolabmeet.media.capabilities import router_rtp_capabilities
from kolabmeet.signaling.websocket import frame_header
from tests.helpers import KolabApp, RecordingTransport


async def _joined(app: KolabApp, room: str, nickname: str) -> SignalingPeer:
    peer = SignalingPeer((await app.connection(room, 3))["token"])
    await peer.connect()
    await peer.ok("join", {"nickname": nickname, "rtpCapabilities": router_rtp_capabilities()})
    return peer


async def test_requests_are_answered_and_notifications_counted(app: KolabApp) -> None:
    room = await app.create_room()
    first = await _joined(app, room, "first")
    capabilities = await first.ok("getRouterRtpCapabilities")
    assert {codec["mimeType"] for codec in capabilities["codecs"]} >= {"audio/opus", "video/VP8"}
    before = first.notifications
    second = await _joined(app, room, "second")
    for _ in range(50):
        if first.notifications == before + 2:
            break
        await asyncio.sleep(0.05)
    assert first.notifications == before + 2  # newPeer and changeNickname of the second
    with pytest.raises(SignalingError, match="unknown request.method"):
        await second.ok("noSuchRequest")
    await first.close()
    await second.close()


async def test_a_wrong_token_is_refused(app: KolabApp) -> None:
    room = await app.create_room()
    token_url = (await app.connection(room, 3))["token"]
    peer = SignalingPeer(token_url.replace("authToken=", "authToken=x"))
    with pytest.raises(SignalingError):
        await peer.connect()
    await peer.close()


WEBSOCKET_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
"""RFC 6455 section 1.3."""


def _handshake_answer(peer: SignalingPeer) -> bytes:
    accept = base64.b64encode(hashlib.sha1(peer._key + WEBSOCKET_GUID).digest())
    return b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nSec-WebSocket-Accept: " + accept + b"\r\n\r\n"


async def test_frames_of_every_length_form_are_read_across_any_split() -> None:
    peer = SignalingPeer("http://127.0.0.1:9/?peerId=p&roomId=r&authToken=t")
    ack = b'430[null,"' + b"x" * 70000 + b'"]'
    stream = (_handshake_answer(peer) + frame_header(0x81, 3) + b"0{}" + frame_header(0x81, 200) + b"42"
              + b"y" * 198 + frame_header(0x81, len(ack)) + ack)
    answer = peer._acks[0] = asyncio.get_running_loop().create_future()
    peer._ready.set_result(None)
    for start in range(0, len(stream), 7):
        peer.data_received(stream[start:start + 7])
    assert peer._opened.done() and peer.notifications == 1
    assert answer.result() == [None, "x" * 70000]


async def test_a_sent_frame_is_masked_and_unmasks_to_the_packet() -> None:
    peer = SignalingPeer("http://127.0.0.1:9/?peerId=p&roomId=r&authToken=t")
    recorder = RecordingTransport()
    peer.connection_made(recorder)
    packet = "42" + "z" * 300
    peer._send(packet)
    frame = recorder.written
    assert frame[0] == 0x81 and frame[1] == 0x80 | 126 and int.from_bytes(frame[2:4], "big") == len(packet)
    key, masked = frame[4:8], frame[8:]
    assert bytes(byte ^ key[index % 4] for index, byte in enumerate(masked)) == packet.encode()
