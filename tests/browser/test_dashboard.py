"""The live dashboard in Chromium: login with the token, then the numbers it shows against the server's stats."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Any, AsyncIterator

import aiohttp
import pytest
from playwright.async_api import Browser as PlaywrightBrowser, Page

from kolabmeet.app import Server
from tests.browser.pages import until
from tests.conftest import running_server
from tests.helpers import TOKEN, KolabApp
from tests.media.test_webrtc_call import Call, start_call

ARTEFACTS = Path(os.environ.get("KOLABMEET_TEST_ARTEFACTS", Path(__file__).resolve().parents[2] / "test-artefacts"))


@pytest.fixture
async def streaming() -> AsyncIterator[tuple[Server, Call]]:
    """A server carrying a WebRTC call of pymediasoup (aiortc) peers: a publisher and two subscribers."""
    async with running_server() as server, aiohttp.ClientSession() as http:
        call = await start_call(KolabApp(server, http))
        try:
            yield server, call
        finally:
            await call.close()


async def _open(chromium: PlaywrightBrowser, server: Server) -> Page:
    context = await chromium.new_context(viewport={"width": 1400, "height": 1000})
    page = await context.new_page()
    response = await page.goto(f"http://127.0.0.1:{server.port}/meetmedia/dashboard/")
    assert response is not None and page.url.endswith("/meetmedia/dashboard/login"), "no cookie: to the login form"
    await page.fill("input[name=token]", "not-the-token-at-all")
    await page.click("button")
    assert "That is not the token." in await page.content()
    await page.fill("input[name=token]", TOKEN)
    await page.click("button")
    await page.wait_for_url("**/meetmedia/dashboard/")
    return page


async def _row(page: Page, object_id: str) -> dict[str, str]:
    return await page.evaluate("""id => {
        const row = document.querySelector(`tr[data-id="${id}"]`);
        if (!row) return null;
        const text = selector => (row.querySelector(selector) || {}).textContent;
        return {bitrate: text(".bitrate"), score: text(".score"), layer: text(".layer"), tuple: text(".tuple")};
    }""", object_id)


async def test_the_dashboard_shows_what_the_server_measures(chromium: PlaywrightBrowser,
                                                            streaming: tuple[Server, Call]) -> None:
    server, call = streaming
    page = await _open(chromium, server)
    room = server.rooms.get(call.publisher.browser.room_id)
    viewer = room.peers[call.subscribers[0].browser.peer_id]
    consumer = next(c for c in viewer.consumers.values() if c.kind == "video")

    async def shown() -> dict[str, str] | None:
        row = await _row(page, consumer.id)
        return row if row and row["bitrate"] not in (None, "–") and float(row["bitrate"]) > 0 else None

    await until(shown, 10, "the video consumer's bitrate on the dashboard")
    (before,) = [s for s in await consumer.get_stats() if s["type"] == "outbound-rtp"]
    started = asyncio.get_running_loop().time()
    await asyncio.sleep(3.0)
    (after,) = [s for s in await consumer.get_stats() if s["type"] == "outbound-rtp"]
    measured = (after["byteCount"] - before["byteCount"]) * 8 / (asyncio.get_running_loop().time() - started) / 1000
    row = await _row(page, consumer.id)
    assert 0.5 * measured <= float(row["bitrate"]) <= 2 * measured, (row, measured)
    assert row["score"] == str(after["score"]) and row["layer"] == f"{after['spatialLayer']}/{after['temporalLayer']}"
    for peer in room.peers.values():
        assert await page.locator(f'div[data-peer="{peer.id}"]').count() == 1
        for object_id in [*peer.transports, *peer.producers, *peer.consumers]:
            assert await _row(page, object_id) is not None, object_id
    canvases = await page.locator(f'tr[data-id="{consumer.id}"] canvas').count()
    assert canvases == 1
    transport = next(t for t in viewer.transports.values() if t.app_data["consuming"])
    (transport_stats,) = await transport.get_stats()
    remote = transport_stats["iceSelectedTuple"]
    assert f"{remote['remoteIp']}:{remote['remotePort']} udp" in (await _row(page, transport.id))["tuple"]
    ARTEFACTS.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=str(ARTEFACTS / "dashboard.png"), full_page=True)
    await page.context.close()


async def test_the_data_needs_the_cookie_or_the_token_and_nothing_is_cached(server: Server,
                                                                             http: aiohttp.ClientSession) -> None:
    base = f"http://127.0.0.1:{server.port}/meetmedia/dashboard/"
    async with http.get(base + "data") as response:
        assert response.status == 403
    async with http.get(base + "data", headers={"X-Auth-Token": TOKEN}) as response:
        assert response.status == 200 and response.headers["Cache-Control"] == "no-store"
        assert "rooms" in await response.json()
    async with http.get(base, allow_redirects=False) as response:
        assert response.status == 303 and response.headers["Location"].endswith("/login")
    async with http.post(base + "login", data={"token": TOKEN}, allow_redirects=False) as response:
        assert response.status == 303
        cookie: Any = response.cookies["kolabmeet_dashboard"]
        assert cookie["httponly"] and cookie["samesite"] == "Strict" and TOKEN not in cookie.value
    async with http.get(base, cookies={"kolabmeet_dashboard": cookie.value}) as response:
        assert response.status == 200 and response.headers["Cache-Control"] == "no-store"
        assert "kolabmeet dashboard" in await response.text()
