"""Prometheus metrics of one server (prometheus-client, a registry of its own).

A scrape asks each media worker once for its totals (`worker.getMetrics`: the
counts of every consumer and producer, kept across the ones that closed), then
renders them with the control process's own state: rooms, peers, transports by
ICE/DTLS state, producers and consumers by kind and type, the join time
histogram, webhook failures and the control process's CPU and memory.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from typing import TYPE_CHECKING, Any, Iterator

from prometheus_client import CollectorRegistry, Histogram, ProcessCollector, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from kolabmeet.media.errors import MediaError
from kolabmeet.ops import snapshot

if TYPE_CHECKING:
    from kolabmeet.app import Server

log = logging.getLogger("kolabmeet.metrics")

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
SCRAPE_TIMEOUT = 2.0
JOIN_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)

_WORKER_COUNTERS = (
    # (metric, help, "consumers" or "streams", key)
    ("kolabmeet_forwarded_packets", "RTP packets sent to consumers", "consumers", "packets"),
    ("kolabmeet_forwarded_bytes", "RTP bytes sent to consumers", "consumers", "bytes"),
    ("kolabmeet_received_packets", "RTP packets received from producers", "streams", "packets"),
    ("kolabmeet_received_bytes", "RTP bytes received from producers", "streams", "bytes"),
    ("kolabmeet_received_packets_lost", "RTP packets of producers never received", "streams", "lost"),
    ("kolabmeet_nacks_received", "NACKs received from consumers' receivers", "consumers", "nacks_received"),
    ("kolabmeet_nacks_sent", "NACKs sent to producers' senders", "streams", "nacks_sent"),
    ("kolabmeet_retransmitted_packets", "packets resent to receivers on their NACKs", "consumers", "retransmitted"),
    ("kolabmeet_recovered_packets", "lost packets of producers recovered through RTX", "streams", "retransmitted"),
    ("kolabmeet_rtx_discarded_packets", "senders' RTX copies of packets that had arrived (padding)",
     "streams", "rtx_discarded"),
    ("kolabmeet_keyframe_requests", "key frames asked for consumers (receivers' PLI/FIR, layer switches)",
     "consumers", "keyframe_requests"),
)


class Metrics:
    """The server's registry; `render` makes one scrape's text."""

    def __init__(self, server: "Server") -> None:
        self.server = server
        self.registry = CollectorRegistry(auto_describe=False)
        self.join_seconds = Histogram("kolabmeet_join_duration_seconds", "time to answer a peer's join request",
                                      buckets=JOIN_BUCKETS, registry=self.registry)
        ProcessCollector(namespace="kolabmeet_control", registry=self.registry)
        self.registry.register(_ServerCollector(self))
        self.worker_answers: list[tuple[int, dict[str, Any] | None]] = []
        """Each worker's answer to the last scrape (None: it did not answer)."""

    def request_done(self, method: str, seconds: float, succeeded: bool) -> None:
        if method == "join" and succeeded:
            self.join_seconds.observe(seconds)

    async def render(self) -> bytes:
        """Ask every worker for its totals (at once, SCRAPE_TIMEOUT at most), then render."""
        workers = list(self.server.pool.workers)
        answers = await asyncio.gather(*(self._ask(w) for w in workers))
        self.worker_answers = [(w.index, answer) for w, answer in zip(workers, answers)]
        return generate_latest(self.registry)

    @staticmethod
    async def _ask(worker: Any) -> dict[str, Any] | None:
        if worker.closed:
            return None
        try:
            return await worker.request("worker.getMetrics", "", None, timeout=SCRAPE_TIMEOUT)
        except MediaError as exc:
            log.warning("metrics: media worker %d did not answer: %s", worker.index, exc)
            return None


class _ServerCollector:
    """Collected at each scrape from the rooms and the workers' last answers."""

    def __init__(self, metrics: Metrics) -> None:
        self.metrics = metrics

    def collect(self) -> Iterator[Metric]:
        yield from self._control(self.metrics.server)
        yield from self._workers(self.metrics.worker_answers)

    def _control(self, server: "Server") -> Iterator[Metric]:
        rooms = server.rooms
        yield GaugeMetricFamily("kolabmeet_rooms", "open rooms", value=len(rooms.rooms))
        peers = GaugeMetricFamily("kolabmeet_peers", "peers by state: joined, connected (not joined yet), "
                                  "away (a token not used yet, or a dropped socket within its grace)",
                                  labels=["state"])
        states = Counter("joined" if p.joined and p.sid else "connected" if p.sid else "away"
                         for p in snapshot.all_peers(rooms))
        for state in ("joined", "connected", "away"):
            peers.add_metric([state], states[state])
        yield peers
        transports: Counter[tuple[str, str, str]] = Counter()
        producers: Counter[tuple[str, str]] = Counter()
        consumers: Counter[tuple[str, str]] = Counter()
        for peer in snapshot.all_peers(rooms):
            for transport in list(peer.transports.values()):
                transports[(type(transport).__name__, getattr(transport, "ice_state", "none"),
                            getattr(transport, "dtls_state", "none"))] += 1
            producers.update((p.kind, p.type) for p in list(peer.producers.values()))
            consumers.update((c.kind, c.type) for c in list(peer.consumers.values()))
        yield _gauge("kolabmeet_transports", "transports by class and ICE and DTLS state",
                     ["class", "ice_state", "dtls_state"], transports)
        yield _gauge("kolabmeet_producers", "producers by kind and type", ["kind", "type"], producers)
        yield _gauge("kolabmeet_consumers", "consumers by kind and type", ["kind", "type"], consumers)
        yield CounterMetricFamily("kolabmeet_webhook_failures", "webhook POSTs that failed or got an error status",
                                  value=server.webhooks.failures)

    def _workers(self, answers: list[tuple[int, dict[str, Any] | None]]) -> Iterator[Metric]:
        up = GaugeMetricFamily("kolabmeet_worker_up", "1 when the media worker answered this scrape",
                               labels=["worker"])
        for index, answer in answers:
            up.add_metric([str(index)], 0 if answer is None else 1)
        yield up
        live = [(str(index), answer) for index, answer in answers if answer is not None]
        for name, text, group, key in _WORKER_COUNTERS:
            family = CounterMetricFamily(name, text, labels=["worker"])
            for index, answer in live:
                family.add_metric([index], answer[group].get(key, 0))
            yield family
        cpu = CounterMetricFamily("kolabmeet_worker_cpu_seconds", "CPU time of the media worker process",
                                  labels=["worker", "mode"])
        lag = GaugeMetricFamily("kolabmeet_worker_event_loop_lag_seconds",
                                "worst lateness of the media worker's event loop since the last scrape",
                                labels=["worker"])
        rss = GaugeMetricFamily("kolabmeet_worker_max_resident_memory_bytes",
                                "peak resident memory of the media worker process", labels=["worker"])
        scores = GaugeMetricFamily("kolabmeet_consumers_by_score",
                                   "live consumers by score (0-10, the receiver's loss)", labels=["worker", "score"])
        layers = GaugeMetricFamily("kolabmeet_video_consumers_by_spatial_layer",
                                   "live video consumers by the spatial layer they forward (-1: none yet)",
                                   labels=["worker", "layer"])
        for index, answer in live:
            cpu.add_metric([index, "user"], answer["cpuUser"])
            cpu.add_metric([index, "system"], answer["cpuSystem"])
            lag.add_metric([index], answer["loopLag"])
            rss.add_metric([index], answer["maxRssKiB"] * 1024)
            for score in range(11):
                scores.add_metric([index, str(score)], answer["scores"].get(score, 0))
            for layer, count in sorted(answer["layers"].items()):
                layers.add_metric([index, str(layer)], count)
        yield from (cpu, lag, rss, scores, layers)


def _gauge(name: str, text: str, labels: list[str], counts: Counter[Any]) -> GaugeMetricFamily:
    family = GaugeMetricFamily(name, text, labels=labels)
    for key, count in sorted(counts.items()):
        family.add_metric(list(key), count)
    return family
