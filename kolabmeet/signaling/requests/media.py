"""Requests about media: transports, producers, consumers."""

from __future__ import annotations

import logging
from typing import Any

from kolabmeet.media.consumer import Consumer
from kolabmeet.media.plain_transport import PlainTransport
from kolabmeet.media.producer import Producer
from kolabmeet.media.transport import Transport
from kolabmeet.media.webrtc_transport import WebRtcTransport
from kolabmeet.signaling.consumers import consume_from_all
from kolabmeet.signaling.context import Context, ident
from kolabmeet.signaling.errors import NotFoundError, RequestError
from kolabmeet.signaling.roles import Role

log = logging.getLogger("kolabmeet.signaling")

SOURCES = ("mic", "webcam", "screen")
MAX_TRANSPORTS = 8
MAX_PRODUCERS = 16


def _room_for_transport(ctx: Context) -> None:
    if len(ctx.peer.transports) >= MAX_TRANSPORTS:
        raise RequestError(f"a peer may have at most {MAX_TRANSPORTS} transports")


def _transport(ctx: Context, data: dict[str, Any]) -> Transport:
    transport = ctx.peer.transports.get(ident(data, "transportId"))
    if transport is None or transport.closed:
        raise NotFoundError(f"transport {data.get('transportId')} not found")
    return transport


def _producer(ctx: Context, data: dict[str, Any]) -> Producer:
    producer = ctx.peer.producers.get(ident(data, "producerId"))
    if producer is None:
        raise NotFoundError(f"producer {data.get('producerId')} not found")
    return producer


def _consumer(ctx: Context, data: dict[str, Any]) -> Consumer:
    consumer = ctx.peer.consumers.get(ident(data, "consumerId"))
    if consumer is None:
        raise NotFoundError(f"consumer {data.get('consumerId')} not found")
    return consumer


def _flags(data: dict[str, Any]) -> dict[str, bool]:
    flags = {}
    for key in ("producing", "consuming"):
        value = data.get(key, False)
        if not isinstance(value, bool):
            raise RequestError(f"{key} must be true or false")
        flags[key] = value
    return flags


async def create_webrtc_transport(ctx: Context, data: dict[str, Any]) -> dict[str, Any]:
    """A transport on the shared port of the peer's router's worker; TCP only with forceTcp."""
    flags = _flags(data)
    force_tcp = data.get("forceTcp", False)
    if not isinstance(force_tcp, bool):
        raise RequestError("forceTcp must be true or false")
    _room_for_transport(ctx)
    router = await ctx.room.router_for(ctx.peer)
    transport = await router.create_webrtc_transport(enable_udp=not force_tcp, enable_tcp=True, prefer_udp=True,
                                                     max_incoming_bitrate=ctx.config.max_incoming_bitrate,
                                                     app_data=flags)
    peer = ctx.peer
    peer.transports[transport.id] = transport
    transport.once("routerclose", lambda: peer.transports.pop(transport.id, None))
    transport.on("dtlsstatechange", lambda state, reason=None: _on_dtls_state(ctx, transport, state, reason))
    transport.on("icestatechange", lambda state: log.info("room %s: peer %s: transport %s ICE %s", ctx.room.id,
                                                          peer.id, transport.id, state))
    log.info("room %s: peer %s: transport %s created (%s)", ctx.room.id, peer.id, transport.id,
             "consuming" if flags.get("consuming") else "producing")
    return {
        "id": transport.id,
        "iceParameters": transport.ice_parameters,
        "iceCandidates": transport.ice_candidates,
        "dtlsParameters": transport.dtls_parameters,
    }


def _on_dtls_state(ctx: Context, transport: WebRtcTransport, state: str, reason: str | None) -> None:
    """A failed DTLS handshake (a wrong fingerprint, say) closes the transport."""
    if state != "failed":
        log.info("room %s: peer %s: transport %s DTLS %s", ctx.room.id, ctx.peer.id, transport.id, state)
    else:
        log.warning("room %s: peer %s: transport %s DTLS failed (%s): closing it", ctx.room.id, ctx.peer.id,
                    transport.id, reason)
        ctx.peer.transports.pop(transport.id, None)
        ctx.room.spawn(transport.close())


async def connect_webrtc_transport(ctx: Context, data: dict[str, Any]) -> None:
    transport = _transport(ctx, data)
    if not isinstance(transport, WebRtcTransport):
        raise RequestError("not a WebRTC transport")
    params = data.get("dtlsParameters")
    if not isinstance(params, dict):
        raise RequestError("dtlsParameters must be an object")
    await transport.connect(params)


async def restart_ice(ctx: Context, data: dict[str, Any]) -> dict[str, Any]:
    transport = _transport(ctx, data)
    if not isinstance(transport, WebRtcTransport):
        raise RequestError("not a WebRTC transport")
    return await transport.restart_ice()


async def create_plain_transport(ctx: Context, data: dict[str, Any]) -> dict[str, Any]:
    flags = _flags(data)
    _room_for_transport(ctx)
    router = await ctx.room.router_for(ctx.peer)
    config = ctx.config
    transport = await router.create_plain_transport(
        config.webrtc_listen_ip, config.webrtc_announced_address, (config.rtc_min_port, config.rtc_max_port),
        comedia=flags["producing"], rtcp_mux=False, app_data=flags)
    ctx.peer.transports[transport.id] = transport
    transport.once("routerclose", lambda: ctx.peer.transports.pop(transport.id, None))
    return {
        "id": transport.id,
        "ip": config.announced_address,
        "port": transport.tuple["localPort"],
        "rtcpPort": transport.rtcp_tuple["localPort"] if transport.rtcp_tuple else None,
    }


async def connect_plain_transport(ctx: Context, data: dict[str, Any]) -> None:
    transport = _transport(ctx, data)
    if not isinstance(transport, PlainTransport):
        raise RequestError("not a plain transport")
    ip, port, rtcp_port = data.get("ip"), data.get("port"), data.get("rtcpPort")
    if not isinstance(ip, str) or not isinstance(port, int) or not (rtcp_port is None or isinstance(rtcp_port, int)):
        raise RequestError("connectPlainTransport needs ip (string), port and rtcpPort (integers)")
    await transport.connect(ip, port, rtcp_port)


async def produce(ctx: Context, data: dict[str, Any]) -> dict[str, Any]:
    """A new producer; every other joined peer gets a consumer of it."""
    ctx.require(Role.PUBLISHER, "producing")
    transport = _transport(ctx, data)
    if len(ctx.peer.producers) >= MAX_PRODUCERS:
        raise RequestError(f"a peer may have at most {MAX_PRODUCERS} producers")
    app_data = data.get("appData")
    if not isinstance(app_data, dict) or app_data.get("source") not in SOURCES:
        raise RequestError("appData.source must be one of mic, webcam, screen")
    producer = await transport.produce(data.get("kind"), data.get("rtpParameters"), app_data=app_data)
    peer = ctx.peer
    peer.producers[producer.id] = producer
    producer.once("close", lambda: peer.producers.pop(producer.id, None))
    ctx.room.spawn(_share(ctx, producer))
    return {"id": producer.id}


async def _share(ctx: Context, producer: Producer) -> None:
    """Pipe a new producer to the room's other routers, then offer it to every other peer."""
    await ctx.room.pipe_to_other_routers(producer)
    await consume_from_all(ctx, ctx.peer, producer)


async def close_producer(ctx: Context, data: dict[str, Any]) -> None:
    await _producer(ctx, data).close()


async def pause_producer(ctx: Context, data: dict[str, Any]) -> None:
    await _producer(ctx, data).pause()


async def resume_producer(ctx: Context, data: dict[str, Any]) -> None:
    await _producer(ctx, data).resume()


async def pause_consumer(ctx: Context, data: dict[str, Any]) -> None:
    await _consumer(ctx, data).pause()


async def resume_consumer(ctx: Context, data: dict[str, Any]) -> None:
    await _consumer(ctx, data).resume()
