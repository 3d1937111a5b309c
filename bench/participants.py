"""Participants per core: a room where everyone sends a Kolab webcam and a mic and receives everyone.

Over the server's real protocol (HTTP API, socket.io), N peers join one room as the Kolab client
does (transports, join, produce). Each sends, over plain RTP or (`--webrtc`) WebRTC transports with
ICE, DTLS and SRTP, from a load-generator process, what Chromium sends for the Kolab webcam and mic:
two VP8 simulcast encodings (L1T3 at 15 frames/s, about 300 and 800 kbit/s: 3 and 6 packets a frame,
browser header extensions, VP8 descriptors with PictureID/TL0PICIDX/TID), key frames of four times
the size when the server asks (PLI/FIR) and at the start, and Opus at 50 packets/s. Every peer
consumes every other's mic and webcam (the allocator gives each the high encoding). A receiver
process counts every packet per stream (recvmmsg batches), sends the server RTCP receiver reports
from what really arrived (so consumer scores mean something), and the worker processes' CPU is read
over the window.

Reported per run: forwarded packets/s, worker CPU per forwarded packet and share of a core, the
workers' resident memory per peer at the end of the window, loss seen by the receivers, datagrams
dropped by the kernel (server's sockets and the generator's), the lowest consumer score, the
generator's own CPU; then, for a newcomer joining the loaded room, the time from its newConsumer ack
to the first packet of each video consumer. A room passes when the busiest worker stays under 100 %
of a core, loss < 0.1 % and every consumer scores 10.

    python -m bench.participants --peers 16 20 24 --seconds 10 --runs 3 [--workers 2 | --workers 1 2] [--webrtc]

With --workers 2 the room is split over two workers (ROUTER_SCALE_SIZE = N/2, producers
piped across); the figure to compare with one worker is forwarded packets per worker CPU
second (on this 2-core machine the load generator shares the cores). With --workers 1 2 the
one- and two-worker runs alternate and each pair gives a ratio, so that the machine's drift
over minutes falls on both sides; the median ratio is reported. With --rooms 2 the peers form two
rooms of N/2, each on a worker of its own where there are two: the same comparison when nothing
crosses between workers, the machine's own ceiling for the one above.

A worker's CPU per packet falls as its load rises (more packets per wake-up and per system call),
so the comparison above sets one worker near a full core against two at about half of one each.
With --matched the one-worker runs carry instead the room whose delivered rate is that of each of
`workers` workers in the N-peer room (for 30 peers on two: 21 peers, 21 x 20 against 30 x 29 / 2
streams), and the ratio compares the two at the same load per worker, the pipes' cost included.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import resource
import select
import socket
import statistics
import struct
import time
from dataclasses import dataclass, field
from typing import Any, Callable

import aiohttp
import uvloop

from bench.forwarding import rss_kib, scheduling, transport_ports, worker_cpu_seconds
from bench.mmsg import Receiver, udp_drops
from bench.webrtc_client import WebRtcClient
from kolabmeet.app import Server
from kolabmeet.media.capabilities import ABS_SEND_TIME, AUDIO_LEVEL, MID, TRANSPORT_WIDE_CC, router_rtp_capabilities
from kolabmeet.media.worker import rtcp
from kolabmeet.media.worker.dtls import SrtpKeys
from kolabmeet.media.worker.srtp import PacketBuffer, SrtpSession
from tests.helpers import Browser, KolabApp, make_config

FPS = 15
AUDIO_INTERVAL = 0.02
# (packets per frame, bytes per packet) of the low and the high encoding.
LAYERS = ((3, 850), (6, 1100))
KEYFRAME_FACTOR = 4
AUDIO_SIZE = 110
VP8_PT, OPUS_PT = 101, 100
_HEADER = struct.Struct("!BBHII")
_VIDEO_EXT = struct.Struct("!HHBBBBIBHB")  # 0xBEDE, 3 words, MID "1", abs-send-time (3), transport-cc (2), pad
_AUDIO_EXT = bytes.fromhex("bede0001" "1030" "a07f")  # MID "0", audio level (silence)
_VIDEO_EXTENSIONS = [{"uri": MID, "id": 1}, {"uri": ABS_SEND_TIME, "id": 4}, {"uri": TRANSPORT_WIDE_CC, "id": 5}]
_AUDIO_EXTENSIONS = [{"uri": MID, "id": 1}, {"uri": AUDIO_LEVEL, "id": 10}]
_TIDS = (0, 2, 1, 2)
CONSENT_INTERVAL = 10.0
"""Seconds between two repeats of a WebRTC link's ICE check (the server's consent lasts 30 s)."""


@dataclass
class Link:
    """One peer's socket towards one server transport: plain RTP, or WebRTC (SRTP with the DTLS keys,
    rtcp-mux, the ICE check repeated to keep the server's consent). Its SRTP sessions are made by
    `open` in the load-generator process that uses it."""

    sock: socket.socket
    rtp: tuple[str, int]
    rtcp: tuple[str, int]
    keys: SrtpKeys | None = None
    binding_request: bytes = b""
    _out: SrtpSession | None = None
    _in: SrtpSession | None = None
    _buffer: PacketBuffer | None = None
    _kept_alive: float = 0.0

    def open(self) -> None:
        self.sock.setblocking(False)
        if self.keys is not None:
            keys = self.keys
            self._out = SrtpSession(keys.profile, keys.local_key, keys.local_salt, outbound=True)
            self._in = SrtpSession(keys.profile, keys.remote_key, keys.remote_salt, outbound=False)
            self._buffer = PacketBuffer()

    def _protected(self, packet: bytes, rtcp_packet: bool) -> memoryview | bytes:
        if self._out is None or self._buffer is None:
            return packet
        length = len(packet)
        self._buffer.data[:length] = packet
        protect = self._out.protect_rtcp if rtcp_packet else self._out.protect_rtp
        return self._buffer.view[:protect(self._buffer, length)]

    def send_rtp(self, packet: bytes) -> None:
        self.sock.sendto(self._protected(packet, False), self.rtp)

    def send_rtcp(self, packet: bytes) -> None:
        self.sock.sendto(self._protected(packet, True), self.rtcp)

    def rtcp_in(self, data: bytes) -> bytes | None:
        """An RTCP datagram from the server as plain RTCP (None: not RTCP, or it did not authenticate)."""
        if len(data) < 8 or not 192 <= data[1] <= 223:
            return None
        if self._in is None or self._buffer is None:
            return data
        self._buffer.data[:len(data)] = data
        length = self._in.unprotect_rtcp(self._buffer, len(data))
        return bytes(self._buffer.view[:length]) if length > 0 else None

    def keep_alive(self, now: float) -> None:
        if self.binding_request and now - self._kept_alive >= CONSENT_INTERVAL:
            self._kept_alive = now
            self.sock.sendto(self.binding_request, self.rtp)


@dataclass
class Sender:
    """What one peer sends: the link to its sending transport and its SSRCs."""

    link: Link
    audio_ssrc: int
    video_ssrcs: tuple[int, int]
    seq: list[int] = field(default_factory=lambda: [0, 0, 0])
    twcc: int = 0
    keyframe: list[bool] = field(default_factory=lambda: [True, True])


def _video_packet(sender: Sender, layer: int, frame: int, index: int, count: int, key: bool, now: float) -> bytes:
    packets, size = LAYERS[layer]
    seq = sender.seq[layer]
    sender.seq[layer] = (seq + 1) & 0xFFFF
    sender.twcc = (sender.twcc + 1) & 0xFFFF
    marker = 0x80 if index == count - 1 else 0
    header = _HEADER.pack(0x90, marker | VP8_PT, seq, frame * 6000 & 0xFFFFFFFF, sender.video_ssrcs[layer])
    abs_time = int(now * (1 << 18)) & 0xFFFFFF
    ext = _VIDEO_EXT.pack(0xBEDE, 3, 0x10, 0x31, 0x42, abs_time >> 16, (abs_time & 0xFFFF) << 16 | 0x51 << 8
                          | sender.twcc >> 8, sender.twcc & 0xFF, 0, 0)
    tid = 0 if key else _TIDS[frame % 4]
    descriptor = bytes((0x90 if index == 0 else 0x80, 0xE0, 0x80 | (frame >> 8) & 0x7F, frame & 0xFF,
                        (frame // 4) & 0xFF, tid << 6))
    if index == 0:
        payload = b"\x00\x9d\x01\x2a" if key else b"\x01"
    else:
        payload = b""
    body = descriptor + payload
    return header + ext + body + bytes(size - len(header) - len(ext) - len(body))


def _send_frame(sender: Sender, layer: int, frame: int, now: float) -> None:
    key = sender.keyframe[layer]
    sender.keyframe[layer] = False
    count = LAYERS[layer][0] * (KEYFRAME_FACTOR if key else 1)
    for index in range(count):
        sender.link.send_rtp(_video_packet(sender, layer, frame, index, count, key, now))


def _send_audio(sender: Sender, number: int) -> None:
    seq = sender.seq[2]
    sender.seq[2] = (seq + 1) & 0xFFFF
    header = _HEADER.pack(0x90, OPUS_PT, seq, number * 960 & 0xFFFFFFFF, sender.audio_ssrc)
    sender.link.send_rtp(header + _AUDIO_EXT + bytes(AUDIO_SIZE - 12 - len(_AUDIO_EXT)))


def _read_keyframe_requests(senders: dict[int, Sender]) -> None:
    """PLI and FIR from the server: the next frame of that encoding is a key frame."""
    readable, _, _ = select.select(list(senders), [], [], 0)
    for fd in readable:
        sender = senders[fd]
        try:
            data = sender.link.rtcp_in(sender.link.sock.recv(2048))
        except BlockingIOError:
            continue
        if data is None:
            continue
        for pt, fmt, offset, _size in rtcp.iter_packets(data):
            if pt == 206 and fmt in (1, 4):
                media_ssrc = int.from_bytes(data[offset + 8:offset + 12], "big")
                for layer, ssrc in enumerate(sender.video_ssrcs):
                    if ssrc == media_ssrc or fmt == 4:
                        sender.keyframe[layer] = True


def send(senders: list[Sender], stop: Any) -> None:
    """Load-generator process: every peer's webcam frames and mic packets on time, phases spread."""
    by_fd = {s.link.sock.fileno(): s for s in senders}
    for s in senders:
        s.link.open()
        s.link.send_rtcp(rtcp.sender_report(s.audio_ssrc, rtcp.ntp_now(), 0, 0, 0, []))
    start = time.monotonic()
    count = len(senders)
    frames = [0] * count
    audio = [0] * count
    while not stop.is_set():
        now = time.monotonic()
        elapsed = now - start
        for i, sender in enumerate(senders):
            phase = i / count
            while (frames[i] + phase) / FPS <= elapsed:
                for layer in (0, 1):
                    _send_frame(sender, layer, frames[i], now)
                frames[i] += 1
            while (audio[i] + phase) * AUDIO_INTERVAL <= elapsed:
                _send_audio(sender, audio[i])
                audio[i] += 1
            sender.link.keep_alive(now)
        _read_keyframe_requests(by_fd)
        time.sleep(0.002)


# A received stream: [packets, first sequence number, highest (extended), highest and packets at the last
# report, first arrival time]; a list, not an object, since the receiver touches it for every packet.
COUNT, FIRST, HIGHEST, REPORT_HIGHEST, REPORT_COUNT, FIRST_ARRIVAL = range(6)
_RTP_START = struct.Struct("!BBH4xI")


def _account(streams: dict[int, list[Any]], receiver: Receiver, count: int, now: float) -> None:
    """Count the `count` datagrams the receiver just read (RTCP is skipped)."""
    memory, size = receiver.memory, receiver.size
    for j in range(count):
        b0, b1, seq, ssrc = _RTP_START.unpack_from(memory, j * size)
        if b0 & 0xC0 != 0x80 or 192 <= b1 <= 223:
            continue
        stream = streams.get(ssrc)
        if stream is None:
            streams[ssrc] = [1, seq, seq, seq - 1, 0, now]
            continue
        delta = (seq - stream[HIGHEST]) & 0xFFFF
        if delta < 0x8000:
            stream[HIGHEST] += delta
        stream[COUNT] += 1


def _report(link: Link, streams: dict[int, list[Any]]) -> None:
    """Receiver reports from what arrived since the last one (31 blocks per packet)."""
    blocks = []
    for ssrc, stream in streams.items():
        expected = stream[HIGHEST] - stream[REPORT_HIGHEST]
        lost = max(0, expected - (stream[COUNT] - stream[REPORT_COUNT]))
        fraction = min(255, lost * 256 // expected) if expected > 0 else 0
        cumulative = (stream[HIGHEST] - stream[FIRST] + 1) - stream[COUNT]
        blocks.append(rtcp.ReportBlock(ssrc, fraction, max(-0x800000, min(0x7FFFFF, cumulative)),
                                       stream[HIGHEST] & 0xFFFFFFFF, 0, 0, 0))
        stream[REPORT_HIGHEST], stream[REPORT_COUNT] = stream[HIGHEST], stream[COUNT]
    for start in range(0, len(blocks), 31):
        link.send_rtcp(rtcp.receiver_report(0x5EC0 + start, blocks[start:start + 31]))


def receive(socks: list[socket.socket], links: list[Link | None], delivered: Any, results: Any, stop: Any,
            last_ready: Any) -> None:
    """Receiver process: count every packet per stream on each socket (the running total in `delivered`),
    report back each second over its link where one is known, send the per-stream totals at the end.
    The last socket is left alone until `last_ready` is set (its peer's ICE and DTLS answers are not
    for this process)."""
    receiver = Receiver()
    streams: list[dict[int, list[Any]]] = [{} for _ in socks]
    for sock in socks:
        sock.setblocking(False)
    for link in links:
        if link is not None:
            link.open()
    next_report = time.monotonic() + 1
    while not stop.is_set():
        # Polled every 2 ms rather than woken per datagram: each call then reads a burst.
        for i, sock in enumerate(socks if last_ready.is_set() else socks[:-1]):
            while count := receiver.receive(sock):
                _account(streams[i], receiver, count, time.monotonic())
                delivered.value += count
                if count < receiver.batch:
                    break
        time.sleep(0.002)
        now = time.monotonic()
        if now >= next_report:
            next_report += 1
            for link, per in zip(links, streams):
                if link is not None:
                    _report(link, per)
                    link.keep_alive(now)
    results.send([{ssrc: (s[COUNT], s[HIGHEST] - s[FIRST] + 1, s[FIRST_ARRIVAL]) for ssrc, s in per.items()}
                  for per in streams])
    results.send(resource.getrusage(resource.RUSAGE_SELF))


def _socket() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 22)
    return sock


@dataclass
class Prepared:
    """A peer before it connects: its browser and the socket it will receive on (made before the load
    generator's processes fork, so that they have it)."""

    browser: Browser
    recv_sock: socket.socket
    recv_client: WebRtcClient | None


async def prepare_peer(app: KolabApp, room: str, webrtc: bool) -> Prepared:
    browser = Browser((await app.connection(room, 3))["token"])
    if webrtc:
        client = WebRtcClient(browser)
        return Prepared(browser, client.sock, client)
    return Prepared(browser, _socket(), None)


async def _transports(peer: Prepared, receiving: Callable[[], None]) -> tuple[Link, Link, str]:
    """The receiving and the sending transport, made and connected as the Kolab client does before it
    joins (`receiving` told once the first is connected): the links to them, and the sending one's id."""
    browser, local = peer.browser, "127.0.0.1"
    if peer.recv_client is not None:
        client = peer.recv_client
        keys = await client.connect(producing=False)
        recv = Link(client.sock, client.address, client.address, keys, client.binding_request)
        receiving()
        sending = WebRtcClient(browser)
        keys = await sending.connect(producing=True)
        return recv, Link(sending.sock, sending.address, sending.address, keys, sending.binding_request), \
            sending.transport_id
    consuming = await browser.ok("createPlainTransport", {"producing": False, "consuming": True})
    port = peer.recv_sock.getsockname()[1]
    await browser.ok("connectPlainTransport", {"transportId": consuming["id"], "ip": local,
                                               "port": port, "rtcpPort": port})
    producing = await browser.ok("createPlainTransport", {"producing": True, "consuming": False})
    recv = Link(peer.recv_sock, (local, consuming["port"]), (local, consuming["rtcpPort"]))
    receiving()
    return recv, Link(_socket(), (local, producing["port"]), (local, producing["rtcpPort"])), producing["id"]


async def join_peer(peer: Prepared, number: int, acks: dict[int, float] | None = None,
                    receiving: Callable[[], None] = lambda: None) -> tuple[Sender, Link]:
    """A peer as the Kolab client joins (transports, join, produce mic and webcam); its sender and the
    link of its receiving transport (`receiving` told once that is connected)."""
    browser = peer.browser
    if acks is not None:
        browser.answer_request = lambda request: _ack_time(request, acks)
    await browser.connect()
    recv, send_link, transport_id = await _transports(peer, receiving)
    await browser.ok("join", {"nickname": f"peer{number}", "rtpCapabilities": router_rtp_capabilities()})
    base = 0x10000000 * (number % 15 + 1) + number * 16
    await browser.ok("produce", {"transportId": transport_id, "kind": "audio", "appData": {"source": "mic"},
                                 "rtpParameters": {
                                     "codecs": [{"mimeType": "audio/opus", "payloadType": OPUS_PT,
                                                 "clockRate": 48000, "channels": 2}],
                                     "encodings": [{"ssrc": base}], "headerExtensions": _AUDIO_EXTENSIONS,
                                     "mid": "0", "rtcp": {"cname": f"peer{number}"}}})
    await browser.ok("produce", {"transportId": transport_id, "kind": "video", "appData": {"source": "webcam"},
                                 "rtpParameters": {
                                     "codecs": [{"mimeType": "video/VP8", "payloadType": VP8_PT, "clockRate": 90000}],
                                     "encodings": [{"ssrc": base + 1, "scalabilityMode": "L1T3"},
                                                   {"ssrc": base + 2, "scalabilityMode": "L1T3"}],
                                     "headerExtensions": _VIDEO_EXTENSIONS, "mid": "1",
                                     "rtcp": {"cname": f"peer{number}"}}})
    return Sender(send_link, base, (base + 1, base + 2)), recv


def _ack_time(request: dict[str, Any], acks: dict[int, float]) -> None:
    """Note when a video newConsumer is acknowledged (the ack leaves as this returns)."""
    data = request.get("data") or {}
    if request.get("method") == "newConsumer" and data.get("kind") == "video":
        acks[data["rtpParameters"]["encodings"][0]["ssrc"]] = time.monotonic()


async def _worker_totals(server: Server) -> tuple[int, int]:
    """(RTP packets all workers' consumers sent, pipes included; the lowest consumer score), one request each."""
    answers = await asyncio.gather(*(w.request("worker.getMetrics", "", None) for w in server.pool.workers))
    packets = sum(answer["consumers"].get("packets", 0) for answer in answers)
    lowest = min((int(score) for answer in answers for score in answer["scores"]), default=10)
    return packets, lowest


def _cpu(pids: list[int]) -> list[tuple[float, float]]:
    """(user, system) seconds of each process."""
    return [worker_cpu_seconds(pid) for pid in pids]


async def _join_all(peers: list[Prepared]) -> tuple[list[Sender], list[Link | None]]:
    senders, links = [], []
    for number, peer in enumerate(peers):
        sender, link = await join_peer(peer, number)
        senders.append(sender)
        links.append(link)
    return senders, links


def _server_ports(server: Server, room: str) -> set[int]:
    return {port for peer in server.rooms.get(room).peers.values() for transport in peer.transports.values()
            for port in transport_ports(transport)}


async def one_run(peers: int, seconds: float, workers: int, webrtc: bool = False, rooms: int = 1) -> dict[str, Any]:
    per_room = peers // rooms
    server = Server(make_config(num_workers=workers, router_scale_size=-(-per_room // max(1, workers // rooms))))
    await server.start()
    ctx = multiprocessing.get_context("fork")
    stop_send, stop_receive, delivered = ctx.Event(), ctx.Event(), ctx.Value("q", 0, lock=False)
    newcomer_receiving = ctx.Event()
    results_out, results_in = ctx.Pipe()
    children: list[Any] = []
    browsers: list[Browser] = []
    try:
        async with aiohttp.ClientSession() as http:
            app = KolabApp(server, http)
            room_ids = [await app.create_room() for _ in range(rooms)]
            prepared = [await prepare_peer(app, room_ids[min(number // per_room, rooms - 1)], webrtc)
                        for number in range(peers + 1)]  # the last: the newcomer, in the last room
            browsers = [peer.browser for peer in prepared]
            recv_socks = [peer.recv_sock for peer in prepared]
            senders, links = await _join_all(prepared[:peers])
            receiver = ctx.Process(target=receive, args=(recv_socks, links + [None], delivered, results_out,
                                                          stop_receive, newcomer_receiving))
            children = [receiver, ctx.Process(target=send, args=(senders, stop_send))]
            for child in children:
                child.start()
            await asyncio.sleep(3.0)  # layers chosen, key frames through, first reports in
            pids = [w.pid for w in server.pool.workers]
            packets_before, _ = await _worker_totals(server)
            cpu_before, gen_before, delivered_before = _cpu(pids), _cpu([c.pid for c in children]), delivered.value
            sched_before = [scheduling(pid) for pid in pids]
            wall_before = time.perf_counter()
            await asyncio.sleep(seconds)
            cpu_after, gen_after, delivered_after = _cpu(pids), _cpu([c.pid for c in children]), delivered.value
            sched_after = [scheduling(pid) for pid in pids]
            wall = time.perf_counter() - wall_before
            workers_kib = sum(rss_kib(pid) for pid in pids)
            packets_after, lowest_score = await _worker_totals(server)
            acks: dict[int, float] = {}
            await join_peer(prepared[peers], peers, acks, newcomer_receiving.set)
            await asyncio.sleep(3.0)
            server_ports = set().union(*(_server_ports(server, room) for room in room_ids))
            workers_used = len({router.worker for room in room_ids for router in server.rooms.get(room).live_routers()})
            stop_send.set()
            await asyncio.sleep(0.3)
            stop_receive.set()
            streams = results_in.recv()
            results_in.recv()
            for child in children:
                child.join()
            drops_server = udp_drops(server_ports)
            drops_generator = udp_drops({s.getsockname()[1] for s in recv_socks})
            for browser in browsers:
                await browser.close()
    finally:
        for child in children:
            child.kill()
        await server.stop()
    received = sum(c for per in streams[:peers] for c, _e, _t in per.values())
    expected = sum(e for per in streams[:peers] for _c, e, _t in per.values())
    firsts = [streams[peers][ssrc][2] - at for ssrc, at in acks.items() if ssrc in streams[peers]]
    cpu = [sum(after) - sum(before) for before, after in zip(cpu_before, cpu_after)]
    system = sum(after[1] - before[1] for before, after in zip(cpu_before, cpu_after))
    generator = [sum(after) - sum(before) for before, after in zip(gen_before, gen_after)]
    changes = [(after[0] - before[0], after[1] - before[1]) for before, after in zip(sched_before, sched_after)]
    switches = sum(switched for switched, _moved in changes) / len(pids) / wall
    moves = sum(moved for _switched, moved in changes) / len(pids) / wall
    return {
        "peers": peers, "rooms": rooms, "workers": workers, "workers_used": workers_used,
        "fewest_streams_received": min(len(per) for per in streams[:peers]),
        "forwarded_per_s": (packets_after - packets_before) / wall,
        "delivered_per_s": (delivered_after - delivered_before) / wall,
        "us_per_delivered": sum(cpu) / max(1, delivered_after - delivered_before) * 1e6,
        "system_us_per_delivered": system / max(1, delivered_after - delivered_before) * 1e6,
        "busiest_worker_share": max(cpu) / wall, "loss": 1 - received / max(1, expected),
        "lowest_score": lowest_score, "drops_server": drops_server, "drops_generator": drops_generator,
        "generator_share": sum(generator) / wall,
        "generator_receiver_share": generator[0] / wall,
        "switches_per_worker_s": switches, "cpu_moves_per_worker_s": moves,
        "workers_mib_per_peer": workers_kib / 1024 / peers,
        "first_video_ms_median": statistics.median(firsts) * 1000 if firsts else float("nan"),
        "first_video_ms_max": max(firsts) * 1000 if firsts else float("nan"),
        "first_video_consumers": len(firsts), "newcomer_video_consumers": len(acks),
    }


def passes(result: dict[str, Any]) -> bool:
    """Carried: every peer receives every other's mic and webcam, no worker saturated, < 0.1 % loss, every
    consumer scored 10, the newcomer sees every webcam."""
    per_room = result["peers"] // result["rooms"]
    return (result["fewest_streams_received"] == 2 * (per_room - 1) and result["busiest_worker_share"] < 1.0
            and result["loss"] < 0.001 and result["lowest_score"] == 10
            and result["drops_server"] == 0 and result["first_video_consumers"] == per_room)


def matched_peers(peers: int, workers: int) -> int:
    """The room size whose streams (n x (n - 1)) are nearest to those of `peers` split over `workers`."""
    share = peers * (peers - 1) / workers
    return min(range(2, peers + 1), key=lambda n: abs(n * (n - 1) - share))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--peers", type=int, nargs="+", default=[16, 20, 24])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--workers", type=int, nargs="+", default=[1],
                        help="worker counts; with several, their runs alternate (1 2 1 2 ...) and are compared")
    parser.add_argument("--webrtc", action="store_true", help="WebRTC transports (ICE, DTLS, SRTP) as browsers use")
    parser.add_argument("--rooms", type=int, default=1,
                        help="the peers split evenly into this many rooms, each on one worker where there are as"
                             " many: with --workers 1 2, what a second worker adds when nothing crosses workers")
    parser.add_argument("--matched", action="store_true",
                        help="with --workers 1 2: one worker carries the load of each of the two (see above)")
    args = parser.parse_args()
    if any(peers % args.rooms for peers in args.peers):
        parser.error("--peers must be multiples of --rooms")
    if args.matched and (args.rooms != 1 or 1 not in args.workers or len(args.workers) < 2):
        parser.error("--matched compares one room on one worker with the same room split: --workers 1 2, one room")
    for peers in args.peers:
        results: dict[int, list[dict[str, Any]]] = {workers: [] for workers in args.workers}
        room_sizes = {workers: matched_peers(peers, max(args.workers)) if args.matched and workers == 1 else peers
                      for workers in args.workers}
        for _ in range(args.runs):
            for workers in args.workers:
                result = uvloop.run(one_run(room_sizes[workers], args.seconds, workers, args.webrtc, args.rooms))
                print("run: " + ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}"
                                          for k, v in result.items()), flush=True)
                results[workers].append(result)
        for workers in args.workers:
            _summary(room_sizes[workers], args.rooms, workers, args.webrtc, results[workers])
        if 1 in results:
            for workers in (w for w in results if w != 1):
                _comparison(workers, results[1], results[workers], args.matched)


def _summary(peers: int, rooms: int, workers: int, webrtc: bool, results: list[dict[str, Any]]) -> None:
    median = {key: statistics.median(r[key] for r in results) for key in
              ("delivered_per_s", "us_per_delivered", "busiest_worker_share", "loss", "generator_share",
               "first_video_ms_median", "switches_per_worker_s", "cpu_moves_per_worker_s",
               "workers_mib_per_peer")}
    verdict = "carried" if sum(passes(r) for r in results) * 2 > len(results) else "NOT carried"
    kind = "WebRTC" if webrtc else "plain RTP"
    where = "" if rooms == 1 else f" in {rooms} rooms"
    print(f"{peers} peers{where} ({kind}) on {workers} worker(s): {verdict} in"
          f" {sum(map(passes, results))}/{len(results)} runs; medians:"
          f" {median['delivered_per_s']:,.0f} packets/s delivered to peers,"
          f" {median['us_per_delivered']:.2f} µs of worker CPU per delivered packet,"
          f" busiest worker {median['busiest_worker_share']:.0%} of a core, loss {median['loss']:.3%},"
          f" generator {median['generator_share']:.0%} of a core,"
          f" each worker switched out {median['switches_per_worker_s']:.0f} and moved between CPUs"
          f" {median['cpu_moves_per_worker_s']:.0f} times a second,"
          f" workers' memory {median['workers_mib_per_peer']:.1f} MiB per peer,"
          f" newConsumer ack to first video packet {median['first_video_ms_median']:.0f} ms", flush=True)


def _comparison(workers: int, single: list[dict[str, Any]], several: list[dict[str, Any]], matched: bool) -> None:
    """What `workers` workers carry against one, each run paired with the one-worker run next to it:
    `workers` cores at the CPU per delivered packet measured, against one core at its own (at the load
    of each of them with --matched)."""
    ratios = [workers * one["us_per_delivered"] / many["us_per_delivered"] for one, many in zip(single, several)]
    load = ", one worker at the load of each" if matched else ""
    print(f"{workers} workers against one, per CPU second{load}: {statistics.median(ratios):.2f} x"
          f" (median of {len(ratios)} adjacent pairs: {', '.join(f'{r:.2f}' for r in ratios)})", flush=True)


if __name__ == "__main__":
    main()
