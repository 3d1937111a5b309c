"""The control process's handle on a consumer."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pyee import EventEmitter

from kolabmeet.media.errors import InvalidStateError

if TYPE_CHECKING:
    from kolabmeet.media.producer import Producer
    from kolabmeet.media.transport import Transport


class Consumer(EventEmitter):
    """One outgoing copy of a producer.

    Events: "close" (whatever closed it), "producerclose", "producerpause",
    "producerresume", "transportclose", "score", "layerschange".
    """

    def __init__(self, consumer_id: str, transport: "Transport", producer: "Producer",
                 rtp_parameters: dict[str, Any], consumer_type: str, paused: bool,
                 producer_paused: bool, app_data: Any) -> None:
        super().__init__()
        self.id = consumer_id
        self.transport = transport
        self.worker = transport.worker
        self.producer_id = producer.id
        self.kind = producer.kind
        self.rtp_parameters = rtp_parameters
        self.type = consumer_type
        self.paused = paused
        self.producer_paused = producer_paused
        self.priority = 1
        self.app_data = app_data
        self.closed = False
        self.score: dict[str, Any] = {"score": 10, "producerScore": 10, "producerScores": []}
        self.worker.subscribe(self.id, self._on_notification)

    def _on_notification(self, event: str, data: Any) -> None:
        if event == "producerclose":
            if not self.closed:
                self._set_closed()
                self.emit("producerclose")
                self.remove_all_listeners()
        elif event == "producerpause":
            self.producer_paused = True
            self.emit("producerpause")
        elif event == "producerresume":
            self.producer_paused = False
            self.emit("producerresume")
        elif event == "score":
            self.score = data
            self.emit("score", data)
        elif event == "layerschange":
            self.emit("layerschange", data)

    def _check_open(self) -> None:
        if self.closed:
            raise InvalidStateError(f"consumer {self.id} is closed")

    def _set_closed(self) -> None:
        self.closed = True
        self.worker.unsubscribe(self.id)
        self.emit("close")

    async def pause(self) -> None:
        self._check_open()
        await self.worker.request("consumer.pause", self.id)
        self.paused = True

    async def resume(self) -> None:
        self._check_open()
        await self.worker.request("consumer.resume", self.id)
        self.paused = False

    async def set_priority(self, priority: int) -> None:
        """1-255; under congestion lower priorities are dropped first (audio runs at 255)."""
        self._check_open()
        await self.worker.request("consumer.setPriority", self.id, {"priority": priority})
        self.priority = priority

    async def set_preferred_layers(self, spatial_layer: int, temporal_layer: int | None = None) -> None:
        """The highest simulcast layer and (VP8) temporal layer to forward; the defaults are all of them."""
        self._check_open()
        await self.worker.request("consumer.setPreferredLayers", self.id,
                                  {"spatialLayer": spatial_layer, "temporalLayer": temporal_layer})

    async def request_key_frame(self) -> None:
        self._check_open()
        await self.worker.request("consumer.requestKeyFrame", self.id)

    async def close(self) -> None:
        if self.closed:
            return
        self._set_closed()
        self.remove_all_listeners()
        await self.worker.request_quietly("consumer.close", self.id)

    def transport_closed(self) -> None:
        if self.closed:
            return
        self._set_closed()
        self.emit("transportclose")
        self.remove_all_listeners()

    async def get_stats(self) -> list[dict[str, Any]]:
        self._check_open()
        return await self.worker.request("consumer.getStats", self.id)

    async def dump(self) -> dict[str, Any]:
        self._check_open()
        return await self.worker.request("consumer.dump", self.id)
