"""Every request a client may send, by method name."""

from __future__ import annotations

from typing import Any, Awaitable, Callable

from kolabmeet.signaling.context import Context
from kolabmeet.signaling.requests import media, moderator, room

Handler = Callable[[Context, dict[str, Any]], Awaitable[Any]]

HANDLERS: dict[str, Handler] = {
    "ping": room.ping,
    "dumpStats": room.dump_stats,
    "getRouterRtpCapabilities": room.get_router_rtp_capabilities,
    "join": room.join,
    "changeNickname": room.change_nickname,
    "chatMessage": room.chat_message,
    "raisedHand": room.raised_hand,
    "createWebRtcTransport": media.create_webrtc_transport,
    "connectWebRtcTransport": media.connect_webrtc_transport,
    "restartIce": media.restart_ice,
    "createPlainTransport": media.create_plain_transport,
    "connectPlainTransport": media.connect_plain_transport,
    "produce": media.produce,
    "closeProducer": media.close_producer,
    "pauseProducer": media.pause_producer,
    "resumeProducer": media.resume_producer,
    "pauseConsumer": media.pause_consumer,
    "resumeConsumer": media.resume_consumer,
    "moderator:addRole": moderator.add_role,
    "moderator:removeRole": moderator.remove_role,
    "moderator:changeLanguage": moderator.change_language,
    "moderator:joinRequestAccept": moderator.join_request_accept,
    "moderator:joinRequestDeny": moderator.join_request_deny,
    "moderator:kickPeer": moderator.kick_peer,
    "moderator:closeRoom": moderator.close_room,
}
