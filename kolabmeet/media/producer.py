"""The control process's handle on a producer."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pyee import EventEmitter

from kolabmeet.media.errors import InvalidStateError

if TYPE_CHECKING:
    from kolabmeet.media.transport import Transport


class Producer(EventEmitter):
    """One incoming track. Events: "close" (whatever closed it), "transportclose"."""

    def __init__(self, producer_id: str, transport: "Transport", kind: str, rtp_parameters: dict[str, Any],
                 producer_type: str, consumable_rtp_parameters: dict[str, Any], paused: bool,
                 app_data: Any) -> None:
        super().__init__()
        self.id = producer_id
        self.transport = transport
        self.worker = transport.worker
        self.kind = kind
        self.rtp_parameters = rtp_parameters
        self.type = producer_type
        self.consumable_rtp_parameters = consumable_rtp_parameters
        self.paused = paused
        self.app_data = app_data
        self.closed = False

    def _check_open(self) -> None:
        if self.closed:
            raise InvalidStateError(f"producer {self.id} is closed")

    async def pause(self) -> None:
        self._check_open()
        await self.worker.request("producer.pause", self.id)
        self.paused = True

    async def resume(self) -> None:
        self._check_open()
        await self.worker.request("producer.resume", self.id)
        self.paused = False

    async def close(self) -> None:
        """Close it; the worker closes its consumers, which tell their owners."""
        if self.closed:
            return
        self.closed = True
        await self.worker.request_quietly("producer.close", self.id)
        self.emit("close")
        self.remove_all_listeners()

    def transport_closed(self) -> None:
        if self.closed:
            return
        self.closed = True
        self.emit("close")
        self.emit("transportclose")
        self.remove_all_listeners()

    async def get_stats(self) -> list[dict[str, Any]]:
        self._check_open()
        return await self.worker.request("producer.getStats", self.id)

    async def dump(self) -> dict[str, Any]:
        self._check_open()
        return await self.worker.request("producer.dump", self.id)
