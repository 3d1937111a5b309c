"""Who consumes whom: consumers for joined peers, and the newConsumer request to their client."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, Iterable

import socketio

from kolabmeet.media.errors import MediaError

if TYPE_CHECKING:
    from kolabmeet.media.consumer import Consumer
    from kolabmeet.media.producer import Producer
    from kolabmeet.signaling.context import Context
    from kolabmeet.signaling.peer import Peer

log = logging.getLogger("kolabmeet.signaling")

AUDIO_PRIORITY = 255
SCREEN_PRIORITY = 2
"""Screen shares get the bandwidth before webcams (priority 1)."""


async def consume_all_for(ctx: "Context", peer: "Peer", others: Iterable["Peer"]) -> None:
    """Consumers for a newly joined peer of every producer the others have."""
    for other in others:
        for producer in list(other.producers.values()):
            await create_consumer(ctx, peer, other, producer)


async def consume_from_all(ctx: "Context", producer_peer: "Peer", producer: "Producer") -> None:
    """Consumers of a new producer for every other joined peer."""
    for peer in ctx.room.joined_peers(exclude=producer_peer):
        await create_consumer(ctx, peer, producer_peer, producer)


async def create_consumer(ctx: "Context", peer: "Peer", producer_peer: "Peer", producer: "Producer") -> None:
    """Consume `producer` on the peer's consuming transport and offer it to the client.

    Video starts paused and is resumed when the client acknowledges newConsumer.
    A peer joining while others produce can be reached twice (by its join and
    by the new producer): the first call wins.
    """
    transport = peer.consuming_transport()
    if peer.closed or producer.closed or transport is None or peer.rtp_capabilities is None:
        return
    if producer.id in peer.consumed_producers:
        return
    if not transport.router.can_consume(producer.id, peer.rtp_capabilities):
        log.info("room %s: peer %s cannot consume producer %s", peer.room_id, peer.id, producer.id)
        return
    peer.consumed_producers.add(producer.id)
    try:
        consumer = await transport.consume(producer.id, peer.rtp_capabilities, paused=producer.kind == "video",
                                           app_data={"peerId": producer_peer.id, "producerId": producer.id},
                                           priority=_priority(producer))
    except MediaError as exc:
        peer.consumed_producers.discard(producer.id)
        log.warning("room %s: peer %s: consuming producer %s failed: %s", peer.room_id, peer.id, producer.id, exc)
        return
    peer.consumers[consumer.id] = consumer
    _wire(ctx, peer, consumer)
    await _offer(ctx, peer, producer_peer, producer, consumer)


def _priority(producer: "Producer") -> int:
    if producer.kind == "audio":
        return AUDIO_PRIORITY
    return SCREEN_PRIORITY if (producer.app_data or {}).get("source") == "screen" else 1


def _wire(ctx: "Context", peer: "Peer", consumer: "Consumer") -> None:
    notify = ctx.notifier.notify
    consumer.on("close", lambda: peer.consumers.pop(consumer.id, None))
    consumer.on("producerclose", lambda: notify(peer, "consumerClosed", {"consumerId": consumer.id}))
    consumer.on("producerpause", lambda: notify(peer, "consumerPaused", {"consumerId": consumer.id}))
    consumer.on("producerresume", lambda: notify(peer, "consumerResumed", {"consumerId": consumer.id}))
    consumer.on("score", lambda score: notify(peer, "consumerScoreChanged",
                                              {"consumerId": consumer.id, "score": score}))
    consumer.on("layerschange", lambda layers: notify(peer, "consumerLayersChanged",
                                                      {"consumerId": consumer.id, "layers": layers}))


async def _offer(ctx: "Context", peer: "Peer", producer_peer: "Peer", producer: "Producer",
                 consumer: "Consumer") -> None:
    data = {
        "peerId": producer_peer.id,
        "producerId": producer.id,
        "id": consumer.id,
        "kind": consumer.kind,
        "rtpParameters": consumer.rtp_parameters,
        "type": consumer.type,
        "appData": producer.app_data,
        "producerPaused": consumer.producer_paused,
    }
    for _ in range(ctx.config.request_tries):
        try:
            ack = await ctx.notifier.request(peer, "newConsumer", data, ctx.config.request_timeout)
        except socketio.exceptions.TimeoutError:
            continue
        if _is_error(ack):
            log.info("room %s: peer %s refused consumer %s: %r", peer.room_id, peer.id, consumer.id, ack)
            return
        if consumer.paused and not consumer.closed:
            await _resume(peer, consumer)
        return
    log.info("room %s: peer %s never answered newConsumer %s; it stays paused", peer.room_id, peer.id, consumer.id)


async def _resume(peer: "Peer", consumer: "Consumer") -> None:
    """Resume an accepted consumer; its worker may have closed it meanwhile (its producer gone, the
    worker lost) before the news reached us: nothing to resume then."""
    try:
        await consumer.resume()
    except MediaError as exc:
        log.info("room %s: peer %s: consumer %s could not be resumed: %s", peer.room_id, peer.id, consumer.id, exc)


def _is_error(ack: Any) -> bool:
    """An ack `(err, ...)` whose first argument is not null."""
    if isinstance(ack, tuple):
        return bool(ack) and ack[0] is not None
    return ack is not None
