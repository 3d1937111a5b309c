"""The dev-mode demo: two tabs of /meetmedia/demo/ see and hear each other; no such route outside dev mode."""

from __future__ import annotations

from typing import Any

from playwright.async_api import Browser as PlaywrightBrowser

from tests.browser.pages import MeetingPage, until, wait_media
from tests.conftest import running_server
from tests.helpers import TOKEN, KolabApp


async def _demo_tab(chromium: PlaywrightBrowser, url: str, name: str) -> MeetingPage:
    context = await chromium.new_context()
    tab = await context.new_page()
    console: list[str] = []
    tab.on("console", lambda message: console.append(message.text))
    await tab.goto(url)
    page = MeetingPage(tab, name, console)
    stats = await until(lambda: _joined_stats(page), 15, f"{name} in the demo room")
    page.peer_id = stats["peerId"]
    return page


async def _joined_stats(page: MeetingPage) -> dict[str, Any] | None:
    stats = await page.stats()
    return stats if stats["joinMs"] is not None and len(stats["producers"]) == 2 else None


async def test_two_demo_tabs_see_and_hear_each_other(chromium: PlaywrightBrowser, page_origin: str) -> None:
    async with running_server(dev=True, request_timeout=10.0) as server:
        url = f"http://127.0.0.1:{server.port}/meetmedia/demo/"
        tabs = [await _demo_tab(chromium, url, "one"), await _demo_tab(chromium, url, "two")]
        try:
            await wait_media(tabs)
            status = await tabs[1].driver.evaluate("() => document.getElementById('status').textContent")
            assert "1 other" in status, status
        finally:
            for tab in tabs:
                await tab.driver.context.close()


async def test_no_demo_outside_dev_mode(server: Any, http: Any) -> None:
    app = KolabApp(server, http)
    async with http.get(f"{app.base}/meetmedia/demo/") as resp:
        assert resp.status == 403
    async with http.get(f"{app.base}/meetmedia/demo/", headers={"X-Auth-Token": TOKEN}) as resp:
        assert resp.status == 404
