"""The control process's handle on a router living in a media worker."""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any

from pyee import EventEmitter

from kolabmeet import ids
from kolabmeet.media import ortc
from kolabmeet.media.errors import InvalidStateError, MediaError
from kolabmeet.media.pipe_transport import PipeTransport
from kolabmeet.media.plain_transport import PlainTransport
from kolabmeet.media.webrtc_transport import WebRtcTransport

if TYPE_CHECKING:
    from kolabmeet.media.producer import Producer
    from kolabmeet.media.transport import Transport
    from kolabmeet.media.worker_proxy import Worker


log = logging.getLogger("kolabmeet.media")


_follow_ups: set["asyncio.Task[Any]"] = set()


def _spawn(coro: Any) -> None:
    """Follow-up requests of pipe events; a failure (the other side is gone) is only logged."""
    task = asyncio.get_running_loop().create_task(coro)
    _follow_ups.add(task)
    task.add_done_callback(_follow_up_done)


def _follow_up_done(task: "asyncio.Task[Any]") -> None:
    _follow_ups.discard(task)
    if not task.cancelled() and task.exception() is not None:
        log.info("pipe follow-up failed: %s", task.exception())


class Router(EventEmitter):
    """Creates transports; knows every producer on it, so consumers can be negotiated.

    Events: "workerclose" when its worker went away; "activespeaker" (producer id) when another
    audio producer became the loudest for a moment.
    """

    def __init__(self, router_id: str, worker: "Worker", rtp_capabilities: dict[str, Any]) -> None:
        super().__init__()
        self.id = router_id
        self.worker = worker
        self.rtp_capabilities = rtp_capabilities
        self.transports: dict[str, "Transport"] = {}
        self.producers: dict[str, "Producer"] = {}
        self.peer_count = 0
        self.closed = False
        self._pipes: dict[str, tuple[PipeTransport, PipeTransport]] = {}
        self._pipe_lock = asyncio.Lock()
        worker.subscribe(router_id, self._on_notification)

    def _on_notification(self, event: str, data: Any) -> None:
        if event == "activespeaker":
            self.emit("activespeaker", data["producerId"])

    def _check_open(self) -> None:
        if self.closed:
            raise InvalidStateError(f"router {self.id} is closed")

    async def create_plain_transport(self, listen_ip: str, announced_address: str | None,
                                     port_range: tuple[int, int], comedia: bool = False,
                                     rtcp_mux: bool = False, app_data: Any = None) -> PlainTransport:
        self._check_open()
        transport_id = ids.uuid4()
        info = await self.worker.request("router.createPlainTransport", self.id, {
            "transportId": transport_id,
            "listenIp": listen_ip,
            "announcedAddress": announced_address,
            "portRange": list(port_range),
            "comedia": comedia,
            "rtcpMux": rtcp_mux,
        })
        transport = PlainTransport(transport_id, self, info, app_data)
        self.transports[transport_id] = transport
        return transport

    async def create_webrtc_transport(self, enable_udp: bool = True, enable_tcp: bool = True,
                                      prefer_udp: bool = True, max_incoming_bitrate: int | None = None,
                                      app_data: Any = None) -> WebRtcTransport:
        """A transport on the shared WebRTC port of this router's worker.

        With `max_incoming_bitrate`, senders on it are asked (REMB) to stay below that many bit/s.
        """
        self._check_open()
        transport_id = ids.uuid4()
        info = await self.worker.request("router.createWebRtcTransport", self.id, {
            "transportId": transport_id, "enableUdp": enable_udp, "enableTcp": enable_tcp, "preferUdp": prefer_udp,
            "maxIncomingBitrate": max_incoming_bitrate,
        })
        transport = WebRtcTransport(transport_id, self, info, app_data)
        self.transports[transport_id] = transport
        return transport

    async def create_pipe_transport(self, listen_ip: str, port_range: tuple[int, int]) -> PipeTransport:
        """One end of a link to another router (see `pipe_producer`)."""
        self._check_open()
        transport_id = ids.uuid4()
        info = await self.worker.request("router.createPipeTransport", self.id, {
            "transportId": transport_id, "listenIp": listen_ip, "portRange": list(port_range)})
        transport = PipeTransport(transport_id, self, info)
        self.transports[transport_id] = transport
        return transport

    async def pipe_producer(self, producer: "Producer", other: "Router", listen_ip: str,
                            port_range: tuple[int, int]) -> "Producer":
        """Make `producer` (of this router) available in `other`, under the same id.

        The pair of pipe transports between the two routers is made once. Pause,
        resume and close of the original follow it to the other side.
        """
        local, remote = await self._pipe_pair(other, listen_ip, port_range)
        pipe_consumer = await local.consume_pipe(producer)
        try:
            pipe_producer = await remote.produce_pipe(producer, pipe_consumer)
        except MediaError:
            await pipe_consumer.close()
            raise
        pipe_consumer.on("producerclose", lambda: _spawn(pipe_producer.close()))
        pipe_consumer.on("producerpause", lambda: _spawn(pipe_producer.pause()))
        pipe_consumer.on("producerresume", lambda: _spawn(pipe_producer.resume()))
        pipe_producer.once("close", lambda: _spawn(pipe_consumer.close()))
        producer.once("close", lambda: _spawn(pipe_producer.close()))
        return pipe_producer

    async def _pipe_pair(self, other: "Router", listen_ip: str,
                         port_range: tuple[int, int]) -> tuple[PipeTransport, PipeTransport]:
        async with self._pipe_lock:
            pair = self._pipes.get(other.id)
            if pair is None or pair[0].closed or pair[1].closed:
                local = await self.create_pipe_transport(listen_ip, port_range)
                remote = await other.create_pipe_transport(listen_ip, port_range)
                await local.connect_to(remote)
                await remote.connect_to(local)
                pair = self._pipes[other.id] = (local, remote)
            return pair

    def can_consume(self, producer_id: str, rtp_capabilities: dict[str, Any]) -> bool:
        producer = self.producers.get(producer_id)
        return producer is not None and ortc.can_consume(producer.consumable_rtp_parameters, rtp_capabilities)

    async def close(self) -> None:
        if self.closed:
            return
        await self.worker.request_quietly("router.close", self.id)
        self._closed()

    def worker_closed(self) -> None:
        if self.closed:
            return
        self._closed()
        self.emit("workerclose")

    def _closed(self) -> None:
        self.closed = True
        self.worker.unsubscribe(self.id)
        for transport in list(self.transports.values()):
            transport.router_closed()
        self.transports.clear()
        self.producers.clear()
        self.worker.routers.pop(self.id, None)

    async def dump(self) -> dict[str, Any]:
        return await self.worker.request("router.dump", self.id)
