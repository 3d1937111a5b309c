"""The receive-side estimate for REMB senders, fed with abs-send-time through a simulated bottleneck."""

from __future__ import annotations

from kolabmeet.media.worker.incoming_estimator import INITIAL_S, IncomingEstimator

PACKET = 1000


def _abs_send_time(seconds: float) -> int:
    return int(seconds * (1 << 18)) & 0xFFFFFF


def _send(estimator: IncomingEstimator, send_bps: float, capacity_bps: float, seconds: float,
          start: float = 60.0) -> None:
    """Packets at `send_bps` through a queue of `capacity_bps`; the send clock starts at `start` s (abs-send-time
    wraps at 64 s)."""
    interval = PACKET * 8 / send_bps
    sent, free = start, 0.0
    while sent < start + seconds:
        free = max(free, sent) + PACKET * 8 / capacity_bps
        estimator.received(_abs_send_time(sent), PACKET, 1000.0 + free + 0.02)
        sent += interval


def test_the_estimate_starts_from_what_arrives() -> None:
    estimator = IncomingEstimator()
    _send(estimator, 600_000, 10_000_000, INITIAL_S / 2)
    assert not estimator.ready
    _send(estimator, 600_000, 10_000_000, 2 * INITIAL_S, start=60.0 + INITIAL_S / 2)
    assert estimator.ready and 500_000 < estimator.bitrate < 1_000_000, estimator.bitrate


def test_a_queue_building_up_brings_it_below_the_capacity_across_the_wrap() -> None:
    estimator = IncomingEstimator()
    _send(estimator, 2_000_000, 700_000, 4.0)
    assert estimator.state == "overuse" and estimator.bitrate < 700_000, (estimator.state, estimator.bitrate)


def test_reported_loss_cuts_it_once_per_report() -> None:
    estimator = IncomingEstimator()
    _send(estimator, 800_000, 10_000_000, 2.0)
    before = estimator.last_remb = estimator.bitrate
    estimator.on_loss(0.3)
    _send(estimator, 800_000, 10_000_000, 0.9, start=62.0)
    assert estimator.bitrate == before * (1 - 0.5 * 0.3)
    assert estimator.remb_due()
