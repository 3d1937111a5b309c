"""The outgoing bandwidth estimate, fed with feedback that our own feedback builder makes for a simulated path."""

from __future__ import annotations

import random

from kolabmeet.media.worker import rtcp
from kolabmeet.media.worker.bandwidth_estimator import INITIAL_BITRATE, BandwidthEstimator
from kolabmeet.media.worker.tcc_feedback import TccFeedback

PACKET = 1000  # bytes


def simulate(estimator: BandwidthEstimator, send_bps: float, capacity_bps: float, seconds: float,
             loss: float = 0.0, start: float = 100.0, seq: int = 0) -> tuple[float, int]:
    """Packets sent at `send_bps` through a bottleneck of `capacity_bps` (a queue) with 20 ms of delay and
    random `loss`; the receiver reports every 100 ms. Returns the clock and the next sequence number."""
    receiver = TccFeedback()
    rng = random.Random(7)
    interval = PACKET * 8 / send_bps
    now, queue_free, next_report = start, start, start + 0.1
    while now < start + seconds:
        estimator.history.sent(seq & 0xFFFF, now, PACKET)
        queue_free = max(queue_free, now) + PACKET * 8 / capacity_bps
        if rng.random() >= loss:
            receiver.received(seq & 0xFFFF, queue_free + 0.02, ssrc=1)
        seq += 1
        now += interval
        if now >= next_report:
            for packet in receiver.packets(9):
                ((_pt, _fmt, offset, size),) = list(rtcp.iter_packets(packet))
                estimator.on_feedback(rtcp.parse_transport_cc(packet, offset, size), now=now)
            next_report += 0.1
    return now, seq


def test_an_uncongested_path_lets_the_estimate_grow_with_what_is_delivered() -> None:
    estimator = BandwidthEstimator()
    simulate(estimator, send_bps=1_200_000, capacity_bps=10_000_000, seconds=6)
    assert estimator.state == "normal"
    assert 1_100_000 < estimator.delivered_bitrate < 1_300_000
    assert INITIAL_BITRATE < estimator.bitrate <= 1.5 * estimator.delivered_bitrate + 10_000


def test_a_queue_building_up_brings_the_estimate_below_the_capacity() -> None:
    estimator = BandwidthEstimator()
    simulate(estimator, send_bps=1_500_000, capacity_bps=600_000, seconds=4)
    assert estimator.bitrate < 600_000, estimator.bitrate
    assert 500_000 < estimator.delivered_bitrate < 700_000


def test_heavy_loss_cuts_the_estimate() -> None:
    estimator = BandwidthEstimator()
    simulate(estimator, send_bps=1_000_000, capacity_bps=10_000_000, seconds=5, loss=0.3)
    assert estimator.loss > 0.2
    assert estimator.bitrate < 0.7 * INITIAL_BITRATE


def test_it_recovers_once_the_path_clears() -> None:
    estimator = BandwidthEstimator()
    now, seq = simulate(estimator, send_bps=1_500_000, capacity_bps=600_000, seconds=4)
    low = estimator.bitrate
    simulate(estimator, send_bps=500_000, capacity_bps=10_000_000, seconds=8, start=now + 1, seq=seq)
    assert estimator.state == "normal" and estimator.bitrate > low


def test_remb_is_taken_as_it_is() -> None:
    estimator = BandwidthEstimator()
    estimator.on_remb(350_000)
    assert estimator.bitrate == 350_000
    estimator.on_remb(1)
    assert estimator.bitrate == 30_000


def test_probes_raise_the_estimate_now_and_then() -> None:
    estimator = BandwidthEstimator()
    assert not estimator.probe_to(5_000_000, now=0.0), "no probing before any transport-wide feedback"
    now, seq = simulate(estimator, send_bps=300_000, capacity_bps=10_000_000, seconds=3)
    estimator.bitrate = 400_000
    assert estimator.probe_to(2_000_000, now=now)
    assert estimator.bitrate == 2_000_000
    estimator.bitrate = 400_000
    assert not estimator.probe_to(2_000_000, now=now + 1), "not again before the back-off"
    assert estimator.probe_to(2_000_000, now=now + 6)
