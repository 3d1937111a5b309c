"""Forwarding cost of one media worker, measured over the server's real protocol.

A kolabmeet server (one worker process) runs in this process. Over HTTP and
socket.io, a publisher produces a video stream on a plain RTP transport and N
subscribers consume it on theirs. A sender process then pushes RTP at a fixed
rate, a receiver process counts what arrives, and the worker's CPU time
(user + system, from /proc) is read over the measurement window.

Reported, as the median of several runs: worker CPU per forwarded packet (µs),
the forwarded packets per second one core would sustain at that cost, and the
share of packets delivered.

    python -m bench.forwarding --fanout 4 --rate 4000 --seconds 5 --runs 5
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import socket
import statistics
import struct
import time
from typing import Any

import aiohttp
import uvloop

from kolabmeet.app import Server
from kolabmeet.media.capabilities import router_rtp_capabilities
from tests.helpers import Browser, KolabApp, make_config

PACKET_SIZE = 1116
VP8_PT = 101
SSRC = 0x1234ABCD


def worker_cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def send(address: tuple[str, int], rate: int, seconds: float, ready: Any) -> None:
    """Sender process: one VP8 key frame packet, then delta packets at `rate` per second."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    header = struct.Struct("!BBHII")
    key_payload = b"\x10\x00" + b"\x9d\x01\x2a" + bytes(PACKET_SIZE - 12 - 5)
    delta_payload = b"\x10\x01" + bytes(PACKET_SIZE - 12 - 2)
    ready.wait()
    start = time.perf_counter()
    sent = 0
    while True:
        elapsed = time.perf_counter() - start
        if elapsed >= seconds:
            break
        due = int(elapsed * rate)
        while sent < due:
            payload = key_payload if sent % 500 == 0 else delta_payload
            sock.sendto(header.pack(0x80, VP8_PT, sent & 0xFFFF, sent * 3000 & 0xFFFFFFFF, SSRC) + payload, address)
            sent += 1
        time.sleep(0.0005)


def receive(ports: Any, counts: Any, stop: Any) -> None:
    """Receiver process: count datagrams on every subscriber's socket."""
    import selectors

    selector = selectors.DefaultSelector()
    sockets = []
    for index in range(len(ports)):
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.bind(("127.0.0.1", 0))
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 22)
        sock.setblocking(False)
        ports[index] = sock.getsockname()[1]
        selector.register(sock, selectors.EVENT_READ, index)
        sockets.append(sock)
    local = [0] * len(ports)
    while not stop.is_set():
        for key, _ in selector.select(0.1):
            while True:
                try:
                    key.fileobj.recv(2048)
                except BlockingIOError:
                    break
                local[key.data] += 1
    for index, count in enumerate(local):
        counts[index] = count


async def _subscriber(app: KolabApp, room: str, port: int) -> Browser:
    browser = Browser((await app.connection(room, 1))["token"])
    browser.answer_request = lambda request: None
    await browser.connect()
    transport = await browser.ok("createPlainTransport", {"producing": False, "consuming": True})
    await browser.ok("connectPlainTransport", {"transportId": transport["id"], "ip": "127.0.0.1",
                                               "port": port, "rtcpPort": port})
    await browser.ok("join", {"nickname": "viewer", "rtpCapabilities": router_rtp_capabilities()})
    return browser


async def one_run(fanout: int, rate: int, seconds: float) -> dict[str, float]:
    server = Server(make_config(num_workers=1))
    await server.start()
    ctx = multiprocessing.get_context("fork")
    ports, counts, stop, ready = ctx.Array("i", fanout), ctx.Array("i", fanout), ctx.Event(), ctx.Event()
    receiver = ctx.Process(target=receive, args=(ports, counts, stop))
    receiver.start()
    while not all(ports):
        await asyncio.sleep(0.01)
    try:
        async with aiohttp.ClientSession() as http:
            app = KolabApp(server, http)
            room = await app.create_room()
            subscribers = [await _subscriber(app, room, ports[i]) for i in range(fanout)]
            publisher = Browser((await app.connection(room, 3))["token"])
            await publisher.connect()
            await publisher.ok("join", {"nickname": "sender", "rtpCapabilities": router_rtp_capabilities()})
            plain = await publisher.ok("createPlainTransport", {"producing": True, "consuming": False})
            await publisher.ok("produce", {"transportId": plain["id"], "kind": "video", "appData": {"source": "webcam"},
                                           "rtpParameters": {"codecs": [{"mimeType": "video/VP8", "payloadType": VP8_PT,
                                                                         "clockRate": 90000}],
                                                             "encodings": [{"ssrc": SSRC}]}})
            await asyncio.sleep(1.0)
            sender = ctx.Process(target=send, args=(("127.0.0.1", plain["port"]), rate, seconds, ready))
            sender.start()
            pid = server.pool.workers[0].pid
            cpu_before, wall_before = worker_cpu_seconds(pid), time.perf_counter()
            ready.set()
            while sender.is_alive():
                await asyncio.sleep(0.05)
            cpu = worker_cpu_seconds(pid) - cpu_before
            wall = time.perf_counter() - wall_before
            await asyncio.sleep(0.3)
            stop.set()
            receiver.join()
            for browser in (*subscribers, publisher):
                await browser.close()
    finally:
        await server.stop()
    forwarded = sum(counts)
    expected = int(rate * seconds) * fanout
    return {"us_per_packet": cpu / max(1, forwarded) * 1e6, "delivered": forwarded / expected,
            "worker_cpu_share": cpu / wall, "forwarded": forwarded}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--fanout", type=int, default=4, help="subscribers of the one stream")
    parser.add_argument("--rate", type=int, default=4000, help="packets per second the publisher sends")
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    results = [uvloop.run(one_run(args.fanout, args.rate, args.seconds)) for _ in range(args.runs)]
    for result in results:
        print("run: " + ", ".join(f"{k}={v:.3f}" if isinstance(v, float) else f"{k}={v}" for k, v in result.items()))
    cost = statistics.median(r["us_per_packet"] for r in results)
    delivered = statistics.median(r["delivered"] for r in results)
    print(f"median over {args.runs} runs, fan-out {args.fanout}, {args.rate} packets/s of {PACKET_SIZE} bytes in:")
    print(f"  worker CPU per forwarded packet: {cost:.2f} µs  (≈ {1e6 / cost:,.0f} forwarded packets/s per core)")
    print(f"  delivered: {delivered:.1%}")


if __name__ == "__main__":
    main()
