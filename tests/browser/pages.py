"""Meeting pages in real browsers: what a test asks of them, the same for Chromium and Firefox.

Each page runs kolabmeet/demo/meet.js (mediasoup-client + socket.io-client as the
Kolab web client uses them) and is driven through `window.meet`.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any, Awaitable, Callable, Protocol

from aiohttp import web

from kolabmeet.demo import build, page_file
from tests.helpers import free_port


async def serve_page() -> tuple[web.AppRunner, str]:
    """Build the page and serve it on 127.0.0.1 from a port of its own (another origin than the signaling):
    (the runner to clean up, the origin)."""
    build()

    async def serve(request: web.Request) -> web.StreamResponse:
        path = page_file(request.match_info["name"] or "index.html")
        if path is None:
            raise web.HTTPNotFound()
        return web.FileResponse(path, headers={"Cache-Control": "no-store"})

    app = web.Application()
    app.add_routes([web.get("/{name:.*}", serve)])
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    return runner, f"http://127.0.0.1:{port}"


class Driver(Protocol):
    """What Playwright's Page and our Firefox BiDi page both offer."""

    async def evaluate(self, expression: str, arg: Any = None) -> Any: ...


class MeetingPage:
    """One participant: a browser page with the meeting client loaded."""

    def __init__(self, driver: Driver, name: str, console: list[str]) -> None:
        self.driver = driver
        self.name = name
        self.console = console
        self.peer_id: str | None = None

    async def call(self, method: str, *args: Any) -> Any:
        """`window.meet[method](...args)`, awaited in the page."""
        return await self.driver.evaluate("([m, a]) => window.meet[m](...a)", [method, list(args)])

    async def start(self, token: str, **options: Any) -> dict[str, Any]:
        joined = await self.call("start", token, {"nickname": self.name, **options})
        self.peer_id = joined["peerId"]
        return joined

    async def stats(self) -> dict[str, Any]:
        return await self.call("stats")

    async def seen(self, method: str) -> list[Any]:
        return await self.call("seen", method)

    def __repr__(self) -> str:
        return f"<page {self.name} {self.peer_id}>"


async def until(check: Callable[[], Awaitable[Any]], timeout: float, what: str, step: float = 0.25) -> Any:
    """Poll `check` until it returns a truthy value; fail naming `what` (and the last value) after `timeout`."""
    end = time.monotonic() + timeout
    last: Any = None
    while True:
        last = await check()
        if last:
            return last
        if time.monotonic() > end:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}; last: {last!r}")
        await asyncio.sleep(step)


def remote_producers(stats: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    """A page's consumers grouped by producer id."""
    grouped: dict[str, list[dict[str, Any]]] = {}
    for consumer in stats["consumers"]:
        grouped.setdefault(consumer["producerId"], []).append(consumer)
    return grouped


async def media_flows(pages: list[MeetingPage], window: float = 2.0, min_frames: int = 5) -> dict[str, Any]:
    """Every page decodes every other page's videos and receives their audio, with exactly one consumer
    per remote producer; measured as growth of framesDecoded / packetsReceived over `window` seconds."""
    producers = {}
    for page in pages:
        stats = await page.stats()
        producers[page.peer_id] = {p["id"]: p for p in stats["producers"] if not p["paused"]}
    before = {page.name: await page.stats() for page in pages}
    await asyncio.sleep(window)
    report = {}
    for page in pages:
        after = await page.stats()
        grouped = remote_producers(after)
        earlier = {c["id"]: c for c in before[page.name]["consumers"]}
        for other in pages:
            if other is page:
                continue
            for producer_id, producer in producers[other.peer_id].items():
                consumers = grouped.get(producer_id, [])
                assert len(consumers) == 1, f"{page} holds {len(consumers)} consumers of {other}'s {producer['source']}"
                consumer = consumers[0]
                start = earlier.get(consumer["id"], {})
                if consumer["kind"] == "video":
                    grown = consumer["framesDecoded"] - start.get("framesDecoded", 0)
                    assert grown >= min_frames, f"{page} decoded {grown} frames of {other}'s {producer['source']}"
                else:
                    grown = consumer["packetsReceived"] - start.get("packetsReceived", 0)
                    assert grown >= 10, f"{page} received {grown} audio packets of {other}"
                report[f"{page.name}<-{other.name}:{producer['source']}"] = grown
    return report


async def wait_media(pages: list[MeetingPage], timeout: float = 20.0, **kwargs: Any) -> dict[str, Any]:
    """media_flows() once it holds (consumers and first frames take a moment)."""
    async def check() -> Any:
        try:
            return await media_flows(pages, **kwargs)
        except AssertionError as exc:
            check.last = str(exc)  # type: ignore[attr-defined]
            return None
    try:
        return await until(check, timeout, "media between every pair of pages", step=0.1)
    except AssertionError as exc:
        raise AssertionError(f"{exc}: {getattr(check, 'last', '')}") from None
