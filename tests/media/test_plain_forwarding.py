"""Real media through plain RTP transports: one sender, two receivers, over 127.0.0.1."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from dataclasses import dataclass
from typing import Any, AsyncIterator

import aiohttp
import pytest

from kolabmeet.media.worker import rtcp
from kolabmeet.media.worker.keyframe import is_keyframe_vp8
from tests.helpers import Browser, KolabApp, joined
from tests.media.rtp_peer import Receiver, Sender, gap_free, late_plain_viewer, plain_viewer, udp_socket


@dataclass
class Subscriber:
    browser: Browser
    receiver: Receiver

    def consumers(self) -> dict[str, dict[str, Any]]:
        """newConsumer data by kind."""
        return {r["data"]["kind"]: r["data"] for r in self.browser.server_requests if r["method"] == "newConsumer"}

    def ssrc(self, kind: str) -> int:
        return self.consumers()[kind]["rtpParameters"]["encodings"][0]["ssrc"]


@dataclass
class Call:
    publisher: Browser
    sender: Sender
    rtp_address: tuple[str, int]
    rtcp_address: tuple[str, int]
    subscribers: list[Subscriber]
    producers: dict[str, str]

    def close(self) -> None:
        self.sender.close()
        for subscriber in self.subscribers:
            subscriber.receiver.close()


async def _subscriber(app: KolabApp, room: str, browsers: list[Browser]) -> Subscriber:
    browser, receiver = await plain_viewer(app, room)
    browsers.append(browser)
    return Subscriber(browser, receiver)


@pytest.fixture
async def call(app: KolabApp, browsers: list[Browser]) -> AsyncIterator[Call]:
    """A publisher producing VP8 and Opus, two subscribers whose consumers are acknowledged."""
    made = await make_call(app, browsers)
    yield made
    made.close()


async def make_call(app: KolabApp, browsers: list[Browser], sender: Sender | None = None) -> Call:
    room = await app.create_room()
    subscribers = [await _subscriber(app, room, browsers) for _ in range(2)]
    publisher = await joined(app, room, role=3, nickname="speaker")
    browsers.append(publisher)
    sender = sender or Sender()
    await sender.open()
    transport = await publisher.ok("createPlainTransport", {"producing": True, "consuming": False})
    assert transport["ip"] == "127.0.0.1" and transport["port"] != transport["rtcpPort"]
    rtcp_address = ("127.0.0.1", transport["rtcpPort"])
    sender.send_sender_report(rtcp_address)
    producers = {}
    for kind, source in (("video", "webcam"), ("audio", "mic")):
        answer = await publisher.ok("produce", {"transportId": transport["id"], "kind": kind,
                                                "rtpParameters": sender.rtp_parameters(kind),
                                                "appData": {"source": source}})
        producers[kind] = answer["id"]
    for subscriber in subscribers:
        await subscriber.browser.wait_request("newConsumer", count=2)
        server_peer = app.server.rooms.get(room).peers[subscriber.browser.peer_id]
        await _wait(lambda: len(server_peer.consumers) == 2 and not any(c.paused for c in server_peer.consumers.values()))
    return Call(publisher, sender, ("127.0.0.1", transport["port"]), rtcp_address, subscribers, producers)


@contextlib.asynccontextmanager
async def streaming_call(server: Any, browsers: list[Browser], warmup: float = 1.5) -> AsyncIterator[Call]:
    """`make_call` on `server` with the publisher streaming for as long as the block runs."""
    async with aiohttp.ClientSession() as http:
        call = await make_call(KolabApp(server, http), browsers)
        task = asyncio.ensure_future(call.sender.stream(call.rtp_address, 120.0))
        try:
            await asyncio.sleep(warmup)
            yield call
        finally:
            task.cancel()
            call.close()


async def _wait(predicate: Any, timeout: float = 5.0) -> None:
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while not predicate():
        assert loop.time() < end, "timed out"
        await asyncio.sleep(0.02)


async def test_media_reaches_both_subscribers_rewritten(app: KolabApp, call: Call) -> None:
    room = app.server.rooms.get(call.publisher.room_id)
    consumers = room.peers[call.subscribers[0].browser.peer_id].consumers.values()
    assert {c.kind: (await c.dump())["priority"] for c in consumers} == {"audio": 255, "video": 1}
    await call.sender.stream(call.rtp_address, seconds=2.0)
    await asyncio.sleep(0.2)
    for sub in call.subscribers:
        consumers = sub.consumers()
        assert consumers["video"]["producerId"] == call.producers["video"]
        assert consumers["video"]["appData"] == {"source": "webcam"}
        for kind in ("video", "audio"):
            params = consumers[kind]["rtpParameters"]
            ssrc = params["encodings"][0]["ssrc"]
            stream = sub.receiver.streams[ssrc]
            assert ssrc not in (call.sender.video_ssrc, call.sender.audio_ssrc)
            assert stream.payload_types == {params["codecs"][0]["payloadType"]}
            assert gap_free(stream.seqs), stream.seqs[:20]
        video = sub.receiver.streams[sub.ssrc("video")]
        assert is_keyframe_vp8(video.first_payload, 0, len(video.first_payload))
        assert sub.receiver.frames_decoded >= 0.9 * call.sender.frames_sent - 2
        assert sub.receiver.count(sub.ssrc("audio")) >= 80
    assert call.subscribers[0].ssrc("video") != call.subscribers[1].ssrc("video")


async def test_pause_and_resume_producer(call: Call) -> None:
    sub = call.subscribers[0]
    await call.sender.stream(call.rtp_address, seconds=0.5)
    await call.publisher.ok("pauseProducer", {"producerId": call.producers["video"]})
    consumer_id = sub.consumers()["video"]["id"]
    for subscriber in call.subscribers:
        await subscriber.browser.wait_for("consumerPaused", lambda d: d["consumerId"] == subscriber.consumers()["video"]["id"])
    await asyncio.sleep(0.1)
    before = sub.receiver.count(sub.ssrc("video"))
    plis_before = call.sender.plis
    await call.sender.stream(call.rtp_address, seconds=0.5)
    await asyncio.sleep(0.1)
    assert sub.receiver.count(sub.ssrc("video")) == before
    await call.publisher.ok("resumeProducer", {"producerId": call.producers["video"]})
    await sub.browser.wait_for("consumerResumed", lambda d: d["consumerId"] == consumer_id)
    await call.sender.stream(call.rtp_address, seconds=1.0)
    await asyncio.sleep(0.1)
    video = sub.receiver.streams[sub.ssrc("video")]
    assert len(video.seqs) > before
    assert gap_free(video.seqs)
    assert call.sender.plis > plis_before
    assert video.timestamps[before] > video.timestamps[before - 1]


async def test_pause_and_resume_one_consumer(call: Call) -> None:
    paused, other = call.subscribers
    consumer_id = paused.consumers()["audio"]["id"]
    await call.sender.stream(call.rtp_address, seconds=0.3)
    await paused.browser.ok("pauseConsumer", {"consumerId": consumer_id})
    await asyncio.sleep(0.05)
    before, other_before = paused.receiver.count(paused.ssrc("audio")), other.receiver.count(other.ssrc("audio"))
    await call.sender.stream(call.rtp_address, seconds=0.5)
    await asyncio.sleep(0.1)
    assert paused.receiver.count(paused.ssrc("audio")) == before
    assert other.receiver.count(other.ssrc("audio")) > other_before + 10
    await paused.browser.ok("resumeConsumer", {"consumerId": consumer_id})
    await call.sender.stream(call.rtp_address, seconds=0.3)
    await asyncio.sleep(0.1)
    audio = paused.receiver.streams[paused.ssrc("audio")]
    assert len(audio.seqs) > before + 5 and gap_free(audio.seqs)


async def test_close_producer_closes_consumers(call: Call) -> None:
    await call.sender.stream(call.rtp_address, seconds=0.3)
    await call.publisher.ok("closeProducer", {"producerId": call.producers["video"]})
    for sub in call.subscribers:
        video_id = sub.consumers()["video"]["id"]
        await sub.browser.wait_for("consumerClosed", lambda d: d["consumerId"] == video_id)
        assert "consumerClosed" not in [n["method"] for n in sub.browser.notifications
                                        if n["data"] and n["data"].get("consumerId") == sub.consumers()["audio"]["id"]]
    await asyncio.sleep(0.1)
    counts = [s.receiver.count(s.ssrc("video")) for s in call.subscribers]
    await call.sender.stream(call.rtp_address, seconds=0.3)
    await asyncio.sleep(0.1)
    assert [s.receiver.count(s.ssrc("video")) for s in call.subscribers] == counts
    assert await call.publisher.fails("pauseProducer", {"producerId": call.producers["video"]})


async def test_sender_reports_and_key_frame_requests(call: Call) -> None:
    sub = call.subscribers[0]
    await call.sender.stream(call.rtp_address, seconds=1.5)
    reports = [rtcp.parse_sender_report(data, offset, size)
               for data in sub.receiver.rtcp_received
               for pt, _fmt, offset, size in rtcp.iter_packets(data) if pt == rtcp.PT_SR]
    ssrcs = {report.ssrc for report in reports if report}
    assert sub.ssrc("video") in ssrcs and sub.ssrc("audio") in ssrcs
    both = {sub.ssrc("video"), sub.ssrc("audio")}
    compound = [data for data in sub.receiver.rtcp_received
                if {r.ssrc for pt, _fmt, offset, size in rtcp.iter_packets(data) if pt == rtcp.PT_SR
                    for r in [rtcp.parse_sender_report(data, offset, size)] if r} == both]
    assert compound, "one compound packet carries the transport's sender reports"
    assert {ssrc for pt, _fmt, offset, size in rtcp.iter_packets(compound[0]) if pt == rtcp.PT_SDES
            for ssrc, _cname in rtcp.parse_sdes_cnames(compound[0], offset, size)} == both
    _check_rtp_clock(sub.receiver, sub.ssrc("audio"), 48000)
    _check_rtp_clock(sub.receiver, sub.ssrc("video"), 90000)
    plis = call.sender.plis
    await asyncio.sleep(0.6)
    sub.receiver.rtcp.sendto(rtcp.pli(1234, sub.ssrc("video")), ("127.0.0.1", _server_rtcp_port(sub)))
    await _wait(lambda: call.sender.plis > plis)


def _check_rtp_clock(receiver: Receiver, ssrc: int, clock_rate: int) -> None:
    """Each SR maps its NTP time to the RTP clock of the packets around it (within 60 ms)."""
    stream = receiver.streams[ssrc]
    checked = 0
    for data, arrival in zip(receiver.rtcp_received, receiver.rtcp_arrivals):
        for pt, _fmt, offset, size in rtcp.iter_packets(data):
            report = rtcp.parse_sender_report(data, offset, size) if pt == rtcp.PT_SR else None
            if report is None or report.ssrc != ssrc:
                continue
            ntp_seconds = (report.ntp >> 32) - 2208988800 + (report.ntp & 0xFFFFFFFF) / 2**32
            assert abs(ntp_seconds - arrival) < 0.1, "the NTP time is the wall clock"
            before = [i for i, t in enumerate(stream.arrivals) if t <= arrival]
            if not before:
                continue
            last = before[-1]
            expected = stream.timestamps[last] + (ntp_seconds - stream.arrivals[last]) * clock_rate
            assert abs(((report.rtp_ts - int(expected) + 2**31) % 2**32) - 2**31) < 0.06 * clock_rate
            checked += 1
    assert checked, "no sender report came while media flowed"


def _server_rtcp_port(sub: Subscriber) -> int:
    """The server's RTCP port of the subscriber's transport, learnt from an SR it sent."""
    return sub.receiver.rtcp_source_port


async def test_malformed_rtp_and_rtcp_do_not_harm_the_worker(server_with: Any, caplog: pytest.LogCaptureFixture) -> None:
    """Random headers, extensions, CSRC counts and padding under a real producer's SSRC.

    The worker runs in this process, so that any exception it logs fails the test.
    """
    caplog.set_level(logging.ERROR)
    async with server_with(in_process_workers=True) as server, aiohttp.ClientSession() as http:
        browsers: list[Browser] = []
        call = await make_call(KolabApp(server, http), browsers)
        try:
            await _flood(call)
        finally:
            call.close()
            for browser in browsers:
                await browser.close()
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], caplog.text


async def _flood(call: Call) -> None:
    rng = random.Random(5)
    ssrc = call.sender.video_ssrc.to_bytes(4, "big")
    for _ in range(3000):
        size = rng.randrange(12, 400)
        data = bytearray(rng.randbytes(size))
        data[0] = 0x80 | rng.randrange(64)
        data[1] = rng.choice((101, 101 | 0x80, 100, rng.randrange(256)))
        data[8:12] = ssrc
        call.sender.rtp.sendto(bytes(data), call.rtp_address)
        call.sender.rtcp.sendto(bytes([0x80 | rng.randrange(32), rng.randrange(192, 224)]) + rng.randbytes(size),
                                call.rtcp_address)
    await asyncio.sleep(0.3)
    sub = call.subscribers[0]
    audio_before = sub.receiver.count(sub.ssrc("audio"))
    await call.sender.stream(call.rtp_address, seconds=0.5)
    await asyncio.sleep(0.1)
    assert sub.receiver.count(sub.ssrc("audio")) > audio_before + 10
    assert await call.publisher.ok("ping") is None


async def test_consumer_key_frame_request_reaches_the_sender(app: KolabApp, call: Call) -> None:
    await call.sender.stream(call.rtp_address, seconds=0.6)
    room = app.server.rooms.get(call.publisher.room_id)
    video = next(c for c in room.peers[call.subscribers[0].browser.peer_id].consumers.values() if c.kind == "video")
    plis = call.sender.plis
    await video.request_key_frame()
    await _wait(lambda: call.sender.plis > plis)
    assert (await video.get_stats())[0]["pliCount"] >= 1


async def test_rtx_repairs_a_loss_and_copies_of_what_arrived_are_dropped(app: KolabApp, browsers: list[Browser]) -> None:
    """A packet lost on the way and resent as RTX is forwarded; RTX copies of packets that arrived (a sender's
    padding probes) are not, so receivers see no duplicates."""
    sender = Sender(rtx_ssrc=33333333)
    sender.skip = {1010}
    call = await make_call(app, browsers, sender)
    try:
        await sender.stream(call.rtp_address, 1.5)
        sender.send_rtx(call.rtp_address, 1010)
        for seq in (1011, 1012, 1013):
            sender.send_rtx(call.rtp_address, seq)
        await sender.stream(call.rtp_address, 0.5)
        (video_stats,) = [s for s in await _producer_stats(app, call, "video") if s["ssrc"] == sender.video_ssrc]
        assert video_stats["packetsRetransmitted"] == 1 and video_stats["rtxPacketsDiscarded"] == 3, video_stats
        for subscriber in call.subscribers:
            seqs = subscriber.receiver.streams[subscriber.ssrc("video")].seqs
            assert len(seqs) == len(set(seqs)), "no packet twice"
            assert len(seqs) == len(sender.sent), "the lost one came through RTX"
    finally:
        call.close()


async def test_no_consumer_starts_on_a_key_frame_repaired_by_rtx(app: KolabApp, browsers: list[Browser]) -> None:
    """A newcomer's consumer waits for a key frame; the first packet of the one it gets is lost and comes
    later as RTX. Starting there would skip for good the packets that arrived before the repair (dropped
    while waiting): the consumer waits for the next key frame instead, and the server asks for one."""
    sender = Sender(rtx_ssrc=33333333)
    call = await make_call(app, browsers, sender)
    try:
        await sender.stream(call.rtp_address, 0.5)
        plis = sender.plis
        newcomer = Subscriber(*await late_plain_viewer(app, call.publisher.room_id))
        browsers.append(newcomer.browser)
        await newcomer.browser.wait_request("newConsumer", count=2)
        await _wait(lambda: sender.plis > plis)
        repaired = sender.next_video_seq
        sender.skip = {repaired}
        for _ in range(3):
            sender.send_video_frame(call.rtp_address)
            await asyncio.sleep(1 / 15)
        plis = sender.plis
        sender.send_rtx(call.rtp_address, repaired)
        await sender.stream(call.rtp_address, 1.0)
        seqs = newcomer.receiver.streams[newcomer.ssrc("video")].seqs
        assert seqs and gap_free(seqs), seqs
        assert sender.plis > plis, "a key frame asked for after the repaired one"
        assert newcomer.receiver.frames_decoded > 0 and newcomer.receiver.undecodable == 0
        for subscriber in call.subscribers:
            assert len(subscriber.receiver.streams[subscriber.ssrc("video")].seqs) == len(sender.sent), \
                "the running consumers forwarded the repair"
    finally:
        newcomer.receiver.close()
        call.close()


async def _producer_stats(app: KolabApp, call: Call, kind: str) -> list[dict[str, Any]]:
    room = app.server.rooms.get(call.publisher.room_id)
    producer = room.peers[call.publisher.peer_id].producers[call.producers[kind]]
    return await producer.get_stats()


async def test_rtp_from_elsewhere_than_the_learnt_sender_is_not_forwarded(call: Call) -> None:
    """comedia: the address of the first RTP packet is the sender's; the worker's socket is then
    connected to it, and RTP under the producer's SSRC from another socket goes nowhere (mediasoup
    takes RTP only from a plain transport's remote too)."""
    sub = call.subscribers[0]
    ssrc = sub.ssrc("audio")
    for _ in range(5):
        call.sender.send_audio_frame(call.rtp_address)
    await _wait(lambda: sub.receiver.count(ssrc) >= 5)
    await asyncio.sleep(0.1)
    learnt = sub.receiver.count(ssrc)
    own, stranger = call.sender.rtp, await udp_socket(lambda data, addr: None)
    call.sender.rtp = stranger
    try:
        for _ in range(20):
            call.sender.send_audio_frame(call.rtp_address)
        await asyncio.sleep(0.3)
        assert sub.receiver.count(ssrc) == learnt
    finally:
        call.sender.rtp = own
        stranger.close()
    for _ in range(5):
        call.sender.send_audio_frame(call.rtp_address)
    await _wait(lambda: sub.receiver.count(ssrc) >= learnt + 5)
