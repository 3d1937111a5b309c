"""Requests about being in the room: join, nickname, chat, raised hand."""

from __future__ import annotations

import logging
from typing import Any

from kolabmeet.media import ortc
from kolabmeet.signaling.consumers import consume_all_for
from kolabmeet.signaling.context import Context, text
from kolabmeet.signaling.errors import RequestError

log = logging.getLogger("kolabmeet.signaling")

MAX_NICKNAME = 256


async def ping(ctx: Context, data: dict[str, Any]) -> None:
    return None


async def dump_stats(ctx: Context, data: dict[str, Any]) -> None:
    """Log what the peer has; the client gets nothing back."""
    peer = ctx.peer
    log.info("room %s: peer %s (%s) has %d transport(s), %d producer(s), %d consumer(s)", ctx.room.id, peer.id,
             peer.nickname, len(peer.transports), len(peer.producers), len(peer.consumers))


async def get_router_rtp_capabilities(ctx: Context, data: dict[str, Any]) -> dict[str, Any]:
    router = await ctx.room.router_for(ctx.peer)
    return router.rtp_capabilities


async def join(ctx: Context, data: dict[str, Any]) -> dict[str, Any]:
    """Store nickname and capabilities, meet the others, start consuming their producers."""
    peer = ctx.peer
    if peer.joined:
        raise RequestError("already joined")
    nickname = text(data, "nickname", MAX_NICKNAME, optional=True)
    caps = data.get("rtpCapabilities")
    peer.rtp_capabilities = None if caps is None else ortc.validate_rtp_capabilities(caps)
    peer.joined = True
    _set_nickname(ctx, nickname, always=True)
    others = ctx.room.joined_peers(exclude=peer)
    ctx.to_others("newPeer", peer.info())
    ctx.room.spawn(consume_all_for(ctx, peer, others))
    return {"peers": [other.info() for other in others], **peer.info()}


def _set_nickname(ctx: Context, nickname: str | None, always: bool = False) -> None:
    if nickname == ctx.peer.nickname and not always:
        return
    ctx.peer.nickname = nickname
    ctx.to_all("changeNickname", {"peerId": ctx.peer.id, "nickname": nickname})


async def change_nickname(ctx: Context, data: dict[str, Any]) -> None:
    _set_nickname(ctx, text(data, "nickname", MAX_NICKNAME, optional=True))


async def chat_message(ctx: Context, data: dict[str, Any]) -> None:
    message = text(data, "message")
    ctx.to_all("chatMessage", {"peerId": ctx.peer.id, "nickname": ctx.peer.nickname, "message": message})


async def raised_hand(ctx: Context, data: dict[str, Any]) -> None:
    value = data.get("raisedHand")
    if not isinstance(value, bool):
        raise RequestError("raisedHand must be true or false")
    if value != ctx.peer.raised_hand:
        ctx.peer.raised_hand = value
        ctx.to_all("changeRaisedHand", {"peerId": ctx.peer.id, "raisedHand": value})
