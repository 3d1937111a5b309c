"""A router inside the worker: the transports and producers of one room's share of media."""

from __future__ import annotations

from typing import Any

from kolabmeet.media.worker.active_speaker import ActiveSpeakerObserver
from kolabmeet.media.worker.counters import Totals
from kolabmeet.media.worker.producer import Producer
from kolabmeet.media.worker.transport import Notify, Transport


class Router:
    """Holds transports and the producers that consumers on any of them may consume.

    `objects` is the worker's registry of every media object by id, shared by all routers.
    """

    def __init__(self, router_id: str, notify: Notify, objects: dict[str, Any], totals: Totals | None = None) -> None:
        self.id = router_id
        self.totals = totals or Totals()
        """Where the worker's consumers and producers leave their counts when they close."""
        self.notify = notify
        self.transports: dict[str, Transport] = {}
        self.producers: dict[str, Producer] = {}
        self.objects = objects
        self.objects[router_id] = self
        self.closed = False
        self.active_speaker = ActiveSpeakerObserver(router_id, self.producers, notify)

    def add_transport(self, transport: Transport) -> None:
        self.transports[transport.id] = transport
        self.objects[transport.id] = transport

    def remove_transport(self, transport: Transport) -> None:
        self.transports.pop(transport.id, None)
        self.objects.pop(transport.id, None)

    def add_producer(self, producer: Producer) -> None:
        self.producers[producer.id] = producer
        self.objects[producer.id] = producer

    def remove_producer(self, producer: Producer) -> None:
        self.producers.pop(producer.id, None)
        self.objects.pop(producer.id, None)

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        self.active_speaker.close()
        for transport in list(self.transports.values()):
            transport.close()
            self.remove_transport(transport)
        self.objects.pop(self.id, None)

    def dump(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "transportIds": list(self.transports),
            "mapProducerIdConsumerIds": {p.id: [c.id for c in p.consumers] for p in self.producers.values()},
        }
