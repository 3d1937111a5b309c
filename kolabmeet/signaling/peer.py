"""A participant of a room, as the signaling knows it."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from kolabmeet.media.consumer import Consumer
    from kolabmeet.media.producer import Producer
    from kolabmeet.media.router import Router
    from kolabmeet.media.transport import Transport


class Peer:
    """One connection token of a room, its socket and its media objects."""

    def __init__(self, peer_id: str, room_id: str, token: str, role: int) -> None:
        self.id = peer_id
        self.room_id = room_id
        self.token = token
        self.role = role
        self.nickname: str | None = None
        self.raised_hand = False
        self.language: str | None = None
        self.rtp_capabilities: dict[str, Any] | None = None
        self.joined = False
        self.sid: str | None = None
        self.ready = False
        self.closed = False
        self.router: "Router | None" = None
        self.transports: dict[str, "Transport"] = {}
        self.producers: dict[str, "Producer"] = {}
        self.consumers: dict[str, "Consumer"] = {}
        self.consumed_producers: set[str] = set()
        """Producers this peer consumes or is being given a consumer of: one consumer per producer."""
        self.grace_timer: asyncio.TimerHandle | None = None

    def info(self) -> dict[str, Any]:
        """peerInfo of the protocol."""
        return {
            "id": self.id,
            "nickname": self.nickname,
            "role": self.role,
            "raisedHand": self.raised_hand,
            "language": self.language,
        }

    def consuming_transport(self) -> "Transport | None":
        """The first open transport made with consuming true."""
        for transport in self.transports.values():
            if transport.app_data and transport.app_data.get("consuming") and not transport.closed:
                return transport
        return None

    def cancel_grace(self) -> None:
        if self.grace_timer is not None:
            self.grace_timer.cancel()
            self.grace_timer = None
