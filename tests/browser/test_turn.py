"""Pages that reach kolabmeet only through coturn (iceTransportPolicy "relay"), over TURN/UDP and TURN/TCP,
with the REST credentials that roomReady hands out."""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from typing import Any, AsyncIterator

import pytest

from tests.browser.conftest import PageFactory, meeting_server
from tests.browser.coturn import Coturn, running_coturn
from tests.browser.pages import MeetingPage, wait_media

PUBLISHER = 3
"""SUBSCRIBER | PUBLISHER, what Kolab gives a participant who may speak."""
DAY = 86400

transports = pytest.mark.parametrize("transport", ["udp", "tcp"])


@pytest.fixture
async def coturn() -> AsyncIterator[Coturn]:
    async with running_coturn() as turn:
        yield turn


async def check_credentials(page: MeetingPage, turn: Coturn, transport: str) -> str:
    """roomReady's iceServers: the one TURN URL, username "<expiry>:<peerId>" valid for a day, and its
    credential base64(HMAC-SHA1(secret, username)). Returns the username."""
    (ready,) = await page.seen("roomReady")
    (server,) = ready["iceServers"]
    assert server["urls"] == [turn.url(transport)], server
    expiry, peer_id = server["username"].split(":", 1)
    assert peer_id == page.peer_id, server
    assert abs(int(expiry) - (time.time() + DAY)) < 120, server
    digest = hmac.new(turn.secret.encode(), server["username"].encode(), hashlib.sha1).digest()
    assert server["credential"] == base64.b64encode(digest).decode(), server
    return server["username"]


async def relayed_meeting(participants: list[MeetingPage], turn: Coturn, transport: str) -> list[dict[str, Any]]:
    """The pages join one room with relay=True (webcam simulcast + mic) and decode each other, every selected
    candidate pair is a relay candidate over `transport` (relayed to the server's UDP candidate), and coturn
    granted each page's TURN user an allocation per transport at least. Returns what start() answered."""
    async with meeting_server(turn_server=turn.url(transport), turn_static_secret=turn.secret) as (_server, app):
        room = await app.create_room()
        joined = [await page.start((await app.connection(room, PUBLISHER))["token"], relay=True)
                  for page in participants]
        report = await wait_media(participants, timeout=25)
        assert len(report) == len(participants) * (len(participants) - 1) * 2, report
        allocations = turn.allocations()
        for page in participants:
            username = await check_credentials(page, turn, transport)
            pairs = (await page.stats())["transports"]
            assert set(pairs) == {"send", "recv"}, pairs
            for name, pair in pairs.items():
                assert pair["state"] in ("connected", "completed"), (page, name, pair)
                assert pair["localType"] == "relay" and pair["relayProtocol"] == transport, (page, name, pair)
                assert pair["remoteProtocol"] == "udp" and pair["remoteAddress"] == "127.0.0.1", (page, name, pair)
            assert allocations.count(username) >= 2, f"{page}: {allocations}\n{turn.log()}"
        return joined


@transports
async def test_chromium_pages_meet_through_turn(pages: PageFactory, coturn: Coturn, transport: str) -> None:
    """Two Chromium pages with iceTransportPolicy "relay" see and hear each other through coturn."""
    joined = await relayed_meeting([await pages("alice"), await pages("bob")], coturn, transport)
    assert all(j["handler"].startswith("Chrome") for j in joined), joined


@transports
async def test_firefox_meets_chromium_through_turn(pages: PageFactory, coturn: Coturn, transport: str) -> None:
    """Firefox with relay, as the Kolab client runs it when TURN is configured, and a Chromium page."""
    joined = await relayed_meeting([await pages("alice", browser="firefox"), await pages("bob")], coturn, transport)
    assert [j["handler"][:6] for j in joined] == ["Firefo", "Chrome"], joined
