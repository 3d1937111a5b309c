"""Forwarding cost of one media worker, measured over the server's real protocol.

A kolabmeet server (one worker process) runs in this process. Over HTTP and
socket.io, a publisher produces a video stream and N subscribers consume it,
on plain RTP transports or, with `--webrtc`, on WebRTC transports (ICE-lite,
DTLS, SRTP AEAD_AES_256_GCM; the bench's own client side uses kolabmeet's
STUN, DTLS and SRTP units). A sender process then pushes RTP at a fixed rate,
a receiver process counts what arrives, and the worker's CPU time (user +
system, from /proc) is read over the measurement window.

Reported, as the median of several runs: worker CPU per forwarded packet (µs,
packets counted by the worker's consumers), the forwarded packets per second
one core would sustain at that cost, and the shares of the expected packets the
worker sent and the receiver process counted (on 2 shared cores the load
generator itself drops packets at high rates).

    python -m bench.forwarding --fanout 4 --rate 4000 --seconds 5 --runs 5 [--webrtc]
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import selectors
import socket
import statistics
import struct
import time
from typing import Any

import aiohttp
import uvloop

from bench.webrtc_client import WebRtcClient
from kolabmeet.app import Server
from kolabmeet.media.capabilities import router_rtp_capabilities
from kolabmeet.media.worker.dtls import SrtpKeys
from kolabmeet.media.worker.srtp import PacketBuffer, SrtpSession
from tests.helpers import Browser, KolabApp, make_config

PACKET_SIZE = 1116
VP8_PT = 101
SSRC = 0x1234ABCD
_HEADER = struct.Struct("!BBHII")
# As a browser sends them: one-byte header extensions MID "0" (id 1), abs-send-time (4), transport-cc (5).
EXTENSIONS = bytes.fromhex("bede0003" "1030" "42000000" "510000" "000000")
EXTENSION_IDS = [{"uri": "urn:ietf:params:rtp-hdrext:sdes:mid", "id": 1},
                 {"uri": "http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time", "id": 4},
                 {"uri": "http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01", "id": 5}]


def worker_cpu_seconds(pid: int) -> tuple[float, float]:
    """(user, system) CPU time of a process."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    tick = os.sysconf("SC_CLK_TCK")
    return int(fields[11]) / tick, int(fields[12]) / tick


def send(sock: socket.socket, address: tuple[str, int], keys: SrtpKeys | None, rate: int, seconds: float,
         ready: Any) -> None:
    """Sender process: a VP8 key frame packet every 500, delta packets between, at `rate` per second."""
    srtp = SrtpSession(keys.profile, keys.local_key, keys.local_salt, outbound=True) if keys else None
    buffer = PacketBuffer()
    size = PACKET_SIZE - 12 - len(EXTENSIONS)
    key_payload = EXTENSIONS + b"\x10\x00\x9d\x01\x2a" + bytes(size - 5)
    delta_payload = EXTENSIONS + b"\x10\x01" + bytes(size - 2)
    ready.wait()
    start = time.perf_counter()
    sent = 0
    while (elapsed := time.perf_counter() - start) < seconds:
        while sent < int(elapsed * rate):
            packet = _HEADER.pack(0x90, VP8_PT, sent & 0xFFFF, sent * 3000 & 0xFFFFFFFF, SSRC)
            packet += key_payload if sent % 500 == 0 else delta_payload
            length = len(packet)
            buffer.data[:length] = packet
            if srtp is not None:
                length = srtp.protect_rtp(buffer, length)
            sock.sendto(buffer.view[:length], address)
            sent += 1
        time.sleep(0.0005)


def receive(socks: list[socket.socket], counts: Any, stop: Any) -> None:
    """Receiver process: count the media datagrams (first byte 128-191) on every subscriber's socket."""
    selector = selectors.DefaultSelector()
    for index, sock in enumerate(socks):
        sock.setblocking(False)
        selector.register(sock, selectors.EVENT_READ, index)
    local = [0] * len(socks)
    while not stop.is_set():
        for key, _ in selector.select(0.1):
            while True:
                try:
                    data = key.fileobj.recv(2048)
                except BlockingIOError:
                    break
                if data and 128 <= data[0] < 192 and not 192 <= data[1] <= 223:
                    local[key.data] += 1
    for index, count in enumerate(local):
        counts[index] = count


def _plain_socket() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 22)
    return sock


async def _peer(app: KolabApp, room: str, role: int) -> Browser:
    browser = Browser((await app.connection(room, role))["token"])
    await browser.connect()
    await browser.ok("join", {"nickname": "bench", "rtpCapabilities": router_rtp_capabilities()})
    return browser


async def _plain_subscriber(app: KolabApp, room: str) -> tuple[Browser, socket.socket]:
    browser = await _peer(app, room, 1)
    sock = _plain_socket()
    transport = await browser.ok("createPlainTransport", {"producing": False, "consuming": True})
    port = sock.getsockname()[1]
    await browser.ok("connectPlainTransport", {"transportId": transport["id"], "ip": "127.0.0.1",
                                               "port": port, "rtcpPort": port})
    return browser, sock


async def _webrtc_subscriber(app: KolabApp, room: str) -> tuple[Browser, WebRtcClient]:
    browser = await _peer(app, room, 1)
    client = WebRtcClient(browser)
    await client.connect(producing=False)
    return browser, client


async def _publisher(app: KolabApp, room: str, webrtc: bool) -> tuple[Browser, Any, tuple[str, int], Any]:
    """The publisher's browser, sending socket, server address and SRTP keys (None for plain)."""
    browser = await _peer(app, room, 3)
    params = {"codecs": [{"mimeType": "video/VP8", "payloadType": VP8_PT, "clockRate": 90000}],
              "encodings": [{"ssrc": SSRC}], "headerExtensions": EXTENSION_IDS, "mid": "0"}
    if webrtc:
        client = WebRtcClient(browser)
        keys = await client.connect(producing=True)
        transport_id, sock, address = client.transport_id, client.sock, client.address
    else:
        plain = await browser.ok("createPlainTransport", {"producing": True, "consuming": False})
        transport_id, sock, address, keys = plain["id"], _plain_socket(), ("127.0.0.1", plain["port"]), None
    await browser.ok("produce", {"transportId": transport_id, "kind": "video", "appData": {"source": "webcam"},
                                 "rtpParameters": params})
    return browser, sock, address, keys


async def one_run(fanout: int, rate: int, seconds: float, webrtc: bool) -> dict[str, float]:
    server = Server(make_config(num_workers=1))
    await server.start()
    ctx = multiprocessing.get_context("fork")
    counts, stop, ready = ctx.Array("i", fanout), ctx.Event(), ctx.Event()
    children: tuple[Any, ...] = ()
    try:
        async with aiohttp.ClientSession() as http:
            app = KolabApp(server, http)
            room = await app.create_room()
            make = _webrtc_subscriber if webrtc else _plain_subscriber
            subscribers = [await make(app, room) for _ in range(fanout)]
            socks = [s.sock if webrtc else s for _b, s in subscribers]
            publisher, sock, address, keys = await _publisher(app, room, webrtc)
            await asyncio.sleep(1.0)
            receiver = ctx.Process(target=receive, args=(socks, counts, stop))
            sender = ctx.Process(target=send, args=(sock, address, keys, rate, seconds, ready))
            receiver.start()
            sender.start()
            children = (receiver, sender)
            pid = server.pool.workers[0].pid
            consumers = [c for peer in server.rooms.get(room).peers.values() for c in peer.consumers.values()]
            sent_before = await _packets_sent(consumers)
            cpu_before, wall_before = worker_cpu_seconds(pid), time.perf_counter()
            ready.set()
            while sender.is_alive():
                await asyncio.sleep(0.05)
            cpu_after, wall = worker_cpu_seconds(pid), time.perf_counter() - wall_before
            user, system = cpu_after[0] - cpu_before[0], cpu_after[1] - cpu_before[1]
            cpu = user + system
            forwarded = await _packets_sent(consumers) - sent_before
            await asyncio.sleep(0.3)
            stop.set()
            receiver.join()
            for browser, _sock in (*subscribers, (publisher, sock)):
                await browser.close()
    finally:
        for child in children:
            child.kill()
        await server.stop()
    expected = int(rate * seconds) * fanout
    return {"us_per_packet": cpu / max(1, forwarded) * 1e6, "user_us": user / max(1, forwarded) * 1e6,
            "system_us": system / max(1, forwarded) * 1e6, "forwarded": forwarded / expected,
            "delivered": sum(counts) / expected, "worker_cpu_share": cpu / wall}


async def _packets_sent(consumers: list[Any]) -> int:
    """RTP packets the worker sent, by its consumers' own counters."""
    return sum([(await consumer.get_stats())[0]["packetCount"] for consumer in consumers])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--fanout", type=int, default=4, help="subscribers of the one stream")
    parser.add_argument("--rate", type=int, default=4000, help="packets per second the publisher sends")
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--webrtc", action="store_true", help="WebRTC transports (SRTP) instead of plain RTP")
    args = parser.parse_args()
    results = [uvloop.run(one_run(args.fanout, args.rate, args.seconds, args.webrtc)) for _ in range(args.runs)]
    for result in results:
        print("run: " + ", ".join(f"{k}={v:.3f}" if isinstance(v, float) else f"{k}={v}" for k, v in result.items()))
    cost = statistics.median(r["us_per_packet"] for r in results)
    forwarded = statistics.median(r["forwarded"] for r in results)
    delivered = statistics.median(r["delivered"] for r in results)
    kind = "WebRTC (SRTP)" if args.webrtc else "plain RTP"
    print(f"median over {args.runs} runs, {kind}, fan-out {args.fanout}, {args.rate} packets/s of {PACKET_SIZE} bytes:")
    user = statistics.median(r["user_us"] for r in results)
    system = statistics.median(r["system_us"] for r in results)
    print(f"  worker CPU per forwarded packet: {cost:.2f} µs  (≈ {1e6 / cost:,.0f} forwarded packets/s per core)")
    print(f"    of which user {user:.2f} µs, system {system:.2f} µs (medians of each)")
    print(f"  forwarded by the worker: {forwarded:.1%} of what the subscribers should get; received: {delivered:.1%}")


if __name__ == "__main__":
    main()
