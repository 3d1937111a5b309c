"""The outgoing bandwidth estimate, fed with feedback that our own feedback builder makes for a simulated path."""

from __future__ import annotations

import random

from kolabmeet.media.worker import rtcp
from kolabmeet.media.worker.bandwidth_estimator import INITIAL_BITRATE, BandwidthEstimator
from kolabmeet.media.worker.prober import ProbeCluster
from kolabmeet.media.worker.tcc_feedback import TccFeedback

PACKET = 1000  # bytes


class Path:
    """A bottleneck of `capacity_bps` (a queue) with 20 ms of delay and random `loss` between the
    estimator's transport and a receiver that reports every 100 ms (with our own feedback builder)."""

    def __init__(self, estimator: BandwidthEstimator, capacity_bps: float, loss: float = 0.0) -> None:
        self.estimator = estimator
        self.capacity_bps = capacity_bps
        self.loss = loss
        self.now = self.queue_free = 100.0
        self.seq = 0
        self._next_report = self.now + 0.1
        self._receiver = TccFeedback()
        self._rng = random.Random(7)

    def send(self, size: int = PACKET, cluster: ProbeCluster | None = None) -> None:
        seq = self.seq & 0xFFFF
        self.estimator.history.sent(seq, self.now, size)
        if cluster is not None:
            cluster.sent(seq, self.now, size)
        self.queue_free = max(self.queue_free, self.now) + size * 8 / self.capacity_bps
        if self._rng.random() >= self.loss:
            self._receiver.received(seq, self.queue_free + 0.02, ssrc=1)
        self.seq += 1

    def advance(self, seconds: float) -> None:
        self.now += seconds
        while self.now >= self._next_report:
            for packet in self._receiver.packets(9):
                ((_pt, _fmt, offset, size),) = list(rtcp.iter_packets(packet))
                self.estimator.on_feedback(rtcp.parse_transport_cc(packet, offset, size), now=self.now)
            self._next_report += 0.1

    def run(self, send_bps: float, seconds: float) -> None:
        """Media at `send_bps` for `seconds`."""
        end = self.now + seconds
        while self.now < end:
            self.send()
            self.advance(PACKET * 8 / send_bps)

    def probe(self, cluster: ProbeCluster, packets: int = 6) -> None:
        """A probe cluster's packets, spaced at its bitrate."""
        for _ in range(packets):
            self.send(cluster=cluster)
            self.advance(PACKET * 8 / cluster.bitrate)
        cluster.sending = False


def simulate(estimator: BandwidthEstimator, send_bps: float, capacity_bps: float, seconds: float,
             loss: float = 0.0) -> Path:
    path = Path(estimator, capacity_bps, loss)
    path.run(send_bps, seconds)
    return path


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
    path = simulate(estimator, send_bps=1_500_000, capacity_bps=600_000, seconds=4)
    low = estimator.bitrate
    path.capacity_bps = 10_000_000
    path.advance(1.0)
    path.run(500_000, 8)
    assert estimator.state == "normal" and estimator.bitrate > low


def test_remb_is_taken_as_it_is() -> None:
    estimator = BandwidthEstimator()
    estimator.on_remb(350_000)
    assert estimator.bitrate == 350_000
    estimator.on_remb(1)
    assert estimator.bitrate == 30_000


def test_no_probe_before_feedback_and_none_again_before_the_back_off() -> None:
    estimator = BandwidthEstimator()
    assert estimator.probe_due(5_000_000, now=0.0) is None, "no probing before any transport-wide feedback"
    path = simulate(estimator, send_bps=300_000, capacity_bps=10_000_000, seconds=3)
    estimator.bitrate = 400_000
    cluster = estimator.probe_due(2_000_000, now=path.now)
    assert cluster is not None and cluster.bitrate == 800_000, "at most twice the estimate at a time"
    assert estimator.bitrate == 400_000, "the estimate waits for the cluster's verdict"
    assert estimator.probe_due(2_000_000, now=path.now + 0.5) is None, "one cluster at a time"


def test_a_cluster_the_path_carries_raises_the_estimate() -> None:
    estimator = BandwidthEstimator()
    path = simulate(estimator, send_bps=300_000, capacity_bps=10_000_000, seconds=3)
    estimator.bitrate = 1_000_000
    cluster = estimator.probe_due(2_000_000, now=path.now)
    assert cluster is not None
    path.probe(cluster)
    path.run(300_000, 0.5)
    assert estimator.probe is None and estimator.bitrate >= 2_000_000
    assert cluster.passed()
    assert estimator.probe_due(4_000_000, now=path.now + 1.1) is not None, "climbing on a second later"


def test_a_cluster_a_narrow_path_spreads_out_fails_and_backs_off() -> None:
    estimator = BandwidthEstimator()
    path = simulate(estimator, send_bps=150_000, capacity_bps=400_000, seconds=3)
    before = estimator.bitrate
    cluster = estimator.probe_due(max(2_000_000, before * 2), now=path.now)
    assert cluster is not None
    path.probe(cluster)
    path.run(150_000, 0.5)
    rates = cluster.rates()
    assert rates is not None and rates[1] < 0.5 * rates[0], rates
    assert estimator.probe is None and estimator.bitrate < cluster.bitrate
    probed = path.now - 0.5 - 6 * PACKET * 8 / cluster.bitrate
    assert estimator.probe_due(cluster.bitrate, now=probed + 4) is None, "3 s x 1.5 after a failed probe"
    assert estimator.probe_due(cluster.bitrate, now=probed + 5) is not None


def test_without_packets_to_probe_with_the_estimate_is_raised_and_an_overuse_takes_it_back() -> None:
    estimator = BandwidthEstimator()
    path = simulate(estimator, send_bps=300_000, capacity_bps=500_000, seconds=3)
    assert estimator.probe_due(2_000_000, now=path.now) is not None
    estimator.raise_to(2_000_000)
    assert estimator.bitrate == 2_000_000 and estimator.probe is None
    path.run(1_000_000, 2)
    assert estimator.bitrate < 600_000, estimator.bitrate
