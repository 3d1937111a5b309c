"""Join latency and memory per peer, over the server's real protocol.

Peers join one room after another as the Kolab web client does (connection
token, socket.io connect, roomReady, getRouterRtpCapabilities, a receive
WebRTC transport, join, a send WebRTC transport). Reported as medians over
several runs: the time from socket connect to the end of the last request,
and the resident memory the control process and the worker gain per peer.

    python -m bench.join --peers 50 --runs 3
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import aiohttp
import uvloop

from kolabmeet.app import Server
from kolabmeet.media.capabilities import router_rtp_capabilities
from tests.helpers import Browser, KolabApp, make_config


def rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


async def join_one(app: KolabApp, room: str) -> tuple[Browser, float]:
    browser = Browser((await app.connection(room, 3))["token"])
    start = time.perf_counter()
    await browser.connect()
    await browser.ok("getRouterRtpCapabilities")
    await browser.ok("createWebRtcTransport", {"forceTcp": False, "producing": False, "consuming": True})
    await browser.ok("join", {"nickname": "peer", "rtpCapabilities": router_rtp_capabilities()})
    await browser.ok("createWebRtcTransport", {"forceTcp": False, "producing": True, "consuming": False})
    return browser, time.perf_counter() - start


async def one_run(peers: int) -> dict[str, float]:
    server = Server(make_config(num_workers=1))
    await server.start()
    browsers = []
    try:
        async with aiohttp.ClientSession() as http:
            app = KolabApp(server, http)
            room = await app.create_room()
            first, _ = await join_one(app, room)
            browsers.append(first)
            worker_pid = server.pool.workers[0].pid
            control_before, worker_before = rss_kib(os.getpid()), rss_kib(worker_pid)
            latencies = []
            for _ in range(peers):
                browser, latency = await join_one(app, room)
                browsers.append(browser)
                latencies.append(latency)
            control_after, worker_after = rss_kib(os.getpid()), rss_kib(worker_pid)
            for browser in browsers:
                await browser.close()
    finally:
        await server.stop()
    return {"join_ms": statistics.median(latencies) * 1000,
            "control_kib_per_peer": (control_after - control_before) / peers,
            "worker_kib_per_peer": (worker_after - worker_before) / peers}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--peers", type=int, default=50)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    results = [uvloop.run(one_run(args.peers)) for _ in range(args.runs)]
    for result in results:
        print("run: " + ", ".join(f"{k}={v:.1f}" for k, v in result.items()))
    print(f"median over {args.runs} runs of {args.peers} peers joining one room:")
    for key in results[0]:
        print(f"  {key}: {statistics.median(r[key] for r in results):.1f}")


if __name__ == "__main__":
    main()
