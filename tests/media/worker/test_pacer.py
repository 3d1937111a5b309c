"""The pacer: packets within the burst allowance leave at once, a burst beyond it is spread at the pacing rate."""

from __future__ import annotations

import asyncio
import time

from kolabmeet.media.worker.pacer import BURST_S, MAX_QUEUE_S, PACING_FACTOR, Pacer

PACKET = 1000


class Link:
    """What the pacer sent, and the departures it noted."""

    def __init__(self) -> None:
        self.sent: list[tuple[float, bytes]] = []
        self.departed: list[tuple[int, float, int]] = []

    def send(self, datagram: bytes, droppable: bool) -> bool:
        self.sent.append((time.monotonic(), datagram))
        return True

    def departure(self, seq: int, at: float, size: int) -> None:
        self.departed.append((seq, at, size))


def _offer(pacer: Pacer, link: Link, index: int) -> bool:
    """One packet as a transport hands it over: sent at once when clear, else held."""
    datagram = index.to_bytes(4, "big") * (PACKET // 4)
    if pacer.clear_to_send(PACKET, time.monotonic()):
        return link.send(datagram, True)
    pacer.hold(memoryview(datagram), index, True)
    return False


async def test_a_key_frame_burst_is_spread_at_the_pacing_rate_in_order() -> None:
    link = Link()
    bitrate = 1_000_000
    pacer = Pacer(link.send, link.departure, bitrate)
    started = time.monotonic()
    immediate = sum(_offer(pacer, link, index) for index in range(30))
    rate = PACING_FACTOR * bitrate / 8
    assert immediate == int(rate * BURST_S // PACKET) + 1
    assert pacer.queued == 30 - immediate
    while pacer.queued:
        await asyncio.sleep(0.005)
    took = link.sent[-1][0] - started
    expected = (30 - immediate) * PACKET / rate
    assert 0.7 * expected < took < expected + 0.05, (took, expected)
    assert [int.from_bytes(d[:4], "big") for _t, d in link.sent] == list(range(30))
    assert [seq for seq, _at, _size in link.departed] == list(range(immediate, 30))
    assert pacer.sent_late == 30 - immediate


async def test_a_queue_too_long_for_the_rate_is_sent_at_once() -> None:
    link = Link()
    pacer = Pacer(link.send, link.departure, 50_000)
    packets = int(PACING_FACTOR * 50_000 / 8 * MAX_QUEUE_S // PACKET) + 3
    for index in range(packets):
        _offer(pacer, link, index)
    assert pacer.queued <= 1 and len(link.sent) + pacer.queued == packets
    assert pacer.rate == 2 * PACING_FACTOR * 50_000 / 8, "the rate follows what is offered"
    pacer.close()


async def test_the_rate_follows_the_estimate() -> None:
    link = Link()
    pacer = Pacer(link.send, link.departure, 1_000_000)
    pacer.set_bitrate(4_000_000)
    assert pacer.rate == PACING_FACTOR * 4_000_000 / 8
    pacer.close()
