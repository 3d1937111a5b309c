"""A Chromium page behind a constrained link (tests/browser/shaping.py): layers follow the estimate down and
back up, video keeps decoding under loss and delay, and the sender's encoder follows our feedback."""

from __future__ import annotations

import asyncio
import time
from typing import Any, AsyncIterator

import pytest

from tests.browser.conftest import PageFactory, meeting_server
from tests.browser.pages import MeetingPage, until
from tests.browser.shaping import ANNOUNCED, ShapedLink, shaped_link
from tests.helpers import free_port

PUBLISHER = 3


@pytest.fixture
async def linked(pages: PageFactory) -> AsyncIterator[tuple[ShapedLink, Any, MeetingPage, MeetingPage]]:
    """alice sends webcam and mic, bob only receives; both reach the server through the shaped link."""
    port = free_port()
    async with meeting_server(webrtc_announced_address=ANNOUNCED, webrtc_port_base=port) as (server, app), \
            shaped_link(port) as link:
        room = await app.create_room()
        alice, bob = await pages("alice"), await pages("bob")
        await alice.start((await app.connection(room, PUBLISHER))["token"])
        await bob.start((await app.connection(room, PUBLISHER))["token"], webcam=False, mic=False)
        peer = server.rooms.get(room).peers[bob.peer_id]
        await until(lambda: _bob_video(bob), 15, "bob decoding alice's webcam")
        yield link, peer, alice, bob


async def _bob_video(bob: MeetingPage) -> dict[str, Any] | None:
    video = next((c for c in (await bob.stats())["consumers"] if c["kind"] == "video"), None)
    return video if video and video["framesDecoded"] > 0 else None


async def _decoding_at(bob: MeetingPage, width: int | None, frames: int = 5, window: float = 2.0) -> bool:
    """bob's video shows `width`-wide frames (None: any) and decodes at least `frames` in `window` seconds."""
    before = await _bob_video(bob)
    await asyncio.sleep(window)
    after = await _bob_video(bob)
    return bool(before and after and width in (None, after["frameWidth"])
                and after["framesDecoded"] - before["framesDecoded"] >= frames)


async def _server_layer(peer: Any) -> int:
    consumer = next(c for c in peer.consumers.values() if c.kind == "video")
    return (await consumer.get_stats())[0]["spatialLayer"]


async def test_a_narrow_downlink_takes_the_low_layer_and_the_high_one_comes_back(linked: Any) -> None:
    link, peer, _alice, bob = linked
    # bob's first frame may come while the estimate still ramps up to the high layer (seen on a loaded machine)
    await until(lambda: _is_layer(peer, 1), 10, "the high layer before the link narrows")
    link.downlink.set(rate=100_000)
    capped = time.monotonic()
    await until(lambda: _is_layer(peer, 0), 5, "the low layer within 5 s of a 100 kbit/s downlink")
    dropped_after = time.monotonic() - capped
    await until(lambda: _decoding_at(bob, 160), 15, "video decoding at the low layer")
    link.downlink.set()
    lifted = time.monotonic()
    # Back after the next probe cluster passes: 5 s after the last one, 15 s at most after failed ones.
    await until(lambda: _is_layer(peer, 1), 15, "the high layer back within 15 s of the link widening")
    back_after = time.monotonic() - lifted
    await until(lambda: _decoding_at(bob, 320), 10, "video decoding at the high layer")
    (stats,) = await next(t for t in peer.transports.values() if t.app_data["consuming"]).get_stats()
    assert stats["probeClustersPassed"] >= 1, stats
    assert stats["packetsPaced"] > 0, "key frames at the low estimate went through the pacer"
    print(f"low layer after {dropped_after:.1f} s, high layer back {back_after:.1f} s after the lift; "
          f"probe clusters {stats['probeClusters']} ({stats['probeClustersPassed']} passed), "
          f"packets paced {stats['packetsPaced']}")


async def _is_layer(peer: Any, layer: int) -> bool:
    return await _server_layer(peer) == layer


async def test_video_keeps_decoding_with_loss_and_delay(linked: Any) -> None:
    """5 % loss and 50 ms delay both ways: Chromium's own estimate (from our feedback) may give up the
    high layer, the consumer follows to the layer that arrives, and video keeps decoding."""
    link, _peer, _alice, bob = linked
    link.downlink.set(delay=0.05, loss=0.05)
    link.uplink.set(delay=0.05, loss=0.05)
    await asyncio.sleep(3.0)
    for _ in range(3):
        assert await _decoding_at(bob, None, frames=8, window=2.0), "video under 5 % loss and 50 ms delay"
    assert link.downlink.dropped > 0 and link.uplink.dropped > 0


async def test_the_senders_encoder_follows_our_feedback_down_and_up(linked: Any) -> None:
    link, _peer, alice, _bob = linked

    async def estimate() -> int:
        return (await alice.stats())["transports"]["send"].get("availableOutgoingBitrate") or 0

    await until(lambda: _above(estimate(), 1_000_000), 10, "Chromium's estimate at 1 Mbit/s before the cap")
    link.uplink.set(rate=150_000)
    await until(lambda: _below(estimate(), 200_000), 10, "Chromium's estimate under the 150 kbit/s uplink")
    link.uplink.set()
    # Chromium climbs back by its own additive increase and probes: measured 23 s from about 100 kbit/s.
    await until(lambda: _above(estimate(), 1_000_000), 40, "Chromium's estimate back above 1 Mbit/s")


async def _below(value: Any, limit: int) -> bool:
    return await value < limit


async def _above(value: Any, limit: int) -> bool:
    return await value >= limit
