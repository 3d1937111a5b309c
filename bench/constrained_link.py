"""How layers follow the estimate behind a constrained link, for a Chromium receiver.

Each run starts a server that announces 127.0.0.2, the shaping relay of the browser tests on that address
(tests/browser/shaping.py: a rate with a 250 ms queue, delay, loss), a Chromium page sending the Kolab
webcam (two simulcast layers) and mic, and a second page that only receives. Then:

* cap: the receiver's downlink is capped at CAP bit/s for HOLD seconds, then freed. Reported: seconds
  from the cap to the low layer, the frames/s decoded during the last half of the cap, and seconds from
  the lift to the high layer.
* loss: 5 % loss and 50 ms delay both ways for HOLD seconds. Reported: the frames/s decoded over its
  last half and the layer forwarded.

Figures are min / median / max over the runs.

    python -m bench.constrained_link --runs 3
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from typing import Any

import aiohttp
from playwright.async_api import async_playwright

from kolabmeet.app import Server
from tests.browser.conftest import CHROMIUM, CHROMIUM_ARGS
from tests.browser.pages import MeetingPage, serve_page, until
from tests.browser.shaping import ANNOUNCED, shaped_link
from tests.helpers import KolabApp, free_port, make_config

CAP = 100_000
HOLD = 12.0


async def _video(page: MeetingPage) -> dict[str, Any] | None:
    return next((c for c in (await page.stats())["consumers"] if c["kind"] == "video"), None)


async def _fps(page: MeetingPage, seconds: float) -> float:
    before = await _video(page)
    await asyncio.sleep(seconds)
    after = await _video(page)
    return (after["framesDecoded"] - before["framesDecoded"]) / seconds if before and after else 0.0


async def _layer(peer: Any) -> int:
    consumer = next(c for c in peer.consumers.values() if c.kind == "video")
    return (await consumer.get_stats())[0]["spatialLayer"]


async def _since(start: float, peer: Any, layer: int, timeout: float) -> float:
    async def reached() -> bool:
        return await _layer(peer) == layer

    await until(reached, timeout, f"layer {layer}", step=0.1)
    return time.monotonic() - start


async def one_run(browser: Any, url: str) -> dict[str, float]:
    port = free_port()
    server = Server(make_config(num_workers=1, request_timeout=10.0, reconnect_grace=10.0,
                                webrtc_announced_address=ANNOUNCED, webrtc_port_base=port))
    await server.start()
    contexts = []
    try:
        async with aiohttp.ClientSession() as http, shaped_link(port) as link:
            app = KolabApp(server, http)
            room = await app.create_room()
            pages = []
            for name in ("sender", "receiver"):
                context = await browser.new_context()
                contexts.append(context)
                tab = await context.new_page()
                await tab.goto(url)
                pages.append(MeetingPage(tab, name, []))
            sender, receiver = pages
            await sender.start((await app.connection(room, 3))["token"])
            await receiver.start((await app.connection(room, 3))["token"], webcam=False, mic=False)
            peer = server.rooms.get(room).peers[receiver.peer_id]
            await _since(time.monotonic(), peer, 1, 20)
            await asyncio.sleep(3.0)
            link.downlink.set(rate=CAP)
            capped = time.monotonic()
            result = {"low layer after cap (s)": await _since(capped, peer, 0, HOLD)}
            await asyncio.sleep(max(0.0, capped + HOLD / 2 - time.monotonic()))
            result["decoded fps under cap"] = await _fps(receiver, HOLD / 2)
            link.downlink.set()
            result["high layer after lift (s)"] = await _since(time.monotonic(), peer, 1, 30)
            await asyncio.sleep(3.0)
            link.downlink.set(delay=0.05, loss=0.05)
            link.uplink.set(delay=0.05, loss=0.05)
            await asyncio.sleep(HOLD / 2)
            result["decoded fps, 5 % loss + 50 ms"] = await _fps(receiver, HOLD / 2)
            result["layer, 5 % loss + 50 ms"] = await _layer(peer)
            return result
    finally:
        for context in contexts:
            await context.close()
        await server.stop()


async def main_async(runs: int) -> None:
    runner, origin = await serve_page()
    results: list[dict[str, float]] = []
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        for _ in range(runs):
            results.append(await one_run(browser, f"{origin}/index.html"))
            print("run: " + ", ".join(f"{k} {v:.1f}" for k, v in results[-1].items()))
        await browser.close()
    await runner.cleanup()
    for key in results[0]:
        values = [r[key] for r in results]
        print(f"{key}: min {min(values):.1f}, median {statistics.median(values):.1f}, max {max(values):.1f} "
              f"({runs} runs)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=3)
    asyncio.run(main_async(parser.parse_args().runs))


if __name__ == "__main__":
    main()
