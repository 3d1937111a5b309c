"""Join time and time to the first decoded remote video, for Chromium pages in one room.

Each run starts a server and PAGES headless Chromium pages (the test page: mediasoup-client, the Kolab
webcam with two simulcast layers, and mic), which join one room 0.4 s apart. Per page it reports the
time from the page's start (socket.io connect) to the join answer and to its first decoded remote
video frame, as min / median / max over every page of every run.

    python -m bench.browser_join --pages 3 --runs 5
"""

from __future__ import annotations

import argparse
import asyncio
import statistics

import aiohttp
from playwright.async_api import async_playwright

from kolabmeet.app import Server
from tests.browser.conftest import CHROMIUM, CHROMIUM_ARGS
from tests.browser.pages import MeetingPage, serve_page, wait_media
from tests.helpers import KolabApp, make_config


async def one_run(browser: object, url: str, pages: int) -> list[tuple[float, float]]:
    """(join ms, first remote video ms) per page."""
    server = Server(make_config(num_workers=1, request_timeout=10.0))
    await server.start()
    contexts = []
    try:
        async with aiohttp.ClientSession() as http:
            app = KolabApp(server, http)
            room = await app.create_room()
            participants = []
            for index in range(pages):
                context = await browser.new_context()
                contexts.append(context)
                tab = await context.new_page()
                await tab.goto(url)
                participants.append(MeetingPage(tab, f"page{index}", []))

            async def join(index: int) -> None:
                await asyncio.sleep(0.4 * index)
                await participants[index].start((await app.connection(room, 3))["token"])

            await asyncio.gather(*(join(i) for i in range(pages)))
            await wait_media(participants, timeout=30)
            stats = [await page.stats() for page in participants]
    finally:
        for context in contexts:
            await context.close()
        await server.stop()
    return [(s["joinMs"], s["firstVideoMs"]) for s in stats]


async def main_async(pages: int, runs: int) -> None:
    runner, origin = await serve_page()
    url = f"{origin}/index.html"
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        results = []
        for _ in range(runs):
            run = await one_run(browser, url, pages)
            print("run: " + ", ".join(f"join {j} ms / first video {v} ms" for j, v in run))
            results += run
        await browser.close()
    await runner.cleanup()
    for name, values in (("join", [j for j, _ in results]), ("first remote video", [v for _, v in results])):
        print(f"{name}: min {min(values)} ms, median {statistics.median(values):.0f} ms, max {max(values)} ms "
              f"({len(values)} pages in {runs} runs)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pages", type=int, default=3)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    asyncio.run(main_async(args.pages, args.runs))


if __name__ == "__main__":
    main()
