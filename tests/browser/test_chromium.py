"""Kolab meetings in headless Chromium with mediasoup-client: simulcast webcams, mics, screen share, codecs."""

from __future__ import annotations

import asyncio
from typing import Any

from tests.browser.conftest import PageFactory
from tests.browser.pages import wait_media

PUBLISHER = 3
"""SUBSCRIBER | PUBLISHER, what Kolab gives a participant who may speak."""


async def test_three_pages_with_simulcast_see_and_hear_each_other(pages: PageFactory, meeting: Any) -> None:
    """The Kolab webcam (two rid encodings) and mic from three pages that join while the others produce."""
    _server, app = meeting
    room = await app.create_room()
    participants = [await pages(name) for name in ("alice", "bob", "carol")]

    async def join(index: int) -> dict[str, Any]:
        await asyncio.sleep(0.4 * index)
        token = (await app.connection(room, PUBLISHER))["token"]
        return await participants[index].start(token)

    joined = await asyncio.gather(*(join(i) for i in range(3)))
    assert all(j["handler"].startswith("Chrome") for j in joined)
    report = await wait_media(participants, timeout=25)
    assert len(report) == 3 * 2 * 2, report
    for page in participants:
        stats = await page.stats()
        webcam = next(p for p in stats["producers"] if p["source"] == "webcam")
        assert len(webcam["encodings"]) == 2, webcam
        assert all(c["mimeType"] in ("video/VP8", "audio/opus") for c in stats["consumers"])
        assert all(c["frameWidth"] > 0 for c in stats["consumers"] if c["kind"] == "video")
