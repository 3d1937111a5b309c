"""Fixtures of the browser tests: the page (built from npm, served from its own origin), headless Chromium
(Playwright with Debian's chromium) and Firefox ESR (our WebDriver BiDi client), a kolabmeet server, coturn."""

from __future__ import annotations

import contextlib
from typing import Any, AsyncIterator, Awaitable, Callable

import aiohttp
import pytest
from playwright.async_api import Browser as PlaywrightBrowser, async_playwright

from kolabmeet.app import Server
from tests.browser.firefox import Firefox
from tests.browser.pages import MeetingPage, serve_page
from tests.conftest import running_server
from tests.helpers import KolabApp

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream", "--allow-loopback-in-peer-connection",
    "--autoplay-policy=no-user-gesture-required", "--disable-gpu", "--disable-quic",
    # Off the network: no name resolution but loopback, no background services, no mDNS candidates.
    "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1 , EXCLUDE localhost",
    "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run",
    "--disable-default-apps", "--disable-domain-reliability", "--disable-client-side-phishing-detection",
    # Playwright passes its own --disable-features; this later one wins, so it repeats what matters.
    "--disable-features=WebRtcHideLocalIpsWithMdns,Translate,OptimizationHints,MediaRouter,AutofillServerCommunication",
]

PageFactory = Callable[..., Awaitable[MeetingPage]]


@pytest.fixture(scope="session")
async def page_origin() -> AsyncIterator[str]:
    """The meeting page, served on 127.0.0.1 from another port (so another origin) than the signaling."""
    runner, origin = await serve_page()
    yield origin
    await runner.cleanup()


@pytest.fixture(scope="session")
async def chromium() -> AsyncIterator[PlaywrightBrowser]:
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield browser
        await browser.close()


class LazyFirefox:
    """One Firefox for the session, started when a test first asks for a Firefox page."""

    def __init__(self, page_origin: str) -> None:
        self.page_origin = page_origin
        self.browser: Firefox | None = None

    async def get(self) -> Firefox:
        if self.browser is None:
            self.browser = await Firefox.launch(allow_origins=[self.page_origin])
        return self.browser


@pytest.fixture(scope="session")
async def firefox(page_origin: str) -> AsyncIterator[LazyFirefox]:
    lazy = LazyFirefox(page_origin)
    yield lazy
    if lazy.browser is not None:
        await lazy.browser.close()


@pytest.fixture
async def pages(chromium: PlaywrightBrowser, firefox: LazyFirefox, page_origin: str) -> AsyncIterator[PageFactory]:
    """`await pages("alice")` opens a meeting page (Chromium unless browser="firefox"; legacy=True for
    mediasoup-client 3.7.8), each participant in a browser context of its own; all closed at the end."""
    closers: list[Callable[[], Awaitable[Any]]] = []

    async def open_page(name: str, browser: str = "chromium", legacy: bool = False) -> MeetingPage:
        url = f"{page_origin}/index.html" + ("?legacy=1" if legacy else "")
        console: list[str] = []
        if browser == "firefox":
            driver = await (await firefox.get()).new_page()
            closers.append(driver.close)
            await driver.goto(url)
            console = driver.console
        else:
            context = await chromium.new_context()
            closers.append(context.close)
            driver = await context.new_page()
            driver.on("console", lambda message: console.append(message.text))
            await driver.goto(url)
        await driver.evaluate("() => window.meet !== undefined")
        return MeetingPage(driver, name, console)

    yield open_page
    for close in reversed(closers):
        with contextlib.suppress(Exception):
            await close()


@contextlib.asynccontextmanager
async def meeting_server(**overrides: Any) -> AsyncIterator[tuple[Server, KolabApp]]:
    """A server with timers fit for browsers (their newConsumer answers take longer than scripted peers')."""
    values: dict[str, Any] = dict(request_timeout=10.0, reconnect_grace=10.0, num_workers=1)
    values.update(overrides)
    async with running_server(**values) as server, aiohttp.ClientSession() as http:
        yield server, KolabApp(server, http)


@pytest.fixture
async def meeting() -> AsyncIterator[tuple[Server, KolabApp]]:
    async with meeting_server() as pair:
        yield pair
