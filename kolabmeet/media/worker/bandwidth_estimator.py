"""How much one transport can send to its receiver: an estimate from the receiver's feedback on our packets.

Every video packet we send carries a transport-wide sequence number (the consumers write
it); `SendHistory` (send_history.py) remembers when each one left and how big it was. The
receiver's transport-wide CC feedback says when each arrived. From that, as
libwebrtc's GCC does in outline:

* delay-based: the one-way delay variation of packet groups, smoothed, and the
  trend of its growth over the last groups (a least-squares slope). A trend over
  the threshold means a queue is building on the path: overuse. The rate then
  drops to 0.85 x what was delivered, else it grows by 8 % a second, never past
  1.5 x the delivered rate plus 10 kbit/s, and is at least what was delivered
  while loss is low. "Delivered" counts what we send without transport-wide
  sequence numbers (audio, `untracked_bitrate`) as well: the estimate is for
  everything the transport sends.
* loss-based: over 10 % lost cuts the rate by half the loss (at most every 0.3 s) and stops it growing.
* a receiver that sends REMB instead (no transport-cc) gives its estimate directly.
* going up past what is sent needs a probe: when the allocator would send more
  than the estimate allows, `probe_due` opens a probe cluster (see prober.py) for
  that bitrate, or PROBE_STEP x the estimate if less, once in a while
  (PROBE_BACKOFF, half as long again after each probe the path could not carry,
  up to MAX_PROBE_BACKOFF; PROBE_AFTER_PASS after one it carried). A cluster that
  arrives as fast as it left raises the estimate to its bitrate. Without packets to probe with (no RTX),
  `raise_to` lifts the estimate so that the higher layer itself tries the path;
  an overuse brings it down again within a feedback or two.

The estimate starts at INITIAL_BITRATE and stays within MIN_BITRATE..MAX_BITRATE.
"""

from __future__ import annotations

import time
from collections import deque

from kolabmeet.media.worker.prober import ProbeCluster
from kolabmeet.media.worker.rtcp import TransportCc
from kolabmeet.media.worker.send_history import SendHistory

INITIAL_BITRATE = 1_000_000
MIN_BITRATE = 30_000
MAX_BITRATE = 20_000_000
GROUP_US = 5000
"""Packets sent within this span form one group (a burst of one frame)."""
TREND_WINDOW = 20
"""Groups the delay trend is fitted over."""
OVERUSE_THRESHOLD_MS = 12.5
"""Modified-trend value over which the path is taken as overused."""
RATE_WINDOW_S = 0.5
"""Seconds of deliveries the delivered (acked) bitrate is measured over."""
LOSS_CUT_INTERVAL = 0.3
"""Seconds between two cuts for loss."""
PROBE_BACKOFF = 3.0
MAX_PROBE_BACKOFF = 8.0
PROBE_AFTER_PASS = 1.0
"""Seconds to the next probe after one the path carried (climbing on)."""
PROBE_STEP = 2.0
"""A probe asks for at most this many times the estimate."""
PROBE_VERDICT = 3.0
"""Seconds after a probe in which an overuse counts against it (and a cluster must be reported on)."""


class BandwidthEstimator:
    """The available outgoing bitrate of one transport, in bit/s (`bitrate`)."""

    loss_cut_interval = LOSS_CUT_INTERVAL

    def __init__(self) -> None:
        self.bitrate = float(INITIAL_BITRATE)
        self.loss = 0.0
        self.delivered_bitrate = 0.0
        """Bit/s the receiver's feedback acknowledged (packets with a transport-wide sequence number)."""
        self.untracked_bitrate = 0.0
        """Bit/s sent without a transport-wide sequence number (audio): the path carries it too."""
        self.state = "normal"
        self.history = SendHistory()
        self._deliveries: deque[tuple[float, int]] = deque()  # (arrival s, bytes)
        self._group: tuple[float, float] | None = None  # (first send s, last arrival s) of the open group
        self._previous: tuple[float, float] | None = None
        self._accumulated = 0.0
        self._smoothed = 0.0
        self._trend: deque[tuple[float, float]] = deque(maxlen=TREND_WINDOW)
        self._samples = 0
        self._last_update = time.monotonic()
        self._arrival_offset: float | None = None
        self._probed_at = -MAX_PROBE_BACKOFF
        self._probe_backoff = PROBE_BACKOFF
        self._raised = False
        self.probe: ProbeCluster | None = None
        """The probe cluster out on the path, until its verdict."""
        self.probes = self.probes_passed = 0
        self._loss_cut_at = 0.0
        self._fed_back = False
        """Transport-wide CC feedback came: probes can be judged (a REMB receiver estimates by itself)."""
        self.informed = False
        """The receiver gave feedback (transport-wide CC or REMB): the estimate is more than a guess."""

    def on_feedback(self, feedback: TransportCc, now: float | None = None) -> None:
        """A transport-wide CC feedback about our packets."""
        now = time.monotonic() if now is None else now
        self._fed_back = self.informed = True
        clock_us = feedback.reference_time * 64000
        received = lost = 0
        probe = self.probe
        for seq, arrived, delta_us in feedback.packets:
            got = arrived and delta_us is not None
            if got:
                clock_us += delta_us
            if probe is not None and seq in probe:
                probe.reported(seq, clock_us if got else None)
                continue  # probes are judged as a cluster, not as media
            sent = self.history.lookup(seq)
            if sent is None:
                continue
            if not got:
                lost += 1
                continue
            received += 1
            self._delivered(sent[0], clock_us / 1e6, sent[1])
        if received + lost:
            self.loss = 0.8 * self.loss + 0.2 * lost / (received + lost)
        self._update(now)
        self._judge_probe(now)

    def probe_due(self, bitrate: float, now: float | None = None) -> ProbeCluster | None:
        """A probe cluster for `bitrate` (more than the estimate) if the path looks clear and no probe
        was made lately; the caller sends it (or, with nothing to send, calls `raise_to`)."""
        now = time.monotonic() if now is None else now
        if not self._fed_back or bitrate <= self.bitrate or self.state != "normal" or self.loss > 0.02:
            return None
        if self.probe is not None or now - self._probed_at < self._probe_backoff:
            return None
        self._probed_at = now
        self.probe = ProbeCluster(min(float(bitrate), PROBE_STEP * self.bitrate, MAX_BITRATE), now)
        return self.probe

    def raise_to(self, bitrate: float) -> None:
        """Probe with the media itself: the estimate goes up to `bitrate` until an overuse says otherwise."""
        self.probe = None
        self._raised = True
        self.bitrate = min(float(bitrate), MAX_BITRATE)

    def _judge_probe(self, now: float) -> None:
        probe = self.probe
        if probe is None or not (probe.complete or now - probe.started > PROBE_VERDICT):
            return
        self.probe = None
        self.probes += 1
        if probe.passed():
            self.probes_passed += 1
            self.bitrate = max(self.bitrate, probe.bitrate)
            self._probe_backoff = PROBE_AFTER_PASS
        else:
            self._probe_backoff = min(self._probe_backoff * 1.5, MAX_PROBE_BACKOFF)

    def on_remb(self, bitrate: int) -> None:
        """A receiver's own estimate (REMB): taken as it is."""
        self.informed = True
        self.bitrate = float(min(max(bitrate, MIN_BITRATE), MAX_BITRATE))

    def _delivered(self, sent_at: float, arrival: float, size: int) -> None:
        if self._arrival_offset is None:
            self._arrival_offset = arrival - sent_at
        arrival -= self._arrival_offset  # the receiver's clock, moved next to ours
        self._deliveries.append((arrival, size))
        while self._deliveries and arrival - self._deliveries[0][0] > RATE_WINDOW_S:
            self._deliveries.popleft()
        group = self._group
        if group is None or sent_at - group[0] > GROUP_US / 1e6:
            if group is not None:
                self._close_group(group)
            self._group = (sent_at, arrival)
        else:
            self._group = (group[0], max(group[1], arrival))

    def _close_group(self, group: tuple[float, float]) -> None:
        """One more delay variation sample: how much later this group arrived than it was sent, vs the last."""
        previous, self._previous = self._previous, group
        if previous is None:
            return
        variation = (group[1] - previous[1]) - (group[0] - previous[0])
        self._accumulated += variation * 1000
        self._smoothed = 0.9 * self._smoothed + 0.1 * self._accumulated
        self._trend.append((group[1] * 1000, self._smoothed))
        self._samples = min(self._samples + 1, 1000)

    def _slope(self) -> float:
        """Least-squares slope of the smoothed delay over arrival time (ms per ms)."""
        if len(self._trend) < TREND_WINDOW // 2:
            return 0.0
        xs = [x for x, _y in self._trend]
        ys = [y for _x, y in self._trend]
        mean_x, mean_y = sum(xs) / len(xs), sum(ys) / len(ys)
        denominator = sum((x - mean_x) ** 2 for x in xs)
        if denominator == 0:
            return 0.0
        return sum((x - mean_x) * (y - mean_y) for x, y in zip(xs, ys)) / denominator

    def _measure_delivered(self) -> None:
        if self._deliveries:
            span = max(self._deliveries[-1][0] - self._deliveries[0][0], RATE_WINDOW_S)
            self.delivered_bitrate = sum(size for _t, size in self._deliveries) * 8 / span

    def _update(self, now: float) -> None:
        elapsed = min(max(now - self._last_update, 0.0), 1.0)
        self._last_update = now
        self._measure_delivered()
        modified_trend = self._slope() * min(self._samples, 60) * 4
        if modified_trend > OVERUSE_THRESHOLD_MS:
            if self.state != "overuse":
                if self.delivered_bitrate:
                    self.bitrate = min(self.bitrate, 0.85 * (self.delivered_bitrate + self.untracked_bitrate))
                if self._raised and now - self._probed_at < PROBE_VERDICT:
                    self._raised = False
                    self._probe_backoff = min(self._probe_backoff * 1.5, MAX_PROBE_BACKOFF)
            self.state = "overuse"
        elif modified_trend < -OVERUSE_THRESHOLD_MS:
            self.state = "underuse"
        else:
            self.state = "normal"
            carried = self.delivered_bitrate + self.untracked_bitrate
            ceiling = 1.5 * carried + 10_000 if self.delivered_bitrate else MAX_BITRATE
            if self.loss <= 0.1:
                self.bitrate = max(self.bitrate, min(self.bitrate * (1.08 ** elapsed), ceiling))
            if self.loss < 0.02:
                self.bitrate = max(self.bitrate, carried)  # what arrives unharmed, the path carries
        if self.loss > 0.1:
            if now - self._loss_cut_at > self.loss_cut_interval:
                self._loss_cut_at = now
                self.bitrate *= 1 - 0.5 * self.loss
        elif self._raised and now - self._probed_at > PROBE_VERDICT and self.state == "normal" and self.loss < 0.02:
            self._raised = False
            self._probe_backoff = PROBE_BACKOFF
        self.bitrate = min(max(self.bitrate, MIN_BITRATE), MAX_BITRATE)
