"""The worker's side of the channel: requests in, responses and notifications out."""

from __future__ import annotations

import asyncio
import logging
import os
import resource
from typing import Any, Callable

from kolabmeet.media.channel import Channel, ChannelClosedError
from kolabmeet.media.errors import InvalidStateError, MediaError
from kolabmeet.media.worker.consumer import Consumer
from kolabmeet.media.worker.counters import Totals
from kolabmeet.media.worker.pipe_transport import PipeTransport
from kolabmeet.media.worker.plain_transport import PlainTransport
from kolabmeet.media.worker.producer import Producer
from kolabmeet.media.worker.router import Router
from kolabmeet.media.worker.dtls import DtlsCertificate
from kolabmeet.media.worker.transport import Transport
from kolabmeet.media.worker.webrtc_server import WebRtcServer
from kolabmeet.media.worker.webrtc_transport import WebRtcTransport

log = logging.getLogger("kolabmeet.worker")
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")

Handler = Callable[[Any, dict[str, Any]], Any]


class WorkerServer:
    """Serves one channel: owns every media object of this worker."""

    def __init__(self, channel: Channel) -> None:
        self.channel = channel
        self.objects: dict[str, Any] = {}
        self.routers: dict[str, Router] = {}
        self.webrtc_server: WebRtcServer | None = None
        self.certificate = DtlsCertificate.generate()
        self.totals = Totals()
        self._handlers: dict[str, tuple[type | None, Handler]] = {
            "worker.createRouter": (None, self._create_router),
            "worker.dump": (None, lambda _o, _d: self.dump()),
            "worker.getResourceUsage": (None, lambda _o, _d: _resource_usage()),
            "worker.setLogLevel": (None, lambda _o, data: _set_log_level(data)),
            "worker.getMetrics": (None, lambda _o, _d: self.totals.snapshot(self.routers.values())),
            "router.close": (Router, self._close_router),
            "router.dump": (Router, lambda router, _d: router.dump()),
            "worker.createWebRtcServer": (None, self._create_webrtc_server),
            "router.createPlainTransport": (Router, self._create_plain_transport),
            "router.createWebRtcTransport": (Router, self._create_webrtc_transport),
            "router.createPipeTransport": (Router, self._create_pipe_transport),
            "transport.restartIce": (WebRtcTransport, lambda t, _d: t.restart_ice()),
            "transport.connect": (Transport, lambda t, d: t.connect(d)),
            "transport.produce": (Transport, self._produce),
            "transport.consume": (Transport, self._consume),
            "transport.close": (Transport, self._close_transport),
            "transport.dump": (Transport, lambda t, _d: t.dump()),
            "transport.getStats": (Transport, lambda t, _d: t.get_stats()),
            "producer.close": (Producer, self._close_producer),
            "producer.pause": (Producer, lambda p, _d: p.pause()),
            "producer.resume": (Producer, lambda p, _d: p.resume()),
            "producer.dump": (Producer, lambda p, _d: p.dump()),
            "producer.getStats": (Producer, lambda p, _d: p.get_stats()),
            "consumer.close": (Consumer, lambda c, _d: c.close()),
            "consumer.pause": (Consumer, lambda c, _d: c.pause()),
            "consumer.resume": (Consumer, lambda c, _d: c.resume()),
            "consumer.requestKeyFrame": (Consumer, lambda c, _d: c.request_keyframe()),
            "consumer.setPriority": (Consumer, lambda c, d: c.set_priority(d.get("priority"))),
            "consumer.setPreferredLayers": (Consumer, lambda c, d: c.set_preferred_layers(d.get("spatialLayer"),
                                                                                          d.get("temporalLayer"))),
            "consumer.dump": (Consumer, lambda c, _d: c.dump()),
            "consumer.getStats": (Consumer, lambda c, _d: c.get_stats()),
        }

    async def serve(self) -> None:
        """Answer requests until the channel closes, then close every object."""
        self.totals.start_lag_probe()
        try:
            while True:
                message = await self.channel.receive()
                await self._handle(message)
        except ChannelClosedError:
            pass
        finally:
            self.totals.stop()
            for router in list(self.routers.values()):
                router.close()
            if self.webrtc_server is not None:
                self.webrtc_server.close()
            self.channel.close()

    def notify(self, target_id: str, event: str, data: Any) -> None:
        try:
            self.channel.send({"targetId": target_id, "event": event, "data": data})
        except ChannelClosedError:
            pass

    async def _handle(self, message: dict[str, Any]) -> None:
        request_id = message.get("id")
        method = message.get("method")
        try:
            data = self._dispatch(method, message.get("handlerId"), message.get("data") or {})
            if asyncio.iscoroutine(data):
                data = await data
            reply = {"id": request_id, "accepted": True, "data": data}
        except MediaError as exc:
            reply = {"id": request_id, "accepted": False, "error": type(exc).__name__, "reason": str(exc)}
        except (KeyError, TypeError, ValueError) as exc:
            log.warning("request %s failed: %r", method, exc)
            reply = {"id": request_id, "accepted": False, "error": "TypeError",
                     "reason": f"bad {method} request: {exc!r}"}
        try:
            self.channel.send(reply)
        except ChannelClosedError:
            pass

    def _dispatch(self, method: Any, handler_id: Any, data: dict[str, Any]) -> Any:
        entry = self._handlers.get(method) if isinstance(method, str) else None
        if entry is None:
            raise MediaError(f"unknown method {method!r}")
        kind, handler = entry
        target = None
        if kind is not None:
            target = self.objects.get(handler_id)
            if not isinstance(target, kind):
                raise InvalidStateError(f"{kind.__name__.lower()} {handler_id} not found")
        return handler(target, data)

    def _create_router(self, _target: None, data: dict[str, Any]) -> None:
        router_id = data["routerId"]
        if router_id in self.objects:
            raise MediaError(f"router {router_id} already exists")
        self.routers[router_id] = Router(router_id, self.notify, self.objects, self.totals)

    def _close_router(self, router: Router, _data: dict[str, Any]) -> None:
        router.close()
        self.routers.pop(router.id, None)

    def _create_plain_transport(self, router: Router, data: dict[str, Any]) -> dict[str, Any]:
        return self._add_transport(router, PlainTransport, data)

    def _create_pipe_transport(self, router: Router, data: dict[str, Any]) -> dict[str, Any]:
        return self._add_transport(router, PipeTransport, data)

    def _add_transport(self, router: Router, kind: type[PlainTransport], data: dict[str, Any]) -> dict[str, Any]:
        transport_id = data["transportId"]
        if transport_id in self.objects:
            raise MediaError(f"transport {transport_id} already exists")
        transport = kind(transport_id, router, self.notify, data)
        router.add_transport(transport)
        return transport.info()

    async def _create_webrtc_server(self, _target: None, data: dict[str, Any]) -> dict[str, Any]:
        if self.webrtc_server is not None:
            raise MediaError("this worker already has a WebRTC server")
        server = WebRtcServer(data["listenIp"], data.get("announcedAddress"))
        await server.start(data["port"])
        self.webrtc_server = server
        return server.dump()

    def _create_webrtc_transport(self, router: Router, data: dict[str, Any]) -> dict[str, Any]:
        transport_id = data["transportId"]
        if transport_id in self.objects:
            raise MediaError(f"transport {transport_id} already exists")
        if self.webrtc_server is None:
            raise MediaError("this worker has no WebRTC server")
        transport = WebRtcTransport(transport_id, router, self.notify, self.webrtc_server, self.certificate, data)
        router.add_transport(transport)
        return transport.info()

    def _close_transport(self, transport: Transport, _data: dict[str, Any]) -> None:
        transport.close()
        transport.router.remove_transport(transport)

    def _produce(self, transport: Transport, data: dict[str, Any]) -> dict[str, Any]:
        transport.check_open()
        producer = transport.produce(data)
        return {"type": producer.type}

    def _consume(self, transport: Transport, data: dict[str, Any]) -> dict[str, Any]:
        transport.check_open()
        consumer = transport.consume(data)
        return {"paused": consumer.paused, "producerPaused": consumer.producer_is_paused}

    def _close_producer(self, producer: Producer, _data: dict[str, Any]) -> None:
        producer.close()
        producer.transport.remove_producer(producer)

    def dump(self) -> dict[str, Any]:
        return {"pid": os.getpid(), "routerIds": list(self.routers),
                "webrtcServer": self.webrtc_server.dump() if self.webrtc_server else None}


def _set_log_level(data: dict[str, Any]) -> None:
    """The level of one of this worker's loggers (kolabmeet.worker and below)."""
    name, level = data.get("logger"), data.get("level")
    if not isinstance(name, str) or not name.startswith("kolabmeet.worker"):
        raise MediaError("logger must be kolabmeet.worker or one below it")
    if level not in LOG_LEVELS:
        raise MediaError(f"level must be one of {', '.join(LOG_LEVELS)}")
    logging.getLogger(name).setLevel(level)


def _resource_usage() -> dict[str, Any]:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return {"ru_utime": usage.ru_utime, "ru_stime": usage.ru_stime, "ru_maxrss": usage.ru_maxrss}


async def serve_socket(sock: Any) -> None:
    """Run a worker on one end of a socket pair until the other end closes."""
    channel = await Channel.from_socket(sock)
    await WorkerServer(channel).serve()


def run_in_process(sock: Any) -> "asyncio.Task[None]":
    """Start a worker inside the running event loop (tests step through it this way)."""
    return asyncio.get_running_loop().create_task(serve_socket(sock))
