"""The control process's handle on a transport: produce and consume through it."""

from __future__ import annotations

import itertools
from typing import TYPE_CHECKING, Any

from pyee import EventEmitter

from kolabmeet import ids
from kolabmeet.media import ortc
from kolabmeet.media.consumer import Consumer
from kolabmeet.media.errors import InvalidStateError, UnsupportedError
from kolabmeet.media.producer import Producer

if TYPE_CHECKING:
    from kolabmeet.media.router import Router


class Transport(EventEmitter):
    """Base of the transport handles. Events: "routerclose" when its router went away.

    A closed handle drops its listeners (as Consumer and Producer do): they hold closures over it,
    a reference cycle the collector would otherwise have to find.
    """

    def __init__(self, transport_id: str, router: "Router", app_data: Any = None) -> None:
        super().__init__()
        self.id = transport_id
        self.router = router
        self.worker = router.worker
        self.app_data = app_data
        self.producers: dict[str, Producer] = {}
        self.consumers: dict[str, Consumer] = {}
        self.closed = False
        self._mids = itertools.count()
        self.cname = ids.token_hex(8)
        """Given to producers that signal none (Chromium's rid simulcast): every consumer needs one."""
        self.worker.subscribe(self.id, self._on_notification)

    def _on_notification(self, event: str, data: Any) -> None:
        """Worker notifications about this transport; subclasses extend."""

    def check_open(self) -> None:
        if self.closed:
            raise InvalidStateError(f"transport {self.id} is closed")

    async def produce(self, kind: str, rtp_parameters: Any, paused: bool = False,
                      app_data: Any = None) -> Producer:
        """Validate and map the sender's parameters, then start receiving."""
        self.check_open()
        if kind not in ("audio", "video"):
            raise ortc.InvalidParametersError(f"kind must be 'audio' or 'video', got {kind!r}")
        params = ortc.validate_rtp_parameters(rtp_parameters)
        if not params["rtcp"].get("cname"):
            params["rtcp"]["cname"] = self.cname
        caps = self.router.rtp_capabilities
        mapping = ortc.get_producer_rtp_mapping(params, caps)
        consumable = ortc.get_consumable_rtp_parameters(kind, params, caps, mapping)
        producer_id = ids.uuid4()
        answer = await self.worker.request("transport.produce", self.id, {
            "producerId": producer_id, "kind": kind, "rtpParameters": params,
            "rtpMapping": mapping, "paused": paused,
        })
        producer = Producer(producer_id, self, kind, params, answer["type"], consumable, paused, app_data)
        return self._add_producer(producer)

    def _add_producer(self, producer: Producer) -> Producer:
        self.producers[producer.id] = producer
        self.router.producers[producer.id] = producer
        producer.once("close", lambda: self._forget_producer(producer))
        return producer

    async def consume(self, producer_id: str, rtp_capabilities: dict[str, Any], paused: bool = False,
                      app_data: Any = None, priority: int = 1) -> Consumer:
        """Start sending a producer of this router to the remote of this transport."""
        self.check_open()
        producer = self.router.producers.get(producer_id)
        if producer is None:
            raise UnsupportedError(f"producer {producer_id} not found")
        if not ortc.can_consume(producer.consumable_rtp_parameters, rtp_capabilities):
            raise UnsupportedError(f"cannot consume producer {producer_id} with these RTP capabilities")
        params = ortc.get_consumer_rtp_parameters(producer.consumable_rtp_parameters, rtp_capabilities)
        params["mid"] = str(next(self._mids))
        consumer_id = ids.uuid4()
        consumer_type = ortc.consumer_type(producer.consumable_rtp_parameters)
        answer = await self.worker.request("transport.consume", self.id, {
            "consumerId": consumer_id, "producerId": producer_id, "kind": producer.kind,
            "rtpParameters": params, "type": consumer_type, "paused": paused, "priority": priority,
            "extensionMap": ortc.consumer_extension_map(producer.kind, params, self.router.rtp_capabilities),
        })
        consumer = Consumer(consumer_id, self, producer, params, consumer_type,
                            paused, answer["producerPaused"], app_data)
        consumer.priority = priority
        return self._add_consumer(consumer)

    def _add_consumer(self, consumer: Consumer) -> Consumer:
        self.consumers[consumer.id] = consumer
        consumer.once("close", lambda: self.consumers.pop(consumer.id, None))
        return consumer

    def _forget_producer(self, producer: Producer) -> None:
        self.producers.pop(producer.id, None)
        self.router.producers.pop(producer.id, None)

    async def close(self) -> None:
        """Close the transport and everything produced or consumed on it."""
        if self.closed:
            return
        await self.worker.request_quietly("transport.close", self.id)
        self._closed()
        self.remove_all_listeners()

    def router_closed(self) -> None:
        if self.closed:
            return
        self._closed()
        self.emit("routerclose")
        self.remove_all_listeners()

    def _closed(self) -> None:
        self.closed = True
        self.worker.unsubscribe(self.id)
        for producer in list(self.producers.values()):
            producer.transport_closed()
        for consumer in list(self.consumers.values()):
            consumer.transport_closed()
        self.router.transports.pop(self.id, None)

    async def get_stats(self) -> list[dict[str, Any]]:
        self.check_open()
        return await self.worker.request("transport.getStats", self.id)

    async def dump(self) -> dict[str, Any]:
        self.check_open()
        return await self.worker.request("transport.dump", self.id)
