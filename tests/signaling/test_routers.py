"""A room past ROUTER_SCALE_SIZE spreads to another worker; media crosses by pipe transports."""

from __future__ import annotations

import asyncio
import os
from typing import Any

import aiohttp

from kolabmeet.app import Server
from tests.helpers import Browser, KolabApp, joined
from kolabmeet.media.capabilities import router_rtp_capabilities
from kolabmeet.media.worker import rtcp
from tests.media.rtp_peer import Receiver, Sender, gap_free, plain_viewer


async def _publish(browser: Browser, sender: Sender) -> tuple[tuple[str, int], dict[str, str]]:
    await sender.open()
    transport = await browser.ok("createPlainTransport", {"producing": True, "consuming": False})
    sender.send_sender_report(("127.0.0.1", transport["rtcpPort"]))
    producers = {}
    for kind, source in (("video", "webcam"), ("audio", "mic")):
        answer = await browser.ok("produce", {"transportId": transport["id"], "kind": kind,
                                              "rtpParameters": sender.rtp_parameters(kind),
                                              "appData": {"source": source}})
        producers[kind] = answer["id"]
    return ("127.0.0.1", transport["port"]), producers


def _server_peer(server: Server, browser: Browser) -> Any:
    return server.rooms.get(browser.room_id).peers[browser.peer_id]


async def _until(predicate: Any, timeout: float = 5.0) -> None:
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while not predicate():
        assert loop.time() < end, "timed out"
        await asyncio.sleep(0.02)


async def _room_over_two_workers(app: KolabApp) -> tuple[Browser, Browser, Receiver, Browser, Receiver]:
    """A publisher and a plain viewer on the first router, a plain viewer on the second (ROUTER_SCALE_SIZE 2)."""
    room = await app.create_room()
    publisher = await joined(app, room, role=3, nickname="speaker")
    near, near_receiver = await plain_viewer(app, room)
    far, far_receiver = await plain_viewer(app, room)
    return publisher, near, near_receiver, far, far_receiver


async def _consuming(server: Server, viewers: tuple[Browser, ...]) -> None:
    """Until each viewer has its two consumers, resumed."""
    for viewer in viewers:
        await viewer.wait_request("newConsumer", count=2)
        peer = _server_peer(server, viewer)
        await _until(lambda: len(peer.consumers) == 2 and not any(c.paused for c in peer.consumers.values()))


async def test_room_spreads_over_workers_and_media_crosses(server_with: Any) -> None:
    async with server_with(num_workers=2, router_scale_size=2) as server, aiohttp.ClientSession() as http:
        publisher, near, near_receiver, far, far_receiver = await _room_over_two_workers(KolabApp(server, http))
        rooms = server.rooms.get(publisher.room_id)
        first, second = (_server_peer(server, b).router for b in (publisher, far))
        assert _server_peer(server, near).router is first and first.peer_count == 2
        assert second is not first and second.worker is not first.worker, "the third peer goes to the other worker"
        assert rooms.live_routers() == [first, second]

        sender = Sender()
        address, producers = await _publish(publisher, sender)
        await _consuming(server, (near, far))
        assert producers["video"] in second.producers, "piped under the same id"
        await sender.stream(address, seconds=1.5)
        await asyncio.sleep(0.2)
        for viewer, receiver in ((near, near_receiver), (far, far_receiver)):
            data = {r["data"]["kind"]: r["data"] for r in viewer.server_requests if r["method"] == "newConsumer"}
            video = receiver.streams[data["video"]["rtpParameters"]["encodings"][0]["ssrc"]]
            audio = receiver.streams[data["audio"]["rtpParameters"]["encodings"][0]["ssrc"]]
            assert gap_free(video.seqs) and gap_free(audio.seqs)
            assert receiver.frames_decoded >= 0.8 * sender.frames_sent, (receiver.frames_decoded, sender.frames_sent)
            assert len(audio.seqs) >= 50

        await publisher.ok("pauseProducer", {"producerId": producers["audio"]})
        far_audio = next(r["data"]["id"] for r in far.server_requests if r["data"]["kind"] == "audio")
        await far.wait_for("consumerPaused", lambda d: d["consumerId"] == far_audio)
        await publisher.ok("closeProducer", {"producerId": producers["video"]})
        far_video = next(r["data"]["id"] for r in far.server_requests if r["data"]["kind"] == "video")
        await far.wait_for("consumerClosed", lambda d: d["consumerId"] == far_video)
        await _until(lambda: producers["video"] not in second.producers)

        sender.close()
        for browser, receiver in ((near, near_receiver), (far, far_receiver)):
            receiver.close()
            await browser.close()
        await publisher.close()


async def test_pipes_carry_no_congestion_feedback(server_with: Any) -> None:
    """The publisher's transport answers transport-wide numbers with feedback; a pipe does not, since
    the numbers in piped packets are those the near consumers wrote last: the far end sends only
    receiver reports back."""
    async with server_with(num_workers=2, router_scale_size=2) as server, aiohttp.ClientSession() as http:
        publisher, near, near_receiver, far, far_receiver = await _room_over_two_workers(KolabApp(server, http))
        first, second = (_server_peer(server, b).router for b in (publisher, far))
        sender = Sender(transport_cc=True)
        address, _producers = await _publish(publisher, sender)
        await _consuming(server, (near, far))
        _local, remote = first._pipes[second.id]
        before = (await remote.get_stats())[0]["bytesSent"]
        await sender.stream(address, seconds=1.5)
        await asyncio.sleep(0.2)
        feedback = [p for data in sender.rtcp_received for p in rtcp.iter_packets(data)
                    if p[0] == rtcp.PT_RTPFB and p[1] == rtcp.FMT_TCC]
        assert len(feedback) >= 5, "the publisher's transport sends transport-wide feedback"
        assert far_receiver.frames_decoded >= 0.8 * sender.frames_sent
        sent_back = (await remote.get_stats())[0]["bytesSent"] - before
        assert sent_back < 200, f"the far end of the pipe sent {sent_back} bytes of RTCP in 1.7 s (reports: about 64)"
        sender.close()
        for browser, receiver in ((near, near_receiver), (far, far_receiver)):
            receiver.close()
            await browser.close()
        await publisher.close()


async def test_producer_of_the_far_router_reaches_the_first(server_with: Any) -> None:
    async with server_with(num_workers=2, router_scale_size=1) as server, aiohttp.ClientSession() as http:
        app = KolabApp(server, http)
        room = await app.create_room()
        near, receiver = await plain_viewer(app, room)
        publisher = await joined(app, room, role=3, nickname="far speaker")
        assert _server_peer(server, publisher).router is not _server_peer(server, near).router
        sender = Sender()
        address, producers = await _publish(publisher, sender)
        await near.wait_request("newConsumer", count=2)
        peer = _server_peer(server, near)
        await _until(lambda: len(peer.consumers) == 2 and not any(c.paused for c in peer.consumers.values()))
        await sender.stream(address, seconds=1.0)
        await asyncio.sleep(0.2)
        assert receiver.frames_decoded >= 0.8 * sender.frames_sent
        third = await joined(app, room, role=1, nickname="late")
        assert _server_peer(server, third).router in server.rooms.get(room).live_routers()
        assert len(server.rooms.get(room).live_routers()) == 2, "no third router with two workers"
        sender.close()
        receiver.close()
        for browser in (near, publisher, third):
            await browser.close()


async def _viewer_joining_with_its_transport(app: KolabApp, room: str) -> tuple[Browser, Receiver]:
    """As the Kolab client does: the receiving transport first, then join (which consumes what is there)."""
    browser = Browser((await app.connection(room, 1))["token"])
    await browser.connect()
    receiver = Receiver()
    await receiver.open()
    transport = await browser.ok("createPlainTransport", {"producing": False, "consuming": True})
    rtp_port, rtcp_port = receiver.ports
    await browser.ok("connectPlainTransport", {"transportId": transport["id"], "ip": "127.0.0.1",
                                               "port": rtp_port, "rtcpPort": rtcp_port})
    await browser.ok("join", {"nickname": "far viewer", "rtpCapabilities": router_rtp_capabilities()})
    return browser, receiver


async def test_a_near_consumer_pausing_leaves_the_piped_stream_whole(server_with: Any) -> None:
    """Consumers rewrite sequence numbers in the buffer they share; the pipe to the other worker must still
    carry the producer's own (it once carried those of the consumer before it, until that one paused)."""
    async with server_with(num_workers=2, router_scale_size=2) as server, aiohttp.ClientSession() as http:
        app = KolabApp(server, http)
        room = await app.create_room()
        publisher = await joined(app, room, role=3, nickname="speaker")
        near, _near_receiver = await plain_viewer(app, room)
        sender = Sender()
        address, _producers = await _publish(publisher, sender)
        await near.wait_request("newConsumer", count=2)
        # The second router, made now, gets the producers piped in: its pipe consumer comes after near's.
        far, far_receiver = await _viewer_joining_with_its_transport(app, room)
        assert _server_peer(server, far).router is not _server_peer(server, near).router
        for viewer in (near, far):
            await viewer.wait_request("newConsumer", count=2)
            peer = _server_peer(server, viewer)
            await _until(lambda: len(peer.consumers) == 2 and not any(c.paused for c in peer.consumers.values()))
        await sender.stream(address, seconds=0.6)
        near_video = next(r["data"]["id"] for r in near.server_requests if r["data"]["kind"] == "video")
        await near.ok("pauseConsumer", {"consumerId": near_video})
        await sender.stream(address, seconds=0.6)
        await asyncio.sleep(0.2)
        data = next(r["data"] for r in far.server_requests if r["data"]["kind"] == "video")
        video = far_receiver.streams[data["rtpParameters"]["encodings"][0]["ssrc"]]
        assert len(video.seqs) > 10 and gap_free(video.seqs), video.seqs
        assert far_receiver.frames_decoded >= 0.8 * sender.frames_sent
        sender.close()
        for browser in (near, far, publisher):
            await browser.close()
        for receiver in (_near_receiver, far_receiver):
            receiver.close()


async def test_pinned_workers_each_get_one_cpu(server_with: Any) -> None:
    cpus = sorted(os.sched_getaffinity(0))
    async with server_with(num_workers=2, pin_workers=True) as server:
        for worker in server.pool.workers:
            assert os.sched_getaffinity(worker.pid) == {cpus[worker.index % len(cpus)]}
        assert sorted(os.sched_getaffinity(0)) == cpus, "the control process is left as it was"
