"""Pipe transport: RTP and RTCP on one UDP port between two routers (of two workers)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from kolabmeet.media.worker.consumer import Consumer
from kolabmeet.media.worker.pipe_consumer import PipeConsumer
from kolabmeet.media.worker.plain_transport import PlainTransport
from kolabmeet.media.worker.producer import Producer
from kolabmeet.media.worker.transport import Notify

if TYPE_CHECKING:
    from kolabmeet.media.worker.router import Router


class PipeTransport(PlainTransport):
    """A plain transport with rtcp-mux whose consumers forward every encoding as it is."""

    kind_name = "pipe-transport"

    def __init__(self, transport_id: str, router: "Router", notify: Notify, data: dict[str, Any]) -> None:
        super().__init__(transport_id, router, notify, {**data, "comedia": False, "rtcpMux": True})

    def connect(self, data: dict[str, Any]) -> None:
        """The other end's ip and port; RTCP shares the port."""
        super().connect({**data, "rtcpPort": data.get("port")})

    def _choose_feedback(self, producer: Producer) -> None:
        """No congestion feedback on a pipe: both ends are workers of one deployment, and the
        transport-wide numbers in piped packets are whatever the near consumers wrote last into
        the buffer they share, meaningless here. Feedback on them cost the far worker their
        accounting per packet and a feedback packet about every 100 ms, the near one their parsing."""

    def make_consumer(self, producer: Producer, data: dict[str, Any]) -> Consumer:
        return PipeConsumer(data["consumerId"], self, producer, data, self.notify)
