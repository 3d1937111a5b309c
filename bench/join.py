"""Join latency and memory per peer, over the server's real protocol.

The server runs as `kolabmeet serve` in a process of its own (one worker), so
that its memory is its own. Peers join one room as the Kolab web client does
(connection token, socket.io connect, roomReady, getRouterRtpCapabilities, a
receive WebRTC transport, join, a send WebRTC transport), one after another or,
with --concurrent, all at once, each with a light socket.io peer (bench.signaling_peer) so that
the bench's own CPU stays below the server's. Reported per run and as medians over the runs:
the p50 and p95 of the time from socket connect to the end of the last request,
and the resident memory the control process and the worker gain per joined peer, and the CPU time
per join of the control process, the worker and the bench's own clients; then every joined peer
sends PINGS_PER_PEER `ping` requests at once, and the control process's CPU per request is reported
(the cost of the signaling's request path itself, handler aside).

With --floor the same peers join bench.canned_server instead: aiohttp answering a join's exchanges
with canned answers and doing nothing else, the floor under kolabmeet's figures on the same machine
in the same minutes (its "control" is that server; there is no worker).

    python -m bench.join --peers 50 --runs 3 [--concurrent] [--floor]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import time
from types import SimpleNamespace

import aiohttp
import uvloop

from bench.forwarding import process_cpu_seconds, rss_kib
from bench.signaling_peer import SignalingPeer
from kolabmeet.media.capabilities import router_rtp_capabilities
from tests.helpers import TOKEN, KolabApp, free_port


_CAPABILITIES = router_rtp_capabilities()
PINGS_PER_PEER = 200


async def join_one(app: KolabApp, room: str) -> tuple[SignalingPeer, float]:
    peer = SignalingPeer((await app.connection(room, 3))["token"])
    start = time.perf_counter()
    await peer.connect()
    await peer.ok("getRouterRtpCapabilities")
    await peer.ok("createWebRtcTransport", {"forceTcp": False, "producing": False, "consuming": True})
    await peer.ok("join", {"nickname": "peer", "rtpCapabilities": _CAPABILITIES})
    await peer.ok("createWebRtcTransport", {"forceTcp": False, "producing": True, "consuming": False})
    return peer, time.perf_counter() - start


def _start_server(port: int, floor: bool) -> subprocess.Popen[bytes]:
    if floor:
        return subprocess.Popen([sys.executable, "-m", "bench.canned_server", "--port", str(port)])
    env = {"PATH": os.environ.get("PATH", ""), "AUTH_TOKEN": TOKEN, "LISTENING_HOST": "127.0.0.1",
           "LISTENING_PORT": str(port), "PUBLIC_DOMAIN": f"127.0.0.1:{port}", "WEBRTC_LISTEN_IP": "127.0.0.1",
           "SSL_CERT": "none", "TURN_SERVER": "none", "MEDIASOUP_NUM_WORKERS": "1", "KOLABMEET_WEBRTC_PORT": "0",
           "KOLABMEET_CONSOLE_SOCKET": "none"}
    return subprocess.Popen([sys.executable, "-m", "kolabmeet", "serve", "--log-level", "WARNING"], env=env)


async def one_run(peers: int, concurrent: bool, floor: bool = False) -> dict[str, float]:
    port = free_port()
    server = _start_server(port, floor)
    peers_joined: list[SignalingPeer] = []
    try:
        async with aiohttp.ClientSession() as http:
            app = KolabApp(SimpleNamespace(port=port), http)  # type: ignore[arg-type]
            await _wait_listening(http, port)
            room = await app.create_room()
            first, _ = await join_one(app, room)
            peers_joined.append(first)
            pids = {"control": server.pid} if floor else {"control": server.pid, "worker": _children(server.pid)[0]}
            rss_before = {name: rss_kib(pid) for name, pid in pids.items()}
            cpu_before = [process_cpu_seconds(pid) for pid in pids.values()] + [time.process_time()]
            if concurrent:
                joined = await asyncio.gather(*(join_one(app, room) for _ in range(peers)))
            else:
                joined = [await join_one(app, room) for _ in range(peers)]
            peers_joined += [peer for peer, _latency in joined]
            latencies = sorted(latency for _peer, latency in joined)
            await _notifications_settled(peers_joined)
            cpu_after = [process_cpu_seconds(pid) for pid in pids.values()] + [time.process_time()]
            await asyncio.sleep(0.5)
            rss_after = {name: rss_kib(pid) for name, pid in pids.items()}
            request_seconds = await _ping_cpu(server.pid, peers_joined)
            for peer in peers_joined:
                await peer.close()
    finally:
        server.terminate()
        server.wait(10)
    return {"join_p50_ms": latencies[len(latencies) // 2] * 1000,
            "join_p95_ms": latencies[min(len(latencies) - 1, int(len(latencies) * 0.95))] * 1000,
            **{f"{name}_kib_per_peer": (rss_after[name] - rss_before[name]) / peers for name in pids},
            **{f"{name}_cpu_ms_per_join": (after - before) / peers * 1000
               for name, before, after in zip([*pids, "clients"], cpu_before, cpu_after)},
            "control_us_per_request": request_seconds * 1e6}


async def _ping_cpu(pid: int, peers: list[SignalingPeer]) -> float:
    """The process's CPU seconds per request while every peer sends PINGS_PER_PEER pings."""
    async def pings(peer: SignalingPeer) -> None:
        for _ in range(PINGS_PER_PEER):
            await peer.ok("ping")

    before = process_cpu_seconds(pid)
    await asyncio.gather(*(pings(peer) for peer in peers))
    return (process_cpu_seconds(pid) - before) / (PINGS_PER_PEER * len(peers))


async def _notifications_settled(peers: list[SignalingPeer]) -> None:
    """Until the notifications the joins sent to everyone have all arrived (no change for 0.2 s)."""
    before, now = -1, sum(peer.notifications for peer in peers)
    while now != before:
        await asyncio.sleep(0.2)
        before, now = now, sum(peer.notifications for peer in peers)


async def _wait_listening(http: aiohttp.ClientSession, port: int) -> None:
    for _ in range(100):
        try:
            async with http.get(f"http://127.0.0.1:{port}/meetmedia/api/ping",
                                headers={"X-Auth-Token": TOKEN}) as response:
                if response.status == 200:
                    return
        except aiohttp.ClientConnectorError:
            pass
        await asyncio.sleep(0.1)
    raise RuntimeError("the server did not start")


def _children(pid: int) -> list[int]:
    with open(f"/proc/{pid}/task/{pid}/children") as children:
        return [int(child) for child in children.read().split()]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--peers", type=int, default=50)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--concurrent", action="store_true", help="all peers join at once")
    parser.add_argument("--floor", action="store_true", help="join bench.canned_server instead of kolabmeet")
    args = parser.parse_args()
    results = [uvloop.run(one_run(args.peers, args.concurrent, args.floor)) for _ in range(args.runs)]
    for result in results:
        print("run: " + ", ".join(f"{k}={v:.1f}" for k, v in result.items()))
    how = "at once" if args.concurrent else "one after another"
    server = "the canned aiohttp server (--floor)" if args.floor else "kolabmeet"
    print(f"median over {args.runs} runs of {args.peers} peers joining one room {how}, on {server}:")
    for key in results[0]:
        print(f"  {key}: {statistics.median(r[key] for r in results):.1f}")


if __name__ == "__main__":
    main()
