"""The forwarding path alone, timed in one process: for tuning the hot path without the machine's noise.

bench.forwarding measures the worker as it runs (its own process, woken by the network), which on
this shared machine varies by up to 20 % between runs: too much to see a change of a few percent.
Here the worker runs in this process (as the tests' in-process workers do), its objects set up over
the real protocol as in bench.forwarding, and the publisher's packets are handed to its transport
one after another, as its socket reader would, with nothing else running. The thread's CPU time
(user and system: sending to the subscribers' sockets included) per forwarded packet is reported,
as the median of several rounds. The subscribers' sockets are drained between batches, outside
the timed part.

    python -m bench.hot_path --fanout 20 --packets 20000 --rounds 7 [--webrtc] [--no-extensions] [--profile out.txt]
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import gc
import pstats
import socket
import statistics
import time

import aiohttp
import uvloop

from bench.forwarding import EXTENSIONS, PACKET_SIZE, SSRC, VP8_PT, _HEADER, _publisher, subscribe
from kolabmeet.app import Server
from kolabmeet.media.worker.plain_transport import PlainTransport
from kolabmeet.media.worker.server import WorkerServer
from tests.helpers import KolabApp, make_config

BATCH = 50
"""Incoming packets between two drains of the subscribers' sockets."""


def _packets(count: int, extensions: bool = True) -> list[bytes]:
    """As Chromium sends VP8 (L1T3, 3 packets a picture, PictureID/TL0PICIDX/TID descriptors), with the
    browser's header extensions; a key frame first. Made for all rounds at once: the stream goes on."""
    head = EXTENSIONS if extensions else b""
    first = 0x90 if extensions else 0x80
    packets = []
    for seq in range(count):
        picture, index = divmod(seq, 3)
        tid = (0, 2, 1, 2)[picture % 4] if seq >= 3 else 0
        descriptor = bytes((0x90 if index == 0 else 0x80, 0xE0, 0x80 | picture >> 8 & 0x7F, picture & 0xFF,
                            picture // 4 & 0xFF, tid << 6 | (0x20 if tid else 0)))
        header = b"\x00\x9d\x01\x2a" if seq == 0 else b"\x01" if index == 0 else b""
        body = head + descriptor + header
        marker = 0x80 if index == 2 else 0
        packets.append(_HEADER.pack(first, marker | VP8_PT, seq & 0xFFFF, picture * 3000 & 0xFFFFFFFF, SSRC)
                       + body + bytes(PACKET_SIZE - 12 - len(body)))
    return packets


def _drain(socks: list[socket.socket]) -> int:
    received = 0
    for sock in socks:
        while True:
            try:
                sock.recv(2048)
            except BlockingIOError:
                break
            received += 1
    return received


def _worker_transport() -> PlainTransport:
    """The publisher's plain transport inside the in-process worker."""
    servers = [o for o in gc.get_objects() if isinstance(o, WorkerServer)]
    return next(o for server in servers for o in server.objects.values()
                if isinstance(o, PlainTransport) and o.producers)


def feed(transport: PlainTransport, packets: list[bytes], socks: list[socket.socket]) -> tuple[float, int]:
    """Hand `packets` to the transport as its socket reader would; (CPU seconds, datagrams received)."""
    buf = bytearray(65536)
    cpu, received = 0.0, 0
    for first in range(0, len(packets), BATCH):
        began = time.thread_time()
        for packet in packets[first:first + BATCH]:
            length = len(packet)
            buf[:length] = packet
            transport.receive_rtp(buf, length)
        cpu += time.thread_time() - began
        received += _drain(socks)
    return cpu, received


async def run(fanout: int, count: int, rounds: int, webrtc: bool, profile: str | None = None,
              extensions: bool = True) -> list[tuple[float, int, int]]:
    """Per round: (CPU µs per forwarded packet, datagrams received, datagrams expected)."""
    server = Server(make_config(num_workers=1), in_process_workers=True)
    await server.start()
    try:
        async with aiohttp.ClientSession() as http:
            app = KolabApp(server, http)
            room = await app.create_room()
            subscribers, socks = await subscribe(app, room, fanout, webrtc, extensions)
            for sock in socks:
                sock.setblocking(False)
            publisher, _sending = await _publisher(app, room, webrtc=False, ssrc=SSRC, extensions=extensions)
            await asyncio.sleep(0.5)
            transport = _worker_transport()
            packets = _packets(BATCH + rounds * count, extensions)
            feed(transport, packets[:BATCH], socks)  # warm up: offsets, the first key frame
            results = []
            profiler = cProfile.Profile() if profile else None
            for index in range(rounds):
                if profiler is not None and index == rounds - 1:
                    profiler.enable()
                cpu, received = feed(transport, packets[BATCH + index * count:BATCH + (index + 1) * count], socks)
                if profiler is not None and index == rounds - 1:
                    profiler.disable()
                results.append((cpu / max(1, received) * 1e6, received, count * fanout))
                print(f"round {index + 1}: {results[-1][0]:.2f} µs per forwarded packet"
                      f" ({received} of {count * fanout} received)", flush=True)
            if profiler is not None:
                with open(profile, "w") as out:
                    pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(30)
            for browser, _sock in (*subscribers, (publisher, None)):
                await browser.close()
    finally:
        await server.stop()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--fanout", type=int, default=20)
    parser.add_argument("--packets", type=int, default=20000, help="incoming packets per round")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--webrtc", action="store_true", help="WebRTC subscribers (SRTP) instead of plain RTP")
    parser.add_argument("--profile", help="write a cProfile of the last round to this file")
    parser.add_argument("--no-extensions", action="store_true",
                        help="packets, producer and subscribers without header extensions")
    args = parser.parse_args()
    results = [cost for cost, _received, _expected in
               uvloop.run(run(args.fanout, args.packets, args.rounds, args.webrtc, args.profile,
                              not args.no_extensions))]
    kind = "WebRTC" if args.webrtc else "plain"
    print(f"median: {statistics.median(results):.2f} µs of CPU per forwarded packet ({kind} subscribers,"
          f" fan-out {args.fanout}, in-process worker; min {min(results):.2f}, max {max(results):.2f})")


if __name__ == "__main__":
    main()
