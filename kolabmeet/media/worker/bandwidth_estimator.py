"""How much one transport can send to its receiver: an estimate from the receiver's feedback on our packets.

Every packet we send carries a transport-wide sequence number (the consumers write
it); `SendHistory` remembers when each one left and how big it was. The
receiver's transport-wide CC feedback says when each arrived. From that, as
libwebrtc's GCC does in outline:

* delay-based: the one-way delay variation of packet groups, smoothed, and the
  trend of its growth over the last groups (a least-squares slope). A trend over
  the threshold means a queue is building on the path: overuse. The rate then
  drops to 0.85 x what was delivered, else it grows by 8 % a second, never past
  1.5 x the delivered rate plus 10 kbit/s (what is sent is the only probe).
* loss-based: over 10 % lost cuts the rate by half the loss (at most every 0.3 s); under 2 % lets it grow.
* a receiver that sends REMB instead (no transport-cc) gives its estimate directly.
* going up past what is sent needs a probe: when the allocator would send more
  than the estimate allows, `probe_to` raises the estimate to that once in a
  while (PROBE_BACKOFF, half as long again after each probe the path could not
  carry, up to MAX_PROBE_BACKOFF), so that the higher layer itself tries the path; an overuse
  brings the estimate down again within a feedback or two.

The estimate starts at INITIAL_BITRATE and stays within MIN_BITRATE..MAX_BITRATE.
"""

from __future__ import annotations

import time
from collections import deque

from kolabmeet.media.worker.rtcp import TransportCc

INITIAL_BITRATE = 1_000_000
MIN_BITRATE = 30_000
MAX_BITRATE = 20_000_000
HISTORY = 4096
"""Sent packets remembered (by the low bits of their sequence number)."""
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
PROBE_BACKOFF = 5.0
MAX_PROBE_BACKOFF = 15.0
PROBE_VERDICT = 3.0
"""Seconds after a probe in which an overuse counts against it."""


class SendHistory:
    """Send time and size of the last HISTORY packets, by transport-wide sequence number."""

    __slots__ = ("_times", "_sizes", "_seqs")

    def __init__(self) -> None:
        self._times = [0.0] * HISTORY
        self._sizes = [0] * HISTORY
        self._seqs = [-1] * HISTORY

    def sent(self, seq: int, now: float, size: int) -> None:
        """Hot path: packet `seq` (16 bits) of `size` bytes leaves at `now` (monotonic seconds)."""
        slot = seq & (HISTORY - 1)
        self._seqs[slot] = seq
        self._times[slot] = now
        self._sizes[slot] = size

    def lookup(self, seq: int) -> tuple[float, int] | None:
        slot = seq & (HISTORY - 1)
        return (self._times[slot], self._sizes[slot]) if self._seqs[slot] == seq else None


class BandwidthEstimator:
    """The available outgoing bitrate of one transport, in bit/s (`bitrate`)."""

    def __init__(self) -> None:
        self.bitrate = float(INITIAL_BITRATE)
        self.loss = 0.0
        self.delivered_bitrate = 0.0
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
        self._loss_cut_at = 0.0
        self._fed_back = False
        """Transport-wide CC feedback came: probes can be judged (a REMB receiver estimates by itself)."""

    def on_feedback(self, feedback: TransportCc, now: float | None = None) -> None:
        """A transport-wide CC feedback about our packets."""
        now = time.monotonic() if now is None else now
        self._fed_back = True
        clock_us = feedback.reference_time * 64000
        received = lost = 0
        for seq, arrived, delta_us in feedback.packets:
            sent = self.history.lookup(seq)
            if sent is None:
                continue
            if not arrived or delta_us is None:
                lost += 1
                continue
            clock_us += delta_us
            received += 1
            self._delivered(sent[0], clock_us / 1e6, sent[1])
        if received + lost:
            self.loss = 0.8 * self.loss + 0.2 * lost / (received + lost)
        self._update(now)

    def probe_to(self, bitrate: float, now: float | None = None) -> bool:
        """Try `bitrate` (more than the estimate) if the path looks clear and no probe was made lately."""
        now = time.monotonic() if now is None else now
        if not self._fed_back or bitrate <= self.bitrate or self.state != "normal" or self.loss > 0.02:
            return False
        if now - self._probed_at < self._probe_backoff:
            return False
        self._probed_at = now
        self.bitrate = min(float(bitrate), MAX_BITRATE)
        return True

    def on_remb(self, bitrate: int) -> None:
        """A receiver's own estimate (REMB): taken as it is."""
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

    def _update(self, now: float) -> None:
        elapsed = min(max(now - self._last_update, 0.0), 1.0)
        self._last_update = now
        if self._deliveries:
            span = max(self._deliveries[-1][0] - self._deliveries[0][0], RATE_WINDOW_S)
            self.delivered_bitrate = sum(size for _t, size in self._deliveries) * 8 / span
        modified_trend = self._slope() * min(self._samples, 60) * 4
        if modified_trend > OVERUSE_THRESHOLD_MS:
            if self.state != "overuse":
                if self.delivered_bitrate:
                    self.bitrate = min(self.bitrate, 0.85 * self.delivered_bitrate)
                if now - self._probed_at < PROBE_VERDICT:
                    self._probe_backoff = min(self._probe_backoff * 1.5, MAX_PROBE_BACKOFF)
            self.state = "overuse"
        elif modified_trend < -OVERUSE_THRESHOLD_MS:
            self.state = "underuse"
        else:
            self.state = "normal"
            ceiling = 1.5 * self.delivered_bitrate + 10_000 if self.delivered_bitrate else MAX_BITRATE
            self.bitrate = max(self.bitrate, min(self.bitrate * (1.08 ** elapsed), ceiling))
        if self.loss > 0.1:
            if now - self._loss_cut_at > LOSS_CUT_INTERVAL:
                self._loss_cut_at = now
                self.bitrate *= 1 - 0.5 * self.loss
        elif now - self._probed_at > PROBE_VERDICT and self.state == "normal" and self.loss < 0.02:
            self._probe_backoff = PROBE_BACKOFF
        self.bitrate = min(max(self.bitrate, MIN_BITRATE), MAX_BITRATE)
