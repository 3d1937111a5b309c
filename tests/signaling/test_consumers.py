"""Who consumes whom: exactly one consumer per remote producer, however requests interleave."""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from typing import Any

from kolabmeet.media.capabilities import router_rtp_capabilities
from tests.helpers import Browser, KolabApp, joined
from tests.media.rtp_peer import Sender
from tests.signaling.common import new_browser


async def _produce(browser: Browser, sender: Sender, kinds: tuple[str, ...]) -> None:
    transport = await browser.ok("createPlainTransport", {"producing": True, "consuming": False})
    for kind in kinds:
        await browser.ok("produce", {"transportId": transport["id"], "kind": kind,
                                     "rtpParameters": sender.rtp_parameters(kind),
                                     "appData": {"source": "webcam" if kind == "video" else "mic"}})


async def test_joining_while_others_produce_gives_one_consumer_per_producer(
        app: KolabApp, browsers: list[Browser]) -> None:
    """A joiner's consumers of the existing producers are offered one by one, each waiting for the client's
    answer; a producer made meanwhile must not be offered twice (by the join and by the produce)."""
    room = await app.create_room()
    first = await joined(app, room, role=3, nickname="first")
    second = await joined(app, room, role=3, nickname="second")
    browsers += [first, second]
    await _produce(first, Sender(), ("video", "audio"))
    viewer = await new_browser(app, room, browsers, role=1)
    release = asyncio.Event()

    async def slow_answer(request: dict[str, Any]) -> None:
        await release.wait()

    viewer.answer_request = slow_answer
    await viewer.ok("createPlainTransport", {"producing": False, "consuming": True})
    await viewer.ok("join", {"nickname": "viewer", "rtpCapabilities": router_rtp_capabilities()})
    await _produce(second, Sender(), ("video",))
    await asyncio.sleep(0.3)
    release.set()
    await viewer.wait_request("newConsumer", count=3)
    await asyncio.sleep(0.3)
    offered = Counter(r["data"]["producerId"] for r in viewer.server_requests if r["method"] == "newConsumer")
    assert sorted(offered.values()) == [1, 1, 1], offered


async def test_a_consumer_gone_from_its_worker_before_the_answer_is_not_an_error(
        app: KolabApp, browsers: list[Browser], caplog: Any) -> None:
    """The worker may close a consumer (its producer gone, say) while the client's answer to newConsumer is
    on its way and before the news reaches the control process: the resume then finds nothing, quietly."""
    caplog.set_level(logging.INFO, "kolabmeet.signaling")
    room = await app.create_room()
    producer = await joined(app, room, role=3, nickname="producer")
    browsers.append(producer)
    await _produce(producer, Sender(), ("video",))
    viewer = await new_browser(app, room, browsers, role=1)
    offered: list[str] = []
    asked, release = asyncio.Event(), asyncio.Event()

    async def slow_answer(request: dict[str, Any]) -> None:
        offered.append(request["data"]["id"])
        asked.set()
        await release.wait()

    viewer.answer_request = slow_answer
    await viewer.ok("createPlainTransport", {"producing": False, "consuming": True})
    await viewer.ok("join", {"nickname": "viewer", "rtpCapabilities": router_rtp_capabilities()})
    await asyncio.wait_for(asked.wait(), 5)
    consumer = next(c for peer in app.server.rooms.get(room).peers.values()
                    for c in peer.consumers.values() if c.id == offered[0])
    await consumer.worker.request("consumer.close", consumer.id)
    release.set()
    await viewer.wait_request("newConsumer")
    await asyncio.sleep(0.3)
    assert any("could not be resumed" in r.getMessage() for r in caplog.records)
    assert not [r for r in caplog.records if r.levelname == "ERROR"], "no task failed"
    assert await viewer.request("ping") is None, "the viewer is still served"
