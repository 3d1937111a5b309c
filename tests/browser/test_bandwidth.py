"""Chromium's send-side bandwidth estimation fed by our transport-wide CC feedback, capped by maxIncomingBitrate."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from tests.browser.conftest import PageFactory, meeting_server
from tests.browser.pages import MeetingPage, until

PUBLISHER = 3


async def _sender_state(page: MeetingPage) -> tuple[int, list[str]]:
    """(the send transport's availableOutgoingBitrate, each webcam layer's qualityLimitationReason)."""
    stats = await page.stats()
    webcam = next(p for p in stats["producers"] if p["source"] == "webcam")
    reasons = [e["qualityLimitationReason"] for e in webcam["encodings"]]
    return stats["transports"]["send"].get("availableOutgoingBitrate") or 0, reasons


async def test_chromium_estimate_reaches_the_start_bitrate_and_layers_are_not_limited(pages: PageFactory,
                                                                                     meeting: Any) -> None:
    _server, app = meeting
    room = await app.create_room()
    page = await pages("alice")
    await page.start((await app.connection(room, PUBLISHER))["token"], mic=False)
    started = time.monotonic()

    async def ramped() -> bool:
        bitrate, reasons = await _sender_state(page)
        return bitrate >= 1_000_000 and len(reasons) == 2 and set(reasons) == {"none"}

    await until(ramped, 10, "an estimate of at least 1 Mbit/s and no quality limitation on either layer")
    assert time.monotonic() - started < 10


async def test_max_incoming_bitrate_caps_the_estimate(pages: PageFactory) -> None:
    async with meeting_server(max_incoming_bitrate=600_000) as (_server, app):
        room = await app.create_room()
        page = await pages("alice")
        await page.start((await app.connection(room, PUBLISHER))["token"], mic=False)

        async def capped() -> int:
            bitrate, _reasons = await _sender_state(page)
            return bitrate if 0 < bitrate <= 600_000 else 0

        await until(capped, 10, "the estimate held at maxIncomingBitrate (REMB)")
        await asyncio.sleep(2.0)
        bitrate, _reasons = await _sender_state(page)
        assert 0 < bitrate <= 600_000, f"the estimate stays under the ceiling: {bitrate}"


async def test_the_receivers_feedback_gives_an_estimate_of_what_we_send(pages: PageFactory, meeting: Any) -> None:
    """Chromium reports (transport-wide CC) when our packets arrived: on an idle loopback the receiving
    transport's estimate is above what it delivers, with no loss and no overuse."""
    server, app = meeting
    room = await app.create_room()
    alice, bob = await pages("alice"), await pages("bob")
    await alice.start((await app.connection(room, PUBLISHER))["token"])
    await bob.start((await app.connection(room, PUBLISHER))["token"], webcam=False, mic=False)
    peer = server.rooms.get(room).peers[bob.peer_id]
    transport = next(t for t in peer.transports.values() if t.app_data["consuming"])

    async def estimated() -> dict[str, Any] | None:
        (stats,) = await transport.get_stats()
        delivered = stats["deliveredOutgoingBitrate"]
        healthy = delivered > 100_000 and stats["availableOutgoingBitrate"] > delivered
        return stats if healthy and stats["outgoingBandwidthState"] == "normal" else None

    # 30 s: on a loaded machine Chromium's feedback shows queueing delay that the estimate must ride out
    stats = await until(estimated, 30, "an estimate above the delivered bitrate")
    assert stats["outgoingLoss"] < 0.05, stats
