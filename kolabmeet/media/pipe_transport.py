"""The control process's handle on a pipe transport, and piping a producer to another router."""

from __future__ import annotations

from typing import Any

from kolabmeet import ids
from kolabmeet.media import ortc
from kolabmeet.media.consumer import Consumer
from kolabmeet.media.plain_transport import PlainTransport
from kolabmeet.media.producer import Producer


class PipeTransport(PlainTransport):
    """One end of a UDP link between two routers (RTP and RTCP on one port)."""

    async def connect_to(self, other: "PipeTransport") -> None:
        await self.connect(other.tuple["localIp"], other.tuple["localPort"])

    async def consume_pipe(self, producer: Producer) -> Consumer:
        """A consumer sending every encoding of `producer` to the other end, unchanged."""
        self.check_open()
        params = ortc.get_consumer_rtp_parameters(producer.consumable_rtp_parameters,
                                                  self.router.rtp_capabilities, pipe=True)
        consumer_id = ids.uuid4()
        answer = await self.worker.request("transport.consume", self.id, {
            "consumerId": consumer_id, "producerId": producer.id, "kind": producer.kind,
            "rtpParameters": params, "type": "pipe", "paused": False,
        })
        consumer = Consumer(consumer_id, self, producer, params, "pipe", False, answer["producerPaused"], None)
        return self._add_consumer(consumer)

    async def produce_pipe(self, original: Producer, pipe_consumer: Consumer) -> Producer:
        """The producer on this end receiving what `pipe_consumer` sends; it has the original's id."""
        self.check_open()
        params = {**pipe_consumer.rtp_parameters, "mid": original.rtp_parameters.get("mid")}
        mapping = _identity_mapping(params)
        answer = await self.worker.request("transport.produce", self.id, {
            "producerId": original.id, "kind": original.kind, "rtpParameters": params,
            "rtpMapping": mapping, "paused": original.paused,
        })
        producer = Producer(original.id, self, original.kind, params, answer["type"],
                            original.consumable_rtp_parameters, original.paused, original.app_data)
        return self._add_producer(producer)


def _identity_mapping(params: dict[str, Any]) -> dict[str, Any]:
    """Both routers have the same capabilities: payload types, SSRCs and extension ids stay."""
    return {
        "codecs": [{"payloadType": c["payloadType"], "mappedPayloadType": c["payloadType"]} for c in params["codecs"]],
        "encodings": [{"ssrc": e["ssrc"], "mappedSsrc": e["ssrc"]} for e in params["encodings"]],
        "headerExtensions": [{"id": e["id"], "mappedId": e["id"]} for e in params.get("headerExtensions", [])],
    }
