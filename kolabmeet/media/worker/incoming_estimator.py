"""What a REMB sender can send us: an estimate from the send times its packets carry.

A sender that negotiated REMB and not transport-wide CC (aiortc, older clients)
cannot estimate its path by itself. As libwebrtc's receive-side estimator does,
the transport runs the delay-based and rate logic of the outgoing estimate
(bandwidth_estimator.py) on the sender's send times (the abs-send-time header
extension: 6.18 fixed-point seconds, wrapping every 64 s) against our arrival
times, and tells the sender the result in REMB, capped at maxIncomingBitrate.
The estimate starts from the rate that arrived in the first INITIAL_S seconds.
A drop-tail queue that is full shows no delay trend, so the loss the producers'
streams see (their receiver reports) cuts the estimate too: such senders (aiortc)
have no loss-based control of their own.
"""

from __future__ import annotations

from kolabmeet.media.worker.bandwidth_estimator import MIN_BITRATE, BandwidthEstimator

ABS_SEND_TIME_UNIT = 1.0 / (1 << 18)
UPDATE_INTERVAL = 0.1
"""Seconds between two updates of the estimate."""
REMB_AT_ONCE = 0.97
"""An estimate this far below the last REMB is sent at once, not at the next report."""
INITIAL_S = 1.0


class IncomingEstimator(BandwidthEstimator):
    """The available incoming bitrate of one transport, in bit/s (`bitrate`), from abs-send-time."""

    loss_cut_interval = 1.0
    """Loss is known once per receiver report (a second): one cut for each."""

    def __init__(self) -> None:
        super().__init__()
        self._raw = -1
        self._send_clock = 0.0
        self._next_update = 0.0
        self._first_arrival = -1.0
        self.ready = False
        """Whether there is an estimate yet (after INITIAL_S seconds of packets)."""
        self.last_remb = 0

    def received(self, abs_send_time: int, size: int, now: float) -> bool:
        """Hot path (REMB senders only): one packet arrived; True when the estimate was just updated."""
        if self._raw >= 0:
            delta = (abs_send_time - self._raw) & 0xFFFFFF
            if delta >= 0x800000:
                delta -= 0x1000000  # reordered: sent before the last one
            self._send_clock += delta * ABS_SEND_TIME_UNIT
        self._raw = abs_send_time
        self._delivered(self._send_clock, now, size)
        if now < self._next_update:
            return False
        self._next_update = now + UPDATE_INTERVAL
        if not self.ready:
            if self._first_arrival < 0:
                self._first_arrival = now
            if now - self._first_arrival < INITIAL_S:
                return False
            self._measure_delivered()
            self.bitrate, self.ready = max(self.delivered_bitrate, MIN_BITRATE), True
        self._update(now)
        return True

    def on_loss(self, fraction: float) -> None:
        """The share of the sender's packets lost over the last report interval."""
        self.loss = fraction

    def remb_due(self) -> bool:
        """Whether the estimate fell so far below the last REMB that the sender should hear it now."""
        return self.ready and self.bitrate < REMB_AT_ONCE * self.last_remb
