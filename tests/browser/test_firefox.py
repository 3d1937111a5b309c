"""Firefox ESR (driven over WebDriver BiDi) in Kolab meetings, alone and with Chromium pages."""

from __future__ import annotations

from typing import Any

from tests.browser.conftest import PageFactory
from tests.browser.pages import wait_media

PUBLISHER = 3


async def test_firefox_and_chromium_pages_in_one_room(pages: PageFactory, meeting: Any) -> None:
    """A Firefox page sends its webcam as simulcast (mediasoup-client's Firefox handler) and its mic; two Chromium
    pages send theirs; everyone decodes everyone."""
    _server, app = meeting
    room = await app.create_room()
    participants = [await pages("fox", browser="firefox"), await pages("alice"), await pages("bob")]
    for page in participants:
        await page.start((await app.connection(room, PUBLISHER))["token"])
    report = await wait_media(participants, timeout=30)
    assert len(report) == 3 * 2 * 2, report
    fox = await participants[0].stats()
    webcam = next(p for p in fox["producers"] if p["source"] == "webcam")
    assert len(webcam["encodings"]) == 2, webcam
    assert {t["remoteAddress"] for t in fox["transports"].values()} == {"127.0.0.1"}


async def test_two_firefox_pages(pages: PageFactory, meeting: Any) -> None:
    _server, app = meeting
    room = await app.create_room()
    participants = [await pages("fox", browser="firefox"), await pages("wolf", browser="firefox")]
    for page in participants:
        joined = await page.start((await app.connection(room, PUBLISHER))["token"])
        assert joined["handler"].startswith("Firefox"), joined
    await wait_media(participants, timeout=30)
