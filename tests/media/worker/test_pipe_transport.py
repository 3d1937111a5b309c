"""A pipe transport sends the RTP packets of one event-loop turn as one datagram, and takes them apart."""

from __future__ import annotations

import asyncio
import socket
from typing import Any

from kolabmeet.media.worker import bundle
from kolabmeet.media.worker.pipe_transport import PipeTransport
from kolabmeet.media.worker.router import Router


class RecordingPipe(PipeTransport):
    """Keeps what reaches the receive path, in order."""

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.rtp: list[bytes] = []
        self.rtcp: list[bytes] = []

    def receive_rtp(self, buf: bytearray, length: int) -> None:
        self.rtp.append(bytes(buf[:length]))

    def receive_rtcp(self, buf: bytearray, length: int) -> None:
        self.rtcp.append(bytes(buf[:length]))


def _packet(seq: int, size: int = 1116) -> bytes:
    header = bytes([0x80, 96]) + seq.to_bytes(2, "big") + (seq * 3000).to_bytes(4, "big") + b"\x00\x00\xab\xcd"
    return header + bytes([seq & 0xFF]) * (size - len(header))


def _pipe(cls: type[PipeTransport] = PipeTransport) -> PipeTransport:
    router = Router("router", lambda *_: None, {})
    return cls("pipe", router, lambda *_: None, {"listenIp": "127.0.0.1", "portRange": [40000, 49999]})


def _udp() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.settimeout(2)
    return sock


def _datagrams(sock: socket.socket) -> list[bytes]:
    sock.setblocking(False)
    received = []
    while True:
        try:
            received.append(sock.recv(65536))
        except BlockingIOError:
            return received


async def test_the_packets_of_one_turn_leave_in_one_datagram() -> None:
    pipe, far = _pipe(), _udp()
    pipe.connect({"ip": "127.0.0.1", "port": far.getsockname()[1]})
    packets = [_packet(seq) for seq in range(20)]
    assert all(pipe.send_rtp(memoryview(p)) for p in packets)
    await asyncio.sleep(0.05)
    datagrams = _datagrams(far)
    assert len(datagrams) == 1
    data = bytearray(datagrams[0])
    assert [bytes(data[o:o + n]) for o, n in bundle.split(data, len(data))] == packets
    assert pipe.total_bytes_sent() == len(data)
    pipe.close()
    far.close()


async def test_a_full_bundle_goes_at_once_and_order_is_kept() -> None:
    pipe, far = _pipe(), _udp()
    pipe.connect({"ip": "127.0.0.1", "port": far.getsockname()[1]})
    packets = [_packet(seq % 65536) for seq in range(150)]  # 150 x 1118 bytes: three bundles
    for packet in packets:
        pipe.send_rtp(memoryview(packet))
    await asyncio.sleep(0.05)
    datagrams = [bytearray(d) for d in _datagrams(far)]
    assert len(datagrams) == 3 and all(len(d) <= bundle.BUNDLE_BYTES for d in datagrams)
    assert [bytes(d[o:o + n]) for d in datagrams for o, n in bundle.split(d, len(d))] == packets
    assert not pipe.send_rtp(memoryview(bytes(bundle.BUNDLE_BYTES))), "a packet bigger than a bundle cannot go"
    pipe.close()
    far.close()


async def test_nothing_goes_before_connect_or_after_close() -> None:
    pipe, far = _pipe(), _udp()
    assert not pipe.send_rtp(memoryview(_packet(1)))
    pipe.connect({"ip": "127.0.0.1", "port": far.getsockname()[1]})
    assert pipe.send_rtp(memoryview(_packet(2)))
    pipe.close()
    await asyncio.sleep(0.05)
    assert _datagrams(far) == [], "what was waiting for the turn's end is dropped with the transport"
    far.close()


async def test_bundled_packets_reach_the_receive_path_one_by_one_and_rtcp_as_it_came() -> None:
    pipe, near = _pipe(RecordingPipe), _udp()
    assert isinstance(pipe, RecordingPipe)
    port = pipe.rtp_sock.getsockname()[1]
    packets = [_packet(seq, size) for seq, size in ((1, 12), (2, 1200), (3, 300))]
    writer = bundle.BundleWriter()
    for packet in packets:
        writer.add(memoryview(packet))
    near.sendto(writer.take(), ("127.0.0.1", port))
    receiver_report = bytes.fromhex("81c90007") + bytes(28)
    near.sendto(receiver_report, ("127.0.0.1", port))
    near.sendto(bytes.fromhex("00000c") + b"\x00" * 12, ("127.0.0.1", port))  # not RTP inside: dropped
    near.sendto(b"\x00\x05\xff", ("127.0.0.1", port))  # truncated: dropped
    for _ in range(100):
        await asyncio.sleep(0.01)
        if pipe.rtcp:
            break
    assert pipe.rtp == packets
    assert pipe.rtcp == [receiver_report]
    pipe.close()
    near.close()
