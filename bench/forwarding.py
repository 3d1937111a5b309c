"""Forwarding cost of one media worker, measured over the server's real protocol.

A kolabmeet server (one worker process) runs in this process. Over HTTP and
socket.io, a publisher produces a video stream and N subscribers consume it,
on plain RTP transports or, with `--webrtc`, on WebRTC transports (ICE-lite,
DTLS, SRTP AEAD_AES_256_GCM; the bench's own client side uses kolabmeet's
STUN, DTLS and SRTP units). A sender process then pushes RTP at a fixed rate,
a receiver process counts what arrives, and the worker's CPU time (its
process CPU clock; the user / system split from /proc) is read over the
measurement window.

Reported, as the median of several runs: worker CPU per forwarded packet (µs,
packets counted by the worker's consumers), the forwarded packets per second
one core would sustain at that cost, and the shares of the expected packets the
worker sent and the receiver process counted (on 2 shared cores the load
generator itself drops packets at high rates).

    python -m bench.forwarding --fanout 4 --rate 4000 --seconds 5 --runs 5 [--webrtc]
    python -m bench.forwarding --publishers 4 --fanout 20 --rate 400 --webrtc [--no-extensions] [--find-max]
"""

from __future__ import annotations

import argparse
import asyncio
import ctypes
import multiprocessing
import os
import socket
import statistics
import struct
import time
from typing import Any

import aiohttp
import uvloop

from bench.mmsg import Receiver, udp_drops
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
_LIBC = ctypes.CDLL(None)
# As a browser sends them: one-byte header extensions MID "0" (id 1), abs-send-time (4), transport-cc (5).
EXTENSIONS = bytes.fromhex("bede0003" "1030" "42000000" "510000" "000000")
EXTENSION_IDS = [{"uri": "urn:ietf:params:rtp-hdrext:sdes:mid", "id": 1},
                 {"uri": "http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time", "id": 4},
                 {"uri": "http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01", "id": 5}]


def process_cpu_seconds(pid: int) -> float:
    """CPU time of a process, to the nanosecond (/proc's user and system times count 10 ms ticks:
    too coarse for a short run)."""
    clock = ctypes.c_int()
    if _LIBC.clock_getcpuclockid(pid, ctypes.byref(clock)) != 0:
        raise ProcessLookupError(pid)
    return time.clock_gettime(clock.value)


def worker_cpu_seconds(pid: int) -> tuple[float, float]:
    """(user, system) CPU time of a process, in 10 ms ticks."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    tick = os.sysconf("SC_CLK_TCK")
    return int(fields[11]) / tick, int(fields[12]) / tick


def rss_kib(pid: int) -> int:
    """Resident memory of a process, in KiB."""
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def scheduling(pid: int) -> tuple[int, int]:
    """(context switches, moves between CPUs) of a process's main thread so far; moves are 0 where the
    kernel has no /proc/PID/sched."""
    with open(f"/proc/{pid}/status") as status:
        switches = sum(int(line.split()[1]) for line in status if "ctxt_switches:" in line)
    try:
        with open(f"/proc/{pid}/sched") as sched:
            moves = next((int(line.split()[-1]) for line in sched if line.startswith("se.nr_migrations")), 0)
    except FileNotFoundError:
        moves = 0
    return switches, moves


def send(publishers: list[tuple[socket.socket, tuple[str, int], SrtpKeys | None, int]], rate: int, seconds: float,
         extensions: bool, ready: Any, cpu: Any) -> None:
    """Sender process: per publisher (socket, server address, keys, SSRC) a VP8 key frame packet every 500,
    delta packets between, at `rate` per second each; its CPU seconds meanwhile end up in `cpu`."""
    srtps = [SrtpSession(keys.profile, keys.local_key, keys.local_salt, outbound=True) if keys else None
             for _s, _a, keys, _ssrc in publishers]
    buffer = PacketBuffer()
    head = EXTENSIONS if extensions else b""
    size = PACKET_SIZE - 12 - len(head)
    key_payload = head + b"\x10\x00\x9d\x01\x2a" + bytes(size - 5)
    delta_payload = head + b"\x10\x01" + bytes(size - 2)
    first = 0x90 if extensions else 0x80
    ready.wait()
    start, cpu_start = time.perf_counter(), time.process_time()
    sent = 0
    while (elapsed := time.perf_counter() - start) < seconds:
        while sent < int(elapsed * rate):
            payload = key_payload if sent % 500 == 0 else delta_payload
            for (sock, address, _keys, ssrc), srtp in zip(publishers, srtps):
                packet = _HEADER.pack(first, VP8_PT, sent & 0xFFFF, sent * 3000 & 0xFFFFFFFF, ssrc) + payload
                length = len(packet)
                buffer.data[:length] = packet
                if srtp is not None:
                    length = srtp.protect_rtp(buffer, length)
                sock.sendto(buffer.view[:length], address)
            sent += 1
        time.sleep(0.0005)
    cpu.value = time.process_time() - cpu_start


def receive(socks: list[socket.socket], counts: Any, stop: Any) -> None:
    """Receiver process: count the media datagrams (first byte 128-191) on every subscriber's socket, polling
    every 2 ms with recvmmsg so that each call reads a burst."""
    receiver = Receiver()
    local = [0] * len(socks)
    for sock in socks:
        sock.setblocking(False)
    while not stop.is_set():
        for index, sock in enumerate(socks):
            while count := receiver.receive(sock):
                memory, size = receiver.memory, receiver.size
                local[index] += sum(1 for j in range(count)
                                    if 128 <= memory[j * size] < 192 and not 192 <= memory[j * size + 1] <= 223)
                if count < receiver.batch:
                    break
        time.sleep(0.002)
    for index, count in enumerate(local):
        counts[index] = count


def _plain_socket() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 22)
    return sock


async def _peer(app: KolabApp, room: str, role: int, extensions: bool = True) -> Browser:
    """A joined peer; without `extensions`, its capabilities have no header extensions."""
    browser = Browser((await app.connection(room, role))["token"])
    await browser.connect()
    capabilities = router_rtp_capabilities()
    if not extensions:
        capabilities["headerExtensions"] = []
    await browser.ok("join", {"nickname": "bench", "rtpCapabilities": capabilities})
    return browser


async def _plain_subscriber(app: KolabApp, room: str, extensions: bool = True) -> tuple[Browser, socket.socket]:
    browser = await _peer(app, room, 1, extensions)
    sock = _plain_socket()
    transport = await browser.ok("createPlainTransport", {"producing": False, "consuming": True})
    port = sock.getsockname()[1]
    await browser.ok("connectPlainTransport", {"transportId": transport["id"], "ip": "127.0.0.1",
                                               "port": port, "rtcpPort": port})
    return browser, sock


async def _webrtc_subscriber(app: KolabApp, room: str, extensions: bool = True) -> tuple[Browser, WebRtcClient]:
    browser = await _peer(app, room, 1, extensions)
    client = WebRtcClient(browser)
    await client.connect(producing=False)
    return browser, client


async def subscribe(app: KolabApp, room: str, count: int, webrtc: bool,
                    extensions: bool) -> tuple[list[tuple[Browser, Any]], list[socket.socket]]:
    """`count` subscribers (plain or WebRTC) joined to the room; with the sockets they receive on."""
    make = _webrtc_subscriber if webrtc else _plain_subscriber
    subscribers = [await make(app, room, extensions) for _ in range(count)]
    return subscribers, [s.sock if webrtc else s for _b, s in subscribers]


async def _publisher(app: KolabApp, room: str, webrtc: bool, ssrc: int,
                     extensions: bool) -> tuple[Browser, tuple[socket.socket, tuple[str, int], Any, int]]:
    """The publisher's browser, and its sending socket, server address, SRTP keys (None for plain) and SSRC."""
    browser = await _peer(app, room, 3)
    params = {"codecs": [{"mimeType": "video/VP8", "payloadType": VP8_PT, "clockRate": 90000}],
              "encodings": [{"ssrc": ssrc}], "headerExtensions": EXTENSION_IDS if extensions else [], "mid": "0"}
    if webrtc:
        client = WebRtcClient(browser)
        keys = await client.connect(producing=True)
        transport_id, sock, address = client.transport_id, client.sock, client.address
    else:
        plain = await browser.ok("createPlainTransport", {"producing": True, "consuming": False})
        transport_id, sock, address, keys = plain["id"], _plain_socket(), ("127.0.0.1", plain["port"]), None
    await browser.ok("produce", {"transportId": transport_id, "kind": "video", "appData": {"source": "webcam"},
                                 "rtpParameters": params})
    return browser, (sock, address, keys, ssrc)


async def one_run(fanout: int, rate: int, seconds: float, webrtc: bool, publishers: int = 1,
                  extensions: bool = True, pin: bool = False) -> dict[str, float]:
    """`publishers` streams of `rate` packets/s, each to `fanout` subscribers; the worker's CPU per packet.

    With `pin`, the worker gets the last CPU to itself and everything else (this process, the load
    generator) shares the others."""
    server = Server(make_config(num_workers=1))
    await server.start()
    if pin:
        cpus = sorted(os.sched_getaffinity(0))
        os.sched_setaffinity(server.pool.workers[0].pid, cpus[-1:])
        os.sched_setaffinity(0, cpus[:-1] or cpus)
    ctx = multiprocessing.get_context("fork")
    counts, stop, ready, sender_cpu = ctx.Array("i", fanout), ctx.Event(), ctx.Event(), ctx.Value("d", 0.0)
    children: tuple[Any, ...] = ()
    try:
        async with aiohttp.ClientSession() as http:
            app = KolabApp(server, http)
            room = await app.create_room()
            subscribers, socks = await subscribe(app, room, fanout, webrtc, extensions)
            sending = [await _publisher(app, room, webrtc, SSRC + i, extensions) for i in range(publishers)]
            await asyncio.sleep(1.0)
            receiver = ctx.Process(target=receive, args=(socks, counts, stop))
            sender = ctx.Process(target=send, args=([p for _b, p in sending], rate, seconds, extensions, ready,
                                                               sender_cpu))
            receiver.start()
            sender.start()
            children = (receiver, sender)
            pid = server.pool.workers[0].pid
            consumers = [c for peer in server.rooms.get(room).peers.values() for c in peer.consumers.values()]
            sent_before = await _packets_sent(consumers)
            cpu_before, ticks_before = process_cpu_seconds(pid), worker_cpu_seconds(pid)
            wall_before = time.perf_counter()
            receiver_before = sum(worker_cpu_seconds(receiver.pid))
            ready.set()
            while sender.is_alive():
                await asyncio.sleep(0.05)
            cpu, ticks_after = process_cpu_seconds(pid) - cpu_before, worker_cpu_seconds(pid)
            wall = time.perf_counter() - wall_before
            sender.join()
            generator = sum(worker_cpu_seconds(receiver.pid)) - receiver_before + sender_cpu.value
            user, system = ticks_after[0] - ticks_before[0], ticks_after[1] - ticks_before[1]
            forwarded = await _packets_sent(consumers) - sent_before
            await asyncio.sleep(0.3)
            stop.set()
            receiver.join()
            worker_drops = udp_drops({port for peer in server.rooms.get(room).peers.values()
                                      for transport in peer.transports.values()
                                      for port in transport_ports(transport)})
            generator_drops = udp_drops({sock.getsockname()[1] for sock in socks})
            for browser, _sock in (*subscribers, *sending):
                await browser.close()
    finally:
        for child in children:
            child.kill()
        await server.stop()
        if pin:
            os.sched_setaffinity(0, cpus)
    expected = int(rate * seconds) * fanout * publishers
    return {"us_per_packet": cpu / max(1, forwarded) * 1e6, "user_us": user / max(1, forwarded) * 1e6,
            "system_us": system / max(1, forwarded) * 1e6, "forwarded_per_s": forwarded / wall,
            "forwarded": forwarded / expected, "delivered": sum(counts) / expected, "worker_cpu_share": cpu / wall,
            "generator_cpu_share": generator / wall, "worker_drops": worker_drops, "generator_drops": generator_drops}


def transport_ports(transport: Any) -> list[int]:
    """The worker's local UDP ports of a transport (plain: RTP and RTCP; WebRTC: its candidates)."""
    if hasattr(transport, "ice_candidates"):
        return [c["port"] for c in transport.ice_candidates if c["protocol"] == "udp"]
    return [t["localPort"] for t in (transport.tuple, transport.rtcp_tuple) if t]


async def _packets_sent(consumers: list[Any]) -> int:
    """RTP packets the worker sent, by its consumers' own counters."""
    return sum([(await consumer.get_stats())[0]["packetCount"] for consumer in consumers])


def _median_runs(args: argparse.Namespace, rate: int) -> tuple[list[dict[str, float]], dict[str, float]]:
    results = [uvloop.run(one_run(args.fanout, rate, args.seconds, args.webrtc, args.publishers,
                                  not args.no_extensions, args.pin)) for _ in range(args.runs)]
    for result in results:
        print("run: " + ", ".join(f"{k}={v:.3f}" if isinstance(v, float) else f"{k}={v}" for k, v in result.items()),
              flush=True)
    return results, {key: statistics.median(r[key] for r in results) for key in results[0]}


def _report(args: argparse.Namespace, rate: int, median: dict[str, float]) -> None:
    kind = "WebRTC (SRTP)" if args.webrtc else "plain RTP"
    extensions = "no header extensions" if args.no_extensions else "browser header extensions"
    print(f"median over {args.runs} runs, {kind}, {extensions}, {args.publishers} x {args.fanout},"
          f" {rate} packets/s of {PACKET_SIZE} bytes per publisher:")
    cost = median["us_per_packet"]
    print(f"  worker CPU per forwarded packet: {cost:.2f} µs  (≈ {1e6 / cost:,.0f} forwarded packets/s per core)")
    print(f"    of which user {median['user_us']:.2f} µs, system {median['system_us']:.2f} µs (medians of each)")
    print(f"  {median['forwarded_per_s']:,.0f} forwarded packets/s; forwarded by the worker:"
          f" {median['forwarded']:.2%} of what the subscribers should get; received: {median['delivered']:.2%}")
    print(f"  worker {median['worker_cpu_share']:.0%} of a core; load generator {median['generator_cpu_share']:.0%}"
          f" of a core; kernel drops: worker {median['worker_drops']:.0f}, generator {median['generator_drops']:.0f}",
          flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--fanout", type=int, default=4, help="subscribers of every stream")
    parser.add_argument("--publishers", type=int, default=1, help="streams, each from its own publisher")
    parser.add_argument("--rate", type=int, default=4000, help="packets per second each publisher sends")
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--webrtc", action="store_true", help="WebRTC transports (SRTP) instead of plain RTP")
    parser.add_argument("--no-extensions", action="store_true",
                        help="packets, producers and consumers without header extensions")
    parser.add_argument("--pin", action="store_true",
                        help="the worker on a CPU of its own, the load generator on the others")
    parser.add_argument("--find-max", action="store_true",
                        help="raise the rate by 25 %% from --rate until the median loss reaches 0.1 %%")
    args = parser.parse_args()
    rate, best = args.rate, None
    while True:
        _results, median = _median_runs(args, rate)
        _report(args, rate, median)
        lossless = median["delivered"] >= 0.999 and median["forwarded"] >= 0.999
        if not args.find_max or not lossless:
            break
        best, rate = (rate, median["forwarded_per_s"]), int(rate * 1.25)
    if args.find_max:
        print(f"highest rate at < 0.1 % loss: {best[1]:,.0f} forwarded packets/s per worker ({best[0]} packets/s"
              f" per publisher)" if best else "the first rate already lost 0.1 % or more")


if __name__ == "__main__":
    main()
