"""What a request handler gets: the peer, its room, and the server's services."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from kolabmeet.signaling.errors import ForbiddenError, NotFoundError, RequestError
from kolabmeet.signaling.roles import Role, has

if TYPE_CHECKING:
    from kolabmeet.api.webhooks import Webhooks
    from kolabmeet.config import Config
    from kolabmeet.signaling.notifier import Notifier
    from kolabmeet.signaling.peer import Peer
    from kolabmeet.signaling.room import Room

MAX_TEXT = 4096


@dataclass
class Context:
    peer: "Peer"
    room: "Room"
    config: "Config"
    notifier: "Notifier"
    webhooks: "Webhooks"

    def require(self, bits: int, what: str) -> None:
        if not has(self.peer.role, bits):
            raise ForbiddenError(f"{what} needs the {what_role(bits)} role")

    def target(self, data: dict[str, Any]) -> "Peer":
        """The peer named by data.peerId, which must be in this room."""
        peer_id = data.get("peerId")
        peer = self.room.peers.get(peer_id) if isinstance(peer_id, str) else None
        if peer is None:
            raise NotFoundError(f"peer {peer_id!r} is not in this room")
        return peer

    def to_all(self, method: str, data: Any) -> None:
        """A notification to every peer of the room, this one included."""
        self.notifier.broadcast(self.room.peers.values(), method, data)

    def to_others(self, method: str, data: Any) -> None:
        self.notifier.broadcast(self.room.peers.values(), method, data, exclude=self.peer)


def what_role(bits: int) -> str:
    return "|".join(r.name or "" for r in Role if r & bits)


def text(data: dict[str, Any], key: str, limit: int = MAX_TEXT, optional: bool = False) -> str | None:
    """A string field of at most `limit` characters."""
    value = data.get(key)
    if value is None and optional:
        return None
    if not isinstance(value, str):
        raise RequestError(f"{key} must be a string")
    if len(value) > limit:
        raise RequestError(f"{key} is longer than {limit} characters")
    return value


def ident(data: dict[str, Any], key: str) -> str:
    value = data.get(key)
    if not isinstance(value, str) or not value or len(value) > 64:
        raise RequestError(f"{key} must be an id string")
    return value
