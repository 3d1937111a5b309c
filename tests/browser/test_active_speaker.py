"""The active speaker: pages whose microphones differ (a WebAudio tone against silence) are told who speaks."""

from __future__ import annotations

import asyncio
from typing import Any

from tests.browser.conftest import PageFactory
from tests.browser.pages import MeetingPage, until

PUBLISHER = 3


async def _speakers(page: MeetingPage) -> list[str]:
    return [data["peerId"] for data in await page.seen("activeSpeaker")]


async def _everyone_sees(pages: list[MeetingPage], speaker: MeetingPage) -> bool:
    for page in pages:
        told = await _speakers(page)
        if not told or told[-1] != speaker.peer_id:
            return False
    return True


async def test_active_speaker_follows_the_loudest_microphone(pages: PageFactory, meeting: Any) -> None:
    _server, app = meeting
    room = await app.create_room()
    alice, bob = await pages("alice"), await pages("bob")
    await alice.start((await app.connection(room, PUBLISHER))["token"], webcam=False, tone=0.8)
    await bob.start((await app.connection(room, PUBLISHER))["token"], webcam=False, tone=0)
    await until(lambda: _everyone_sees([alice, bob], alice), 8, "alice (the tone) as the active speaker")

    await alice.call("setTone", 0)
    await bob.call("setTone", 0.8)
    await until(lambda: _everyone_sees([alice, bob], bob), 8, "bob as the active speaker")

    told = len(await _speakers(alice))
    await alice.call("setTone", 0.8)  # a cough: 150 ms
    await asyncio.sleep(0.15)
    await alice.call("setTone", 0)
    await asyncio.sleep(2.0)
    assert len(await _speakers(alice)) == told, "a short sound does not switch the speaker"

    times = [event["at"] for event in await alice.call("seen_events", "activeSpeaker")]
    assert all(b - a >= 300 for a, b in zip(times, times[1:])), times
