"""A worker's running totals for metrics: what its consumers sent and its producers received.

Objects count for themselves (nothing extra per packet); when one closes, its
counts move into `Totals`, so that a total never goes down. `snapshot` adds the
live objects to what the closed ones left, once per metrics request.
"""

from __future__ import annotations

import asyncio
import resource
from collections import Counter
from typing import TYPE_CHECKING, Any, Iterable

if TYPE_CHECKING:
    from kolabmeet.media.worker.consumer import Consumer
    from kolabmeet.media.worker.producer import Producer
    from kolabmeet.media.worker.router import Router

LAG_INTERVAL = 0.25
"""Seconds between two event-loop lag samples."""

_CONSUMER = ("packets", "bytes", "nacks_received", "retransmitted", "keyframe_requests")
_STREAM = ("packets", "bytes", "lost", "nacks_sent", "nacked_packets", "retransmitted", "rtx_discarded")


class Totals:
    """Counts of closed consumers and producers; with `snapshot`, of everything this worker forwarded."""

    def __init__(self) -> None:
        self.consumers: Counter[str] = Counter()
        self.streams: Counter[str] = Counter()
        self._lag_max = 0.0
        self._lag_timer: asyncio.TimerHandle | None = None

    def retire_consumer(self, consumer: "Consumer") -> None:
        self.consumers.update({name: getattr(consumer, name) for name in _CONSUMER})

    def retire_producer(self, producer: "Producer") -> None:
        for stream in producer.streams():
            self.streams.update(_stream_counts(stream))

    def snapshot(self, routers: Iterable["Router"]) -> dict[str, Any]:
        """Totals, the live consumers by score and by spatial layer, CPU, memory and the worst loop lag."""
        consumers, streams = Counter(self.consumers), Counter(self.streams)
        scores: Counter[int] = Counter()
        layers: Counter[int] = Counter()
        for router in list(routers):
            for transport in list(router.transports.values()):
                for consumer in list(transport.consumers.values()):
                    consumers.update({name: getattr(consumer, name) for name in _CONSUMER})
                    scores[consumer.score] += 1
                    if consumer.kind == "video":
                        layers[consumer.current_layer] += 1
                for producer in list(transport.producers.values()):
                    for stream in producer.streams():
                        streams.update(_stream_counts(stream))
        usage = resource.getrusage(resource.RUSAGE_SELF)
        lag, self._lag_max = self._lag_max, 0.0
        return {"consumers": dict(consumers), "streams": dict(streams), "scores": dict(scores),
                "layers": dict(layers), "cpuUser": usage.ru_utime, "cpuSystem": usage.ru_stime,
                "maxRssKiB": usage.ru_maxrss, "loopLag": lag}

    def start_lag_probe(self) -> None:
        """Sample how late the event loop runs a timer, every LAG_INTERVAL; the worst since the last snapshot."""
        loop = asyncio.get_running_loop()
        due = loop.time() + LAG_INTERVAL

        def sample() -> None:
            nonlocal due
            now = loop.time()
            self._lag_max = max(self._lag_max, now - due)
            due = now + LAG_INTERVAL
            self._lag_timer = loop.call_at(due, sample)

        self._lag_timer = loop.call_at(due, sample)

    def stop(self) -> None:
        if self._lag_timer is not None:
            self._lag_timer.cancel()
            self._lag_timer = None


def _stream_counts(stream: Any) -> dict[str, int]:
    return {name: getattr(stream, name) for name in _STREAM}
