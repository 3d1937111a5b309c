"""Where a join's CPU goes, step by step: each step of a join taken by all peers at once, on its own.

One server stays up for all the rounds (as a deployed one does, the collector's work included).
Each round, PEERS peers of a new room take the steps of `bench.join` one at a time, all peers at
once for each step: the connection token, socket connect until roomReady, getRouterRtpCapabilities,
the receive transport, join (until the notifications to the room have arrived), the send
transport, one ping; then all leave. Reported per step, as means over the rounds after the first:
the server's main process's CPU per peer and the bench's own, and the step's wall time (join's
includes the 0.2 s the bench waits to see the notifications settle). With
--floor the server is bench.canned_server, the floor of `bench.join --floor`.

    python -m bench.join_stages --peers 50 --rounds 12 [--floor]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from collections.abc import Awaitable, Callable
from types import SimpleNamespace
from typing import Any

import aiohttp
import uvloop

from bench.forwarding import process_cpu_seconds
from bench.join import _CAPABILITIES, _notifications_settled, _start_server, _wait_listening
from bench.signaling_peer import SignalingPeer
from tests.helpers import KolabApp, free_port

RECEIVE = {"forceTcp": False, "producing": False, "consuming": True}
SEND = {"forceTcp": False, "producing": True, "consuming": False}
STEPS: list[tuple[str, Callable[[SignalingPeer], Awaitable[Any]]]] = [
    ("connect", lambda peer: peer.connect()),
    ("getRouterRtpCapabilities", lambda peer: peer.ok("getRouterRtpCapabilities")),
    ("createWebRtcTransport (receive)", lambda peer: peer.ok("createWebRtcTransport", RECEIVE)),
    ("join", lambda peer: peer.ok("join", {"nickname": "peer", "rtpCapabilities": _CAPABILITIES})),
    ("createWebRtcTransport (send)", lambda peer: peer.ok("createWebRtcTransport", SEND)),
    ("ping", lambda peer: peer.ok("ping")),
]


async def measure(peers: int, rounds: int, floor: bool) -> dict[str, list[tuple[float, float, float]]]:
    """Per step, per round: (server ms per peer, bench ms per peer, wall ms)."""
    port = free_port()
    server = _start_server(port, floor)
    figures: dict[str, list[tuple[float, float, float]]] = {}

    async def step(name: str, calls: list[Awaitable[Any]], joined: list[SignalingPeer] | None = None) -> list[Any]:
        server_before, bench_before, started = process_cpu_seconds(server.pid), time.process_time(), time.perf_counter()
        results = await asyncio.gather(*calls)
        if joined is not None:
            await _notifications_settled(joined)
        figures.setdefault(name, []).append(((process_cpu_seconds(server.pid) - server_before) / peers * 1000,
                                             (time.process_time() - bench_before) / peers * 1000,
                                             (time.perf_counter() - started) * 1000))
        return results

    try:
        async with aiohttp.ClientSession() as http:
            await _wait_listening(http, port)
            app = KolabApp(SimpleNamespace(port=port), http)  # type: ignore[arg-type]
            for _ in range(rounds):
                room = await app.create_room()
                tokens = await step("token call", [app.connection(room, 3) for _ in range(peers)])
                members = [SignalingPeer(token["token"]) for token in tokens]
                for name, call in STEPS:
                    await step(name, [call(peer) for peer in members], members if name == "join" else None)
                for peer in members:
                    await peer.close()
                await asyncio.sleep(0.3)
    finally:
        server.terminate()
        server.wait(10)
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--peers", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=12)
    parser.add_argument("--floor", action="store_true", help="bench.canned_server instead of kolabmeet")
    args = parser.parse_args()
    figures = uvloop.run(measure(args.peers, max(2, args.rounds), args.floor))
    server = "the canned aiohttp server (--floor)" if args.floor else "kolabmeet"
    print(f"{args.peers} peers at once per step, means over {max(2, args.rounds) - 1} rounds, on {server}:")
    for name, rounds in figures.items():
        kept = rounds[1:]
        server_ms, bench_ms = statistics.mean(r[0] for r in kept), statistics.mean(r[1] for r in kept)
        print(f"  {name}: server {server_ms:.3f} ms/peer, bench {bench_ms:.3f} ms/peer, "
              f"wall {statistics.median(r[2] for r in kept):.1f} ms")


if __name__ == "__main__":
    main()
